"""The report's section on programmes: who each one reaches and its rules over time.

The rows come from the ``programmes`` query as of the report's date, so the section shows
exactly the rules the ledger recorded, in the order they came into force. Its texts come
from the message catalogue, like the rest of the page (Indonesian first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from dinsos_ledger.i18n import N_, Messages

if TYPE_CHECKING:
    from dinsos_ledger.projections.views import Projections

__all__ = ["ProgrammeRules", "gather_programmes", "render_programmes_section"]

# Kinds of recipient, as the section names them (marked for the catalogue).
_RECIPIENTS = {
    "household": N_("households"),
    "veteran": N_("veterans"),
    "cohort": N_("training cohorts"),
}


@attrs.frozen
class ProgrammeRules:
    """One programme as of the report's date: its recipients and every rule by then."""

    programme: str
    name: str
    recipients: tuple[str, ...]
    desil_limit: int | None
    """The limit in force on the report's date (``None``: no desil rule)."""
    defined_on: dt.date
    rules: tuple[tuple[dt.date, int | None], ...]
    """``(on, desil_limit)`` of the definition and each amendment, in force order."""

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> ProgrammeRules:
        """Build from a row of the ``programmes`` query."""
        return cls(
            programme=row["programme"],
            name=row["name"],
            recipients=tuple(row["recipients"]),
            desil_limit=row["desil_limit"],
            defined_on=dt.date.fromisoformat(row["defined_on"]),
            rules=tuple(
                (dt.date.fromisoformat(rule["on"]), rule["desil_limit"]) for rule in row["rules"]
            ),
        )


def gather_programmes(projections: Projections, as_of: dt.date) -> tuple[ProgrammeRules, ...]:
    """The programmes defined by ``as_of``, with the rules in force by then."""
    from dinsos_ledger.projections.programmes import programmes

    rows = programmes(projections.ledger, as_of, today=as_of)
    return tuple(ProgrammeRules.from_json(row) for row in rows)


def _limit(m: Messages, limit: int | None) -> str:
    return m("no desil limit") if limit is None else m("desil ≤ {limit}").format(limit=limit)


def programme_rows(rows: Sequence[ProgrammeRules], m: Messages) -> list[tuple[str, ...]]:
    """The section's table rows: code, name, recipients, limit in force, rule history."""
    table: list[tuple[str, ...]] = []
    for row in rows:
        history = " → ".join(
            m("from {on}").format(on=m.date(on)) + ": " + _limit(m, limit)
            for on, limit in row.rules
        )
        recipients = ", ".join(
            m(_RECIPIENTS[kind]) if kind in _RECIPIENTS else kind for kind in row.recipients
        )
        table.append((row.programme, row.name, recipients, _limit(m, row.desil_limit), history))
    return table


def render_programmes_section(rows: Sequence[ProgrammeRules], m: Messages) -> str:
    """The ``<section id="programmes">`` of the report, in ``m``'s language."""
    from dinsos_ledger.report.html import _Column, _e, _table

    head = (
        '<section id="programmes"><h2>'
        + _e(m("Programmes and their eligibility rules"))
        + '</h2><p class="note">'
        + _e(
            m(
                "Each programme's rules are recorded in the ledger as events: every allocation "
                "is decided by the rule in force on its date, and its event records that rule. "
                "A programme that is not defined keeps the default rule: households up to "
                "desil 4, veterans assessed eligible."
            )
        )
        + "</p>"
    )
    if not rows:
        none = m("No programme is defined in the ledger yet.")
        return f'{head}<p class="note">{_e(none)}</p></section>'
    table = _table(
        [
            _Column(m("programme")),
            _Column(m("name")),
            _Column(m("recipients")),
            _Column(m("desil limit in force")),
            _Column(m("rule history")),
        ],
        programme_rows(rows, m),
        stack=True,
    )
    return f"{head}{table}</section>"
