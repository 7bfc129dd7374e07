"""Findings, reconciliation and the keyed index on a real store, on both backends.

The keyed index holds MACs, never NIKs or family-card numbers, written with the
registration and deleted with the ``forget``; findings read it, answer as of any date, and
a rebuild from the first event gives the same findings as the incremental catch-up.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dinsos_ledger.application import Ledger
from dinsos_ledger.findings import WITA, today_in_wita
from dinsos_ledger.persistence.common import INDEX_TABLE

from tests.integration.test_projections import fresh  # noqa: F401 - a fixture
from tests.strategies import DEFAULT_POOLS, command_lists

NIK = "6408041203820001"
CARD = "6408040101250001"


def cmd(n: str, verb: str, ref: str, on: str, **fields: Any) -> dict[str, Any]:
    """A command with id ``n``."""
    return {"id": n, "command": verb, "ref": ref, "on": on, "actor": "petugas", **fields}


def household(n: str, ref: str, on: str, *, nik: str = NIK, card: str = CARD) -> dict[str, Any]:
    """Register a household with the given head NIK and family card."""
    return cmd(
        n,
        "register_household",
        ref,
        on,
        region="64.08.04.2001",
        members=4,
        family_card=card,
        head_nik=nik,
        head_name="Rahmat",
    )


def veteran(n: str, ref: str, on: str, *, nik: str = NIK) -> dict[str, Any]:
    """Register a veteran with the given NIK."""
    return cmd(n, "register_veteran", ref, on, region="64.08.05.2002", nik=nik, name="Sudarmo")


def apply(ledger: Ledger, *commands: dict[str, Any]) -> None:
    """Apply ``commands``; every one must be accepted."""
    outcomes = ledger.apply_batch(list(commands))
    assert all(o.accepted for o in outcomes), [o.message for o in outcomes if o.rejected]


def codes(ledger: Ledger, as_of: dt.date | None = None) -> list[tuple[str, str, str, list[str]]]:
    """``(ref, code, on, related)`` of each finding."""
    return [
        (f.ref, f.code, f.on.isoformat(), list(f.related))
        for f in ledger.projections.findings(as_of)
    ]


def index_rows(ledger: Ledger) -> list[tuple[Any, ...]]:
    """Every row of the keyed index."""
    return ledger.projections.query(f"SELECT subject_id, field, mac FROM {INDEX_TABLE}")


def test_the_keyed_index_holds_macs_written_with_the_registration(ledger: Ledger) -> None:
    """Two rows for a household, one for a veteran; MACs under the index key, no values."""
    apply(ledger, household("1", "HH-1", "2025-01-02"), veteran("2", "VT-1", "2025-01-03"))
    rows = index_rows(ledger)
    assert sorted((field for _, field, _ in rows)) == ["family_card", "nik", "nik"]
    assert {mac for _, _, mac in rows} == {
        ledger.index_mac("nik", NIK),
        ledger.index_mac("family_card", CARD),
    }
    assert not any(NIK in str(row) or CARD in str(row) for row in rows)


def test_an_index_entry_depends_on_the_field(ledger: Ledger) -> None:
    """A NIK never matches an equal family-card number."""
    assert ledger.index_mac("nik", NIK) != ledger.index_mac("family_card", NIK)


def test_shared_numbers_name_the_earlier_subjects(ledger: Ledger) -> None:
    """A NIK heading two households and a veteran, a card shared: each later one names the rest."""
    apply(
        ledger,
        household("1", "HH-1", "2025-01-02"),
        household("2", "HH-2", "2025-01-05", nik="6408041203820002"),
        household("3", "HH-3", "2025-01-04", card="6408040101250003"),
        veteran("4", "VT-1", "2025-01-03"),
    )
    assert codes(ledger) == [
        ("HH-2", "shared_family_card", "2025-01-05", ["HH-1"]),
        ("HH-3", "shared_nik", "2025-01-04", ["HH-1"]),
        ("VT-1", "shared_nik", "2025-01-03", ["HH-1", "HH-3"]),
    ]
    # As of Jan 3, HH-2 and HH-3 are not registered yet: only VT-1 and HH-1 count.
    assert codes(ledger, dt.date(2025, 1, 3)) == [("VT-1", "shared_nik", "2025-01-03", ["HH-1"])]


def test_forget_deletes_the_index_entries_in_its_transaction_and_the_findings_follow(
    ledger: Ledger,
) -> None:
    """After forget the subject has no index row and is named by no finding, rebuilt or not."""
    apply(
        ledger,
        household("1", "HH-1", "2025-01-02"),
        household("2", "HH-2", "2025-01-05"),
        household("3", "HH-3", "2025-01-06"),
    )
    assert [c[:2] for c in codes(ledger)] == [
        ("HH-2", "shared_family_card"),
        ("HH-2", "shared_nik"),
        ("HH-3", "shared_family_card"),
        ("HH-3", "shared_nik"),
    ]
    apply(
        ledger,
        cmd("4", "close", "HH-1", "2025-02-01", reason="duplicate"),
        cmd("5", "forget", "HH-1", "2025-02-02", reason="permintaan"),
    )
    hh1 = ledger.get("HH-1").id.hex
    assert all(row[0] != hh1 for row in index_rows(ledger))
    expected = [
        ("HH-3", "shared_family_card", "2025-01-06", ["HH-2"]),
        ("HH-3", "shared_nik", "2025-01-06", ["HH-2"]),
    ]
    assert codes(ledger) == expected
    ledger.projections.rebuild()
    assert codes(ledger) == expected


def test_a_subject_registered_and_forgotten_in_one_batch_leaves_no_index_row(
    ledger: Ledger,
) -> None:
    """The entries go in and out within the same transaction."""
    apply(
        ledger,
        household("1", "HH-1", "2025-01-02"),
        cmd("2", "close", "HH-1", "2025-01-03", reason="other"),
        cmd("3", "forget", "HH-1", "2025-01-04", reason="permintaan"),
    )
    assert index_rows(ledger) == []


def paid(ledger: Ledger, *, on: str = "2025-01-10", channel: str = "bank") -> None:
    """HH-1 registered, assessed, allocated 750,000 on Jan 20 and paid on ``on``."""
    apply(
        ledger,
        household("1", "HH-1", "2025-01-02"),
        cmd("2", "assess", "HH-1", "2025-01-02", desil=2),
        cmd(
            "3",
            "allocate",
            "HH-1",
            "2025-01-20",
            programme="PKH",
            amount=750_000,
            period="2025-01",
            reference="A-1",
        ),
        cmd(
            "4",
            "disburse",
            "HH-1",
            on,
            programme="PKH",
            amount=750_000,
            reference="D-1",
            channel=channel,
        ),
    )


def test_a_payment_dated_before_its_allocation_is_a_negative_balance(ledger: Ledger) -> None:
    """The first day the balance was below zero; not yet as of the day before."""
    paid(ledger)
    found = ledger.projections.findings(dt.date(2025, 1, 31))
    negative = [f for f in found if f.code == "negative_balance"]
    assert [(f.ref, f.programme, f.on) for f in negative] == [("HH-1", "PKH", dt.date(2025, 1, 10))]
    assert not [
        f for f in ledger.projections.findings(dt.date(2025, 1, 9)) if f.code == "negative_balance"
    ]


def test_a_close_dated_before_recorded_activity_is_activity_after_close(ledger: Ledger) -> None:
    """The finding's date is the close's; a later reversal or confirmation is no activity."""
    paid(ledger, on="2025-01-25")
    apply(
        ledger,
        cmd("5", "follow_up", "HH-1", "2025-02-10", outcome="visited"),
        cmd("6", "close", "HH-1", "2025-02-01", reason="moved"),
        cmd(
            "7",
            "confirm",
            "HH-1",
            "2025-03-01",
            reference="D-1",
            amount=750_000,
            channel_ref="BRI-1",
        ),
    )
    after = [f for f in ledger.projections.findings() if f.code == "activity_after_close"]
    assert [(f.ref, f.on) for f in after] == [("HH-1", dt.date(2025, 2, 1))]
    # As of Feb 5 the follow-up of Feb 10 does not count yet.
    assert not [
        f
        for f in ledger.projections.findings(dt.date(2025, 2, 5))
        if f.code == "activity_after_close"
    ]


def test_an_event_dated_after_the_day_it_was_recorded_is_future_dated(ledger: Ledger) -> None:
    """Compared with the recorded time in WITA; without --as-of every event counts."""
    today = today_in_wita()
    later = (today + dt.timedelta(days=20)).isoformat()
    paid(ledger)
    apply(ledger, cmd("5", "follow_up", "HH-1", later, outcome="visited"))
    future = [f for f in ledger.projections.findings() if f.code == "future_dated"]
    assert [(f.ref, f.on.isoformat()) for f in future] == [("HH-1", later)]
    assert future[0].message.startswith(f"followed_up dated {later} was recorded on")
    assert not [f for f in ledger.projections.findings(today) if f.code == "future_dated"]


def test_a_bank_payment_unconfirmed_for_more_than_30_days_is_a_finding(ledger: Ledger) -> None:
    """Day 31 is a finding, day 30 not; a confirmation dated by D or a reversal ends it."""
    paid(ledger, on="2025-01-25")

    def unconfirmed(day: dt.date) -> list[str]:
        return [f.ref for f in ledger.projections.findings(day) if f.code == "unconfirmed_payment"]

    assert unconfirmed(dt.date(2025, 2, 24)) == []
    assert unconfirmed(dt.date(2025, 2, 25)) == ["HH-1"]
    apply(
        ledger,
        cmd(
            "5",
            "confirm",
            "HH-1",
            "2025-03-10",
            reference="D-1",
            amount=750_000,
            channel_ref="BRI-1",
        ),
    )
    assert unconfirmed(dt.date(2025, 3, 9)) == ["HH-1"]
    assert unconfirmed(dt.date(2025, 3, 10)) == []


def test_cash_payments_are_never_unconfirmed(ledger: Ledger) -> None:
    """Only bank and post payments wait for a channel's confirmation."""
    paid(ledger, on="2025-01-25", channel="cash")
    assert ledger.projections.reconciliation() == []
    assert not [f for f in ledger.projections.findings() if f.code == "unconfirmed_payment"]


