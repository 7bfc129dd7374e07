"""Balances per subject and programme (the balance rules): examples, a brute force, properties."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger.projections.money import (
    Allocation,
    BalanceRow,
    Disbursement,
    balances_for,
    rollup_outstanding_by_kecamatan,
)

D = date.fromisoformat


def rows_of(result: list[BalanceRow]) -> list[tuple[str, int, int, int]]:
    """Reduce rows to (programme, allocated, disbursed, outstanding)."""
    return [(r.programme, r.allocated, r.disbursed, r.outstanding) for r in result]


ALLOCATIONS = [
    Allocation(D("2024-01-05"), "PKH", 600_000, "A-1"),
    Allocation(D("2024-04-05"), "PKH", 600_000, "A-2"),
    Allocation(D("2024-01-10"), "BPNT", 200_000, "A-3"),
]
DISBURSEMENTS = [
    Disbursement(D("2024-01-20"), "PKH", 600_000, "P-1", None),
    Disbursement(D("2024-04-20"), "PKH", 600_000, "P-2", D("2024-05-02")),
    Disbursement(D("2024-01-25"), "BPNT", 200_000, "P-3", None),
]


# --- worked examples -------------------------------------------------------------------


def test_without_an_as_of_date_everything_recorded_counts() -> None:
    """All allocations count, and a reversed payment is left out of disbursed."""
    result = balances_for("HH-1", "household", ALLOCATIONS, DISBURSEMENTS, None)
    assert rows_of(result) == [
        ("BPNT", 200_000, 200_000, 0),
        ("PKH", 1_200_000, 600_000, 600_000),
    ]


def test_rows_are_sorted_by_programme_and_serialise_to_the_spec_keys() -> None:
    """Rows come sorted by programme and to_json gives the CLI contract's object."""
    result = balances_for("HH-1", "household", ALLOCATIONS, DISBURSEMENTS)
    assert [r.programme for r in result] == ["BPNT", "PKH"]
    assert result[1].to_json() == {
        "ref": "HH-1",
        "kind": "household",
        "programme": "PKH",
        "allocated": 1_200_000,
        "disbursed": 600_000,
        "outstanding": 600_000,
    }


def test_as_of_a_date_only_what_is_dated_on_or_before_it_counts() -> None:
    """As of Jan 15 the PKH payment of Jan 20 and BPNT payment of Jan 25 do not count yet."""
    result = balances_for("HH-1", "household", ALLOCATIONS, DISBURSEMENTS, D("2024-01-15"))
    assert rows_of(result) == [("BPNT", 200_000, 0, 200_000), ("PKH", 600_000, 0, 600_000)]


def test_a_payment_counts_until_its_reversal_date() -> None:
    """As of May 1 the second PKH payment is not yet reversed; as of May 2 it is."""
    before = balances_for("HH-1", "household", ALLOCATIONS, DISBURSEMENTS, D("2024-05-01"))
    after = balances_for("HH-1", "household", ALLOCATIONS, DISBURSEMENTS, D("2024-05-02"))
    assert rows_of(before)[1] == ("PKH", 1_200_000, 1_200_000, 0)
    assert rows_of(after)[1] == ("PKH", 1_200_000, 600_000, 600_000)


def test_outstanding_is_negative_when_a_payment_predates_its_allocation() -> None:
    """A payment dated before its allocation shows a negative outstanding as of between."""
    allocations = [Allocation(D("2024-02-01"), "TALI_ASIH", 500_000, "A-9")]
    disbursements = [Disbursement(D("2024-01-15"), "TALI_ASIH", 500_000, "P-9", None)]
    result = balances_for("VET-1", "veteran", allocations, disbursements, D("2024-01-20"))
    assert rows_of(result) == [("TALI_ASIH", 0, 500_000, -500_000)]


def test_a_programme_with_nothing_counted_yet_has_no_row() -> None:
    """Before the first allocation or payment of a programme, there is no row for it."""
    assert balances_for("HH-1", "household", ALLOCATIONS, DISBURSEMENTS, D("2024-01-01")) == []
    assert balances_for("HH-1", "household", [], []) == []


def test_a_reversed_payment_alone_still_lists_its_programme() -> None:
    """A counted payment that is reversed lists a zero row (our reading of 'counts')."""
    disbursements = [Disbursement(D("2024-01-15"), "BPNT", 100_000, "P-1", D("2024-01-16"))]
    result = balances_for("HH-1", "household", [], disbursements, D("2024-02-01"))
    assert rows_of(result) == [("BPNT", 0, 0, 0)]


def test_amounts_must_be_whole_rupiah_integers() -> None:
    """Floats and booleans are refused as amounts; zero and negatives too."""
    with pytest.raises(TypeError, match="'amount' must be whole rupiah"):
        Allocation(D("2024-01-01"), "PKH", 1.5, "A-1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'amount' must be whole rupiah"):
        Disbursement(D("2024-01-01"), "PKH", True, "P-1", None)
    with pytest.raises(ValueError, match="'amount' must be greater than 0"):
        Allocation(D("2024-01-01"), "PKH", 0, "A-1")


