"""A reader's snapshot outlives eventsourcing's idle-in-transaction timeout."""

from __future__ import annotations

import time

import pytest

from dinsos_ledger.application import Ledger


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_projection_snapshot_stays_open_while_its_caller_works(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify reads stored rows while it rebuilds a shadow: a pause must not cut the read."""
    # A server (or role) whose sessions time out after one idle second in a transaction, as
    # a database administrator may configure it; eventsourcing's own sessions use five.
    monkeypatch.setenv("PGOPTIONS", "-c idle_in_transaction_session_timeout=1000")
    with Ledger(target, env={"POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "1"}) as ledger:
        ledger.register_veteran(
            ref="VT-0001",
            on="2025-01-06",
            actor="petugas.01",
            region="64.08.04.2001",
            nik="6408041507400001",
            name="Sutrisno",
        )
        engine = ledger.projections.engine
        engine.catch_up()
        with engine.reading() as reader:
            before = reader.all("SELECT COUNT(*) FROM proj_subjects")
            time.sleep(2.5)  # longer than the session's idle-in-transaction timeout
            assert reader.all("SELECT COUNT(*) FROM proj_subjects") == before
