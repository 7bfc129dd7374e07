"""Tests of the report's data helpers: monthly money flows, names, amounts, sample timelines."""

from __future__ import annotations

import datetime as dt

from dinsos_ledger.projections.timeline import Timeline, compute_timeline
from dinsos_ledger.report import (
    SAMPLE_TIMELINES,
    MonthFlow,
    MonthlyFlows,
    kecamatan_name,
    rupiah,
    sample_timelines,
)

D = dt.date


# -- monthly flows: the balance rules's as-of rules, month by month ---------------------------


def test_an_allocation_counts_in_the_month_of_its_business_date() -> None:
    """Allocations are summed per programme and calendar month of their ``on``."""
    flows = MonthlyFlows()
    flows.add_allocation("household", "PKH", D(2025, 1, 10), 750_000)
    flows.add_allocation("household", "PKH", D(2025, 1, 31), 250_000)
    flows.add_allocation("household", "PKH", D(2025, 2, 1), 100_000)
    assert flows.rows(D(2025, 12, 31)) == [
        MonthFlow("PKH", "2025-01", 1_000_000, 0),
        MonthFlow("PKH", "2025-02", 100_000, 0),
    ]


def test_money_dated_after_the_as_of_date_does_not_count() -> None:
    """Only allocations and disbursements with ``on`` on or before the as-of date count."""
    flows = MonthlyFlows()
    flows.add_allocation("household", "BPNT", D(2025, 3, 1), 200_000)
    flows.add_allocation("household", "BPNT", D(2025, 3, 2), 200_000)
    flows.add_disbursement("household", "BPNT", D(2025, 3, 2), 400_000)
    assert flows.rows(D(2025, 3, 1)) == [MonthFlow("BPNT", "2025-03", 200_000, 0)]
    assert flows.rows(D(2025, 3, 2)) == [MonthFlow("BPNT", "2025-03", 400_000, 400_000)]


def test_a_disbursement_reversed_by_the_as_of_date_is_not_counted_as_paid() -> None:
    """A reversal dated on or before the as-of date takes the payment out; a later one not."""
    flows = MonthlyFlows()
    flows.add_allocation("household", "PKH", D(2025, 1, 5), 500_000)
    flows.add_disbursement("household", "PKH", D(2025, 1, 20), 500_000, D(2025, 2, 3))
    assert flows.rows(D(2025, 2, 2)) == [MonthFlow("PKH", "2025-01", 500_000, 500_000)]
    assert flows.rows(D(2025, 2, 3)) == [MonthFlow("PKH", "2025-01", 500_000, 0)]


def test_a_month_with_only_a_reversed_payment_is_listed_with_nothing_paid() -> None:
    """The month still appears (a payment was made and taken back), with 0 disbursed."""
    flows = MonthlyFlows()
    flows.add_disbursement("veteran", "TALI_ASIH", D(2025, 11, 10), 3_000_000, D(2025, 11, 20))
    assert flows.rows(D(2025, 12, 1)) == [MonthFlow("TALI_ASIH", "2025-11", 0, 0)]


def test_flows_can_be_restricted_to_one_kind_of_subject() -> None:
    """``kind`` keeps only the money of that kind of subject (veterans' tali asih, say)."""
    flows = MonthlyFlows()
    flows.add_allocation("veteran", "TALI_ASIH", D(2025, 1, 2), 250_000)
    flows.add_allocation("household", "TALI_ASIH", D(2025, 1, 2), 999_000)
    flows.add_disbursement("cohort", "PELATIHAN", D(2025, 1, 9), 1_500_000)
    assert flows.rows(D(2025, 1, 31), kind="veteran") == [
        MonthFlow("TALI_ASIH", "2025-01", 250_000, 0)
    ]


