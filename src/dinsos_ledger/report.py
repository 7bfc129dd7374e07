"""The HTML report: one self-contained page of headline numbers, tables and charts.

Everything on the page comes from the projections: balances, continuity timelines and their
roll-ups, and the money projection's entries summed by day for the monthly flows. The report
never opens personal data: it shows case numbers (refs), kecamatan, dates and whole-rupiah
amounts only, so it can be mailed or printed without a data-protection review.

The page opens offline: styles are inline, there are no scripts, no web fonts and no links
to other sites, and every chart is an inline SVG drawn by matplotlib (text kept as text, so
the browser's own sans-serif font shows it and it can be searched and read aloud). Charts
scale to the width of the screen, so the report reads on a phone.

:func:`gather` reads a ledger into a :class:`ReportData`; :func:`render_html` turns that into
the page; :func:`write_report` does both and writes ``OUT_DIR/index.html``.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import attrs
import matplotlib
import matplotlib.dates as mdates
import matplotlib.transforms
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from dinsos_ledger import report_sections
from dinsos_ledger.balances import allocation_counts, dated_by, dated_sql, disbursement_counts
from dinsos_ledger.projections.timeline import (
    Timeline,
    overdue_list,
    ratio_4dp,
    rollup_by_kecamatan,
)
from dinsos_ledger.report_programmes import (
    ProgrammeRules,
    gather_programmes,
    render_programmes_section,
)
from dinsos_ledger.scenario import KECAMATAN

if TYPE_CHECKING:
    from dinsos_ledger.application import Ledger
    from dinsos_ledger.projections.views import Projections

__all__ = [
    "CHARTS",
    "REPORT_FILE",
    "SAMPLE_TIMELINES",
    "TOP_OVERDUE",
    "KecamatanCoverage",
    "MonthFlow",
    "MonthlyFlows",
    "OverdueRow",
    "ProgrammeTotals",
    "ReportData",
    "gather",
    "gather_from",
    "kecamatan_name",
    "render_html",
    "rupiah",
    "sample_timelines",
    "write_report",
]

#: The file name of the report inside its output directory.
REPORT_FILE: Final = "index.html"
#: How many overdue subjects the report lists (the longest overdue first).
TOP_OVERDUE: Final = 25
#: How many households the timeline chart shows.
SAMPLE_TIMELINES: Final = 12

_KIND_ORDER: Final = ("household", "veteran", "cohort", "enrolment")
_NAMES: Final = {f"64.08.{k.code}": k.name for k in KECAMATAN}
# Okabe-Ito: distinguishable with the common colour-vision deficiencies and in grey print.
_PALETTE: Final = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
_PROGRAMME_COLOURS: Final = {
    "PKH": "#0072B2",
    "BPNT": "#E69F00",
    "TALI_ASIH": "#009E73",
    "PELATIHAN": "#CC79A7",
}
_COVERED: Final = "#009E73"
_GAP: Final = "#E69F00"
_OVERDUE: Final = "#D55E00"
_INK: Final = "#1f2933"
_MUTED: Final = "#616e7c"
# The coverage axis starts one 5 % step lower when the lowest value is within this fraction
# of a step above a gridline, so no dot sits on the axis.
_AXIS_CLEARANCE: Final = 0.4
_DECEMBER: Final = 12
_RC: Final[dict[str, Any]] = {
    # Text stays text in the SVG: searchable, readable aloud, shown in the browser's font.
    "svg.fonttype": "none",
    # A fixed salt keeps the SVG ids, and so the report, the same from run to run.
    "svg.hashsalt": "dinsos-ledger",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial"],
    "font.size": 10,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": _INK,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": _MUTED,
    "ytick.color": _MUTED,
    "text.color": _INK,
    "legend.frameon": False,
}


def kecamatan_name(code: str) -> str:
    """The name of the Kutai Timur kecamatan ``64.08.KK`` (or of a village in it), else ``code``."""
    return _NAMES.get(code[:8], code)


def rupiah(amount: int) -> str:
    """Whole rupiah the Indonesian way, ``Rp 1.250.000`` (dots group thousands)."""
    sign = "−" if amount < 0 else ""
    return f"{sign}Rp\u00a0{abs(amount):,}".replace(",", ".")


# ---------------------------------------------------------------------------- the data


@attrs.frozen
class ProgrammeTotals:
    """Allocated, disbursed and outstanding in one programme, summed over its subjects."""

    programme: str
    subjects: int
    allocated: int
    disbursed: int
    outstanding: int


@attrs.frozen
class KecamatanCoverage:
    """Continuity in one kecamatan: subjects by status and the share of days covered."""

    code: str
    name: str
    subjects: int
    covered: int
    overdue: int
    closed: int
    coverage: float
    """Covered days over window days of all its subjects, rounded to four places."""


@attrs.frozen
class OverdueRow:
    """A subject whose as-of date is not covered: how long since its window lapsed."""

    ref: str
    kind: str
    kecamatan: str
    last_contact_on: dt.date | None
    days_overdue: int


@attrs.frozen
class MonthFlow:
    """Money allocated and disbursed (net of reversals) in one programme in one month."""

    programme: str
    month: str
    """``YYYY-MM`` of the business dates."""
    allocated: int
    disbursed: int


@attrs.frozen
class ReportData:
    """Everything the report shows, without personal data; :func:`render_html` draws it."""

    as_of: dt.date
    subjects: Mapping[str, int]
    """Subjects registered on or before the as-of date, by kind."""
    statuses: Mapping[str, int]
    """Households and veterans by continuity status: covered, overdue, closed."""
    coverage: float
    """Covered days over window days of every household and veteran (four places)."""
    programmes: tuple[ProgrammeTotals, ...]
    kecamatan: tuple[KecamatanCoverage, ...]
    overdue: tuple[OverdueRow, ...]
    """Every overdue subject, longest overdue first."""
    samples: tuple[Timeline, ...]
    """Timelines of a few households, some covered, some overdue, some closed."""
    flows: tuple[MonthFlow, ...]
    """Every programme's money by month, sorted by programme then month."""
    tali_asih: tuple[MonthFlow, ...]
    """Veterans' TALI_ASIH by month: accrued (allocated) and handed over (disbursed)."""
    events: int = 0
    """Position of the last event read."""
    audit: report_sections.AuditSections | None = None
    """Findings and reconciliation (see :mod:`dinsos_ledger.report_sections`)."""
    programme_rules: tuple[ProgrammeRules, ...] = ()
    """The programmes defined by the as-of date and their rules (report_programmes)."""


