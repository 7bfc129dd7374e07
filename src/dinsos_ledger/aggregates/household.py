"""The household: a family (keluarga) registered by its family card, assessed by desil."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self
from uuid import UUID

import attrs

from dinsos_ledger.aggregates.base import Person, Stamp, Subject
from dinsos_ledger.aggregates.rules import AllocationRule
from dinsos_ledger.errors import NotEligible
from dinsos_ledger.types import Kind, Programme, RegionCode, Sealed

__all__ = ["Household"]


class Household(Person):
    """A family on the ledger. Its personal data is sealed with its own data key."""

    kind: ClassVar[Kind] = Kind.HOUSEHOLD
    PII_FIELDS: ClassVar[tuple[str, ...]] = ("family_card", "head_nik", "head_name")

    if TYPE_CHECKING:
        members: int
        desil: int | None
        family_card: Sealed
        head_nik: Sealed
        head_name: Sealed

    class Registered(Subject.Created):
        """The household was registered (its personal data arrives sealed)."""

        region: RegionCode
        members: int
        family_card: Sealed
        head_nik: Sealed
        head_name: Sealed

        def apply(self, aggregate: Any) -> None:
            """Set the household's registration state."""
            Subject.Created.apply(self, aggregate)
            aggregate.init_person(self.region)
            aggregate.members = self.members
            aggregate.desil = None
            aggregate.family_card = self.family_card
            aggregate.head_nik = self.head_nik
            aggregate.head_name = self.head_name

    class Assessed(Subject.Event):
        """The household's welfare was assessed: its desil (1 poorest … 10)."""

        desil: int

        def apply(self, aggregate: Any) -> None:
            """Keep the latest desil (latest in recorded order)."""
            aggregate.desil = self.desil

    class Allocated(Person.Allocated):
        """Money was allocated to the household."""

    class Disbursed(Person.Disbursed):
        """Money was paid to the household."""

    class DisbursementReversed(Person.DisbursementReversed):
        """A payment to the household was reversed."""

    class DisbursementConfirmed(Person.DisbursementConfirmed):
        """The payment channel confirmed a payment to the household."""

    class FollowedUp(Person.FollowedUp):
        """An officer followed the household up."""

    class Closed(Person.Closed):
        """The household's case was closed."""

    class Forgotten(Person.Forgotten):
        """The household's personal data was crypto-shredded."""

    @classmethod
    def register(
        cls,
        stamp: Stamp,
        *,
        id: UUID,  # noqa: A002 - eventsourcing's name for the aggregate id
        ref: str,
        region: RegionCode,
        members: int,
        family_card: Sealed,
        head_nik: Sealed,
        head_name: Sealed,
    ) -> Self:
        """A newly registered household (its personal data already sealed by the caller)."""
        return cls._create(
            cls.Registered,
            id=id,
            ref=ref,
            region=region,
            members=members,
            family_card=family_card,
            head_nik=head_nik,
            head_name=head_name,
            **cls.stamp_kwargs(stamp),
        )

    def assess(self, stamp: Any, desil: int) -> None:
        """Record a welfare assessment."""
        self.check_open("assess")
        self.check_not_before_registration(stamp.on)
        self.trigger_event(self.Assessed, desil=desil, **self.stamp_kwargs(stamp))

    def check_assessment(self, programme: Programme, rule: AllocationRule) -> AllocationRule:
        """Allocation needs a latest assessment, with desil at most the rule's limit if any."""
        if self.desil is None:
            msg = f"{self.ref} has no assessment: assess it before allocating {programme.code}"
            raise NotEligible(msg)
        if rule.desil_limit is not None and self.desil > rule.desil_limit:
            msg = (
                f"{self.ref}'s latest desil must be at most {rule.desil_limit} for "
                f"{programme.code} (got {self.desil}; {rule.describe()})"
            )
            raise NotEligible(msg)
        return attrs.evolve(rule, desil=self.desil)

    def view(self) -> dict[str, Any]:
        """The household's state, without personal data."""
        data = super().view()
        data["members"] = self.members
        data["desil"] = self.desil
        return data
