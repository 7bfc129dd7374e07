"""The report's charts, drawn with matplotlib as inline SVG in the report's language.

Every chart is an SVG whose text stays text (the browser's own font shows it, it can be
searched and read aloud) and whose width follows the screen: the figures are drawn about
as wide as a phone held upright is tall, so on a 390 px screen the text shrinks by a
quarter at most, and on a desktop they stop growing before their text is oversized. Every
colour is named in a legend or in the chart's own labels. A month that the as-of date cuts
short is hatched and starred, and the page says so under the chart.

Only this module imports matplotlib (the ``report`` extra).
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Sequence
from typing import Any, Final, cast

from dinsos_ledger.extras import MissingExtra
from dinsos_ledger.i18n import N_, Messages
from dinsos_ledger.projections.timeline import Timeline
from dinsos_ledger.report.data import KecamatanCoverage, MonthFlow, ProgrammeTotals

try:
    import matplotlib
    import matplotlib.dates as mdates
    import matplotlib.transforms
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator
except ImportError as e:  # pragma: no cover - the test environment has the extra
    raise MissingExtra("report") from e

__all__ = ["CHARTS", "draw_charts", "partial_month"]

#: The report's charts: (id, English title); the id is the section's anchor and the SVG's
#: id prefix, and the title is translated through the catalogue.
CHARTS: Final = (
    ("coverage", N_("Continuity coverage by kecamatan")),
    ("timelines", N_("Service timelines of sample households")),
    ("balances", N_("Balances by programme")),
    ("disbursements", N_("Disbursements by programme and month")),
    ("tali-asih", N_("Veterans' tali asih: accrued against handed over")),
)

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
_ALLOCATED: Final = "#9aa5b1"
# Figures are this many inches (of 96 px) wide: 480 px, shrunk to 358 px on a phone.
_WIDTH: Final = 5.0
# The coverage axis starts one 5 % step lower when the lowest value is within this fraction
# of a step above a gridline, so no dot sits on the axis.
_AXIS_CLEARANCE: Final = 0.4
_DECEMBER: Final = 12
_PARTIAL_HATCH: Final = "////"
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
    "hatch.color": "#ffffff",
}


def partial_month(as_of: dt.date) -> str | None:
    """``YYYY-MM`` of the as-of date's month when the date cuts it short, else None."""
    following = (as_of + dt.timedelta(days=1)).month
    return None if following != as_of.month else f"{as_of:%Y-%m}"


def draw_charts(data: Any, m: Messages) -> dict[str, str]:
    """Every chart of :data:`CHARTS` for ``data`` (a ReportData), as inline SVG by id."""
    partial = partial_month(data.as_of)
    with matplotlib.rc_context(cast("Any", _RC)):
        figures = {
            "coverage": _chart_coverage(data.kecamatan, data.coverage, m),
            "timelines": _chart_timelines(data.samples, data.as_of, m),
            "balances": _chart_balances(data.programmes, m),
            "disbursements": _chart_disbursements(data.flows, m, partial),
            "tali-asih": _chart_tali_asih(data.tali_asih, m, partial),
        }
        return {cid: _svg(figures[cid], cid, m(title)) for cid, title in CHARTS}


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
        lambda match: f"{match.group(1)}{chart_id}-{match.group(2)}",
        svg,
    )
    svg = re.sub(
        r'<svg ([^>]*?)width="[^"]*" height="[^"]*"',
        lambda match: (
            f'<svg class="chart" role="img" aria-labelledby="{chart_id}-title" {match.group(1)}'
        ),
        svg,
        count=1,
    )
    head_end = svg.index(">") + 1
    return (
        f'{svg[:head_end]}\n <title id="{chart_id}-title">{html.escape(title)}</title>'
        f"{svg[head_end:].rstrip()}"
    )


def _figure(height: float) -> Figure:
    return Figure(figsize=(_WIDTH, height), layout="constrained")


def _no_data(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color=_MUTED, transform=ax.transAxes)


def _juta(m: Messages) -> FuncFormatter:
    # Axis labels only: amounts themselves stay whole rupiah everywhere else.
    return FuncFormatter(lambda value, _: m.number(round(value / 1_000_000)))


def _colour(programme: str, index: int) -> str:
    return _PROGRAMME_COLOURS.get(programme, _PALETTE[index % len(_PALETTE)])


