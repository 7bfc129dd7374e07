"""The ``check_*`` functions of findings: pure, small, one rule each (the findings rules)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger.findings import (
    END_OF_TIME,
    Finding,
    MoneyEntry,
    check_activity_after_close,
    check_future_dated,
    check_negative_balance,
    check_shared,
    check_unconfirmed_payment,
    sort_findings,
)

D = dt.date


def test_a_payment_before_its_allocation_goes_negative_on_the_payment_day() -> None:
    """The first negative date is the payment's; the allocation later makes it whole."""
    entries = [
        MoneyEntry("allocation", D(2025, 1, 20), 750_000),
        MoneyEntry("disbursement", D(2025, 1, 10), 750_000),
    ]
    finding = check_negative_balance("HH-1", "household", "PKH", entries, END_OF_TIME)
    assert finding is not None
    assert (finding.on, finding.programme) == (D(2025, 1, 10), "PKH")
    assert check_negative_balance("HH-1", "household", "PKH", entries, D(2025, 1, 9)) is None


def test_a_reversal_dated_on_or_before_its_payment_means_it_never_counted() -> None:
    """the balance rules: reversed by D means not disbursed as of D."""
    entries = [MoneyEntry("disbursement", D(2025, 1, 10), 5, reversed_on=D(2025, 1, 10))]
    assert check_negative_balance("HH-1", "household", "PKH", entries, END_OF_TIME) is None


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 40), st.integers(1, 9), st.integers(-1, 40)),
        max_size=8,
    ),
    st.integers(0, 45),
)
def test_the_first_negative_day_is_where_the_day_by_day_balance_first_drops(
    raw: list[tuple[bool, int, int, int]], until_day: int
) -> None:
    """The check agrees with the balance recomputed on every day from the documented rule."""
    start = D(2025, 1, 1)
    entries = [
        MoneyEntry(
            "allocation" if alloc else "disbursement",
            start + dt.timedelta(days=on),
            amount,
            None if alloc or back < 0 else start + dt.timedelta(days=back),
        )
        for alloc, on, amount, back in raw
    ]
    until = start + dt.timedelta(days=until_day)
    expected = None
    for n in range(until_day + 1):
        day = start + dt.timedelta(days=n)
        allocated = sum(e.amount for e in entries if e.entry == "allocation" and e.on <= day)
        disbursed = sum(
            e.amount
            for e in entries
            if e.entry == "disbursement"
            and e.on <= day
            and not (e.reversed_on is not None and e.reversed_on <= day)
        )
        if allocated - disbursed < 0:
            expected = day
            break
    finding = check_negative_balance("HH-1", "household", "PKH", entries, until)
    assert (finding.on if finding else None) == expected


def test_activity_after_close_needs_both_dates_counted() -> None:
    """Close and later activity must both be on or before D."""
    assert check_activity_after_close("HH-1", "household", D(2025, 2, 1), None, END_OF_TIME) is None
    found = check_activity_after_close(
        "HH-1", "household", D(2025, 2, 1), D(2025, 2, 10), END_OF_TIME
    )
    assert found is not None
    assert found.on == D(2025, 2, 1)
    assert (
        check_activity_after_close(
            "HH-1", "household", D(2025, 2, 1), D(2025, 2, 10), D(2025, 2, 9)
        )
        is None
    )


def test_future_dated_compares_on_with_the_recorded_day() -> None:
    """The same day is fine, a day later is a finding."""
    assert (
        check_future_dated(
            "HH-1", "household", "x", D(2025, 1, 2), D(2025, 1, 2), None, END_OF_TIME
        )
        is None
    )
    found = check_future_dated(
        "HH-1", "household", "disbursed", D(2025, 1, 3), D(2025, 1, 2), "PKH", END_OF_TIME
    )
    assert found is not None
    assert found.programme == "PKH"


def test_shared_lists_the_others_sorted_and_once() -> None:
    """related is sorted and without repeats; no others, no finding."""
    found = check_shared("shared_nik", "HH-3", "household", D(2025, 1, 1), ["VT-1", "HH-1", "HH-1"])
    assert found is not None
    assert found.related == ("HH-1", "VT-1")
    assert check_shared("shared_nik", "HH-3", "household", D(2025, 1, 1), []) is None


def test_unconfirmed_after_more_than_thirty_days_only_for_bank_and_post() -> None:
    """31 days old is a finding, 30 is not; cash never is."""
    on = D(2025, 1, 1)
    args = ("HH-1", "household", "PKH", "D-1")

    def check(channel: str, today: dt.date) -> Finding | None:
        return check_unconfirmed_payment(
            *args, channel, on, None, None, until=END_OF_TIME, today=today
        )

    assert check("bank", D(2025, 1, 31)) is None
    assert check("post", D(2025, 2, 1)) is not None
    assert check("cash", D(2025, 6, 1)) is None


def test_findings_sort_by_ref_then_code_then_date() -> None:
    """The documented order."""
    a = Finding("shared_nik", "HH-2", "household", D(2025, 1, 1), "m")
    b = Finding("negative_balance", "HH-2", "household", D(2025, 3, 1), "m")
    c = Finding("negative_balance", "HH-1", "household", D(2025, 5, 1), "m")
    assert sort_findings([a, b, c]) == [c, b, a]