def test_reconciliation_counts_by_programme_and_channel_as_of_a_date(ledger: Ledger) -> None:
    """Disbursed against confirmed, amounts in rupiah, the oldest unconfirmed date."""
    paid(ledger, on="2025-01-25")
    apply(
        ledger,
        cmd(
            "5",
            "confirm",
            "HH-1",
            "2025-02-03",
            reference="D-1",
            amount=750_000,
            channel_ref="BRI-1",
        ),
    )
    [row] = ledger.projections.reconciliation(dt.date(2025, 2, 1))
    assert row.to_json() == {
        "programme": "PKH",
        "channel": "bank",
        "disbursed_count": 1,
        "disbursed": 750_000,
        "confirmed_count": 0,
        "confirmed": 0,
        "unconfirmed_count": 1,
        "unconfirmed": 750_000,
        "oldest_unconfirmed_on": "2025-01-25",
    }
    [row] = ledger.projections.reconciliation()
    assert (row.confirmed, row.unconfirmed, row.oldest_unconfirmed_on) == (750_000, 0, None)
    assert ledger.projections.reconciliation(dt.date(2025, 1, 24)) == []


def test_a_returned_confirmed_payment_leaves_the_reconciliation(ledger: Ledger) -> None:
    """Money the channel sent back later is a reversal: it no longer counts by then."""
    paid(ledger, on="2025-01-25")
    apply(
        ledger,
        cmd("5", "confirm", "HH-1", "2025-02-03", reference="D-1", amount=750_000, channel_ref="B"),
        cmd("6", "reverse", "HH-1", "2025-03-01", reference="D-1", reason="returned by bank"),
    )
    assert [r.confirmed for r in ledger.projections.reconciliation(dt.date(2025, 2, 28))] == [
        750_000
    ]
    assert ledger.projections.reconciliation(dt.date(2025, 3, 1)) == []