def _chart_coverage(rows: Sequence[KecamatanCoverage], overall: float, m: Messages) -> Figure:
    """A dot per kecamatan: the share of days covered, best on top, against the district.

    Dots need no zero baseline, so the axis starts just below the lowest kecamatan and the
    differences that matter (a few per cent of days) stay visible; the axis says where it
    starts. Kecamatan below the district figure are drawn in the warning colour, and the
    legend says so.
    """
    fig = _figure(1.3 + 0.3 * max(len(rows), 3))
    if not rows:
        _no_data(fig, m("No households or veterans yet"))
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
    # Whole-per-cent ticks (2 %, 5 % or 10 % apart): a rounded 87.5 % label would mislead.
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[2, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: m.percent(value, 0)))
    edge = matplotlib.transforms.blended_transform_factory(ax.transAxes, ax.transData)
    header = m("covered · subjects · overdue")
    ax.text(1.03, -0.75, header, transform=edge, fontsize=9, color=_MUTED)
    for y, row in zip(ys, ordered, strict=True):
        ax.text(
            1.03,
            y,
            f"{m.percent(row.coverage)} · {m.number(row.subjects)} · {m.number(row.overdue)}",
            transform=edge,
            va="center",
            fontsize=9,
            color=_INK,
        )
    ax.set_xlabel(
        m("share of days covered by a contact (axis starts at {start})").format(
            start=m.percent(start, 0)
        )
    )
    district = m("district {coverage}").format(coverage=m.percent(overall))
    ax.legend(
        handles=[
            Line2D([], [], color=_INK, linestyle="--", label=district),
            Patch(color=_COVERED, label=m("at or above the district")),
            Patch(color=_OVERDUE, label=m("below the district")),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncols=2,
        fontsize=9,
    )
    return fig


def _day_number(day: dt.date) -> float:
    """The date as matplotlib's date axis counts it."""
    return float(mdates.date2num(day))  # type: ignore[no-untyped-call]


def _date_label(m: Messages) -> FuncFormatter:
    def label(value: float, position: int | None) -> str:
        day = mdates.num2date(value)  # type: ignore[no-untyped-call]
        text = m.month_short(day.month)
        return f"{text}\n{day.year}" if position == 0 or day.month == 1 else text

    return FuncFormatter(label)


def _chart_timelines(samples: Sequence[Timeline], as_of: dt.date, m: Messages) -> Figure:
    """One row per sample household: covered stretches, gaps, and the current overdue gap."""
    fig = _figure(1.3 + 0.34 * max(len(samples), 3))
    if not samples:
        _no_data(fig, m("No households yet"))
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
    ax.set_yticks(list(range(len(samples))), [t.ref for t in samples], fontsize=9)
    ax.invert_yaxis()
    ax.axvline(_day_number(as_of) + one, color=_MUTED, linestyle=":", linewidth=1)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=6))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(_date_label(m))
    ax.tick_params(axis="x", labelsize=9)
    ax.legend(
        handles=[
            Patch(color=_COVERED, label=m("covered")),
            Patch(color=_GAP, label=m("gap")),
            Patch(color=_OVERDUE, label=m("overdue now")),
            Line2D([], [], color=_INK, marker="|", markersize=10, linestyle="", label=m("closed")),
            Line2D([], [], color=_MUTED, linestyle=":", label=m("as-of date")),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncols=3,
        fontsize=9,
    )
    return fig


def _chart_balances(programmes: Sequence[ProgrammeTotals], m: Messages) -> Figure:
    """Grouped bars per programme: allocated, disbursed, outstanding (millions of rupiah)."""
    fig = _figure(1.5 + 0.6 * max(len(programmes), 2))
    if not programmes:
        _no_data(fig, m("No allocations or disbursements yet"))
        return fig
    ax = fig.add_subplot()
    height = 0.26
    series = (
        (m("allocated"), _ALLOCATED, [p.allocated for p in programmes]),
        (m("disbursed"), "#0072B2", [p.disbursed for p in programmes]),
        (m("outstanding"), "#E69F00", [p.outstanding for p in programmes]),
    )
    for i, (label, colour, values) in enumerate(series):
        ys = [y + (i - 1) * height for y in range(len(programmes))]
        ax.barh(ys, values, height=height, color=colour, label=label)
    ax.set_yticks(list(range(len(programmes))), [p.programme for p in programmes], fontsize=9)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(_juta(m))
    ax.set_xlabel(m("million rupiah (juta)"))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, fontsize=9)
    return fig


def _months(first: str, last: str) -> list[str]:
    y, mo = int(first[:4]), int(first[5:])
    months = []
    while f"{y:04d}-{mo:02d}" <= last:
        months.append(f"{y:04d}-{mo:02d}")
        y, mo = (y + 1, 1) if mo == _DECEMBER else (y, mo + 1)
    return months


