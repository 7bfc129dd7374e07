"""The import's subject cache stays within its memory budget and never serves stale state."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dinsos_ledger.application import Ledger
from dinsos_ledger.loading import SubjectCache, estimated_bytes
from dinsos_ledger.types import subject_id

REFS = [f"KT-CACHE-{i:02d}" for i in range(12)]


def _register(ledger: Ledger, visits: int) -> None:
    """Twelve households, the first ones with longer histories."""
    batch: list[dict[str, Any]] = []
    for i, ref in enumerate(REFS):
        kk = f"64080{i:02d}101000001"[:16]
        batch.append(
            {
                "id": f"{ref}-r",
                "command": "register_household",
                "ref": ref,
                "on": "2025-01-01",
                "actor": "petugas.01",
                "region": "64.08.01.2001",
                "members": 3,
                "family_card": kk,
                "head_nik": kk,
                "head_name": f"Kepala {i}",
            }
        )
        batch += [
            {
                "id": f"{ref}-f{v}",
                "command": "follow_up",
                "ref": ref,
                "on": f"2025-02-{v + 1:02d}",
                "actor": "petugas.01",
                "outcome": "visited",
            }
            for v in range(visits * (len(REFS) - i) // len(REFS))
        ]
    assert all(o.accepted for o in ledger.apply_batch(batch))


def test_the_cache_charges_each_subject_by_its_history(memory_ledger: Ledger) -> None:
    """A subject with more events is charged more than one with fewer."""
    _register(memory_ledger, visits=20)
    cache = SubjectCache(memory_ledger.app)
    loaded = cache.load(subject_id(ref) for ref in REFS)
    long, short = loaded[subject_id(REFS[0])], loaded[subject_id(REFS[-1])]
    assert long is not None
    assert short is not None
    assert estimated_bytes(long) > estimated_bytes(short)
    assert cache.bytes == sum(estimated_bytes(s) for s in loaded.values() if s is not None)


# The ledger is registered once and only read afterwards, so sharing it between examples
# is intended.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    budget_subjects=st.integers(min_value=0, max_value=14),
    visits=st.lists(st.sampled_from(REFS), max_size=40),
)
def test_the_cache_stays_within_its_budget_and_serves_what_the_store_holds(
    memory_ledger: Ledger, budget_subjects: int, visits: list[str]
) -> None:
    """Any budget, any access order: within budget, exact accounting, state as stored."""
    if memory_ledger.recorder.max_notification_id() in (None, 0):
        _register(memory_ledger, visits=8)
    fresh = SubjectCache(memory_ledger.app)
    truth = fresh.load(subject_id(ref) for ref in REFS)
    budget = budget_subjects * estimated_bytes(next(s for s in truth.values() if s))
    cache = SubjectCache(memory_ledger.app, max_bytes=budget)
    for ref in visits:
        sid = subject_id(ref)
        subject = cache.load([sid])[sid]
        assert subject is not None
        expected = truth[sid]
        assert expected is not None
        assert (subject.id, subject.version) == (expected.id, expected.version)
        assert cache.bytes <= budget
        assert cache.bytes == sum(estimated_bytes(s) for s, _ in cache._items.values())
