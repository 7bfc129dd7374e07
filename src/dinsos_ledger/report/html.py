"""The report page: one self-contained HTML document in Indonesian (default) or English.

The page opens offline: styles are inline, there are no scripts, no web fonts and no links
to other sites, and every chart is an inline SVG (see :mod:`dinsos_ledger.report.charts`).
It reads on a phone held upright (390 px) without sideways scrolling: charts take the
screen's width, the overdue table drops its secondary columns, and the other tables stack
each row into label–value lines. Every text comes from the message catalogue
(:mod:`dinsos_ledger.i18n`), and numbers, percentages, dates and rupiah follow the
language's conventions.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from dinsos_ledger import report_sections
from dinsos_ledger.i18n import messages
from dinsos_ledger.report.data import ReportData, gather
from dinsos_ledger.report.programmes import render_programmes_section

if TYPE_CHECKING:
    from dinsos_ledger.application import Ledger

__all__ = ["REPORT_FILE", "TOP_OVERDUE", "render_html", "write_report"]

#: The file name of the report inside its output directory.
REPORT_FILE: Final = "index.html"
#: How many overdue subjects the report lists (the longest overdue first).
TOP_OVERDUE: Final = 25

_CSS: Final = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#f5f7fa;--card:#fff;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,
sans-serif;color:var(--ink);background:var(--bg);line-height:1.45;font-size:16px;
overflow-wrap:anywhere}
header,main,footer{max-width:60rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.5rem}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.15rem;margin:0 0 .5rem}
.sub{color:var(--muted);margin:0 0 1rem}
section{background:var(--card);border:1px solid var(--line);border-radius:.5rem;
padding:1rem;margin:0 0 1rem;min-width:0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(8rem,1fr));gap:.75rem;
margin:0 0 1rem}
.card{background:var(--bg);border-radius:.4rem;padding:.6rem .75rem;min-width:0}
.card .n{font-size:1.4rem;font-weight:600;display:block;font-variant-numeric:tabular-nums}
.card.money .n{font-size:1.15rem}
.card .l{color:var(--muted);font-size:.85rem}
.note{color:var(--muted);font-size:.85rem;margin:.5rem 0 0}
code{font-size:.85em;background:var(--bg);padding:0 .2em;border-radius:.2em}
figure{margin:0}
/* Charts take the width of the screen (they are drawn phone-sized, so their text stays
legible there) and stop growing on wide screens so their text is not oversized. */
svg.chart{display:block;width:100%;height:auto;max-width:40rem;margin:0 auto}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line)}
th{color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;white-space:nowrap}
details{margin-top:.5rem}
summary{cursor:pointer;color:var(--accent)}
footer{color:var(--muted);font-size:.85rem;padding-bottom:2rem}
@media (max-width:30rem){
body{font-size:15px}header,main,footer{padding:0 .5rem}section{padding:.75rem}
.card .n{font-size:1.2rem}.card.money .n{font-size:1rem;overflow-wrap:normal}
/* A phone keeps a table's key columns and drops the secondary ones ... */
.secondary{display:none}
/* ... or shows each row as label-value lines. */
table.stack thead{display:none}
table.stack tr{display:block;border-bottom:1px solid var(--line);padding:.25rem 0}
table.stack td{display:flex;justify-content:space-between;gap:1rem;border:0;padding:.1rem .25rem}
table.stack td::before{content:attr(data-label);color:var(--muted)}
}
"""


