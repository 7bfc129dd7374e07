"""The built-in projections behind balances and continuity timelines.

Each stores facts with their business dates, so that the as-of questions of SPEC sections 4
and 5 are answered by a query, never by a rebuild:

- :class:`MoneyProjection` (``proj_money``): every allocation and disbursement with its
  ``on`` date and, once reversed, its reversal's date;
- :class:`ContactsProjection` (``proj_contacts``): every contact of a household or veteran
  (SPEC section 5), those made through a household's enrolments filed under the household,
  a disbursement's contact carrying its reference and, once reversed, the reversal's date.

The subjects table (:class:`~dinsos_ledger.projections.engine.SubjectsProjection`) holds
registration and closure dates and the enrolment → household mapping.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from dinsos_ledger.aggregates import Enrolment, Household, Veteran
from dinsos_ledger.aggregates.base import Account, Person, Subject
from dinsos_ledger.projections.engine import (
    Projection,
    SubjectInfo,
    Writer,
    defer_update,
    event_kind,
    send_deferred,
)
from dinsos_ledger.types import FollowUpOutcome

__all__ = ["BUILTIN", "ContactsProjection", "MoneyProjection"]

_PEOPLE: Final = frozenset({"household", "veteran"})


def _require(writer: Writer, event: Any) -> SubjectInfo:
    info = writer.subject(event.originator_id)
    if info is None:  # pragma: no cover - the subjects projection is applied first
        msg = (
            f"event at {event.originator_id} v{event.originator_version} has no registered subject"
        )
        raise LookupError(msg)
    return info


class MoneyProjection(Projection):
    """Table ``proj_money``: one row per allocation or disbursement.

    Columns: ``ref`` and ``reference`` (together the primary key: a reference is used once
    per subject), ``kind`` of the subject, ``programme``, ``entry`` (``allocation`` or
    ``disbursement``), ``on_date``, ``amount`` (whole rupiah), ``period`` (allocations),
    ``channel`` (disbursements), ``reversed_on`` (the reversal's ``on``, disbursements
    only) and ``position`` of the recording event.
    """

    name: ClassVar[str] = "money"
    table: ClassVar[str] = "proj_money"
    tables: ClassVar[tuple[str, ...]] = ("proj_money",)

    def create_tables(self, writer: Writer) -> None:
        """Create ``proj_money``."""
        writer.create_table(
            self.table,
            {
                "ref": "key not null",
                "reference": "key not null",
                "kind": "key not null",
                "programme": "key not null",
                "entry": "key not null",
                "on_date": "date not null",
                "amount": "integer not null",
                "period": "text",
                "channel": "text",
                "reversed_on": "date",
                "position": "integer not null",
            },
            primary_key=("ref", "reference"),
        )

    def handle(self, event: Any, position: int, writer: Writer) -> None:
        """Record allocations and disbursements; date the reversals."""
        if isinstance(event, Account.Allocated):
            info = _require(writer, event)
            writer.insert(
                self.table,
                {
                    "ref": info.ref,
                    "reference": event.reference.value,
                    "kind": info.kind,
                    "programme": event.programme.code,
                    "entry": "allocation",
                    "on_date": event.on,
                    "amount": event.amount.amount,
                    "period": event.period.value,
                    "channel": None,
                    "reversed_on": None,
                    "position": position,
                },
            )
        elif isinstance(event, Account.Disbursed):
            info = _require(writer, event)
            writer.insert(
                self.table,
                {
                    "ref": info.ref,
                    "reference": event.reference.value,
                    "kind": info.kind,
                    "programme": event.programme.code,
                    "entry": "disbursement",
                    "on_date": event.on,
                    "amount": event.amount.amount,
                    "period": None,
                    "channel": event.channel.value,
                    "reversed_on": None,
                    "position": position,
                },
            )
        elif isinstance(event, Account.DisbursementReversed):
            info = _require(writer, event)
            defer_update(
                writer,
                self.table,
                {"reversed_on": event.on},
                {"ref": info.ref, "reference": event.reference.value},
            )

    def end_page(self, writer: Writer) -> None:
        """Send the page's reversals after its inserts."""
        send_deferred(writer)