class MonthlyFlows:
    """Sums money by programme and month from allocations and disbursements.

    :meth:`rows` applies the as-of rules of SPEC section 4: an allocation or disbursement
    counts when its ``on`` is on or before the as-of date, and a disbursement is left out
    when its reversal's ``on`` is on or before it too. A disbursement counts in the month of
    its own ``on``, not of the allocation it pays.
    """

    def __init__(self) -> None:
        self._allocated: Counter[tuple[str, str, dt.date]] = Counter()
        self._disbursed: Counter[tuple[str, str, dt.date, dt.date | None]] = Counter()

    def add_allocation(self, kind: str, programme: str, on: dt.date, amount: int) -> None:
        """Count ``amount`` allocated to a subject of ``kind`` on ``on``."""
        self._allocated[(kind, programme, on)] += amount

    def add_disbursement(
        self,
        kind: str,
        programme: str,
        on: dt.date,
        amount: int,
        reversed_on: dt.date | None = None,
    ) -> None:
        """Count ``amount`` paid on ``on`` (and reversed on ``reversed_on``, if it was)."""
        self._disbursed[(kind, programme, on, reversed_on)] += amount

    def rows(self, as_of: dt.date, *, kind: str | None = None) -> list[MonthFlow]:
        """Sums by programme and month as of ``as_of`` (only subjects of ``kind`` if given).

        A month is listed when an allocation or disbursement of it counts, even if a
        reversal leaves its disbursed sum at 0.
        """
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for (k, programme, on), amount in self._allocated.items():
            if allocation_counts(on, as_of) and (kind is None or k == kind):
                sums[(programme, f"{on:%Y-%m}")][0] += amount
        for (k, programme, on, reversed_on), amount in self._disbursed.items():
            if not dated_by(on, as_of) or (kind is not None and k != kind):
                continue
            month = sums[(programme, f"{on:%Y-%m}")]
            if disbursement_counts(on, reversed_on, as_of):
                month[1] += amount
        return [
            MonthFlow(programme, month, allocated, disbursed)
            for (programme, month), (allocated, disbursed) in sorted(sums.items())
        ]


