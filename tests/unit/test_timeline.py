"""Service-continuity timelines (the continuity rules): worked examples and an oracle."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger.projections.timeline import (
    Gap,
    Timeline,
    compute_timeline,
    overdue_list,
    rollup_by_kecamatan,
)

D = date.fromisoformat


def timeline(
    *,
    registered_on: str,
    contacts: list[str],
    as_of: str,
    closed_on: str | None = None,
    window_days: int = 90,
    ref: str = "HH-1",
    kind: str = "household",
) -> Timeline | None:
    """Compute a timeline from ISO date strings."""
    return compute_timeline(
        ref=ref,
        kind=kind,
        window_days=window_days,
        registered_on=D(registered_on),
        contacts=[D(c) for c in contacts],
        as_of=D(as_of),
        closed_on=None if closed_on is None else D(closed_on),
    )


def must(t: Timeline | None) -> Timeline:
    """Narrow an optional timeline to one that exists."""
    assert t is not None
    return t


# --- worked examples -------------------------------------------------------------------


def test_a_contact_on_the_registration_day_covers_the_next_ninety_days() -> None:
    """Registration on Jan 1 covers Jan 1 .. Mar 31 (90 days) for a household."""
    t = must(timeline(registered_on="2024-01-01", contacts=["2024-01-01"], as_of="2024-03-30"))
    assert t.total_days == 90
    assert t.covered_days == 90
    assert t.gaps == ()
    assert t.status == "covered"
    assert t.coverage == 1.0
    assert t.longest_gap_days == 0
    assert t.last_contact_on == D("2024-01-01")


def test_the_day_after_the_window_runs_out_is_overdue() -> None:
    """With W = 90 a contact on Jan 1 2024 covers through Mar 30; Mar 31 is a one-day gap."""
    t = must(timeline(registered_on="2024-01-01", contacts=["2024-01-01"], as_of="2024-03-31"))
    assert t.total_days == 91
    assert t.covered_days == 90
    assert t.gaps == (Gap(D("2024-03-31"), D("2024-03-31")),)
    assert t.status == "overdue"
    assert t.coverage == 0.989  # 90/91 = 0.98901...


def test_a_veteran_window_of_one_hundred_eighty_days_covers_half_a_year() -> None:
    """With W = 180 a contact on Jan 1 2024 covers through Jun 28 2024 inclusive."""
    covered = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01"],
            as_of="2024-06-28",
            window_days=180,
            kind="veteran",
        )
    )
    assert covered.status == "covered"
    assert covered.covered_days == covered.total_days == 180
    late = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01"],
            as_of="2024-07-10",
            window_days=180,
            kind="veteran",
        )
    )
    assert late.status == "overdue"
    assert late.gaps == (Gap(D("2024-06-29"), D("2024-07-10")),)
    assert late.longest_gap_days == 12


def test_a_gap_in_the_middle_is_reported_with_inclusive_ends() -> None:
    """Contacts on Jan 1 and May 1 leave Mar 31 .. Apr 30 uncovered (31 days)."""
    t = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01", "2024-05-01"],
            as_of="2024-06-30",
        )
    )
    assert t.gaps == (Gap(D("2024-03-31"), D("2024-04-30")),)
    assert t.gaps[0].days == 31
    assert t.total_days == 182
    assert t.covered_days == 182 - 31
    assert t.status == "covered"
    assert t.to_json()["gaps"] == [{"from": "2024-03-31", "to": "2024-04-30", "days": 31}]


def test_overlapping_and_adjacent_contacts_merge_into_one_stretch() -> None:
    """Contacts whose windows overlap or touch leave no gap between them."""
    t = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01", "2024-02-01", "2024-05-01", "2024-01-01"],
            as_of="2024-07-29",
        )
    )
    # Feb 1 covers through Apr 30; May 1 is the next day; May 1 covers through Jul 29.
    assert t.gaps == ()
    assert t.covered_days == t.total_days


def test_overdue_as_of_a_date_reports_the_final_gap() -> None:
    """As of Jun 30 a household last contacted Jan 1 has been uncovered since Mar 31."""
    t = must(timeline(registered_on="2024-01-01", contacts=["2024-01-01"], as_of="2024-06-30"))
    assert t.status == "overdue"
    assert t.gaps == (Gap(D("2024-03-31"), D("2024-06-30")),)
    assert overdue_list([t], D("2024-06-30")) == [
        {"ref": "HH-1", "kind": "household", "last_contact_on": "2024-01-01", "days_overdue": 92}
    ]


def test_closed_before_the_as_of_date_ends_the_window_at_the_close() -> None:
    """A subject closed on Feb 1 has a window ending Feb 1 and status closed."""
    t = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01", "2024-03-01"],
            as_of="2024-12-31",
            closed_on="2024-02-01",
        )
    )
    assert t.end_on == D("2024-02-01")
    assert t.total_days == 32
    assert t.covered_days == 32
    assert t.status == "closed"
    assert t.last_contact_on == D("2024-01-01")  # the Mar 1 contact is after the end


def test_closed_after_the_as_of_date_does_not_count_yet() -> None:
    """A close dated after D leaves the window ending at D and the status open."""
    t = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01"],
            as_of="2024-02-01",
            closed_on="2024-03-01",
        )
    )
    assert t.end_on == D("2024-02-01")
    assert t.status == "covered"


def test_closed_on_the_as_of_date_is_closed() -> None:
    """A close dated exactly D counts: status closed, window ending at D."""
    t = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01"],
            as_of="2024-06-01",
            closed_on="2024-06-01",
        )
    )
    assert t.status == "closed"
    assert t.end_on == D("2024-06-01")
    assert t.gaps[-1] == Gap(D("2024-03-31"), D("2024-06-01"))


def test_an_as_of_date_before_registration_has_no_timeline() -> None:
    """A subject registered after D has no timeline (None)."""
    assert timeline(registered_on="2024-05-01", contacts=["2024-05-01"], as_of="2024-04-30") is None


def test_a_subject_registered_on_the_as_of_date_has_a_one_day_window() -> None:
    """Registration day equal to D gives one covered day."""
    t = must(timeline(registered_on="2024-05-01", contacts=["2024-05-01"], as_of="2024-05-01"))
    assert (t.total_days, t.covered_days, t.status) == (1, 1, "covered")


def test_contacts_after_the_end_are_ignored() -> None:
    """Contacts dated after D neither cover days nor become the last contact."""
    t = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01", "2024-04-15"],
            as_of="2024-04-14",
        )
    )
    assert t.last_contact_on == D("2024-01-01")
    assert t.status == "overdue"
    assert t.gaps == (Gap(D("2024-03-31"), D("2024-04-14")),)


def test_a_backdated_contact_before_registration_still_covers_the_window() -> None:
    """A contact dated before registration covers the window days within its reach."""
    t = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2023-12-01"],
            as_of="2024-03-31",
        )
    )
    # Dec 1 2023 + 89 days = Feb 28 2024.
    assert t.gaps == (Gap(D("2024-02-29"), D("2024-03-31")),)
    assert t.covered_days == 59
    assert t.last_contact_on == D("2023-12-01")


def test_no_contacts_at_all_leaves_the_whole_window_a_gap() -> None:
    """Without any contact every day is uncovered and the last contact is null."""
    t = must(timeline(registered_on="2024-01-01", contacts=[], as_of="2024-01-10"))
    assert t.gaps == (Gap(D("2024-01-01"), D("2024-01-10")),)
    assert t.covered_days == 0
    assert t.coverage == 0.0
    assert t.to_json()["last_contact_on"] is None


def test_coverage_rounds_half_up_on_the_exact_ratio() -> None:
    """1/16 = 0.0625 exactly rounds to 0.0625; 1/32 = 0.03125 rounds half up to 0.0313."""
    t = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01"],
            as_of="2024-01-16",
            window_days=1,
        )
    )
    assert t.coverage == 0.0625
    t = must(
        timeline(
            registered_on="2024-01-01",
            contacts=["2024-01-01"],
            as_of="2024-02-01",
            window_days=1,
        )
    )
    assert t.coverage == 0.0313


def test_to_json_has_exactly_the_spec_keys_with_iso_dates() -> None:
    """The JSON object carries the CLI contract's keys in that order."""
    t = must(timeline(registered_on="2024-01-01", contacts=["2024-01-01"], as_of="2024-06-30"))
    assert t.to_json() == {
        "ref": "HH-1",
        "kind": "household",
        "window_days": 90,
        "registered_on": "2024-01-01",
        "end_on": "2024-06-30",
        "total_days": 182,
        "covered_days": 90,
        "coverage": 0.4945,
        "longest_gap_days": 92,
        "gaps": [{"from": "2024-03-31", "to": "2024-06-30", "days": 92}],
        "last_contact_on": "2024-01-01",
        "status": "overdue",
    }


