"""The enrolment: one household's place in one training cohort."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, Self
from uuid import UUID

from dinsos_ledger.aggregates.base import Stamp, Subject
from dinsos_ledger.errors import Closed, OutsideCohortDates
from dinsos_ledger.types import FollowUpOutcome, Kind

__all__ = ["Enrolment"]


class Enrolment(Subject):
    """A household's participation in a cohort: attended, completed or withdrawn.

    Its contacts (enrol, attend, complete, follow-up) count for the household's timeline.
    The cohort's dates are copied at enrolment: a cohort's dates never change.
    """

    kind: ClassVar[Kind] = Kind.ENROLMENT

    if TYPE_CHECKING:
        cohort: str
        household: str
        starts: date
        ends: date
        status: str
        attended: int

    class Enrolled(Subject.Created):
        """The household was enrolled in the cohort."""

        cohort: str
        household: str
        starts: date
        ends: date

        def apply(self, aggregate: Any) -> None:
            """Start an active enrolment."""
            Subject.Created.apply(self, aggregate)
            aggregate.cohort = self.cohort
            aggregate.household = self.household
            aggregate.starts = self.starts
            aggregate.ends = self.ends
            aggregate.status = "active"
            aggregate.attended = 0

    class Attended(Subject.Event):
        """The participant attended a session."""

        def apply(self, aggregate: Any) -> None:
            """Count the attendance."""
            aggregate.attended += 1

    class Completed(Subject.Event):
        """The participant completed the course."""

        def apply(self, aggregate: Any) -> None:
            """Mark the enrolment completed."""
            aggregate.status = "completed"

    class Withdrawn(Subject.Event):
        """The participant withdrew (or was withdrawn)."""

        reason: str

        def apply(self, aggregate: Any) -> None:
            """Mark the enrolment withdrawn."""
            aggregate.status = "withdrawn"

    class FollowedUp(Subject.Event):
        """The participant was followed up after the course."""

        outcome: FollowUpOutcome

        def apply(self, aggregate: Any) -> None:
            """Nothing to keep on the aggregate: timelines are projections."""

    @classmethod
    def start(
        cls,
        stamp: Stamp,
        *,
        id: UUID,  # noqa: A002 - eventsourcing's name for the aggregate id
        ref: str,
        cohort: str,
        household: str,
        starts: date,
        ends: date,
    ) -> Self:
        """A new, active enrolment of ``household`` in ``cohort`` (whose dates it copies).

        The cohort's seat is taken by :meth:`TrainingCohort.take_seat`; the application
        checks both subjects first.
        """
        return cls._create(
            cls.Enrolled,
            id=id,
            ref=ref,
            cohort=cohort,
            household=household,
            starts=starts,
            ends=ends,
            **cls.stamp_kwargs(stamp),
        )

    def check_open(self, command: str) -> None:
        """A withdrawn enrolment accepts nothing; a completed one only ``follow_up``."""
        if self.status == "withdrawn":
            msg = f"enrolment {self.ref} was withdrawn: it accepts no {command}"
            raise Closed(msg)
        if self.status == "completed" and command != "follow_up":
            msg = f"enrolment {self.ref} is completed: it accepts only follow_up (got {command})"
            raise Closed(msg)

    def _check_within_dates(self, on: date) -> None:
        if not self.starts <= on <= self.ends:
            msg = (
                f"'on' must be within the cohort's dates {self.starts.isoformat()}.."
                f"{self.ends.isoformat()} (got {on.isoformat()})"
            )
            raise OutsideCohortDates(msg)

    def attend(self, stamp: Stamp) -> None:
        """Record attendance (within the cohort's dates)."""
        self.check_open("attend")
        self.check_not_before_registration(stamp.on)
        self._check_within_dates(stamp.on)
        self.trigger_event(self.Attended, **self.stamp_kwargs(stamp))

    def complete(self, stamp: Stamp) -> None:
        """Record completion (within the cohort's dates)."""
        self.check_open("complete")
        self.check_not_before_registration(stamp.on)
        self._check_within_dates(stamp.on)
        self.trigger_event(self.Completed, **self.stamp_kwargs(stamp))

    def withdraw(self, stamp: Stamp, reason: str) -> None:
        """Withdraw the participant (the application frees the cohort seat too)."""
        self.check_open("withdraw")
        self.check_not_before_registration(stamp.on)
        self.trigger_event(self.Withdrawn, reason=reason, **self.stamp_kwargs(stamp))

    def follow_up(self, stamp: Stamp, outcome: FollowUpOutcome) -> None:
        """Record a follow-up of the participant."""
        self.check_open("follow_up")
        self.check_not_before_registration(stamp.on)
        self.trigger_event(self.FollowedUp, outcome=outcome, **self.stamp_kwargs(stamp))

    def view(self) -> dict[str, Any]:
        """The enrolment's state."""
        data = super().view()
        data.update(
            cohort=self.cohort,
            household=self.household,
            status=self.status,
            attended=self.attended,
        )
        return data