def gather(ledger: Ledger, as_of: dt.date) -> ReportData:
    """Read what the report shows from ``ledger``'s projections (caught up first)."""
    return gather_from(ledger.projections, as_of)


def gather_from(projections: Projections, as_of: dt.date) -> ReportData:
    """Build the report's data from the projections, as of ``as_of``."""
    from dinsos_ledger.projections.builtin import MoneyProjection
    from dinsos_ledger.projections.engine import SubjectsProjection, as_date

    projections.catch_up()
    counted = dict(
        projections.query(
            f"SELECT kind, COUNT(*) FROM {SubjectsProjection.table} "
            "WHERE registered_on <= ? GROUP BY kind",
            (as_of,),
        )
    )
    flows = MonthlyFlows()
    # Summed per day in the database, so the rows read stay few however many subjects.
    for kind, programme, entry, on, reversed_on, amount in projections.query(
        "SELECT kind, programme, entry, on_date, reversed_on, CAST(SUM(amount) AS BIGINT) "
        f"FROM {MoneyProjection.table} WHERE {dated_sql()} "
        "GROUP BY kind, programme, entry, on_date, reversed_on",
        (as_of,),
    ):
        day = as_date(on)
        assert day is not None
        if entry == "allocation":
            flows.add_allocation(kind, programme, day, int(amount))
        else:
            flows.add_disbursement(kind, programme, day, int(amount), as_date(reversed_on))

    timelines: list[Timeline] = []
    regions: dict[str, str] = {}
    for timeline, region in projections.iter_continuity(as_of):
        timelines.append(timeline)
        regions[timeline.ref] = region
    statuses = Counter(t.status for t in timelines)
    covered_days = sum(t.covered_days for t in timelines)
    total_days = sum(t.total_days for t in timelines)

    totals: dict[str, list[int]] = {}
    for row in projections.balances(as_of):
        total = totals.setdefault(row.programme, [0, 0, 0, 0])
        total[0] += 1
        total[1] += row.allocated
        total[2] += row.disbursed
        total[3] += row.outstanding

    return ReportData(
        programme_rules=gather_programmes(projections, as_of),
        as_of=as_of,
        subjects={kind: int(counted.get(kind, 0)) for kind in _KIND_ORDER},
        statuses={s: statuses[s] for s in ("covered", "overdue", "closed")},
        coverage=ratio_4dp(covered_days, total_days),
        programmes=tuple(ProgrammeTotals(p, *t) for p, t in sorted(totals.items())),
        kecamatan=tuple(
            KecamatanCoverage(
                code=row["kecamatan"],
                name=kecamatan_name(row["kecamatan"]),
                subjects=row["subjects"],
                covered=row["covered"],
                overdue=row["overdue"],
                closed=row["closed"],
                coverage=row["coverage"],
            )
            for row in rollup_by_kecamatan((t, regions[t.ref]) for t in timelines)
        ),
        overdue=tuple(
            OverdueRow(
                ref=row["ref"],
                kind=row["kind"],
                kecamatan=kecamatan_name(regions[row["ref"]]),
                last_contact_on=as_date(row["last_contact_on"]),
                days_overdue=int(row["days_overdue"]),
            )
            for row in overdue_list(timelines, as_of)
        ),
        samples=sample_timelines(timelines),
        flows=tuple(flows.rows(as_of)),
        tali_asih=tuple(r for r in flows.rows(as_of, kind="veteran") if r.programme == "TALI_ASIH"),
        events=max(projections.positions().values(), default=0),
        audit=report_sections.gather(projections, as_of, kecamatan_name),
    )