def test_a_zero_window_is_refused() -> None:
    """A window of zero days is not a window."""
    with pytest.raises(ValueError, match="'window_days' must be"):
        timeline(registered_on="2024-01-01", contacts=[], as_of="2024-01-02", window_days=0)


def test_a_close_before_registration_is_refused() -> None:
    """A close dated before registration cannot make a window."""
    with pytest.raises(ValueError, match="'closed_on' must be"):
        timeline(
            registered_on="2024-01-10", contacts=[], as_of="2024-02-01", closed_on="2024-01-01"
        )


def test_rollup_by_kecamatan_counts_statuses_and_sums_days() -> None:
    """Subjects group by the NN.NN.NN prefix of their village code, sorted."""
    june = "2024-06-30"
    a = must(timeline(ref="A", registered_on="2024-01-01", contacts=["2024-01-01"], as_of=june))
    b = must(timeline(ref="B", registered_on="2024-06-01", contacts=["2024-06-01"], as_of=june))
    c = must(
        timeline(
            ref="C",
            registered_on="2024-01-01",
            contacts=["2024-01-01"],
            as_of="2024-06-30",
            closed_on="2024-01-31",
        )
    )
    rows = rollup_by_kecamatan([(a, "64.08.02.2001"), (c, "64.08.01.1001"), (b, "64.08.02.2005")])
    assert rows == [
        {
            "kecamatan": "64.08.01",
            "subjects": 1,
            "covered": 0,
            "overdue": 0,
            "closed": 1,
            "covered_days": 31,
            "total_days": 31,
            "coverage": 1.0,
        },
        {
            "kecamatan": "64.08.02",
            "subjects": 2,
            "covered": 1,
            "overdue": 1,
            "closed": 0,
            "covered_days": 90 + 30,
            "total_days": 182 + 30,
            "coverage": 0.566,  # 120/212 = 0.56603...
        },
    ]


