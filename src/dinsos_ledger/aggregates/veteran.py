"""The veteran: a recipient of the monthly-budgeted, yearly-handed "tali asih" grant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self
from uuid import UUID

import attrs

from dinsos_ledger.aggregates.base import Person, Stamp, Subject
from dinsos_ledger.aggregates.rules import AllocationRule
from dinsos_ledger.errors import NotEligible
from dinsos_ledger.types import Kind, Programme, RegionCode, Sealed

__all__ = ["Veteran"]


class Veteran(Person):
    """A veteran (or a veteran's widow or widower) on the ledger."""

    kind: ClassVar[Kind] = Kind.VETERAN
    PII_FIELDS: ClassVar[tuple[str, ...]] = ("nik", "name")

    if TYPE_CHECKING:
        eligible: bool | None
        nik: Sealed
        name: Sealed

    class Registered(Subject.Created):
        """The veteran was registered (personal data sealed)."""

        region: RegionCode
        nik: Sealed
        name: Sealed

        def apply(self, aggregate: Any) -> None:
            """Set the veteran's registration state."""
            Subject.Created.apply(self, aggregate)
            aggregate.init_person(self.region)
            aggregate.eligible = None
            aggregate.nik = self.nik
            aggregate.name = self.name

    class Assessed(Subject.Event):
        """The veteran's eligibility was assessed."""

        eligible: bool

        def apply(self, aggregate: Any) -> None:
            """Keep the latest eligibility (latest in recorded order)."""
            aggregate.eligible = self.eligible

    class Allocated(Person.Allocated):
        """Money was allocated to the veteran (typically a month of tali asih)."""

    class Disbursed(Person.Disbursed):
        """Money was handed over to the veteran."""

    class DisbursementReversed(Person.DisbursementReversed):
        """A payment to the veteran was reversed."""

    class DisbursementConfirmed(Person.DisbursementConfirmed):
        """The payment channel confirmed a payment to the veteran."""

    class FollowedUp(Person.FollowedUp):
        """An officer followed the veteran up."""

    class Closed(Person.Closed):
        """The veteran's case was closed."""

    class Forgotten(Person.Forgotten):
        """The veteran's personal data was crypto-shredded."""

    @classmethod
    def register(
        cls,
        stamp: Stamp,
        *,
        id: UUID,  # noqa: A002 - eventsourcing's name for the aggregate id
        ref: str,
        region: RegionCode,
        nik: Sealed,
        name: Sealed,
    ) -> Self:
        """A newly registered veteran (its personal data already sealed by the caller)."""
        return cls._create(
            cls.Registered,
            id=id,
            ref=ref,
            region=region,
            nik=nik,
            name=name,
            **cls.stamp_kwargs(stamp),
        )

    def assess(self, stamp: Any, eligible: bool) -> None:
        """Record an eligibility assessment."""
        self.check_open("assess")
        self.check_not_before_registration(stamp.on)
        self.trigger_event(self.Assessed, eligible=eligible, **self.stamp_kwargs(stamp))

    def check_assessment(self, programme: Programme, rule: AllocationRule) -> AllocationRule:
        """Allocation needs a latest assessment that found the veteran eligible.

        A veteran's eligibility is a yes/no assessment: the desil limit does not apply.
        """
        if self.eligible is None:
            msg = f"{self.ref} has no assessment: assess it before allocating {programme.code}"
            raise NotEligible(msg)
        if not self.eligible:
            msg = f"{self.ref}'s latest assessment found it not eligible for {programme.code}"
            raise NotEligible(msg)
        return attrs.evolve(rule, eligible=True)

    def view(self) -> dict[str, Any]:
        """The veteran's state, without personal data."""
        data = super().view()
        data["eligible"] = self.eligible
        return data