def sample_timelines(
    timelines: Iterable[Timeline], count: int = SAMPLE_TIMELINES
) -> tuple[Timeline, ...]:
    """Pick up to ``count`` household timelines: a spread of covered, overdue and closed.

    The pick is deterministic (evenly spaced through each status in ref order), so the same
    ledger always shows the same households; the result is sorted by ref.
    """
    by_status: dict[str, list[Timeline]] = {"covered": [], "overdue": [], "closed": []}
    for timeline in sorted(timelines, key=lambda t: t.ref):
        if timeline.kind == "household":
            by_status.setdefault(timeline.status, []).append(timeline)
    wanted = {"covered": count * 5 // 12, "overdue": count * 4 // 12}
    wanted["closed"] = count - wanted["covered"] - wanted["overdue"]
    picked: list[Timeline] = []
    for status, pool in by_status.items():
        picked.extend(_spread(pool, wanted.get(status, 0)))
    # Fill from what is left when a status has too few subjects.
    chosen = {t.ref for t in picked}
    rest = [t for pool in by_status.values() for t in pool if t.ref not in chosen]
    picked.extend(_spread(rest, count - len(picked)))
    return tuple(sorted(picked, key=lambda t: t.ref))


def _spread(pool: Sequence[Timeline], n: int) -> list[Timeline]:
    if n <= 0 or not pool:
        return []
    if n >= len(pool):
        return list(pool)
    step = len(pool) / n
    return [pool[int(i * step + step / 2)] for i in range(n)]


# ---------------------------------------------------------------------------- charts


def _svg(fig: Figure, chart_id: str, title: str) -> str:
    """The figure as inline SVG: fluid width, ids made unique to the chart, a title for AT."""
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = out.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    # Several SVGs share one document, so their ids (clip paths, markers) must not collide.
    svg = re.sub(
        r'(\bid="|url\(#|href="#)([^")]+)',
        lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}",
        svg,
    )
    svg = re.sub(
        r'<svg ([^>]*?)width="[^"]*" height="[^"]*"',
        lambda m: f'<svg class="chart" role="img" aria-labelledby="{chart_id}-title" {m.group(1)}',
        svg,
        count=1,
    )
    head_end = svg.index(">") + 1
    return (
        f'{svg[:head_end]}\n <title id="{chart_id}-title">{html.escape(title)}</title>'
        f"{svg[head_end:].rstrip()}"
    )


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _no_data(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color=_MUTED, transform=ax.transAxes)


def _juta(value: float, _: object = None) -> str:
    # Axis labels only: amounts themselves stay whole rupiah everywhere else.
    return f"{value / 1_000_000:,.0f}".replace(",", ".")


def _colour(programme: str, index: int) -> str:
    return _PROGRAMME_COLOURS.get(programme, _PALETTE[index % len(_PALETTE)])


def _chart_coverage(rows: Sequence[KecamatanCoverage], overall: float) -> Figure:
    """A dot per kecamatan: the share of days covered, best on top, against the district.

    Dots need no zero baseline, so the axis starts just below the lowest kecamatan and the
    differences that matter (a few per cent of days) stay visible; the axis says where it
    starts. Kecamatan below the district figure are drawn in the warning colour.
    """
    fig = _figure(6.4, 0.9 + 0.3 * max(len(rows), 3))
    if not rows:
        _no_data(fig, "No households or veterans yet")
        return fig
    ordered = sorted(rows, key=lambda r: (-r.coverage, r.name))
    ax = fig.add_subplot()
    ys = list(range(len(ordered)))
    low = min(overall, *(r.coverage for r in ordered))
    # Start at a round 5 % below the lowest value, so no dot sits on the axis.
    start = max(
        0.0, (int(low * 20) - (1 if low * 20 - int(low * 20) < _AXIS_CLEARANCE else 0)) / 20
    )
    ax.set_xlim(start, 1.0)
    ax.grid(axis="x", color="#e4e7eb", linewidth=0.8)
    ax.grid(axis="y", color="#f0f2f5", linewidth=0.8)
    ax.set_axisbelow(True)
    colours = [_COVERED if r.coverage >= overall else _OVERDUE for r in ordered]
    ax.scatter([r.coverage for r in ordered], ys, s=42, color=colours, zorder=3)
    ax.axvline(overall, color=_INK, linestyle="--", linewidth=1)
    ax.set_yticks(ys, [r.name for r in ordered])
    ax.invert_yaxis()
    ax.set_ylim(len(ordered) - 0.4, -1.1)
    ax.text(overall, -0.75, f"district {overall:.1%} ", color=_INK, fontsize=9, ha="right")
    # Whole-per-cent ticks (2 %, 5 % or 10 % apart): a rounded 87.5 % label would mislead.
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[2, 5, 10]))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    edge = matplotlib.transforms.blended_transform_factory(ax.transAxes, ax.transData)
    ax.text(1.03, -0.75, "covered · subjects · overdue", transform=edge, fontsize=9, color=_MUTED)
    for y, row in zip(ys, ordered, strict=True):
        ax.text(
            1.03,
            y,
            f"{row.coverage:.1%} · {row.subjects} · {row.overdue}",
            transform=edge,
            va="center",
            fontsize=9,
            color=_INK,
        )
    ax.set_xlabel(f"share of window days covered by a contact (axis starts at {start:.0%})")
    return fig