def test_overdue_list_sorts_by_days_overdue_then_ref() -> None:
    """Longest overdue first; ties by ref; covered and closed subjects are left out."""
    as_of = "2024-06-30"
    ts = [
        must(timeline(ref="B", registered_on="2024-01-01", contacts=["2024-01-01"], as_of=as_of)),
        must(timeline(ref="A", registered_on="2024-01-01", contacts=["2024-01-01"], as_of=as_of)),
        must(timeline(ref="C", registered_on="2024-01-01", contacts=["2024-03-01"], as_of=as_of)),
        must(timeline(ref="D", registered_on="2024-06-01", contacts=["2024-06-01"], as_of=as_of)),
        must(
            timeline(
                ref="E",
                registered_on="2024-01-01",
                contacts=[],
                as_of=as_of,
                closed_on="2024-02-01",
            )
        ),
    ]
    rows = overdue_list(ts, D(as_of))
    # C: Mar 1 covers through May 29, so May 30 .. Jun 30 is 32 days.
    assert [(r["ref"], r["days_overdue"]) for r in rows] == [("A", 92), ("B", 92), ("C", 32)]


def test_overdue_list_refuses_timelines_of_another_date() -> None:
    """An overdue timeline computed as of another date cannot be measured against as_of."""
    t = must(timeline(registered_on="2024-01-01", contacts=[], as_of="2024-06-30"))
    with pytest.raises(ValueError, match="must be computed as of"):
        overdue_list([t], D("2024-07-01"))


