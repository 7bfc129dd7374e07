"""Audit findings as data: small ``check_*`` functions over facts, in the style of beancount.

Each check takes the facts it needs (already read from the projections) and the as-of
dates, and returns :class:`Finding` values; nothing here reads storage, prints or raises
for what it finds. :mod:`dinsos_ledger.projections.audit_views` gathers the facts and runs
the checks; the command line prints the result and decides the exit status.

Two dates drive every check. ``until`` is the last business date whose events count: the
``--as-of`` date, or :data:`END_OF_TIME` when none is given (then every event counts).
``today`` is the date D the age of a payment is measured against: the ``--as-of`` date, or
today in Kutai Timur (WITA, UTC+8).

Interval conventions: dates are whole days; "on or before D" includes D; "more than 30
days before D" means ``D - on > 30`` days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

__all__ = [
    "CODES",
    "END_OF_TIME",
    "UNCONFIRMED_AFTER_DAYS",
    "WITA",
    "Finding",
    "MoneyEntry",
    "check_activity_after_close",
    "check_future_dated",
    "check_negative_balance",
    "check_shared",
    "check_unconfirmed_payment",
    "recorded_day",
    "sort_findings",
    "today_in_wita",
]

#: Kutai Timur's time zone (Waktu Indonesia Tengah): business dates are WITA dates.
WITA: Final = dt.timezone(dt.timedelta(hours=8), "WITA")

#: Stands for "no as-of date": later than every business date the ledger accepts.
END_OF_TIME: Final = dt.date(9999, 12, 31)

#: A bank or post payment not confirmed this many days after it was made is a finding.
UNCONFIRMED_AFTER_DAYS: Final = 30

#: The finding codes, in the order the auditors' guide explains them.
CODES: Final = (
    "negative_balance",
    "activity_after_close",
    "future_dated",
    "shared_nik",
    "shared_family_card",
    "unconfirmed_payment",
)


@attrs.frozen
class Finding:
    """A fact an auditor must look at (the findings rules); never personal data.

    ``on`` is the date the finding is about (see each check); ``related`` the other refs
    involved, sorted; ``programme`` is None where no programme applies.
    """

    code: str
    ref: str
    kind: str
    on: dt.date
    message: str
    programme: str | None = None
    related: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The finding as the ``findings --json`` array item."""
        return {
            "code": self.code,
            "ref": self.ref,
            "kind": self.kind,
            "programme": self.programme,
            "on": self.on.isoformat(),
            "related": list(self.related),
            "message": self.message,
        }


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Findings sorted by ref, then code, then ``on`` (then message, for a stable order)."""
    return sorted(findings, key=lambda f: (f.ref, f.code, f.on, f.message))


def today_in_wita(now: dt.datetime | None = None) -> dt.date:
    """Today's date in Kutai Timur (WITA, UTC+8)."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(WITA).date()


def recorded_day(timestamp: dt.datetime | str) -> dt.date:
    """The WITA date of a recorded timestamp (an aware datetime or its ISO text)."""
    moment = dt.datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
    if moment.utcoffset() is None:  # eventsourcing records UTC; be safe with naive values
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(WITA).date()


# ------------------------------------------------------------------ money


@attrs.frozen
class MoneyEntry:
    """An allocation (``reversed_on`` None) or a disbursement of one subject and programme."""

    entry: str
    on: dt.date
    amount: int
    reversed_on: dt.date | None = None


def _deltas(entries: Iterable[MoneyEntry], until: dt.date) -> dict[dt.date, int]:
    """How the outstanding balance changes on each date, counting dates up to ``until``."""
    deltas: dict[dt.date, int] = {}
    for e in entries:
        if e.on > until:
            continue
        if e.entry == "allocation":
            deltas[e.on] = deltas.get(e.on, 0) + e.amount
            continue
        back = e.reversed_on
        if back is not None and back <= e.on:
            continue  # reversed by the day it was made: it never counts as disbursed
        deltas[e.on] = deltas.get(e.on, 0) - e.amount
        if back is not None and back <= until:
            deltas[back] = deltas.get(back, 0) + e.amount
    return deltas


