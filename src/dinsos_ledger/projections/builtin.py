"""The built-in projections behind balances and continuity timelines.

Each stores facts with their business dates, so that the as-of questions of the balance rules
and 5 are answered by a query, never by a rebuild:

- :class:`MoneyProjection` (``proj_money``): every allocation and disbursement with its
  ``on`` date and, once reversed, its reversal's date;
- :class:`ContactsProjection` (``proj_contacts``): every contact of a household or veteran
  (the continuity rules), those made through a household's enrolments filed under the household,
  a disbursement's contact carrying its reference and, once reversed, the reversal's date.

The subjects table (:class:`~dinsos_ledger.projections.engine.SubjectsProjection`) holds
registration and closure dates and the enrolment → household mapping.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from dinsos_ledger.projections.engine import (
    Projection,
    RawEvent,
    Role,
    SubjectInfo,
    Writer,
    class_kind,
    defer_update,
    event_role,
    send_deferred,
)
from dinsos_ledger.types import FollowUpOutcome

__all__ = ["BUILTIN", "ContactsProjection", "MoneyProjection"]

_PEOPLE: Final = frozenset({"household", "veteran"})


# The contact each role of event makes (the continuity rules); a follow-up only when it found
# someone. Withdrawals, closures and erasures are no contacts.
_ENROLMENT_SOURCES: Final[dict[Role, str]] = {
    "attended": "attend",
    "completed": "complete",
    "followed_up": "follow_up",
}
_PERSON_SOURCES: Final[dict[Role, str]] = {
    "disbursed": "disburse",
    "reversed": "reverse",
    "followed_up": "follow_up",
    "assessed": "assess",
}
_MONEY_ROLES: Final = frozenset({"allocated", "disbursed", "reversed"})
_NOT_FOUND: Final = FollowUpOutcome.NOT_FOUND.value


def _require(writer: Writer, event: RawEvent) -> SubjectInfo:
    info = writer.subject_by_id(event.originator_id)
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

    raw: ClassVar[bool] = True

    def handle_raw(self, event: RawEvent, position: int, writer: Writer) -> None:
        """Record allocations and disbursements; date the reversals."""
        role = event_role(event.cls)
        if role not in _MONEY_ROLES:
            return
        state = event.state
        info = _require(writer, event)
        if role == "reversed":
            defer_update(
                writer,
                self.table,
                {"reversed_on": state["on"]},
                {"ref": info.ref, "reference": state["reference"]},
            )
            return
        allocation = role == "allocated"
        writer.insert(
            self.table,
            {
                "ref": info.ref,
                "reference": state["reference"],
                "kind": info.kind,
                "programme": state["programme"],
                "entry": "allocation" if allocation else "disbursement",
                "on_date": state["on"],
                "amount": state["amount"],
                "period": state["period"] if allocation else None,
                "channel": None if allocation else state["channel"],
                "reversed_on": None,
                "position": position,
            },
        )

    def end_page(self, writer: Writer) -> None:
        """Send the page's reversals after its inserts."""
        send_deferred(writer)


class ContactsProjection(Projection):
    """Table ``proj_contacts``: one row per contact of a household or veteran (continuity).

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

    raw: ClassVar[bool] = True

    def handle_raw(self, event: RawEvent, position: int, writer: Writer) -> None:
        """Store each contact under its household or veteran."""
        role = event_role(event.cls)
        if not role:
            return
        kind = class_kind(event.cls)
        state = event.state
        if role == "created":
            if kind == "enrolment":
                self._contact(
                    writer, position, state["household"], state["on"], "enrol", state["ref"]
                )
            elif kind in _PEOPLE:
                self._contact(writer, position, state["ref"], state["on"], "register")
            return
        if kind == "enrolment":
            source = _ENROLMENT_SOURCES.get(role)
            if source is not None and state.get("outcome") != _NOT_FOUND:
                info = _require(writer, event)
                assert info.household is not None
                self._contact(writer, position, info.household, state["on"], source, info.ref)
            return
        if kind not in _PEOPLE:
            return  # a cohort's payments are no one's contact
        source = _PERSON_SOURCES.get(role)
        if source is None or state.get("outcome") == _NOT_FOUND:
            return
        info = _require(writer, event)
        if source == "reverse":
            defer_update(
                writer,
                self.table,
                {"reversed_on": state["on"]},
                {"ref": info.ref, "reference": state["reference"]},
            )
        elif source == "disburse":
            self._contact(
                writer, position, info.ref, state["on"], source, reference=state["reference"]
            )
        else:
            self._contact(writer, position, info.ref, state["on"], source)

    def end_page(self, writer: Writer) -> None:
        """Send the page's reversals after its inserts."""
        send_deferred(writer)

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
