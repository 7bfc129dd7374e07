"""The report's section on programmes: who each one reaches and its rules over time.

The department's staff read the report in Indonesian, so the text is Indonesian first with
English available (:data:`MESSAGES`). The rows come from the ``programmes`` query as of the
report's date, so the section shows exactly the rules the ledger recorded, in the order they
came into force.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:
    from dinsos_ledger.projections.views import Projections

__all__ = ["MESSAGES", "ProgrammeRules", "gather_programmes", "render_programmes_section"]

#: The section's text per language; Indonesian is the report's default.
MESSAGES: Final[Mapping[str, Mapping[str, str]]] = {
    "id": {
        "title": "Program dan aturan kelayakannya",
        "intro": (
            "Aturan tiap program tercatat di ledger sebagai peristiwa: setiap alokasi "
            "diputuskan oleh aturan yang berlaku pada tanggalnya, dan peristiwa alokasinya "
            "mencatat aturan itu. Program yang tidak didefinisikan memakai aturan bawaan: "
            "keluarga sampai desil 4, veteran yang dinilai layak."
        ),
        "none": "Belum ada program yang didefinisikan di ledger.",
        "programme": "program",
        "name": "nama",
        "recipients": "penerima",
        "limit": "batas desil berlaku",
        "history": "riwayat aturan",
        "no_limit": "tanpa batas desil",
        "desil": "desil ≤ {limit}",
        "from": "sejak {on}",
        "household": "keluarga",
        "veteran": "veteran",
        "cohort": "kelompok pelatihan",
    },
    "en": {
        "title": "Programmes and their eligibility rules",
        "intro": (
            "Each programme's rules are recorded in the ledger as events: every allocation "
            "is decided by the rule in force on its date, and its event records that rule. "
            "A programme that is not defined keeps the default rule: households up to "
            "desil 4, veterans assessed eligible."
        ),
        "none": "No programme is defined in the ledger yet.",
        "programme": "programme",
        "name": "name",
        "recipients": "recipients",
        "limit": "desil limit in force",
        "history": "rule history",
        "no_limit": "no desil limit",
        "desil": "desil ≤ {limit}",
        "from": "from {on}",
        "household": "households",
        "veteran": "veterans",
        "cohort": "training cohorts",
    },
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


def _limit(text: Mapping[str, str], limit: int | None) -> str:
    return text["no_limit"] if limit is None else text["desil"].format(limit=limit)


def render_programmes_section(rows: Sequence[ProgrammeRules], lang: str = "id") -> str:
    """The ``<section id="programmes">`` of the report, in ``lang`` (``id`` or ``en``)."""
    text = MESSAGES.get(lang, MESSAGES["id"])
    e = html.escape
    head = (
        f'<section id="programmes"><h2>{e(text["title"])}</h2>'
        f'<p class="note">{e(text["intro"])}</p>'
    )
    if not rows:
        return f'{head}<p class="note">{e(text["none"])}</p></section>'
    headers = "".join(
        f'<th scope="col">{e(text[key])}</th>'
        for key in ("programme", "name", "recipients", "limit", "history")
    )
    body = []
    for row in rows:
        history = " → ".join(
            f"{text['from'].format(on=on.isoformat())}: {_limit(text, limit)}"
            for on, limit in row.rules
        )
        cells = (
            row.programme,
            row.name,
            ", ".join(text[kind] for kind in row.recipients),
            _limit(text, row.desil_limit),
            history,
        )
        body.append("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in cells) + "</tr>")
    return (
        f'{head}<div class="scroll"><table><thead><tr>{headers}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )
