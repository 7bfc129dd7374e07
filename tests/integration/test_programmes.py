"""Programmes on a stored ledger, through the typed API: rules recorded, replayed, explained.

Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from dinsos_ledger.aggregates import Household
from dinsos_ledger.application import Ledger
from dinsos_ledger.audit import history
from dinsos_ledger.errors import AlreadyRegistered, BeforeRegistration, NotApplicable, NotEligible
from dinsos_ledger.projections.programmes import programmes
from dinsos_ledger.types import subject_id

HOUSEHOLD: dict[str, Any] = {
    "ref": "KT-HH-0001",
    "on": "2025-01-02",
    "actor": "petugas.01",
    "region": "64.08.04.2001",
    "members": 4,
    "family_card": "6408040101250001",
    "head_nik": "6408045505800001",
    "head_name": "Siti Aminah",
}


def _allocate(ledger: Ledger, on: str, reference: str, programme: str = "BPNT") -> Any:
    return ledger.allocate(
        ref="KT-HH-0001",
        on=on,
        actor="operator.bpnt",
        programme=programme,
        amount=200_000,
        period=on[:7],
        reference=reference,
    )


def test_the_typed_api_defines_amends_and_decides_by_the_rule_in_force(target: str) -> None:
    """Refusals raise the rule's error; the accepted allocation records its rule, after reopening."""
    with Ledger(target) as ledger:
        ledger.define_programme(
            ref="BPNT",
            on="2025-01-01",
            actor="kepala.dinas",
            name="Bantuan Pangan Non Tunai",
            recipients=("household",),
            desil_limit=4,
        )
        ledger.register_household(**HOUSEHOLD)
        ledger.assess(ref="KT-HH-0001", on="2025-01-03", actor="petugas.01", desil=5)
        with pytest.raises(NotEligible, match="at most 4"):
            _allocate(ledger, "2025-02-01", "BPNT/2025-02")
        ledger.amend_programme(
            ref="BPNT", on="2025-03-01", actor="kepala.dinas", desil_limit=5, note="banjir"
        )
        _allocate(ledger, "2025-03-02", "BPNT/2025-03")
        with pytest.raises(AlreadyRegistered):
            ledger.define_programme(
                ref="BPNT",
                on="2025-04-01",
                actor="kepala.dinas",
                name="BPNT",
                recipients=["household"],
                desil_limit=None,
            )
        with pytest.raises(BeforeRegistration):
            ledger.amend_programme(
                ref="BPNT", on="2024-12-01", actor="kepala.dinas", desil_limit=None
            )
        with pytest.raises(NotApplicable):
            ledger.amend_programme(
                ref="KT-HH-0001", on="2025-04-01", actor="kepala.dinas", desil_limit=None
            )
        # None is a value for desil_limit: no desil rule from 2025-04-01.
        ledger.amend_programme(ref="BPNT", on="2025-04-01", actor="kepala.dinas", desil_limit=None)
    with Ledger(target) as reopened:
        [allocation] = reopened.show("KT-HH-0001")["allocations"]
        assert allocation["rule"] == {
            "source": "amend_programme",
            "on": "2025-03-01",
            "programme_version": 2,
            "desil_limit": 5,
            "recipients": ["household"],
            "desil": 5,
            "eligible": None,
        }
        assert [r["desil_limit"] for r in reopened.show("BPNT")["rules"]] == [4, 5, None]
        assert programmes(reopened)[0]["desil_limit"] is None
        assert [row["programme"] for row in programmes(reopened)] == ["BPNT"]


def test_a_programme_code_is_a_ref_like_any_other(ledger: Ledger) -> None:
    """A household named PKH blocks the programme PKH, and the default rule decides PKH."""
    ledger.register_household(**{**HOUSEHOLD, "ref": "PKH"})
    with pytest.raises(AlreadyRegistered):
        ledger.define_programme(
            ref="PKH",
            on="2025-01-01",
            actor="kepala.dinas",
            name="Program Keluarga Harapan",
            recipients=["household"],
            desil_limit=4,
        )
    ledger.register_household(**HOUSEHOLD)
    ledger.assess(ref="KT-HH-0001", on="2025-01-03", actor="petugas.01", desil=4)
    _allocate(ledger, "2025-01-10", "PKH/2025-Q1", programme="PKH")
    [allocation] = ledger.show("KT-HH-0001")["allocations"]
    assert allocation["rule"]["source"] == "default"
    assert programmes(ledger) == []


def test_an_allocation_stored_before_rules_were_recorded_still_replays(ledger: Ledger) -> None:
    """A version 1 Allocated row (no rule) loads, shows, projects and is followed by v2 events."""
    ledger.register_household(**HOUSEHOLD)
    ledger.assess(ref="KT-HH-0001", on="2025-01-03", actor="petugas.01", desil=2)
    old = StoredEvent(
        originator_id=subject_id("KT-HH-0001"),
        originator_version=3,
        topic=get_topic(Household.Allocated),
        state=(
            b'{"timestamp":"2025-01-10T01:00:00+00:00","on":"2025-01-10","actor":"operator",'
            b'"command_id":"old-1","note":null,"programme":"PKH","amount":750000,'
            b'"period":"2025-01","reference":"PKH/2025-Q1"}'
        ),
    )
    ledger.recorder.insert_events([old])
    # Read it back as another process would, not from the writer's cache.
    ledger._cache.clear()
    shown = ledger.show("KT-HH-0001")
    assert shown["allocations"][0]["rule"] is None
    assert shown["balances"]["PKH"]["allocated"] == 750_000
    _allocate(ledger, "2025-02-01", "BPNT/2025-02")
    entries = history(ledger, "KT-HH-0001")
    assert [e["rule"] is None for e in entries if e["type"] == "allocated"] == [True, False]
    rows = ledger.projections.balances()
    assert {(r.programme, r.allocated) for r in rows} == {("PKH", 750_000), ("BPNT", 200_000)}