def _day_number(day: dt.date) -> float:
    """The date as matplotlib's date axis counts it."""
    return float(mdates.date2num(day))  # type: ignore[no-untyped-call]


def _chart_timelines(samples: Sequence[Timeline], as_of: dt.date) -> Figure:
    """One row per sample household: covered stretches, gaps, and the current overdue gap."""
    fig = _figure(6.4, 1.0 + 0.34 * max(len(samples), 3))
    if not samples:
        _no_data(fig, "No households yet")
        return fig
    ax = fig.add_subplot()
    one = 1.0  # one day in matplotlib's date numbers
    for y, timeline in enumerate(samples):
        start = _day_number(timeline.registered_on)
        end = _day_number(timeline.end_on) + one
        covered: list[tuple[float, float]] = []
        gaps: list[tuple[float, float]] = []
        cursor = start
        for gap in timeline.gaps:
            g0, g1 = _day_number(gap.start), _day_number(gap.end) + one
            if g0 > cursor:
                covered.append((cursor, g0 - cursor))
            gaps.append((g0, g1 - g0))
            cursor = g1
        if cursor < end:
            covered.append((cursor, end - cursor))
        ax.broken_barh(covered, (y - 0.3, 0.6), facecolors=_COVERED)
        overdue_tail = timeline.status == "overdue" and gaps
        ax.broken_barh(gaps[:-1] if overdue_tail else gaps, (y - 0.3, 0.6), facecolors=_GAP)
        if overdue_tail:
            ax.broken_barh(gaps[-1:], (y - 0.3, 0.6), facecolors=_OVERDUE)
        if timeline.status == "closed":
            ax.plot([end], [y], marker="|", markersize=12, color=_INK)
    ax.set_yticks(list(range(len(samples))), [f"{t.ref} ({t.status})" for t in samples], fontsize=9)
    ax.invert_yaxis()
    ax.axvline(_day_number(as_of) + one, color=_MUTED, linestyle=":", linewidth=1)
    locator = mdates.AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(color=_COVERED, label="covered"),
            Patch(color=_GAP, label="gap"),
            Patch(color=_OVERDUE, label="overdue now"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08),
        ncols=3,
        fontsize=9,
    )
    return fig