@attrs.frozen
class _Column:
    label: str
    numeric: bool = False
    secondary: bool = False
    """Left out on a phone's narrow screen."""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(
    columns: Sequence[_Column], rows: Iterable[Sequence[object]], *, stack: bool = False
) -> str:
    """An HTML table; numeric columns align right, secondary ones hide on a phone.

    With ``stack`` each row shows as label–value lines on a phone.
    """

    def classes(column: _Column) -> str:
        names = [n for n, on in (("num", column.numeric), ("secondary", column.secondary)) if on]
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(f'<th{classes(c)} scope="col">{_e(c.label)}</th>' for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td{classes(c)} data-label="{_e(c.label)}">{_e(v)}</td>'
            for v, c in zip(row, columns, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    table_class = ' class="stack"' if stack else ""
    return (
        f"<table{table_class}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _card(number: object, label: str, kind: str = "card") -> str:
    return (
        f'<div class="{kind}"><span class="n">{_e(number)}</span>'
        f'<span class="l">{_e(label)}</span></div>'
    )


def _section(cid: str, title: str, svg: str, intro: str, extra: str = "") -> str:
    return (
        f'<section id="{cid}"><h2>{_e(title)}</h2><p class="note">{intro}</p>'
        f"<figure>{svg}</figure>{extra}</section>"
    )


def render_html(
    data: ReportData, *, title: str = "Kabupaten Kutai Timur", lang: str | None = None
) -> str:
    """The report page for ``data`` in ``lang`` (default Indonesian, or $DINSOS_LEDGER_LANG)."""
    from dinsos_ledger.report.charts import CHARTS, draw_charts, partial_month

    m = messages(lang)
    svgs = draw_charts(data, m)
    titles = {cid: m(t) for cid, t in CHARTS}
    s, st = data.subjects, data.statuses
    as_of = m.date(data.as_of)
    partial = partial_month(data.as_of)
    note = " " + m("* {month} is cut short by the as-of date: it counts up to {date} only.").format(
        month=m.month(data.as_of.year, data.as_of.month), date=as_of
    )
    # Said under a chart only when the chart shows that month.
    paid_months = {f.month for f in data.flows if f.disbursed}
    partial_paid = note if partial is not None and partial in paid_months else ""
    partial_tali = (
        note if partial is not None and partial in {f.month for f in data.tali_asih} else ""
    )

    cards = [
        _card(m.number(s.get("household", 0)), m("households")),
        _card(m.number(s.get("veteran", 0)), m("veterans")),
        _card(m.number(s.get("cohort", 0)), m("training cohorts")),
        _card(m.number(s.get("enrolment", 0)), m("enrolments")),
        _card(m.percent(data.coverage), m("of days covered")),
        _card(m.number(st.get("overdue", 0)), m("overdue now")),
    ]
    money_cards = [
        _card(
            m.rupiah(p.outstanding),
            m("outstanding {programme}").format(programme=p.programme),
            "card money",
        )
        for p in data.programmes
    ]
    kinds = {"household": m("household"), "veteran": m("veteran")}

    coverage_table = _table(
        [
            _Column(m("kecamatan")),
            _Column(m("code"), secondary=True),
            _Column(m("subjects"), numeric=True),
            _Column(m("covered"), numeric=True),
            _Column(m("overdue"), numeric=True),
            _Column(m("closed"), numeric=True),
            _Column(m("coverage"), numeric=True),
        ],
        (
            (
                r.name,
                r.code,
                m.number(r.subjects),
                m.number(r.covered),
                m.number(r.overdue),
                m.number(r.closed),
                m.percent(r.coverage),
            )
            for r in sorted(data.kecamatan, key=lambda r: r.code)
        ),
        stack=True,
    )
    shown = data.overdue[:TOP_OVERDUE]
    overdue_table = _table(
        [
            _Column(m("ref")),
            _Column(m("kind"), secondary=True),
            _Column(m("kecamatan")),
            _Column(m("last contact"), secondary=True),
            _Column(m("days overdue"), numeric=True),
        ],
        (
            (
                r.ref,
                kinds.get(r.kind, r.kind),
                r.kecamatan,
                m.date(r.last_contact_on, m("never")),
                m.number(r.days_overdue),
            )
            for r in shown
        ),
    )
    rest = len(data.overdue) - len(shown)
    overdue_rest = (
        '<p class="note">'
        + _e(
            m("Showing {shown} of {total}; the rest:").format(
                shown=m.number(len(shown)), total=m.number(len(data.overdue))
            )
        )
        + " <code>dinsos-ledger overdue --json</code></p>"
        if rest > 0
        else ""
    )
    money_table = _table(
        [
            _Column(m("programme")),
            _Column(m("subjects"), numeric=True),
            _Column(m("allocated"), numeric=True),
            _Column(m("disbursed"), numeric=True),
            _Column(m("outstanding"), numeric=True),
        ],
        (
            (
                p.programme,
                m.number(p.subjects),
                m.rupiah(p.allocated),
                m.rupiah(p.disbursed),
                m.rupiah(p.outstanding),
            )
            for p in data.programmes
        ),
        stack=True,
    )
    tali = data.tali_asih
    tali_accrued = sum(f.allocated for f in tali)
    tali_handed = sum(f.disbursed for f in tali)

    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{m.lang}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex">',
        "<title>"
        + _e(m("Service delivery report · {title} · as of {date}").format(title=title, date=as_of))
        + "</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>" + _e(m("Service delivery · {title}").format(title=title)) + "</h1>",
        '<p class="sub">'
        + _e(
            m(
                "Dinas Sosial ledger report as of {date}, built from {events} recorded "
                "events. No personal data: subjects appear by case number only."
            ).format(date=as_of, events=m.number(data.events))
        )
        + "</p>",
        "</header>",
        "<main>",
        '<section id="headline"><h2>' + _e(m("At a glance")) + "</h2>",
        f'<div class="cards">{"".join(cards)}</div>',
        f'<div class="cards">{"".join(money_cards)}</div>' if money_cards else "",
        '<p class="note">'
        + _e(
            m(
                "Households and veterans: {covered} covered, {overdue} overdue, {closed} "
                "closed. A day is covered when a contact (registration, assessment, payment, "
                "follow-up, training) fell within the 90 days before it (180 for veterans)."
            ).format(
                covered=m.number(st.get("covered", 0)),
                overdue=m.number(st.get("overdue", 0)),
                closed=m.number(st.get("closed", 0)),
            )
        )
        + "</p>",
        "</section>",
        _section(
            "coverage",
            titles["coverage"],
            svgs["coverage"],
            _e(
                m(
                    "Share of each subject's days, from registration to the as-of date or its "
                    "closure, that were covered by a contact; summed over the kecamatan's "
                    "households and veterans. Green dots are at or above the district figure "
                    "(dashed line), red dots below it."
                )
            ),
            "<details><summary>"
            + _e(m("Numbers by kecamatan"))
            + f"</summary>{coverage_table}</details>",
        ),
        '<section id="overdue">',
        "<h2>"
        + _e(
            m("Overdue: {shown} of {total}, longest first").format(
                shown=m.number(len(shown)), total=m.number(len(data.overdue))
            )
        )
        + "</h2>",
        '<p class="note">'
        + _e(
            m(
                "Households and veterans whose last contact is more than their window ago: "
                "these need a visit."
            )
        )
        + "</p>",
        overdue_table if shown else '<p class="note">' + _e(m("Nobody is overdue.")) + "</p>",
        overdue_rest,
        "</section>",
        _section(
            "timelines",
            titles["timelines"],
            svgs["timelines"],
            _e(
                m(
                    "A spread of households (some covered, some overdue, some closed) from "
                    "registration to the as-of date: green stretches are covered by a contact, "
                    "orange ones are gaps, red is a gap still open today; a bar marks a "
                    "closure and the dotted line the as-of date."
                )
            ),
        ),
        _section(
            "balances",
            titles["balances"],
            svgs["balances"],
            _e(
                m(
                    "Summed over every household, veteran and cohort: grey is allocated, blue "
                    "disbursed, orange outstanding (allocated but not yet paid)."
                )
            ),
            money_table,
        ),
        render_programmes_section(data.programme_rules, m),
        _section(
            "disbursements",
            titles["disbursements"],
            svgs["disbursements"],
            _e(
                m(
                    "Money paid in each month by business date, net of payments reversed by "
                    "the as-of date; each colour is a programme."
                )
                + partial_paid
            ),
        ),
        _section(
            "tali-asih",
            titles["tali-asih"],
            svgs["tali-asih"],
            _e(
                m(
                    "Tali asih accrues monthly and is handed over on Hari Pahlawan (10 "
                    "November). Accrued so far {accrued}, handed over {handed}, owed {owed}."
                ).format(
                    accrued=m.rupiah(tali_accrued),
                    handed=m.rupiah(tali_handed),
                    owed=m.rupiah(tali_accrued - tali_handed),
                )
                + " "
                + m(
                    "Grey is accrued, green handed over; the shaded band below is what is "
                    "owed to veterans."
                )
                + partial_tali
            ),
        ),
        report_sections.render(data.audit, m.lang),
        "</main>",
        "<footer><p>"
        + _e(
            m(
                "Generated by dinsos-ledger from the ledger's projections. Amounts are whole "
                "rupiah; charts show millions (juta). Continuity follows the ledger's rules: "
                "window 90 days for households, 180 for veterans."
            )
        )
        + "</p></footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(p for p in parts if p)


def write_report(
    ledger: Ledger,
    out_dir: str | Path,
    *,
    as_of: dt.date | None = None,
    lang: str | None = None,
) -> Path:
    """Write the report of ``ledger`` as of ``as_of`` (default today) to ``out_dir/index.html``.

    The folder is created first, so a folder that cannot be made fails before the ledger is
    read. ``lang`` is ``id`` (default) or ``en``. Returns the path of the page.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = render_html(gather(ledger, as_of or dt.date.today()), lang=lang)
    path = out / REPORT_FILE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a report
    return path