def _month_labels(ax: Any, months: Sequence[str], m: Messages, partial: str | None) -> None:
    step = max(1, -(-len(months) // 8))  # at most 8 labels: they must fit a phone
    ticks = list(range(0, len(months), step))
    if partial in months and months.index(partial) not in ticks:
        # The partial month is always labelled; a regular label too close to it gives way.
        at = months.index(partial)
        ticks = [t for t in ticks if abs(t - at) >= step] + [at]
    labels = []
    for i in ticks:
        year, month = int(months[i][:4]), int(months[i][5:])
        text = m.month_short(month) + ("*" if months[i] == partial else "")
        first = i == 0 or month == 1 or month <= step
        labels.append(f"{text}\n{year}" if first else text)
    ax.set_xticks(ticks, labels, fontsize=9)


def _partial_patch(m: Messages) -> Patch:
    return Patch(facecolor=_MUTED, hatch=_PARTIAL_HATCH, label=m("* month so far (partial)"))


def _chart_disbursements(
    flows: Sequence[MonthFlow], m: Messages, partial: str | None = None
) -> Figure:
    """Stacked bars: money paid each month, by programme (net of reversals)."""
    fig = _figure(3.6)
    paid = [f for f in flows if f.disbursed]
    if not paid:
        _no_data(fig, m("No disbursements yet"))
        return fig
    months = _months(min(f.month for f in paid), max(f.month for f in paid))
    programmes = sorted({f.programme for f in paid})
    ax = fig.add_subplot()
    bottom = [0] * len(months)
    index = {month: i for i, month in enumerate(months)}
    for n, programme in enumerate(programmes):
        values = [0] * len(months)
        for f in paid:
            if f.programme == programme:
                values[index[f.month]] += f.disbursed
        bars = ax.bar(
            range(len(months)),
            values,
            bottom=bottom,
            color=_colour(programme, n),
            label=programme,
            width=0.8,
        )
        if partial in index:
            bars[index[partial]].set_hatch(_PARTIAL_HATCH)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    _month_labels(ax, months, m, partial)
    ax.yaxis.set_major_formatter(_juta(m))
    ax.set_ylabel(m("million rupiah (juta)"))
    handles, _ = ax.get_legend_handles_labels()
    if partial in index:
        handles.append(_partial_patch(m))
    ax.legend(handles=handles, loc="upper left", ncols=3, fontsize=9)
    ax.set_ylim(0, max(bottom) * 1.3)
    return fig


def _chart_tali_asih(flows: Sequence[MonthFlow], m: Messages, partial: str | None = None) -> Figure:
    """Veterans' tali asih: monthly accrual and handover above, running totals below."""
    fig = _figure(4.8)
    if not flows:
        _no_data(fig, m("No tali asih for veterans yet"))
        return fig
    months = _months(flows[0].month, flows[-1].month)
    by_month = {f.month: f for f in flows}
    accrued = [by_month[mo].allocated if mo in by_month else 0 for mo in months]
    handed = [by_month[mo].disbursed if mo in by_month else 0 for mo in months]
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.4))
    xs = list(range(len(months)))
    accrued_bars = top.bar(
        [x - 0.2 for x in xs], accrued, width=0.4, color=_ALLOCATED, label=m("accrued (allocated)")
    )
    handed_bars = top.bar(
        [x + 0.2 for x in xs], handed, width=0.4, color=_COVERED, label=m("handed over")
    )
    if partial in months:
        accrued_bars[months.index(partial)].set_hatch(_PARTIAL_HATCH)
        handed_bars[months.index(partial)].set_hatch(_PARTIAL_HATCH)
    top.yaxis.set_major_formatter(_juta(m))
    top.set_ylabel(m("per month, juta"))
    handles, _ = top.get_legend_handles_labels()
    if partial in months:
        handles.append(_partial_patch(m))
    top.legend(handles=handles, loc="upper left", fontsize=9, ncols=2)
    top.set_ylim(0, max(accrued + handed) * 1.5)
    running_accrued, running_handed = [], []
    a = h = 0
    for x, y in zip(accrued, handed, strict=True):
        a, h = a + x, h + y
        running_accrued.append(a)
        running_handed.append(h)
    bottom.step(xs, running_accrued, where="mid", color=_INK, label=m("accrued, cumulative"))
    bottom.step(xs, running_handed, where="mid", color=_COVERED, label=m("handed over, cumulative"))
    bottom.fill_between(
        xs,
        running_handed,
        running_accrued,
        step="mid",
        color=_GAP,
        alpha=0.25,
        label=m("owed to veterans"),
    )
    bottom.yaxis.set_major_formatter(_juta(m))
    bottom.yaxis.set_major_locator(MaxNLocator(5))
    bottom.set_ylabel(m("cumulative, juta"))
    bottom.set_ylim(0, max(running_accrued) * 1.1)
    bottom.legend(loc="upper left", fontsize=9)
    _month_labels(bottom, months, m, partial)
    return fig