def test_flows_are_sorted_by_programme_then_month_and_stay_whole_rupiah() -> None:
    """Rows come in programme, then month order, and every sum is an ``int``."""
    flows = MonthlyFlows()
    flows.add_allocation("household", "PKH", D(2025, 2, 1), 1)
    flows.add_allocation("household", "BPNT", D(2025, 3, 1), 2)
    flows.add_allocation("household", "BPNT", D(2024, 12, 1), 3)
    rows = flows.rows(D(2025, 12, 31))
    assert [(r.programme, r.month) for r in rows] == [
        ("BPNT", "2024-12"),
        ("BPNT", "2025-03"),
        ("PKH", "2025-02"),
    ]
    assert all(type(r.allocated) is int and type(r.disbursed) is int for r in rows)


# -- names and amounts ----------------------------------------------------------------------


def test_kecamatan_codes_and_village_codes_are_named_from_the_scenario_table() -> None:
    """``64.08.04`` and any village in it read as Sangatta Utara."""
    assert kecamatan_name("64.08.04") == "Sangatta Utara"
    assert kecamatan_name("64.08.04.1010") == "Sangatta Utara"
    assert kecamatan_name("64.08.18.2003") == "Long Mesangat"


def test_an_unknown_kecamatan_is_shown_by_its_code() -> None:
    """A code outside Kutai Timur's table is shown as it is."""
    assert kecamatan_name("64.09.01") == "64.09.01"
    assert kecamatan_name("64.08.99.2001") == "64.08.99.2001"


def test_amounts_are_written_as_whole_rupiah_with_dots_between_thousands() -> None:
    """Indonesian grouping, no decimals, a minus for the auditor's negative balances."""
    assert rupiah(0) == "Rp\u00a00"
    assert rupiah(1_250_000) == "Rp\u00a01.250.000"
    assert rupiah(-200_000) == "−Rp\u00a0200.000"
    assert rupiah(10**12) == "Rp\u00a01.000.000.000.000"


# -- sample timelines -----------------------------------------------------------------------


def _timeline(
    ref: str, contacts: list[dt.date], *, kind: str = "household", closed: dt.date | None = None
) -> Timeline:
    timeline = compute_timeline(
        ref=ref,
        kind=kind,
        window_days=90 if kind == "household" else 180,
        registered_on=D(2025, 1, 1),
        contacts=[D(2025, 1, 1), *contacts],
        as_of=D(2025, 12, 31),
        closed_on=closed,
    )
    assert timeline is not None
    return timeline


def _population() -> list[Timeline]:
    covered = [_timeline(f"HH-C{n:03d}", [D(2025, 12, 1)]) for n in range(40)]
    overdue = [_timeline(f"HH-O{n:03d}", [D(2025, 6, 1)]) for n in range(40)]
    closed = [_timeline(f"HH-X{n:03d}", [], closed=D(2025, 2, 1)) for n in range(40)]
    veterans = [_timeline(f"VET-{n:03d}", [], kind="veteran") for n in range(40)]
    return covered + overdue + closed + veterans


def test_samples_are_households_with_a_spread_of_statuses() -> None:
    """Twelve households: some covered, some overdue, some closed; never a veteran."""
    samples = sample_timelines(_population())
    assert len(samples) == SAMPLE_TIMELINES
    assert {t.kind for t in samples} == {"household"}
    statuses = [t.status for t in samples]
    assert statuses.count("covered") == 5
    assert statuses.count("overdue") == 4
    assert statuses.count("closed") == 3


def test_samples_are_the_same_whatever_order_the_timelines_come_in() -> None:
    """The pick is deterministic and sorted by ref."""
    population = _population()
    first = sample_timelines(population)
    again = sample_timelines(list(reversed(population)))
    assert first == again
    assert [t.ref for t in first] == sorted(t.ref for t in first)


def test_samples_fill_up_from_other_statuses_when_one_is_missing() -> None:
    """With nobody overdue the chart still shows twelve households."""
    population = [t for t in _population() if t.status != "overdue"]
    samples = sample_timelines(population)
    assert len(samples) == SAMPLE_TIMELINES
    assert len({t.ref for t in samples}) == SAMPLE_TIMELINES


def test_a_small_ledger_shows_all_its_households() -> None:
    """Fewer households than the chart holds: every one of them is shown once."""
    population = _population()[:3] + _population()[80:82]
    samples = sample_timelines(population)
    assert sorted(t.ref for t in samples) == sorted(t.ref for t in population)
