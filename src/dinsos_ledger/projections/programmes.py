"""The programmes and their eligibility rules over time (``programmes --json``).

A query over the programme subjects: the subjects projection lists their codes (it is
rebuilt from the events like every projection), and each programme's rules are read from
its own events, so the answer always equals what a replay of the log says.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from dinsos_ledger.aggregates import Programme
from dinsos_ledger.projections.engine import SubjectsProjection

if TYPE_CHECKING:
    from dinsos_ledger.application import Ledger

__all__ = ["programme_codes", "programmes"]


def programme_codes(ledger: Ledger) -> list[str]:
    """The codes of the defined programmes, sorted."""
    rows = ledger.projections.query(
        f"SELECT ref FROM {SubjectsProjection.table} WHERE kind = ?", ("programme",)
    )
    return sorted(str(row[0]) for row in rows)


def programmes(
    ledger: Ledger, as_of: dt.date | None = None, *, today: dt.date | None = None
) -> list[dict[str, Any]]:
    """The programmes sorted by code, each with its rules in the order they come into force.

    Each item is ``{"programme", "name", "recipients", "desil_limit", "defined_on",
    "rules": [{"on", "desil_limit"}]}``: ``recipients`` in the order household, veteran,
    cohort; ``desil_limit`` the limit in force on ``as_of`` (default ``today``, the
    machine's date), ``null`` when there is no desil rule or no rule in force yet. With
    ``as_of`` only rules in force from that date or earlier are listed and a programme
    defined later is left out.
    """
    day = today or dt.date.today()
    found: list[dict[str, Any]] = []
    for code in programme_codes(ledger):
        programme = ledger.get(code)
        assert isinstance(programme, Programme)
        summary = programme.summary(as_of, day)
        if summary is not None:
            found.append(summary)
    return found
