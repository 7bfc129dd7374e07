"""Snapshots: a subject with a long history loads from its last snapshot, unchanged."""

from __future__ import annotations

from dinsos_ledger.application import Ledger

HOUSEHOLD = {
    "ref": "KT-HH-0001",
    "on": "2025-01-01",
    "actor": "petugas.01",
    "region": "64.08.04.2001",
    "members": 4,
    "family_card": "6408040101250001",
    "head_nik": "6408045505800001",
    "head_name": "Siti Aminah",
}


def _allocations(count: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"alloc-{i}",
            "command": "allocate",
            "ref": "KT-HH-0001",
            "on": "2025-01-02",
            "actor": "petugas.01",
            "programme": "BPNT" if i % 2 else "PKH",
            "amount": 1000 + i,
            "period": "2025-01",
            "reference": f"R-{i}",
        }
        for i in range(count)
    ]


def test_a_subject_loaded_from_its_snapshot_equals_the_one_replayed_from_its_events(
    target: str,
) -> None:
    """Loading through a snapshot gives the same state as replaying every event."""
    with Ledger(target) as ledger:
        ledger.register_household(**HOUSEHOLD)
        ledger.assess(ref="KT-HH-0001", on="2025-01-01", actor="petugas.01", desil=2)
        outcomes = ledger.apply_batch(_allocations(250))
        assert all(o.accepted for o in outcomes)
        subject_id = ledger.get("KT-HH-0001").id
        assert ledger.app.snapshots is not None
        snapshots = list(ledger.app.snapshots.get(subject_id))
        # One batch took the history past 100 and 200: one snapshot, at the batch's end.
        assert [s.originator_version for s in snapshots] == [252]
    with Ledger(target) as reopened:
        from_snapshot = reopened.show("KT-HH-0001")
        aggregate = None
        for event in reopened.app.events.get(subject_id):
            aggregate = event.mutate(aggregate)
        replayed = reopened.describe(aggregate)
    assert from_snapshot == replayed
    assert from_snapshot["version"] == 252
    assert from_snapshot["balances"]["PKH"]["allocated"] == sum(1000 + i for i in range(0, 250, 2))
    assert from_snapshot["head_name"] == "Siti Aminah"


def test_snapshots_hold_no_personal_data_in_plain_text(target: str) -> None:
    """A snapshot stores the sealed personal data, never the plain text."""
    with Ledger(target) as ledger:
        ledger.register_household(**HOUSEHOLD)
        ledger.assess(ref="KT-HH-0001", on="2025-01-01", actor="petugas.01", desil=2)
        ledger.apply_batch(_allocations(120))
        assert ledger.app.snapshots is not None
        recorder = ledger.app.snapshots.recorder
        stored = recorder.select_events(ledger.get("KT-HH-0001").id)
        assert stored
        for row in stored:
            for secret in ("Siti Aminah", "6408045505800001", "6408040101250001"):
                assert secret.encode() not in row.state
