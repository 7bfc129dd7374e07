"""What the four aggregates share: the event envelope, the money account and the rule checks.

Public methods check the rules and raise; each event's ``apply`` only assigns state, because it
runs again on every replay. Checks run in the order of the command format's table, so the first
failing rule gives the code.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import attrs
from eventsourcing.domain import Aggregate

from dinsos_ledger.aggregates.rules import AllocationRule
from dinsos_ledger.balances import disbursement_counts
from dinsos_ledger.errors import (
    AlreadyConfirmed,
    AlreadyReversed,
    AmountMismatch,
    BeforeRegistration,
    Closed,
    DuplicateReference,
    InsufficientAllocation,
    NotClosed,
    NotEligible,
    UnknownReference,
)
from dinsos_ledger.types import (
    Channel,
    CloseReason,
    FollowUpOutcome,
    Kind,
    Period,
    Programme,
    Reference,
    RegionCode,
    Rupiah,
)

__all__ = [
    "Account",
    "Grant",
    "Payment",
    "Stamp",
    "Subject",
]


@attrs.frozen
class Stamp:
    """Who did an act, on which business date, under which command id, and why."""

    on: date
    actor: str
    command_id: str
    note: str | None = None


@attrs.frozen
class Grant:
    """An allocation as the subject's account keeps it, with the rule that decided it.

    ``rule`` is ``None`` for allocations recorded before the ledger recorded rules.
    """

    programme: str
    amount: int
    period: str
    on: date
    rule: AllocationRule | None = None


@attrs.frozen
class Payment:
    """A disbursement as the subject's account keeps it.

    ``reversed_on`` once reversed; ``confirmed_on`` once the payment channel confirmed it.
    """

    programme: str
    amount: int
    on: date
    reversed_on: date | None = None
    confirmed_on: date | None = None


class Subject(Aggregate):
    """Base of every aggregate: a ref, a kind, a registration date and a stamped history."""

    kind: ClassVar[Kind]
    #: The schema version of a subject's state as snapshots store it (eventsourcing's
    #: ``class_version``). A release that changes the attributes raises it on the concrete
    #: class and adds a static ``upcast_vN_vN+1(state)`` bringing older snapshots forward;
    #: see docs/storage-format.md.
    class_version: ClassVar[int] = 1
    if TYPE_CHECKING:  # state is assigned by events; annotations here would make a dataclass
        ref: str
        registered_on: date

    class Event(Aggregate.Event):
        """An event of a subject: business date, actor, command id and note."""

        #: The schema version of the event's stored fields; raised (with an upcast) on the
        #: concrete event class whose fields change.
        class_version: ClassVar[int] = 1

        on: date
        actor: str
        command_id: str
        note: str | None

    class Created(Aggregate.Created):
        """The first event of a subject."""

        #: As :attr:`Subject.Event.class_version`.
        class_version: ClassVar[int] = 1

        on: date
        actor: str
        command_id: str
        note: str | None
        ref: str

        def apply(self, aggregate: Any) -> None:
            """Set the ref and registration date."""
            aggregate.ref = self.ref
            aggregate.registered_on = self.on

    @staticmethod
    def stamp_kwargs(stamp: Stamp) -> dict[str, Any]:
        """The envelope fields of an event, from a stamp."""
        return {
            "on": stamp.on,
            "actor": stamp.actor,
            "command_id": stamp.command_id,
            "note": stamp.note,
        }

    @property
    def subject_id(self) -> UUID:
        """The aggregate id (derived from the ref)."""
        return self.id

    def check_not_before_registration(self, on: date) -> None:
        """Raise :class:`BeforeRegistration` when ``on`` precedes the registration."""
        if on < self.registered_on:
            msg = (
                f"'on' must not be before {self.ref}'s registration on "
                f"{self.registered_on.isoformat()} (got {on.isoformat()})"
            )
            raise BeforeRegistration(msg)

    def view(self) -> dict[str, Any]:
        """The subject's state as JSON-ready data (no personal data)."""
        return {
            "ref": self.ref,
            "kind": self.kind.value,
            "version": self.version,
            "registered_on": self.registered_on.isoformat(),
        }