def test_rollup_sums_per_kecamatan_and_programme() -> None:
    """Rows sum by kecamatan prefix and programme, sorted, as integers."""
    a = balances_for("HH-1", "household", ALLOCATIONS, DISBURSEMENTS)
    b = balances_for("HH-2", "household", ALLOCATIONS[:1], [])
    c = balances_for("HH-3", "household", ALLOCATIONS[2:], [])
    pairs = [(r, "64.08.02.2001") for r in a + b] + [(r, "64.08.01.1001") for r in c]
    assert rollup_outstanding_by_kecamatan(pairs) == [
        {
            "kecamatan": "64.08.01",
            "programme": "BPNT",
            "subjects": 1,
            "allocated": 200_000,
            "disbursed": 0,
            "outstanding": 200_000,
        },
        {
            "kecamatan": "64.08.02",
            "programme": "BPNT",
            "subjects": 1,
            "allocated": 200_000,
            "disbursed": 200_000,
            "outstanding": 0,
        },
        {
            "kecamatan": "64.08.02",
            "programme": "PKH",
            "subjects": 2,
            "allocated": 1_800_000,
            "disbursed": 600_000,
            "outstanding": 1_200_000,
        },
    ]


def test_rollup_refuses_a_malformed_region() -> None:
    """A region that is not a village code NN.NN.NN.NNNN is refused."""
    row = balances_for("HH-1", "household", ALLOCATIONS[:1], [])[0]
    with pytest.raises(ValueError, match="must be a village code"):
        rollup_outstanding_by_kecamatan([(row, "64.08")])


# --- properties ------------------------------------------------------------------------

BASE = date(2024, 1, 1)
dates = st.integers(min_value=0, max_value=120).map(lambda n: BASE + timedelta(days=n))
programmes = st.sampled_from(["BPNT", "PKH", "TALI_ASIH"])
amounts = st.integers(min_value=1, max_value=10**12)
allocations = st.lists(
    st.builds(Allocation, dates, programmes, amounts, st.just("A-1")), max_size=10
)
disbursements = st.lists(
    st.builds(Disbursement, dates, programmes, amounts, st.just("P-1"), st.none() | dates),
    max_size=10,
)
as_ofs = st.none() | dates


def brute_force(
    allocs: list[Allocation], pays: list[Disbursement], as_of: date | None
) -> list[tuple[str, int, int, int]]:
    """the balance rules read literally, one programme at a time."""

    def counts(on: date) -> bool:
        return as_of is None or on <= as_of

    def reversed_(p: Disbursement) -> bool:
        return p.reversed_on is not None and (as_of is None or p.reversed_on <= as_of)

    listed = {a.programme for a in allocs if counts(a.on)} | {
        p.programme for p in pays if counts(p.on)
    }
    out = []
    for programme in sorted(listed):
        allocated = sum(a.amount for a in allocs if a.programme == programme and counts(a.on))
        disbursed = sum(
            p.amount for p in pays if p.programme == programme and counts(p.on) and not reversed_(p)
        )
        out.append((programme, allocated, disbursed, allocated - disbursed))
    return out


@given(allocations, disbursements, as_ofs)
def test_the_fold_equals_a_brute_force_reading_of_the_spec(
    allocs: list[Allocation], pays: list[Disbursement], as_of: date | None
) -> None:
    """balances_for agrees with an independent per-programme brute force."""
    assert rows_of(balances_for("HH-1", "household", allocs, pays, as_of)) == brute_force(
        allocs, pays, as_of
    )


@given(allocations, disbursements, as_ofs)
def test_every_amount_is_an_int_never_a_float(
    allocs: list[Allocation], pays: list[Disbursement], as_of: date | None
) -> None:
    """Allocated, disbursed and outstanding are exact ints and add up."""
    for row in balances_for("HH-1", "household", allocs, pays, as_of):
        for value in (row.allocated, row.disbursed, row.outstanding):
            assert type(value) is int
        assert row.outstanding == row.allocated - row.disbursed
        money = ("allocated", "disbursed", "outstanding")
        assert all(type(row.to_json()[key]) is int for key in money)


@given(allocations, disbursements, dates, dates)
def test_allocated_as_of_a_date_never_decreases_as_the_date_advances(
    allocs: list[Allocation], pays: list[Disbursement], d1: date, d2: date
) -> None:
    """Allocated per programme as of D is non-decreasing in D, and rows never disappear."""
    early, late = min(d1, d2), max(d1, d2)
    before = {r.programme: r.allocated for r in balances_for("X-1", "veteran", allocs, pays, early)}
    after = {r.programme: r.allocated for r in balances_for("X-1", "veteran", allocs, pays, late)}
    assert set(before) <= set(after)
    for programme, allocated in before.items():
        assert allocated <= after[programme]


@given(allocations, disbursements, dates)
def test_without_an_as_of_date_is_the_same_as_as_of_the_last_date_recorded(
    allocs: list[Allocation], pays: list[Disbursement], d: date
) -> None:
    """Everything recorded equals as of a date on or after every on and reversal date."""
    last = max(
        [d]
        + [a.on for a in allocs]
        + [p.on for p in pays]
        + [p.reversed_on for p in pays if p.reversed_on is not None]
    )
    assert balances_for("X-1", "veteran", allocs, pays) == balances_for(
        "X-1", "veteran", allocs, pays, last
    )


@given(allocations, disbursements, as_ofs)
def test_rollup_totals_equal_the_sum_of_the_rows(
    allocs: list[Allocation], pays: list[Disbursement], as_of: date | None
) -> None:
    """Rolled-up outstanding over all kecamatan equals the rows' total, as ints."""
    rows = balances_for("HH-1", "household", allocs, pays, as_of)
    regions = ["64.08.01.1001", "64.08.02.2001"]
    pairs = [(row, regions[i % 2]) for i, row in enumerate(rows)]
    rolled = rollup_outstanding_by_kecamatan(pairs)
    assert sum(r["outstanding"] for r in rolled) == sum(r.outstanding for r in rows)
    assert all(type(r["outstanding"]) is int for r in rolled)
    assert rolled == sorted(rolled, key=lambda r: (r["kecamatan"], r["programme"]))
