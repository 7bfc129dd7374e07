"""The training cohort: a productive-business course with a capacity and dates."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, Self
from uuid import UUID

from dinsos_ledger.aggregates.base import Account, Stamp, Subject
from dinsos_ledger.errors import AlreadyEnrolled, CohortFull, OutsideCohortDates
from dinsos_ledger.types import Kind, Programme, RegionCode

__all__ = ["TrainingCohort"]


class TrainingCohort(Account):
    """A cohort of participants; it holds the seats so that it can never be overfilled.

    ``seats`` maps each household with an active (not withdrawn) enrolment to that
    enrolment's ref; completed enrolments keep their seat.
    """

    kind: ClassVar[Kind] = Kind.COHORT

    if TYPE_CHECKING:
        region: RegionCode
        programme: str
        capacity: int
        starts: date
        ends: date
        seats: dict[str, str]

    class Planned(Subject.Created):
        """The cohort was planned."""

        region: RegionCode
        programme: Programme
        capacity: int
        starts: date
        ends: date

        def apply(self, aggregate: Any) -> None:
            """Set the cohort's plan."""
            Subject.Created.apply(self, aggregate)
            aggregate.init_account()
            aggregate.region = self.region
            aggregate.programme = self.programme.code
            aggregate.capacity = self.capacity
            aggregate.starts = self.starts
            aggregate.ends = self.ends
            aggregate.seats = {}

    class ParticipantEnrolled(Subject.Event):
        """A household took a seat in the cohort through an enrolment."""

        household: str
        enrolment: str

        def apply(self, aggregate: Any) -> None:
            """Take the seat."""
            aggregate.seats[self.household] = self.enrolment

    class ParticipantWithdrawn(Subject.Event):
        """A household's enrolment was withdrawn, which frees its seat."""

        household: str
        enrolment: str

        def apply(self, aggregate: Any) -> None:
            """Free the seat."""
            aggregate.seats.pop(self.household, None)

    class Allocated(Account.Allocated):
        """Money was allocated to the cohort (a training grant)."""

    class Disbursed(Account.Disbursed):
        """Money was paid for the cohort."""

    class DisbursementReversed(Account.DisbursementReversed):
        """A payment for the cohort was reversed."""

    class DisbursementConfirmed(Account.DisbursementConfirmed):
        """The payment channel confirmed a payment to the cohort."""

    @classmethod
    def plan(
        cls,
        stamp: Stamp,
        *,
        id: UUID,  # noqa: A002 - eventsourcing's name for the aggregate id
        ref: str,
        region: RegionCode,
        programme: Programme,
        capacity: int,
        starts: date,
        ends: date,
    ) -> Self:
        """A newly planned cohort."""
        return cls._create(
            cls.Planned,
            id=id,
            ref=ref,
            region=region,
            programme=programme,
            capacity=capacity,
            starts=starts,
            ends=ends,
            **cls.stamp_kwargs(stamp),
        )

    def check_seat(self, household: str, on: date) -> None:
        """Raise unless ``household`` may take a seat on ``on`` (capacity, duplicates, dates)."""
        if len(self.seats) >= self.capacity:
            msg = f"cohort {self.ref} is full: {len(self.seats)} of {self.capacity} seats taken"
            raise CohortFull(msg)
        if household in self.seats:
            msg = (
                f"household {household} already has an active enrolment "
                f"{self.seats[household]} in cohort {self.ref}"
            )
            raise AlreadyEnrolled(msg)
        if on > self.ends:
            msg = (
                f"'on' must not be after cohort {self.ref} ends on {self.ends.isoformat()} "
                f"(got {on.isoformat()})"
            )
            raise OutsideCohortDates(msg)

    def take_seat(self, stamp: Stamp, household: str, enrolment: str) -> None:
        """Give ``household`` a seat for ``enrolment`` (after :meth:`check_seat`)."""
        self.check_seat(household, stamp.on)
        self.trigger_event(
            self.ParticipantEnrolled,
            household=household,
            enrolment=enrolment,
            **self.stamp_kwargs(stamp),
        )

    def release_seat(self, stamp: Stamp, household: str, enrolment: str) -> None:
        """Free the seat held by ``enrolment``."""
        if self.seats.get(household) == enrolment:
            self.trigger_event(
                self.ParticipantWithdrawn,
                household=household,
                enrolment=enrolment,
                **self.stamp_kwargs(stamp),
            )

    def view(self) -> dict[str, Any]:
        """The cohort's plan, seats and balances."""
        data = super().view()
        data.update(
            region=self.region.code,
            programme=self.programme,
            capacity=self.capacity,
            starts=self.starts.isoformat(),
            ends=self.ends.isoformat(),
            active_enrolments=len(self.seats),
        )
        return data
