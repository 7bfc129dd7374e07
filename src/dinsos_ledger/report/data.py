"""What the report shows, read from the projections: no personal data, no drawing.

:func:`gather` reads a ledger into a :class:`ReportData`; the charts and the page are drawn
from that by :mod:`dinsos_ledger.report.charts` and :mod:`dinsos_ledger.report.html`. The
report never opens personal data: it shows case numbers (refs), kecamatan, dates and
whole-rupiah amounts only.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from dinsos_ledger import report_sections
from dinsos_ledger.balances import allocation_counts, dated_by, dated_sql, disbursement_counts
from dinsos_ledger.i18n import messages
from dinsos_ledger.projections.timeline import (
    Timeline,
    overdue_list,
    ratio_4dp,
    rollup_by_kecamatan,
)
from dinsos_ledger.report.programmes import ProgrammeRules, gather_programmes
from dinsos_ledger.scenario import KECAMATAN

if TYPE_CHECKING:
    from dinsos_ledger.application import Ledger
    from dinsos_ledger.projections.views import Projections

__all__ = [
    "SAMPLE_TIMELINES",
    "KecamatanCoverage",
    "MonthFlow",
    "MonthlyFlows",
    "OverdueRow",
    "ProgrammeTotals",
    "ReportData",
    "gather",
    "gather_from",
    "kecamatan_name",
    "rupiah",
    "sample_timelines",
]

#: How many households the timeline chart shows.
SAMPLE_TIMELINES: Final = 12

_KIND_ORDER: Final = ("household", "veteran", "cohort", "enrolment")
_NAMES: Final = {f"64.08.{k.code}": k.name for k in KECAMATAN}


def kecamatan_name(code: str) -> str:
    """The name of the Kutai Timur kecamatan ``64.08.KK`` (or of a village in it), else ``code``."""
    return _NAMES.get(code[:8], code)


def rupiah(amount: int) -> str:
    """Whole rupiah the Indonesian way, ``Rp 1.250.000`` (dots group thousands)."""
    return messages("id").rupiah(amount)


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
    """The programmes defined by the as-of date and their rules (report.programmes)."""


class MonthlyFlows:
    """Sums money by programme and month from allocations and disbursements.

    :meth:`rows` applies the as-of rules of the balance rules: an allocation or disbursement
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