def _chart_balances(programmes: Sequence[ProgrammeTotals]) -> Figure:
    """Grouped bars per programme: allocated, disbursed, outstanding (millions of rupiah)."""
    fig = _figure(6.4, 1.2 + 0.6 * max(len(programmes), 2))
    if not programmes:
        _no_data(fig, "No allocations or disbursements yet")
        return fig
    ax = fig.add_subplot()
    height = 0.26
    series = (
        ("allocated", "#9aa5b1", [p.allocated for p in programmes]),
        ("disbursed", "#0072B2", [p.disbursed for p in programmes]),
        ("outstanding", "#E69F00", [p.outstanding for p in programmes]),
    )
    for i, (label, colour, values) in enumerate(series):
        ys = [y + (i - 1) * height for y in range(len(programmes))]
        ax.barh(ys, values, height=height, color=colour, label=label)
    ax.set_yticks(list(range(len(programmes))), [p.programme for p in programmes])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(FuncFormatter(_juta))
    ax.set_xlabel("million rupiah (juta)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, fontsize=9)
    return fig


def _months(first: str, last: str) -> list[str]:
    y, m = int(first[:4]), int(first[5:])
    months = []
    while f"{y:04d}-{m:02d}" <= last:
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == _DECEMBER else (y, m + 1)
    return months


def _month_labels(ax: Any, months: Sequence[str]) -> None:
    step = max(1, -(-len(months) // 12))  # at most 12 labels
    ticks = list(range(0, len(months), step))
    labels = []
    for i in ticks:
        month = dt.date(int(months[i][:4]), int(months[i][5:]), 1)
        first = i == 0 or month.month == 1 or (month.month <= step)
        labels.append(f"{month:%b}\n{month:%Y}" if first else f"{month:%b}")
    ax.set_xticks(ticks, labels, fontsize=9)


def _chart_disbursements(flows: Sequence[MonthFlow]) -> Figure:
    """Stacked bars: money paid each month, by programme (net of reversals)."""
    fig = _figure(6.4, 3.4)
    paid = [f for f in flows if f.disbursed]
    if not paid:
        _no_data(fig, "No disbursements yet")
        return fig
    months = _months(min(f.month for f in paid), max(f.month for f in paid))
    programmes = sorted({f.programme for f in paid})
    ax = fig.add_subplot()
    bottom = [0] * len(months)
    index = {m: i for i, m in enumerate(months)}
    for n, programme in enumerate(programmes):
        values = [0] * len(months)
        for f in paid:
            if f.programme == programme:
                values[index[f.month]] += f.disbursed
        ax.bar(
            range(len(months)),
            values,
            bottom=bottom,
            color=_colour(programme, n),
            label=programme,
            width=0.8,
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    _month_labels(ax, months)
    ax.yaxis.set_major_formatter(FuncFormatter(_juta))
    ax.set_ylabel("million rupiah (juta)")
    ax.legend(loc="upper left", ncols=len(programmes), fontsize=9)
    ax.set_ylim(0, max(bottom) * 1.15)
    return fig


def _chart_tali_asih(flows: Sequence[MonthFlow]) -> Figure:
    """Veterans' tali asih: monthly accrual and handover above, running totals below."""
    fig = _figure(6.4, 4.6)
    if not flows:
        _no_data(fig, "No tali asih for veterans yet")
        return fig
    months = _months(flows[0].month, flows[-1].month)
    by_month = {f.month: f for f in flows}
    accrued = [by_month[m].allocated if m in by_month else 0 for m in months]
    handed = [by_month[m].disbursed if m in by_month else 0 for m in months]
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.4))
    xs = list(range(len(months)))
    top.bar([x - 0.2 for x in xs], accrued, width=0.4, color="#9aa5b1", label="accrued (allocated)")
    top.bar([x + 0.2 for x in xs], handed, width=0.4, color=_COVERED, label="handed over")
    top.yaxis.set_major_formatter(FuncFormatter(_juta))
    top.set_ylabel("per month, juta")
    top.legend(loc="upper left", fontsize=9, ncols=2)
    top.set_ylim(0, max(accrued + handed) * 1.3)
    running_accrued, running_handed = [], []
    a = h = 0
    for x, y in zip(accrued, handed, strict=True):
        a, h = a + x, h + y
        running_accrued.append(a)
        running_handed.append(h)
    bottom.step(xs, running_accrued, where="mid", color=_INK, label="accrued, cumulative")
    bottom.step(xs, running_handed, where="mid", color=_COVERED, label="handed over, cumulative")
    bottom.fill_between(
        xs,
        running_handed,
        running_accrued,
        step="mid",
        color=_GAP,
        alpha=0.25,
        label="owed to veterans",
    )
    bottom.yaxis.set_major_formatter(FuncFormatter(_juta))
    bottom.yaxis.set_major_locator(MaxNLocator(5))
    bottom.set_ylabel("cumulative, juta")
    bottom.set_ylim(0, max(running_accrued) * 1.1)
    bottom.legend(loc="upper left", fontsize=9)
    _month_labels(bottom, months)
    return fig


# ---------------------------------------------------------------------------- the page


#: The report's charts: (id, title); the id is the section's anchor and the SVG's id prefix.
CHARTS: Final = (
    ("coverage", "Continuity coverage by kecamatan"),
    ("timelines", "Service timelines of sample households"),
    ("balances", "Balances by programme"),
    ("disbursements", "Disbursements by programme and month"),
    ("tali-asih", "Veterans' tali asih: accrued against handed over"),
)

_CSS: Final = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#f5f7fa;--card:#fff;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,
sans-serif;color:var(--ink);background:var(--bg);line-height:1.45;font-size:16px}
header,main,footer{max-width:60rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.5rem}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.15rem;margin:0 0 .5rem}
.sub{color:var(--muted);margin:0 0 1rem}
section{background:var(--card);border:1px solid var(--line);border-radius:.5rem;
padding:1rem;margin:0 0 1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(8rem,1fr));gap:.75rem;
margin:0 0 1rem}
.card{background:var(--bg);border-radius:.4rem;padding:.6rem .75rem}
.card .n{font-size:1.4rem;font-weight:600;display:block;font-variant-numeric:tabular-nums}
.card.money .n{font-size:1.15rem;white-space:nowrap}
.card .l{color:var(--muted);font-size:.85rem}
.note{color:var(--muted);font-size:.85rem;margin:.5rem 0 0}
figure{margin:0}
/* Charts shrink with the screen down to a width where their text stays legible, then
scroll sideways; on wide screens they stop growing so their text is not oversized. */
svg.chart{display:block;width:100%;height:auto;min-width:32rem;max-width:46rem;margin:0 auto}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.9rem;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);
white-space:nowrap}
th{color:var(--muted);font-weight:600}
td.num,th.num{text-align:right}
details{margin-top:.5rem}
summary{cursor:pointer;color:var(--accent)}
footer{color:var(--muted);font-size:.85rem;padding-bottom:2rem}
@media (max-width:30rem){body{font-size:15px}section{padding:.75rem}.card .n{font-size:1.2rem}}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(
    headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[object]], caption: str = ""
) -> str:
    """An HTML table; ``headers`` are (label, numeric) and numeric columns align right."""
    num_class = ' class="num"'
    head = "".join(f'<th{num_class if num else ""} scope="col">{_e(h)}</th>' for h, num in headers)
    body = []
    for row in rows:
        cells = "".join(
            f"<td{num_class if num else ''}>{_e(v)}</td>"
            for v, (_, num) in zip(row, headers, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    cap = f'<caption class="note">{_e(caption)}</caption>' if caption else ""
    return (
        f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _card(number: object, label: str, kind: str = "card") -> str:
    return (
        f'<div class="{kind}"><span class="n">{_e(number)}</span>'
        f'<span class="l">{_e(label)}</span></div>'
    )


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def render_html(data: ReportData, *, title: str = "Kabupaten Kutai Timur") -> str:
    """The report page for ``data``: one HTML document with inline CSS and inline SVG charts."""
    with matplotlib.rc_context(cast("Any", _RC)):
        svgs = {
            "coverage": _chart_coverage(data.kecamatan, data.coverage),
            "timelines": _chart_timelines(data.samples, data.as_of),
            "balances": _chart_balances(data.programmes),
            "disbursements": _chart_disbursements(data.flows),
            "tali-asih": _chart_tali_asih(data.tali_asih),
        }
        rendered = {cid: _svg(svgs[cid], cid, t) for cid, t in CHARTS}
    titles = dict(CHARTS)
    s, st = data.subjects, data.statuses
    as_of = data.as_of.isoformat()

    cards = [
        _card(f"{s.get('household', 0):,}", "households"),
        _card(f"{s.get('veteran', 0):,}", "veterans"),
        _card(f"{s.get('cohort', 0):,}", "training cohorts"),
        _card(f"{s.get('enrolment', 0):,}", "enrolments"),
        _card(_percent(data.coverage), "of days covered"),
        _card(f"{st.get('overdue', 0):,}", "overdue now"),
    ]
    money_cards = [
        _card(rupiah(p.outstanding), f"outstanding {p.programme}", "card money")
        for p in data.programmes
    ]

    def section(cid: str, intro: str, extra: str = "") -> str:
        return (
            f'<section id="{cid}"><h2>{_e(titles[cid])}</h2><p class="note">{intro}</p>'
            f'<figure class="scroll">{rendered[cid]}</figure>{extra}</section>'
        )

    coverage_table = _table(
        [
            ("kecamatan", False),
            ("code", False),
            ("subjects", True),
            ("covered", True),
            ("overdue", True),
            ("closed", True),
            ("coverage", True),
        ],
        (
            (r.name, r.code, r.subjects, r.covered, r.overdue, r.closed, _percent(r.coverage))
            for r in sorted(data.kecamatan, key=lambda r: r.code)
        ),
    )
    shown = data.overdue[:TOP_OVERDUE]
    overdue_table = _table(
        [
            ("ref", False),
            ("kind", False),
            ("kecamatan", False),
            ("last contact", False),
            ("days overdue", True),
        ],
        (
            (
                r.ref,
                r.kind,
                r.kecamatan,
                r.last_contact_on.isoformat() if r.last_contact_on else "never",
                r.days_overdue,
            )
            for r in shown
        ),
    )
    money_table = _table(
        [
            ("programme", False),
            ("subjects", True),
            ("allocated", True),
            ("disbursed", True),
            ("outstanding", True),
        ],
        (
            (
                p.programme,
                f"{p.subjects:,}",
                rupiah(p.allocated),
                rupiah(p.disbursed),
                rupiah(p.outstanding),
            )
            for p in data.programmes
        ),
    )
    tali = data.tali_asih
    tali_accrued = sum(f.allocated for f in tali)
    tali_handed = sum(f.disbursed for f in tali)

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex">',
        f"<title>Service delivery report · {_e(title)} · as of {as_of}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>Service delivery · {_e(title)}</h1>",
        (
            f'<p class="sub">Dinas Sosial ledger report as of <strong>{as_of}</strong>, '
            f"built from {data.events:,} recorded events. No personal data: subjects appear "
            "by case number only.</p>"
        ),
        "</header>",
        "<main>",
        '<section id="headline"><h2>At a glance</h2>',
        f'<div class="cards">{"".join(cards)}</div>',
        f'<div class="cards">{"".join(money_cards)}</div>' if money_cards else "",
        (
            f'<p class="note">Households and veterans: {st.get("covered", 0):,} covered, '
            f"{st.get('overdue', 0):,} overdue, {st.get('closed', 0):,} closed. A day is "
            "covered when a contact (registration, assessment, payment, follow-up, training) "
            "fell within the 90 days before it (180 for veterans).</p>"
        ),
        "</section>",
        section(
            "coverage",
            "Share of each subject's days, from registration to the as-of date or its "
            "closure, that were covered by a contact; summed over the kecamatan's households "
            "and veterans.",
            f"<details><summary>Numbers by kecamatan</summary>{coverage_table}</details>",
        ),
        '<section id="overdue">',
        f"<h2>Overdue: {len(shown)} of {len(data.overdue):,}, longest first</h2>",
        (
            '<p class="note">Households and veterans whose last contact is more than their '
            "window ago: these need a visit.</p>"
        ),
        overdue_table if shown else '<p class="note">Nobody is overdue.</p>',
        "</section>",
        section(
            "timelines",
            "A spread of households (some covered, some overdue, some closed) from "
            "registration to the as-of date: green stretches are covered by a contact, "
            "orange ones are gaps, red is a gap still open today; a bar marks a closure.",
        ),
        section(
            "balances",
            "Summed over every household, veteran and cohort; outstanding is allocated "
            "but not yet paid.",
            money_table,
        ),
        render_programmes_section(data.programme_rules),
        section(
            "disbursements",
            "Money paid in each month by business date, net of payments reversed by the "
            "as-of date.",
        ),
        section(
            "tali-asih",
            f"Tali asih accrues monthly and is handed over on Hari Pahlawan (10 November). "
            f"Accrued so far {rupiah(tali_accrued)}, handed over {rupiah(tali_handed)}, "
            f"owed {rupiah(tali_accrued - tali_handed)}.",
        ),
        report_sections.render(data.audit),
        "</main>",
        (
            "<footer><p>Generated by dinsos-ledger from the ledger's projections. Amounts "
            "are whole rupiah; charts show millions (juta). Continuity follows the ledger's "
            "rules: window 90 days for households, 180 for veterans.</p></footer>"
        ),
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(p for p in parts if p)


def write_report(ledger: Ledger, out_dir: str | Path, *, as_of: dt.date | None = None) -> Path:
    """Write the report of ``ledger`` as of ``as_of`` (default today) to ``out_dir/index.html``.

    The folder is created first, so a folder that cannot be made fails before the ledger is
    read. Returns the path of the page.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = render_html(gather(ledger, as_of or dt.date.today()))
    path = out / REPORT_FILE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a report
    return path