def check_negative_balance(
    ref: str, kind: str, programme: str, entries: Sequence[MoneyEntry], until: dt.date
) -> Finding | None:
    """``negative_balance``: the outstanding balance went below zero on some date.

    The balance is that of the balance rules, on each date up to ``until``; ``on`` is the
    first date it was negative.
    """
    balance = 0
    for day, delta in sorted(_deltas(entries, until).items()):
        balance += delta
        if balance < 0:
            return Finding(
                code="negative_balance",
                ref=ref,
                kind=kind,
                programme=programme,
                on=day,
                message=(
                    f"outstanding {programme} balance was {balance} as of {day.isoformat()}: "
                    "a payment dated before its allocation"
                ),
            )
    return None


# ------------------------------------------------------------- lifecycle


def check_activity_after_close(
    ref: str, kind: str, closed_on: dt.date, first_after: dt.date | None, until: dt.date
) -> Finding | None:
    """``activity_after_close``: an event dated after the close's ``on``.

    Reversals, confirmations and erasure do not count; ``first_after`` is the earliest
    ``on`` of the events that do, if any.
    """
    if closed_on > until or first_after is None or first_after > until:
        return None
    return Finding(
        code="activity_after_close",
        ref=ref,
        kind=kind,
        on=closed_on,
        message=(
            f"closed on {closed_on.isoformat()} but has activity dated "
            f"{first_after.isoformat()}: the close was recorded later with an earlier date"
        ),
    )


def check_future_dated(
    ref: str,
    kind: str,
    event: str,
    on: dt.date,
    recorded_on: dt.date,
    programme: str | None,
    until: dt.date,
) -> Finding | None:
    """``future_dated``: an event whose ``on`` is later than the WITA date it was recorded."""
    if on <= recorded_on or on > until:
        return None
    return Finding(
        code="future_dated",
        ref=ref,
        kind=kind,
        programme=programme,
        on=on,
        message=(
            f"{event} dated {on.isoformat()} was recorded on {recorded_on.isoformat()} (WITA)"
        ),
    )


# ------------------------------------------------------------ duplicates

_SHARED_WHAT: Final = {
    "shared_nik": "its NIK",
    "shared_family_card": "its family-card number",
}


def check_shared(
    code: str, ref: str, kind: str, registered_on: dt.date, others: Iterable[str]
) -> Finding | None:
    """``shared_nik`` / ``shared_family_card``: equal to earlier subjects' values.

    ``others`` are the not-forgotten subjects registered earlier (in recorded order) whose
    keyed index entry equals this one's.
    """
    related = tuple(sorted(set(others)))
    if not related:
        return None
    return Finding(
        code=code,
        ref=ref,
        kind=kind,
        on=registered_on,
        related=related,
        message=f"{_SHARED_WHAT[code]} equals that of {', '.join(related)}",
    )


# -------------------------------------------------------------- payments


def check_unconfirmed_payment(
    ref: str,
    kind: str,
    programme: str,
    reference: str,
    channel: str,
    on: dt.date,
    reversed_on: dt.date | None,
    confirmed_on: dt.date | None,
    *,
    until: dt.date,
    today: dt.date,
) -> Finding | None:
    """``unconfirmed_payment``: a bank or post payment the channel has not confirmed.

    Not reversed and not confirmed by ``until``, and made more than 30 days before
    ``today``.
    """
    if channel not in ("bank", "post") or on > until:
        return None
    if reversed_on is not None and reversed_on <= until:
        return None
    if confirmed_on is not None and confirmed_on <= until:
        return None
    age = (today - on).days
    if age <= UNCONFIRMED_AFTER_DAYS:
        return None
    return Finding(
        code="unconfirmed_payment",
        ref=ref,
        kind=kind,
        programme=programme,
        on=on,
        message=(
            f"{channel} payment {reference} of {on.isoformat()} is not confirmed "
            f"by the channel after {age} days"
        ),
    )
