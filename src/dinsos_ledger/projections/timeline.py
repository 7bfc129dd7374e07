"""Service-continuity timelines (the continuity rules), computed from contact dates alone.

Pure functions over dates: no storage, no events. The projection that reads the event
log gathers each subject's registration, contacts and closure and calls
:func:`compute_timeline`; reports roll the results up with :func:`rollup_by_kecamatan`
and :func:`overdue_list`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import attrs

from dinsos_ledger.types import RegionCode

__all__ = [
    "Gap",
    "Timeline",
    "compute_timeline",
    "overdue_list",
    "rollup_by_kecamatan",
]

_ONE_DAY = dt.timedelta(days=1)


def ratio_4dp(numerator: int, denominator: int) -> float:
    """Return ``numerator / denominator`` rounded half up to 4 decimal places.

    The rounding is done on the exact rational, so 0.00005 exactly rounds up and nothing
    just below it does; only the already-rounded result becomes a float. A zero
    denominator gives 0.0 (an empty total has no coverage to speak of).
    """
    if denominator == 0:
        return 0.0
    scaled = Fraction(numerator, denominator) * 10_000
    # floor(x + 1/2) is half-up for the non-negative ratios we deal in.
    rounded = math.floor(scaled + Fraction(1, 2))
    return float(Fraction(rounded, 10_000))


def _check_window(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        msg = f"'{attribute.name}' must be a whole number of days >= 1 (got {value!r})"
        raise ValueError(msg)


@attrs.frozen(order=True)
class Gap:
    """A maximal run of uncovered days, ``start`` to ``end`` inclusive at both ends."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        """Number of days in the gap, counting both ends."""
        return (self.end - self.start).days + 1

    def to_json(self) -> dict[str, Any]:
        """Return the gap as the CLI prints it: ``{"from", "to", "days"}`` with ISO dates."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "days": self.days}


@attrs.frozen
class Timeline:
    """The service-continuity timeline of one household or veteran as of one date.

    Interval conventions (all inclusive at both ends, in whole days):

    - the window is ``registered_on`` .. ``end_on``; ``total_days`` counts both ends,
      so a subject registered on the as-of date has a window of one day;
    - ``end_on`` is the close date when the subject was closed on or before the as-of
      date, else the as-of date;
    - a contact on day ``c`` covers ``c`` .. ``c + window_days - 1`` (``window_days``
      days, the contact day included);
    - each :class:`Gap` is a maximal run of uncovered days inside the window, also
      inclusive at both ends, and ``covered_days + sum(gap.days) == total_days``.

    ``status`` is ``"closed"``, ``"covered"`` (the as-of date is covered) or
    ``"overdue"``. ``coverage`` is ``covered_days / total_days`` rounded half up to four
    places.
    """

    ref: str
    kind: str
    window_days: int = attrs.field(validator=_check_window)
    registered_on: dt.date
    end_on: dt.date
    total_days: int
    covered_days: int
    coverage: float
    longest_gap_days: int
    gaps: tuple[Gap, ...]
    last_contact_on: dt.date | None
    status: str

    def to_json(self) -> dict[str, Any]:
        """Return the timeline as the ``continuity`` verb prints it (the CLI contract)."""
        return {
            "ref": self.ref,
            "kind": self.kind,
            "window_days": self.window_days,
            "registered_on": self.registered_on.isoformat(),
            "end_on": self.end_on.isoformat(),
            "total_days": self.total_days,
            "covered_days": self.covered_days,
            "coverage": self.coverage,
            "longest_gap_days": self.longest_gap_days,
            "gaps": [gap.to_json() for gap in self.gaps],
            "last_contact_on": (
                None if self.last_contact_on is None else self.last_contact_on.isoformat()
            ),
            "status": self.status,
        }