def test_the_wita_date_of_a_recorded_time_is_eight_hours_ahead_of_utc() -> None:
    """16:00 UTC is already the next day in Kutai Timur."""
    from dinsos_ledger.findings import recorded_day

    assert recorded_day("2025-01-31T16:00:00+00:00") == dt.date(2025, 2, 1)
    assert recorded_day("2025-01-31T15:59:59+00:00") == dt.date(2025, 1, 31)
    assert today_in_wita(dt.datetime(2025, 1, 31, 16, tzinfo=dt.UTC)) == dt.date(2025, 2, 1)
    assert WITA.utcoffset(None) == dt.timedelta(hours=8)


def test_findings_of_a_rebuilt_ledger_equal_the_incremental_ones(
    backend: str,
    fresh: Callable[[], Any],  # noqa: F811 - the fixture imported above
) -> None:
    """Whatever the commands and however the catch-up is paged, a rebuild agrees."""
    examples = 25 if backend == "sqlite" else 8

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        commands=command_lists(DEFAULT_POOLS, min_size=5, max_size=40, mutate="never"),
        cuts=st.lists(st.integers(0, 40), max_size=3),
        days=st.lists(st.integers(0, 90), min_size=1, max_size=2),
    )
    def agree(commands: list[dict[str, Any]], cuts: list[int], days: list[int]) -> None:
        with fresh() as ledger:
            bounds = sorted({min(c, len(commands)) for c in cuts} | {0, len(commands)})
            for start, stop in itertools.pairwise(bounds):
                ledger.apply_batch(commands[start:stop])
                ledger.projections.catch_up()
            dates = [None, *(DEFAULT_POOLS.start + dt.timedelta(days=n) for n in days)]
            incremental = [ledger.projections.findings(d) for d in dates]
            ledger.projections.rebuild()
            assert [ledger.projections.findings(d) for d in dates] == incremental

    agree()


@given(commands=command_lists(DEFAULT_POOLS, min_size=5, max_size=40, mutate="never"))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_confirmations_never_change_balances_or_timelines(commands: list[dict[str, Any]]) -> None:
    """The same commands with and without their confirms give the same balances and timelines."""
    mixed: list[dict[str, Any]] = []
    for n, command in enumerate(commands):
        mixed.append(command)
        if command.get("command") == "disburse":
            # Confirmed right after it is made, with its own amount: mostly accepted.
            mixed.append(
                {
                    "id": f"k-{n}",
                    "command": "confirm",
                    "ref": command["ref"],
                    "on": command["on"],
                    "actor": "rekon",
                    "reference": command["reference"],
                    "amount": command["amount"],
                    "channel_ref": f"B-{n}",
                }
            )
    with Ledger(":memory:") as plain, Ledger(":memory:") as confirmed:
        plain.apply_batch(commands)
        confirmed.apply_batch(mixed)
        day = DEFAULT_POOLS.start + dt.timedelta(days=90)
        assert plain.projections.balances() == confirmed.projections.balances()
        assert plain.projections.balances(day) == confirmed.projections.balances(day)
        assert plain.projections.continuity(day) == confirmed.projections.continuity(day)