class Account(Subject):
    """A subject that can be allocated money and paid: household, veteran, cohort.

    ``outstanding`` is per programme over everything recorded so far, which is what
    ``insufficient_allocation`` compares with (the balance rules).
    """

    if TYPE_CHECKING:
        grants: dict[str, Grant]
        payments: dict[str, Payment]
        outstanding: dict[str, int]

    class Allocated(Subject.Event):
        """Money was allocated to the subject in a programme for a budget month.

        ``rule`` is the eligibility rule the allocation was decided by and what the
        subject's latest assessment said (version 2; version 1 events did not record it
        and read back with ``rule`` ``None``).
        """

        class_version = 2

        programme: Programme
        amount: Rupiah
        period: Period
        reference: Reference
        rule: AllocationRule | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 did not record the rule: it is unknown, not the default."""
            state["rule"] = None

        def apply(self, aggregate: Any) -> None:
            """Add the grant and raise the programme's outstanding balance."""
            code = self.programme.code
            aggregate.grants[self.reference.value] = Grant(
                code, self.amount.amount, self.period.value, self.on, self.rule
            )
            aggregate.outstanding[code] = aggregate.outstanding.get(code, 0) + self.amount.amount

    class Disbursed(Subject.Event):
        """Money was paid out to the subject."""

        programme: Programme
        amount: Rupiah
        reference: Reference
        channel: Channel

        def apply(self, aggregate: Any) -> None:
            """Record the payment and lower the programme's outstanding balance."""
            code = self.programme.code
            aggregate.payments[self.reference.value] = Payment(code, self.amount.amount, self.on)
            aggregate.outstanding[code] = aggregate.outstanding.get(code, 0) - self.amount.amount

    class DisbursementReversed(Subject.Event):
        """An earlier disbursement was reversed (returned, failed or paid in error)."""

        reference: Reference
        reason: str

        def apply(self, aggregate: Any) -> None:
            """Mark the payment reversed and restore the outstanding balance."""
            payment: Payment = aggregate.payments[self.reference.value]
            aggregate.payments[self.reference.value] = attrs.evolve(payment, reversed_on=self.on)
            aggregate.outstanding[payment.programme] += payment.amount

    class DisbursementConfirmed(Subject.Event):
        """The payment channel reported an earlier disbursement credited (the reconciliation rules).

        Not a contact, and no change of balance: it only says the money arrived.
        """

        reference: Reference
        amount: Rupiah
        channel_ref: Reference

        def apply(self, aggregate: Any) -> None:
            """Mark the payment confirmed."""
            payment: Payment = aggregate.payments[self.reference.value]
            aggregate.payments[self.reference.value] = attrs.evolve(payment, confirmed_on=self.on)

    def init_account(self) -> None:
        """Start with no money (called by the creation event)."""
        self.grants = {}
        self.payments = {}
        self.outstanding = {}

    def check_open(self, command: str) -> None:
        """Raise :class:`Closed` when the subject accepts no more ``command``."""

    def allocate(
        self,
        stamp: Stamp,
        programme: Programme,
        amount: Rupiah,
        period: Period,
        reference: Reference,
        *,
        rule: AllocationRule | None = None,
    ) -> None:
        """Allocate ``amount`` in ``programme`` for ``period`` under ``reference``.

        ``rule`` is the programme's rule for the allocation's date (the default rule of an
        undefined programme when not given); the event records it with what it saw.
        """
        self.check_open("allocate")
        self.check_not_before_registration(stamp.on)
        decided = self.check_eligible(
            programme, stamp.on, AllocationRule.default() if rule is None else rule
        )
        self._check_reference_unused(reference)
        self.trigger_event(
            self.Allocated,
            programme=programme,
            amount=amount,
            period=period,
            reference=reference,
            rule=decided,
            **self.stamp_kwargs(stamp),
        )

    def check_eligible(
        self, programme: Programme, on: date, rule: AllocationRule
    ) -> AllocationRule:
        """Raise :class:`NotEligible` unless ``rule`` admits an allocation dated ``on``.

        Returns the rule with what the subject's latest assessment said, as the event
        records it.
        """
        if not rule.in_force_on(on):
            assert rule.on is not None
            msg = (
                f"programme {programme.code} is not in force on {on.isoformat()}: "
                f"it was defined from {rule.on.isoformat()}"
            )
            raise NotEligible(msg)
        if self.kind.value not in rule.recipients:
            msg = (
                f"programme {programme.code} does not reach a {self.kind.value} "
                f"(its recipients: {', '.join(rule.recipients)})"
            )
            raise NotEligible(msg)
        return self.check_assessment(programme, rule)

    def check_assessment(self, programme: Programme, rule: AllocationRule) -> AllocationRule:  # noqa: ARG002
        """Raise :class:`NotEligible` when the latest assessment does not allow ``rule``.

        A cohort needs no assessment; households and veterans override this.
        """
        return rule

    def disburse(
        self,
        stamp: Stamp,
        programme: Programme,
        amount: Rupiah,
        reference: Reference,
        channel: Channel,
    ) -> None:
        """Pay ``amount`` from the outstanding balance of ``programme``."""
        self.check_open("disburse")
        self.check_not_before_registration(stamp.on)
        available = self.outstanding.get(programme.code, 0)
        if amount.amount > available:
            msg = (
                f"'amount' must not exceed {self.ref}'s outstanding {programme.code} balance "
                f"of {available} (got {amount.amount})"
            )
            raise InsufficientAllocation(msg)
        self._check_reference_unused(reference)
        self.trigger_event(
            self.Disbursed,
            programme=programme,
            amount=amount,
            reference=reference,
            channel=channel,
            **self.stamp_kwargs(stamp),
        )

    def reverse(self, stamp: Stamp, reference: Reference, reason: str) -> None:
        """Reverse the disbursement recorded under ``reference`` (confirmed or not)."""
        self.check_open("reverse")
        self.check_not_before_registration(stamp.on)
        self._payment_not_reversed(reference)
        self.trigger_event(
            self.DisbursementReversed,
            reference=reference,
            reason=reason,
            **self.stamp_kwargs(stamp),
        )

    def confirm(
        self, stamp: Stamp, reference: Reference, amount: Rupiah, channel_ref: Reference
    ) -> None:
        """Record that the payment channel credited the disbursement under ``reference``."""
        self.check_open("confirm")
        self.check_not_before_registration(stamp.on)
        payment = self._payment_not_reversed(reference)
        if payment.confirmed_on is not None:
            msg = (
                f"disbursement {reference.value!r} of {self.ref} was already confirmed "
                f"on {payment.confirmed_on.isoformat()}"
            )
            raise AlreadyConfirmed(msg)
        if amount.amount != payment.amount:
            msg = (
                f"'amount' must equal disbursement {reference.value!r}'s amount of "
                f"{payment.amount} (got {amount.amount})"
            )
            raise AmountMismatch(msg)
        self.trigger_event(
            self.DisbursementConfirmed,
            reference=reference,
            amount=amount,
            channel_ref=channel_ref,
            **self.stamp_kwargs(stamp),
        )

    def _payment_not_reversed(self, reference: Reference) -> Payment:
        """The payment under ``reference``; unknown_reference, then already_reversed."""
        payment: Payment | None = self.payments.get(reference.value)
        if payment is None:
            msg = f"'reference' must name a disbursement of {self.ref} (got {reference.value!r})"
            raise UnknownReference(msg)
        if payment.reversed_on is not None:
            msg = (
                f"disbursement {reference.value!r} of {self.ref} was already reversed "
                f"on {payment.reversed_on.isoformat()}"
            )
            raise AlreadyReversed(msg)
        return payment

    def _check_reference_unused(self, reference: Reference) -> None:
        if reference.value in self.grants or reference.value in self.payments:
            msg = f"'reference' {reference.value!r} is already used by {self.ref}"
            raise DuplicateReference(msg)

    def balances(self) -> dict[str, dict[str, int]]:
        """Allocated, disbursed (not reversed) and outstanding per programme."""
        rows: dict[str, dict[str, int]] = {}
        for grant in self.grants.values():
            row = rows.setdefault(grant.programme, {"allocated": 0, "disbursed": 0})
            row["allocated"] += grant.amount
        for payment in self.payments.values():
            row = rows.setdefault(payment.programme, {"allocated": 0, "disbursed": 0})
            if disbursement_counts(payment.on, payment.reversed_on, None):
                row["disbursed"] += payment.amount
        for row in rows.values():
            row["outstanding"] = row["allocated"] - row["disbursed"]
        return dict(sorted(rows.items()))

    def view(self) -> dict[str, Any]:
        """The subject's state, with its balances and its allocations' deciding rules."""
        data = super().view()
        data["balances"] = self.balances()
        data["allocations"] = [
            {
                "reference": reference,
                "programme": grant.programme,
                "amount": grant.amount,
                "period": grant.period,
                "on": grant.on.isoformat(),
                "rule": None if grant.rule is None else grant.rule.to_json(),
            }
            for reference, grant in self.grants.items()
        ]
        return data


