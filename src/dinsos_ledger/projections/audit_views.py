"""The projections behind findings and reconciliation.

- :class:`PaymentsProjection` (``proj_payments``): every ``bank`` and ``post``
  disbursement with its ``on``, the reversal's ``on`` once reversed and the confirmation's
  ``on`` (and the channel's transaction id) once the channel confirmed it;
- :class:`FindingsProjection` keeps the facts only findings need: ``proj_closures`` (each
  close, with the earliest business date of the subject's activity after it, if any),
  ``proj_not_found`` (follow-ups that found nobody: the one activity no built-in table
  keeps), ``proj_future`` (events whose ``on`` is later than the WITA date they were
  recorded) and ``proj_shared`` (pairs of subjects whose NIK or family-card number are
  equal, found through the keyed index).

Both store facts with their business dates; :func:`findings` and :func:`reconciliation`
answer any as-of date by a query and the pure ``check_*`` functions of
:mod:`dinsos_ledger.findings`, never by a rebuild.

The keyed index (``dinsos_index``) is written in the transaction of a registration and
emptied for a subject in the transaction of its ``forget``, so when a page is applied it
holds exactly the entries of the subjects not forgotten *by now*. A registration is matched
only against subjects registered earlier in recorded order (``proj_subjects.position``), and
a ``forget`` removes the subject from every pair: incremental catch-up and a rebuild from the
first event both end with the pairs of the subjects not forgotten, so they agree.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any, ClassVar, Final

import attrs

from dinsos_ledger.findings import (
    END_OF_TIME,
    Finding,
    MoneyEntry,
    check_activity_after_close,
    check_future_dated,
    check_negative_balance,
    check_shared,
    check_unconfirmed_payment,
    recorded_day,
    sort_findings,
)
from dinsos_ledger.persistence.common import INDEX_TABLE
from dinsos_ledger.projections.builtin import ContactsProjection, MoneyProjection
from dinsos_ledger.projections.engine import (
    Projection,
    RawEvent,
    Reader,
    Writer,
    as_date,
    class_kind,
    defer_update,
    event_role,
    send_deferred,
)

__all__ = [
    "FindingsProjection",
    "PaymentsProjection",
    "ReconciliationRow",
    "findings",
    "oldest_unconfirmed",
    "reconciliation",
]

_PEOPLE: Final = frozenset({"household", "veteran"})
_CHANNELS: Final = frozenset({"bank", "post"})
# Events of a person that do not count as activity after its close (the findings rules); its
# registration and the close itself can never be dated after the close.
_NOT_FOUND: Final = "not_found"
_SHARED_CODES: Final = {"nik": "shared_nik", "family_card": "shared_family_card"}
_SUBJECTS: Final = "proj_subjects"
_IN_CHUNK: Final = 400


class PaymentsProjection(Projection):
    """Table ``proj_payments``: one row per ``bank`` or ``post`` disbursement.

    Columns: ``ref`` and ``reference`` (the primary key), ``kind``, ``programme``,
    ``channel``, ``on_date``, ``amount`` (whole rupiah), ``reversed_on`` (the reversal's
    ``on``), ``confirmed_on`` and ``channel_ref`` (the confirmation's ``on`` and the
    channel's transaction id) and ``position`` of the disbursement.
    """

    name: ClassVar[str] = "reconciliation"
    table: ClassVar[str] = "proj_payments"
    tables: ClassVar[tuple[str, ...]] = ("proj_payments",)
    raw: ClassVar[bool] = True

    def create_tables(self, writer: Writer) -> None:
        """Create ``proj_payments``."""
        writer.create_table(
            self.table,
            {
                "ref": "key not null",
                "reference": "key not null",
                "kind": "key not null",
                "programme": "key not null",
                "channel": "key not null",
                "on_date": "date not null",
                "amount": "integer not null",
                "reversed_on": "date",
                "confirmed_on": "date",
                "channel_ref": "text",
                "position": "integer not null",
            },
            primary_key=("ref", "reference"),
        )

    def handle_raw(self, event: RawEvent, position: int, writer: Writer) -> None:
        """Record bank and post payments; date their reversals and confirmations."""
        role = event_role(event.cls)
        if role not in ("disbursed", "reversed", "confirmed"):
            return
        state = event.state
        info = writer.subject_by_id(event.originator_id)
        if info is None:  # pragma: no cover - the subjects projection is applied first
            return
        if role == "disbursed":
            if state["channel"] in _CHANNELS:
                writer.insert(
                    self.table,
                    {
                        "ref": info.ref,
                        "reference": state["reference"],
                        "kind": info.kind,
                        "programme": state["programme"],
                        "channel": state["channel"],
                        "on_date": state["on"],
                        "amount": state["amount"],
                        "reversed_on": None,
                        "confirmed_on": None,
                        "channel_ref": None,
                        "position": position,
                    },
                )
            return
        # A cash or in-kind payment has no row: these updates then match nothing.
        values = (
            {"reversed_on": state["on"]}
            if role == "reversed"
            else {"confirmed_on": state["on"], "channel_ref": state["channel_ref"]}
        )
        defer_update(writer, self.table, values, {"ref": info.ref, "reference": state["reference"]})

    def end_page(self, writer: Writer) -> None:
        """Send the page's reversals and confirmations after its inserts."""
        send_deferred(writer)


class FindingsProjection(Projection):
    """Tables ``proj_closures``, ``proj_not_found``, ``proj_future``, ``proj_shared``.

    ``proj_closures``: ``ref`` (primary key), ``closed_on`` and ``first_after``: the earliest
    ``on`` of the household's or veteran's own activity dated after the close. Activity is
    every event but its registration, the close, reversals, confirmations and erasure; a
    subject accepts none of it once closed, so everything that counts is recorded before the
    close, and is found then in ``proj_money`` (allocations, payments), ``proj_contacts``
    (its own contacts, not its enrolments') and ``proj_not_found`` (``position``, ``ref``,
    ``on_date`` of each follow-up that found nobody).
    ``proj_future``: ``position`` (primary key), ``ref``, ``kind``, ``event`` (its type,
    e.g. ``disbursed``), ``on_date``, ``recorded_on`` (WITA date) and ``programme``.
    ``proj_shared``: ``ref``, ``code`` (``shared_nik`` or ``shared_family_card``) and
    ``other`` (the primary key): ``other`` was registered before ``ref`` and is not
    forgotten. No personal data, not even a MAC, is copied into these tables.
    """

    name: ClassVar[str] = "findings"
    tables: ClassVar[tuple[str, ...]] = (
        "proj_closures",
        "proj_not_found",
        "proj_future",
        "proj_shared",
    )
    raw: ClassVar[bool] = True

    def create_tables(self, writer: Writer) -> None:
        """Create the four tables and their indexes."""
        writer.create_table(
            "proj_closures",
            {"ref": "key not null", "closed_on": "date not null", "first_after": "date"},
            primary_key=("ref",),
        )
        writer.create_table(
            "proj_not_found",
            {"position": "integer not null", "ref": "key not null", "on_date": "date not null"},
            primary_key=("position",),
        )
        writer.create_index("proj_not_found", ("ref", "on_date"))
        writer.create_table(
            "proj_future",
            {
                "position": "integer not null",
                "ref": "key not null",
                "kind": "key not null",
                "event": "key not null",
                "on_date": "date not null",
                "recorded_on": "date not null",
                "programme": "key",
            },
            primary_key=("position",),
        )
        writer.create_table(
            "proj_shared",
            {"ref": "key not null", "code": "key not null", "other": "key not null"},
            primary_key=("ref", "code", "other"),
        )
        writer.create_index("proj_shared", ("other",))

    def handle_raw(self, event: RawEvent, position: int, writer: Writer) -> None:
        """Keep activity dates, future-dated events, new registrations and erasures."""
        role = event_role(event.cls)
        state = event.state
        kind = class_kind(event.cls)
        if role == "created":
            ref = state["ref"]
            if kind in _PEOPLE:
                writer.page.setdefault("registered", []).append(event.originator_id)
        else:
            info = writer.subject_by_id(event.originator_id)
            if info is None:  # an aggregate outside the subjects table
                return
            ref, kind = info.ref, info.kind
            if role == "forgotten":
                writer.page.setdefault("forgotten", []).append(ref)
            elif kind in _PEOPLE and role == "followed_up" and state["outcome"] == _NOT_FOUND:
                writer.insert(
                    "proj_not_found", {"position": position, "ref": ref, "on_date": state["on"]}
                )
            elif kind in _PEOPLE and role == "closed":
                self._closure(writer, ref, dt.date.fromisoformat(state["on"]))
        timestamp = state.get("timestamp")
        on = state.get("on")
        if not isinstance(timestamp, str) or on is None:
            return
        # The WITA date is never earlier than the UTC date the timestamp starts with, so
        # comparing ISO text settles almost every event without parsing a timestamp.
        if on <= timestamp[:10]:
            return
        recorded = recorded_day(timestamp)
        if dt.date.fromisoformat(on) > recorded:
            self._future(writer, position, event, ref, kind or "", recorded)

    @staticmethod
    def _closure(writer: Writer, ref: str, closed_on: dt.date) -> None:
        # One query per close (closes are rare): the built-in tables already hold every
        # event of the page, and none of a closed subject's later events adds a row there.
        rows = writer.query(
            "SELECT MIN(d) FROM ("
            f"SELECT on_date AS d FROM {MoneyProjection.table} WHERE ref = ? AND on_date > ? "
            f"UNION ALL SELECT on_date FROM {ContactsProjection.table} "
            "WHERE ref = ? AND via IS NULL AND on_date > ? "
            "UNION ALL SELECT on_date FROM proj_not_found WHERE ref = ? AND on_date > ?"
            ") AS later",
            (ref, closed_on, ref, closed_on, ref, closed_on),
        )
        first_after = rows[0][0] if rows else None
        writer.insert(
            "proj_closures", {"ref": ref, "closed_on": closed_on, "first_after": first_after}
        )

    def _future(
        self,
        writer: Writer,
        position: int,
        event: RawEvent,
        ref: str,
        kind: str,
        recorded: dt.date,
    ) -> None:
        state = event.state
        programme = state.get("programme")
        if programme is None and "reference" in state:
            # A reversal or confirmation: the programme of the payment it names. Rare (only
            # future-dated events get here), so one lookup each is cheap.
            rows = writer.query(
                f"SELECT programme FROM {MoneyProjection.table} WHERE ref = ? AND reference = ?",
                (ref, state["reference"]),
            )
            programme = rows[0][0] if rows else None
        writer.insert(
            "proj_future",
            {
                "position": position,
                "ref": ref,
                "kind": kind,
                "event": event_type_name(event.cls),
                "on_date": state["on"],
                "recorded_on": recorded,
                "programme": programme,
            },
        )

    def end_page(self, writer: Writer) -> None:
        """Match the page's registrations in the keyed index; drop the forgotten's pairs."""
        registered: list[str] = writer.page.pop("registered", [])
        for start in range(0, len(registered), _IN_CHUNK):
            chunk = registered[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = writer.query(
                "SELECT me_s.ref, mine.field, its_s.ref "
                f"FROM {INDEX_TABLE} mine "
                f"JOIN {INDEX_TABLE} its ON its.field = mine.field AND its.mac = mine.mac "
                "AND its.subject_id <> mine.subject_id "
                f"JOIN {_SUBJECTS} me_s ON me_s.subject_id = mine.subject_id "
                f"JOIN {_SUBJECTS} its_s ON its_s.subject_id = its.subject_id "
                f"WHERE mine.subject_id IN ({marks}) AND its_s.position < me_s.position",
                chunk,
            )
            for ref, field, other in rows:
                code = _SHARED_CODES.get(field)
                if code is not None:
                    writer.insert("proj_shared", {"ref": ref, "code": code, "other": other})
        for ref in writer.page.pop("forgotten", []):
            writer.delete("proj_shared", where={"ref": ref})
            writer.delete("proj_shared", where={"other": ref})


_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")


def event_type_name(cls: type[Any]) -> str:
    """The snake-case type of an event class (``disbursement_reversed`` …)."""
    return _CAMEL.sub("_", cls.__name__).lower()


# ------------------------------------------------------------------ queries


def findings(reader: Reader, *, until: dt.date, today: dt.date) -> list[Finding]:
    """Every finding of the findings rules, sorted by ref, code and ``on``.

    ``until`` is the last business date whose events count (``END_OF_TIME`` for all);
    ``today`` is the date D that a payment's age is measured against.
    """
    found: list[Finding] = []
    found.extend(_negative_balances(reader, until))
    found.extend(_activity_after_close(reader, until))
    found.extend(_future_dated(reader, until))
    found.extend(_shared(reader, until))
    found.extend(_unconfirmed(reader, until, today))
    return sort_findings(found)


def _registered_by(until: dt.date) -> str:
    return "" if until == END_OF_TIME else "AND s.registered_on <= ?"


def _params(until: dt.date, *params: Any) -> tuple[Any, ...]:
    return params if until == END_OF_TIME else (*params, until)


def _negative_balances(reader: Reader, until: dt.date) -> Iterator[Finding]:
    rows = reader.stream(
        "SELECT m.ref, m.kind, m.programme, m.entry, m.on_date, m.amount, m.reversed_on "
        f"FROM {MoneyProjection.table} m JOIN {_SUBJECTS} s ON s.ref = m.ref "
        f"WHERE m.on_date <= ? {_registered_by(until)} ORDER BY m.ref, m.programme",
        _params(until, until),
    )
    key: tuple[str, str, str] | None = None
    entries: list[MoneyEntry] = []
    for ref, kind, programme, entry, on, amount, reversed_on in rows:
        if key is not None and key != (ref, kind, programme):
            finding = check_negative_balance(*key, entries, until)
            if finding is not None:
                yield finding
            entries = []
        key = (ref, kind, programme)
        day = as_date(on)
        assert day is not None
        entries.append(MoneyEntry(entry, day, int(amount), as_date(reversed_on)))
    if key is not None:
        finding = check_negative_balance(*key, entries, until)
        if finding is not None:
            yield finding


def _activity_after_close(reader: Reader, until: dt.date) -> Iterator[Finding]:
    rows = reader.all(
        "SELECT s.ref, s.kind, c.closed_on, c.first_after "
        f"FROM proj_closures c JOIN {_SUBJECTS} s ON s.ref = c.ref "
        "WHERE c.closed_on <= ? AND c.first_after IS NOT NULL AND c.first_after <= ? "
        f"{_registered_by(until)}",
        _params(until, until, until),
    )
    for ref, kind, closed_on, first_after in rows:
        closed = as_date(closed_on)
        assert closed is not None
        finding = check_activity_after_close(ref, kind, closed, as_date(first_after), until)
        if finding is not None:
            yield finding


def _future_dated(reader: Reader, until: dt.date) -> Iterator[Finding]:
    rows = reader.all(
        "SELECT f.ref, f.kind, f.event, f.on_date, f.recorded_on, f.programme "
        f"FROM proj_future f JOIN {_SUBJECTS} s ON s.ref = f.ref "
        f"WHERE f.on_date <= ? {_registered_by(until)}",
        _params(until, until),
    )
    for ref, kind, event, on, recorded_on, programme in rows:
        day, recorded = as_date(on), as_date(recorded_on)
        assert day is not None
        assert recorded is not None
        finding = check_future_dated(ref, kind, event, day, recorded, programme, until)
        if finding is not None:
            yield finding


def _shared(reader: Reader, until: dt.date) -> Iterator[Finding]:
    later = "" if until == END_OF_TIME else "AND s.registered_on <= ? AND o.registered_on <= ?"
    rows = reader.all(
        "SELECT p.ref, p.code, s.kind, s.registered_on, p.other "
        f"FROM proj_shared p JOIN {_SUBJECTS} s ON s.ref = p.ref "
        f"JOIN {_SUBJECTS} o ON o.ref = p.other WHERE 1 = 1 {later}",
        () if until == END_OF_TIME else (until, until),
    )
    grouped: dict[tuple[str, str, str, Any], list[str]] = {}
    for ref, code, kind, registered_on, other in rows:
        grouped.setdefault((ref, code, kind, registered_on), []).append(other)
    for (ref, code, kind, registered_on), others in grouped.items():
        day = as_date(registered_on)
        assert day is not None
        finding = check_shared(code, ref, kind, day, others)
        if finding is not None:
            yield finding


def _unconfirmed(reader: Reader, until: dt.date, today: dt.date) -> Iterator[Finding]:
    rows = reader.all(
        "SELECT p.ref, p.kind, p.programme, p.reference, p.channel, p.on_date, "
        "p.reversed_on, p.confirmed_on "
        f"FROM proj_payments p JOIN {_SUBJECTS} s ON s.ref = p.ref "
        f"WHERE p.on_date <= ? {_registered_by(until)}",
        _params(until, until),
    )
    for ref, kind, programme, reference, channel, on, reversed_on, confirmed_on in rows:
        day = as_date(on)
        assert day is not None
        finding = check_unconfirmed_payment(
            ref,
            kind,
            programme,
            reference,
            channel,
            day,
            as_date(reversed_on),
            as_date(confirmed_on),
            until=until,
            today=today,
        )
        if finding is not None:
            yield finding


@attrs.frozen
class ReconciliationRow:
    """Bank or post disbursements of one programme and channel against their confirmations."""

    programme: str
    channel: str
    disbursed_count: int
    disbursed: int
    confirmed_count: int
    confirmed: int
    unconfirmed_count: int
    unconfirmed: int
    oldest_unconfirmed_on: dt.date | None

    def to_json(self) -> dict[str, Any]:
        """The row as the ``reconciliation --json`` array item."""
        data = attrs.asdict(self)
        on = self.oldest_unconfirmed_on
        data["oldest_unconfirmed_on"] = None if on is None else on.isoformat()
        return data


def reconciliation(reader: Reader, *, until: dt.date) -> list[ReconciliationRow]:
    """the reconciliation rules: by programme and channel, payments not reversed by ``until``."""
    rows = reader.all(
        "SELECT programme, channel, on_date, amount, confirmed_on FROM proj_payments "
        "WHERE on_date <= ? AND (reversed_on IS NULL OR reversed_on > ?)",
        (until, until),
    )
    totals: dict[tuple[str, str], list[Any]] = {}
    for programme, channel, on, amount, confirmed_on in rows:
        row = totals.setdefault((programme, channel), [0, 0, 0, 0, None])
        row[0] += 1
        row[1] += int(amount)
        confirmed = as_date(confirmed_on)
        if confirmed is not None and confirmed <= until:
            row[2] += 1
            row[3] += int(amount)
        else:
            day = as_date(on)
            row[4] = day if row[4] is None or (day is not None and day < row[4]) else row[4]
    return [
        ReconciliationRow(
            programme=programme,
            channel=channel,
            disbursed_count=n,
            disbursed=total,
            confirmed_count=confirmed_n,
            confirmed=confirmed_total,
            unconfirmed_count=n - confirmed_n,
            unconfirmed=total - confirmed_total,
            oldest_unconfirmed_on=oldest,
        )
        for (programme, channel), (n, total, confirmed_n, confirmed_total, oldest) in sorted(
            totals.items()
        )
    ]


def oldest_unconfirmed(reader: Reader, *, until: dt.date, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` bank and post payments unconfirmed by ``until``, oldest first."""
    rows = reader.all(
        "SELECT p.ref, p.programme, p.channel, p.reference, p.on_date, p.amount, s.kecamatan "
        f"FROM proj_payments p JOIN {_SUBJECTS} s ON s.ref = p.ref "
        "WHERE p.on_date <= ? AND (p.reversed_on IS NULL OR p.reversed_on > ?) "
        "AND (p.confirmed_on IS NULL OR p.confirmed_on > ?) "
        "ORDER BY p.on_date, p.ref, p.reference LIMIT ?",
        (until, until, until, limit),
    )
    return [
        {
            "ref": ref,
            "programme": programme,
            "channel": channel,
            "reference": reference,
            "on": as_date(on),
            "amount": int(amount),
            "kecamatan": kecamatan,
        }
        for ref, programme, channel, reference, on, amount, kecamatan in rows
    ]