class ContactsProjection(Projection):
    """Table ``proj_contacts``: one row per contact of a household or veteran (SPEC 5).

    Columns: ``position`` (primary key: one contact per event at most), ``ref`` of the
    household or veteran, ``on_date``, ``source`` (``register``, ``assess``,
    ``disburse``, ``follow_up``, ``enrol``, ``attend``, ``complete``), ``via`` (the
    enrolment's ref when made through one), ``reference`` and ``reversed_on`` (for
    disbursements: a disbursement reversed on or before D is no contact as of D).
    Follow-ups with outcome ``not_found`` are not stored; withdrawals, closures and
    erasures are no contacts.
    """

    name: ClassVar[str] = "contacts"
    table: ClassVar[str] = "proj_contacts"
    tables: ClassVar[tuple[str, ...]] = ("proj_contacts",)

    def create_tables(self, writer: Writer) -> None:
        """Create ``proj_contacts`` and its indexes."""
        writer.create_table(
            self.table,
            {
                "position": "integer not null",
                "ref": "key not null",
                "on_date": "date not null",
                "source": "key not null",
                "via": "key",
                "reference": "key",
                "reversed_on": "date",
            },
            primary_key=("position",),
        )
        writer.create_index(self.table, ("ref", "on_date"))
        writer.create_index(self.table, ("ref", "reference"))

    def handle(self, event: Any, position: int, writer: Writer) -> None:
        """Store each contact under its household or veteran."""
        kind = event_kind(event)
        if isinstance(event, Subject.Created):
            if isinstance(event, Enrolment.Enrolled):
                self._contact(writer, position, event.household, event.on, "enrol", event.ref)
            elif kind in _PEOPLE:
                self._contact(writer, position, event.ref, event.on, "register")
            return
        if kind == "enrolment":
            source = self._enrolment_source(event)
            if source is not None:
                info = _require(writer, event)
                assert info.household is not None
                self._contact(writer, position, info.household, event.on, source, info.ref)
            return
        if kind not in _PEOPLE:
            return  # a cohort's payments are no one's contact
        source = self._person_source(event)
        if source is None:
            return
        info = _require(writer, event)
        if source == "reverse":
            defer_update(
                writer,
                self.table,
                {"reversed_on": event.on},
                {"ref": info.ref, "reference": event.reference.value},
            )
        elif source == "disburse":
            self._contact(
                writer, position, info.ref, event.on, source, reference=event.reference.value
            )
        else:
            self._contact(writer, position, info.ref, event.on, source)

    def end_page(self, writer: Writer) -> None:
        """Send the page's reversals after its inserts."""
        send_deferred(writer)

    @staticmethod
    def _enrolment_source(event: Any) -> str | None:
        if isinstance(event, Enrolment.Attended):
            return "attend"
        if isinstance(event, Enrolment.Completed):
            return "complete"
        if (
            isinstance(event, Enrolment.FollowedUp)
            and event.outcome is not FollowUpOutcome.NOT_FOUND
        ):
            return "follow_up"
        return None

    @staticmethod
    def _person_source(event: Any) -> str | None:
        if isinstance(event, Account.Disbursed):
            return "disburse"
        if isinstance(event, Account.DisbursementReversed):
            return "reverse"
        if isinstance(event, Person.FollowedUp):
            return None if event.outcome is FollowUpOutcome.NOT_FOUND else "follow_up"
        if isinstance(event, Household.Assessed | Veteran.Assessed):
            return "assess"
        return None

    def _contact(
        self,
        writer: Writer,
        position: int,
        ref: str,
        on: Any,
        source: str,
        via: str | None = None,
        reference: str | None = None,
    ) -> None:
        writer.insert(
            self.table,
            {
                "position": position,
                "ref": ref,
                "on_date": on,
                "source": source,
                "via": via,
                "reference": reference,
                "reversed_on": None,
            },
        )


#: The built-in projections after ``subjects``, in the order they are applied.
BUILTIN: Final = (MoneyProjection, ContactsProjection)