class Person(Account):
    """A household or a veteran: has a region, a timeline, can be closed and forgotten."""

    if TYPE_CHECKING:
        region: RegionCode
        closed_on: date | None
        close_reason: str | None
        forgotten_on: date | None

    class FollowedUp(Subject.Event):
        """An officer followed up the subject (a visit, a call, a referral …)."""

        outcome: FollowUpOutcome

        def apply(self, aggregate: Any) -> None:
            """Nothing to keep on the aggregate: timelines are projections."""

    class Closed(Subject.Event):
        """The case was closed."""

        reason: CloseReason

        def apply(self, aggregate: Any) -> None:
            """Mark the subject closed."""
            aggregate.closed_on = self.on
            aggregate.close_reason = self.reason.value

    class Forgotten(Subject.Event):
        """The subject's personal data was crypto-shredded (its data key destroyed)."""

        reason: str

        def apply(self, aggregate: Any) -> None:
            """Mark the subject forgotten."""
            aggregate.forgotten_on = self.on

    def init_person(self, region: RegionCode) -> None:
        """Set the region and an open case (called by the creation event)."""
        self.init_account()
        self.region = region
        self.closed_on = None
        self.close_reason = None
        self.forgotten_on = None

    def check_open(self, command: str) -> None:
        """A forgotten subject accepts nothing; a closed one only reverse, confirm and forget."""
        if self.forgotten_on is not None:
            msg = f"{self.ref} was forgotten on {self.forgotten_on.isoformat()}: it accepts nothing"
            raise Closed(msg)
        if self.closed_on is not None and command not in ("reverse", "confirm", "forget"):
            msg = f"{self.ref} was closed on {self.closed_on.isoformat()}: it accepts no {command}"
            raise Closed(msg)

    def follow_up(self, stamp: Stamp, outcome: FollowUpOutcome) -> None:
        """Record a follow-up of the subject."""
        self.check_open("follow_up")
        self.check_not_before_registration(stamp.on)
        self.trigger_event(self.FollowedUp, outcome=outcome, **self.stamp_kwargs(stamp))

    def close(self, stamp: Stamp, reason: CloseReason) -> None:
        """Close the case."""
        self.check_open("close")
        self.check_not_before_registration(stamp.on)
        self.trigger_event(self.Closed, reason=reason, **self.stamp_kwargs(stamp))

    def forget(self, stamp: Stamp, reason: str) -> None:
        """Record that the subject's personal data is destroyed (the caller shreds the key)."""
        self.check_open("forget")
        if self.closed_on is None:
            msg = f"{self.ref} must be closed before it is forgotten (close it first)"
            raise NotClosed(msg)
        self.check_not_before_registration(stamp.on)
        self.trigger_event(self.Forgotten, reason=reason, **self.stamp_kwargs(stamp))

    def view(self) -> dict[str, Any]:
        """The subject's state, without personal data (the application opens it)."""
        data = super().view()
        data["region"] = self.region.code
        data["closed_on"] = self.closed_on.isoformat() if self.closed_on else None
        data["close_reason"] = self.close_reason
        data["forgotten"] = self.forgotten_on is not None
        return data