def compute_timeline(
    *,
    ref: str,
    kind: str,
    window_days: int,
    registered_on: dt.date,
    contacts: Iterable[dt.date],
    as_of: dt.date,
    closed_on: dt.date | None,
) -> Timeline | None:
    """Return the timeline of a subject as of ``as_of``, or None if registered after it.

    ``contacts`` are the dates of the contacts that count as of ``as_of`` (the caller has
    already left out reversed disbursements and ``not_found`` follow-ups); those after the
    window's end are ignored here. Runs in O(n log n) in the number of contacts, never in
    the number of days: each contact is an interval and the intervals are merged.
    """
    if type(window_days) is not int or window_days < 1:
        msg = f"'window_days' must be a whole number of days >= 1 (got {window_days!r})"
        raise ValueError(msg)
    if registered_on > as_of:
        return None
    closed = closed_on is not None and closed_on <= as_of
    end = closed_on if closed_on is not None and closed else as_of
    if end < registered_on:
        msg = f"'closed_on' must be on or after 'registered_on' {registered_on} (got {end})"
        raise ValueError(msg)

    counted = sorted({c for c in contacts if c <= end})
    reach = dt.timedelta(days=window_days - 1)

    gaps: list[Gap] = []
    covered = 0
    # `cursor` is the first day of the window not yet accounted for as covered or gap.
    cursor = registered_on
    reached_end = False
    for contact in counted:
        start = max(contact, registered_on)
        # Compare before adding, so a window near date.max never overflows.
        stop = end if (end - contact) <= reach else contact + reach
        if stop < cursor:
            continue  # wholly before the window or inside stretches already counted
        if start > cursor:
            gaps.append(Gap(cursor, start - _ONE_DAY))
        else:
            start = cursor
        covered += (stop - start).days + 1
        if stop == end:
            reached_end = True
            break
        cursor = stop + _ONE_DAY
    if not reached_end:
        gaps.append(Gap(cursor, end))

    total = (end - registered_on).days + 1
    if closed:
        status = "closed"
    elif gaps and gaps[-1].end == end:
        status = "overdue"
    else:
        status = "covered"
    return Timeline(
        ref=ref,
        kind=kind,
        window_days=window_days,
        registered_on=registered_on,
        end_on=end,
        total_days=total,
        covered_days=covered,
        coverage=ratio_4dp(covered, total),
        longest_gap_days=max((gap.days for gap in gaps), default=0),
        gaps=tuple(gaps),
        last_contact_on=counted[-1] if counted else None,
        status=status,
    )


def rollup_by_kecamatan(
    timelines_with_region: Iterable[tuple[Timeline, str]],
) -> list[dict[str, Any]]:
    """Sum timelines per kecamatan (the ``NN.NN.NN`` prefix of each village code).

    Each row is ``{"kecamatan", "subjects", "covered", "overdue", "closed",
    "covered_days", "total_days", "coverage"}``, where ``covered``/``overdue``/``closed``
    count subjects by status and ``coverage`` is ``covered_days / total_days`` rounded
    like a timeline's. Rows are sorted by kecamatan.
    """
    sums: dict[str, dict[str, int]] = {}
    for timeline, region in timelines_with_region:
        kecamatan = RegionCode(region).kecamatan
        row = sums.setdefault(
            kecamatan,
            {
                "subjects": 0,
                "covered": 0,
                "overdue": 0,
                "closed": 0,
                "covered_days": 0,
                "total_days": 0,
            },
        )
        row["subjects"] += 1
        row[timeline.status] += 1
        row["covered_days"] += timeline.covered_days
        row["total_days"] += timeline.total_days
    return [
        {
            "kecamatan": kecamatan,
            **row,
            "coverage": ratio_4dp(row["covered_days"], row["total_days"]),
        }
        for kecamatan, row in sorted(sums.items())
    ]


def overdue_list(timelines: Iterable[Timeline], as_of: dt.date) -> list[dict[str, Any]]:
    """List the overdue subjects, longest overdue first (then by ref).

    Each row is ``{"ref", "kind", "last_contact_on", "days_overdue"}``; ``days_overdue``
    is the length of the final gap, from the day after the last covered stretch ends to
    ``as_of`` inclusive. The timelines must have been computed as of ``as_of``.
    """
    rows: list[dict[str, Any]] = []
    for timeline in timelines:
        if timeline.status != "overdue":
            continue
        if timeline.end_on != as_of:
            msg = (
                f"timeline of {timeline.ref!r} must be computed as of {as_of} "
                f"(got one ending {timeline.end_on})"
            )
            raise ValueError(msg)
        rows.append(
            {
                "ref": timeline.ref,
                "kind": timeline.kind,
                "last_contact_on": (
                    None
                    if timeline.last_contact_on is None
                    else timeline.last_contact_on.isoformat()
                ),
                "days_overdue": timeline.gaps[-1].days,
            }
        )
    rows.sort(key=lambda row: (-row["days_overdue"], row["ref"]))
    return rows