# --- properties against a day-by-day oracle ---------------------------------------------

BASE = date(2024, 1, 1)


def oracle(
    window_days: int,
    registered_on: date,
    contacts: list[date],
    as_of: date,
    closed_on: date | None,
) -> dict[str, object] | None:
    """Walk the window one day at a time, exactly as the continuity rules words it."""
    if registered_on > as_of:
        return None
    closed = closed_on is not None and closed_on <= as_of
    end = closed_on if closed and closed_on is not None else as_of
    counted = [c for c in contacts if c <= end]
    flags = []
    day = registered_on
    while day <= end:
        flags.append(any(c <= day <= c + timedelta(days=window_days - 1) for c in counted))
        day += timedelta(days=1)
    gaps: list[tuple[date, date]] = []
    for i, is_covered in enumerate(flags):
        d = registered_on + timedelta(days=i)
        if is_covered:
            continue
        if gaps and gaps[-1][1] == d - timedelta(days=1):
            gaps[-1] = (gaps[-1][0], d)
        else:
            gaps.append((d, d))
    status = "closed" if closed else ("covered" if flags[-1] else "overdue")
    return {
        "total": len(flags),
        "covered": sum(flags),
        "gaps": gaps,
        "longest": max(((b - a).days + 1 for a, b in gaps), default=0),
        "status": status,
        "last": max(counted, default=None),
    }


days = st.integers(min_value=-60, max_value=400).map(lambda n: BASE + timedelta(days=n))


@st.composite
def subjects(draw: st.DrawFn) -> dict[str, object]:
    """Draw the keyword arguments of compute_timeline for one subject."""
    registered_on = draw(days)
    return {
        "window_days": draw(st.sampled_from([1, 2, 7, 30, 90, 180])),
        "registered_on": registered_on,
        "contacts": draw(st.lists(days, max_size=12)),
        "as_of": draw(days),
        "closed_on": draw(st.none() | days.filter(lambda d: d >= registered_on)),
    }


@given(subjects())
def test_timeline_agrees_with_the_day_by_day_oracle(s: dict[str, object]) -> None:
    """Covered days, gaps, longest gap, status and last contact equal the oracle's."""
    t = compute_timeline(ref="HH-1", kind="household", **s)  # type: ignore[arg-type]
    expected = oracle(**s)  # type: ignore[arg-type]
    if expected is None:
        assert t is None
        return
    assert t is not None
    assert t.total_days == expected["total"]
    assert t.covered_days == expected["covered"]
    assert [(g.start, g.end) for g in t.gaps] == expected["gaps"]
    assert t.longest_gap_days == expected["longest"]
    assert t.status == expected["status"]
    assert t.last_contact_on == expected["last"]


@given(subjects())
def test_gaps_are_sorted_disjoint_inside_the_window_and_add_up(s: dict[str, object]) -> None:
    """Gaps are ordered, apart and inside the window; covered + gap days = total."""
    t = compute_timeline(ref="HH-1", kind="household", **s)  # type: ignore[arg-type]
    if t is None:
        return
    for gap in t.gaps:
        assert t.registered_on <= gap.start <= gap.end <= t.end_on
    for before, after in pairwise(t.gaps):
        # a covered day separates two maximal gaps
        assert before.end + timedelta(days=1) < after.start
    assert t.covered_days + sum(g.days for g in t.gaps) == t.total_days
    assert 0.0 <= t.coverage <= 1.0
    assert type(t.coverage) is float
    assert t.total_days == (t.end_on - t.registered_on).days + 1
