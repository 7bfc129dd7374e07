"""Pins the eventsourcing behaviour the ledger's storage relies on beyond its documented API.

Each test names what :mod:`dinsos_ledger.persistence.adapter` (or a recorder) assumes; an
eventsourcing release that changes it fails here, in CI, which runs against the oldest and
the newest eventsourcing that ``pyproject.toml`` allows.
"""

from __future__ import annotations

import sqlite3
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import (
    EventStore,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteDatastore

from dinsos_ledger.codec import LedgerMapper
from dinsos_ledger.persistence import adapter
from dinsos_ledger.persistence.sqlite import LedgerSQLiteRecorder

from tests.conftest import require_postgres


def test_retry_reads_tries_again_after_a_cut_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read failing with InterfaceError or OperationalError is run again, then succeeds."""
    monkeypatch.setattr("time.sleep", lambda _: None)
    calls: list[int] = []

    @adapter.retry_reads
    def read() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise InterfaceError("connection cut")
        if len(calls) == 2:
            raise OperationalError("server restarting")
        return "rows"

    assert read() == "rows"
    assert len(calls) == 3


def test_run_outside_transaction_runs_a_wal_checkpoint(tmp_path: Any) -> None:
    """The SQLite datastore's transaction can be ended and begun again around a statement."""
    datastore = SQLiteDatastore(str(tmp_path / "x.sqlite"))
    with datastore.transaction(commit=True) as c:
        c.execute("CREATE TABLE t (a)")
        c.execute("INSERT INTO t VALUES (1)")
    wal = tmp_path / "x.sqlite-wal"
    assert wal.stat().st_size > 0  # eventsourcing opens file databases in WAL mode
    adapter.run_outside_transaction(datastore, "PRAGMA wal_checkpoint(TRUNCATE)")
    assert wal.stat().st_size == 0
    with datastore.transaction(commit=True) as c:
        c.execute("INSERT INTO t VALUES (2)")
        c.execute("SELECT COUNT(*) FROM t")
        assert c.fetchone()[0] == 2
    datastore.close()


def test_sqlite_insert_events_wraps_insert_in_one_transaction(tmp_path: Any) -> None:
    """SQLiteApplicationRecorder.insert_events runs _insert_events in one committed transaction.

    The ledger's SQLite recorder writes everything in ``_insert_events``: an exception there
    must roll back the events too.
    """
    datastore = SQLiteDatastore(str(tmp_path / "x.sqlite"))
    recorder = LedgerSQLiteRecorder(datastore)
    recorder.create_table()
    event = StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="t", state=b"{}")

    class Boom(RuntimeError):
        pass

    def failing(c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        LedgerSQLiteRecorder._insert_events(recorder, c, stored_events, **kwargs)
        raise Boom

    recorder._insert_events = failing  # type: ignore[method-assign]
    with pytest.raises(Boom):
        recorder.insert_events([event])
    del recorder._insert_events
    assert recorder.select_notifications(start=1, limit=10) == []
    assert recorder.insert_events([event]) == [1]
    datastore.close()


def test_event_store_put_passes_keyword_arguments_to_insert_events() -> None:
    """EventStore.put(events, **kwargs) hands the keywords to recorder.insert_events."""
    seen: dict[str, Any] = {}

    class Recorder:
        def insert_events(self, stored: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
            seen.update(kwargs)
            return list(range(1, len(stored) + 1))

    from tests.integration.test_upgrades import _read_event  # a small event of its own

    store: EventStore[Any] = EventStore(mapper=LedgerMapper(), recorder=Recorder())  # type: ignore[arg-type]
    store.put([_read_event()], commands=[("c-1", "d")], keys=[], shred=[], expect=[])
    assert seen == {"commands": [("c-1", "d")], "keys": [], "shred": [], "expect": []}


def test_eventsourcing_postgres_insert_commits_before_reraising() -> None:
    """The deviation's reason: eventsourcing commits the events when fetching ids raises.

    ``PostgresApplicationRecorder.insert_events`` catches an exception raised after the
    events are inserted, lets its transaction commit, then re-raises. The ledger's recorder
    therefore owns ``insert_events`` (see the adapter module). If this test fails, the
    library changed: the override may be dropped in favour of ``_insert_events``.
    """
    url = require_postgres()
    import psycopg
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    schema = f"pin_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    host_db = url.split("@", 1)[1]
    host_port, dbname = host_db.split("/", 1)
    host, _, port = host_port.partition(":")
    datastore = PostgresDatastore(
        dbname=dbname, host=host, port=port or "5432", user="postgres", password="", schema=schema
    )

    class Failing(PostgresApplicationRecorder):
        def _fetch_ids_after_insert_events(self, *_: Any, **__: Any) -> Any:
            raise RuntimeError("after the insert")

    try:
        recorder = Failing(datastore, events_table_name="pin_events")
        recorder.create_table()
        event = StoredEvent(
            originator_id=uuid.uuid4(), originator_version=1, topic="t", state=b"{}"
        )
        with pytest.raises(RuntimeError, match="after the insert"):
            recorder.insert_events([event])
        with psycopg.connect(url) as conn:
            count = conn.execute(f'SELECT COUNT(*) FROM "{schema}".pin_events').fetchone()
        assert count == (1,)  # committed although the insert raised
    finally:
        datastore.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_opening_a_sqlite_ledger_imports_no_postgresql_driver(tmp_path: Any) -> None:
    """Opening and verifying a SQLite ledger never imports psycopg (it may be an optional extra)."""
    import subprocess

    code = (
        "import sys\n"
        "from dinsos_ledger.application import Ledger\n"
        "from dinsos_ledger import audit, cli, storage\n"
        f"with Ledger({str(tmp_path / 'l.sqlite')!r}) as ledger:\n"
        "    ledger.recorder.iter_rows()\n"
        "    assert audit.verify(ledger).ok\n"
        "print('psycopg' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_sqlite_guards_use_raise_abort() -> None:
    """The SQLite guard triggers refuse with RAISE(ABORT, …), checked on a bare connection."""
    conn = sqlite3.connect(":memory:")
    recorder: Any = LedgerSQLiteRecorder.__new__(LedgerSQLiteRecorder)
    recorder.events_table_name = "stored_events"
    conn.execute("CREATE TABLE stored_events (a)")
    conn.execute("CREATE TABLE dinsos_chain (a)")
    for statement in recorder.guard_definitions().values():
        assert "RAISE(ABORT" in statement
        conn.execute(statement)
    conn.execute("INSERT INTO stored_events VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE stored_events SET a = 2")


def test_the_postgres_recorder_creates_no_insert_function() -> None:
    """eventsourcing's insert function is left out of the ledger's DDL (it is never used)."""
    url = require_postgres()
    from dinsos_ledger.persistence.postgres import LedgerPostgresRecorder

    host_port, dbname = url.split("@", 1)[1].split("/", 1)
    host, _, port = host_port.partition(":")
    from eventsourcing.postgres import PostgresDatastore

    datastore = PostgresDatastore(
        dbname=dbname, host=host, port=port or "5432", user="postgres", password="", schema="x"
    )
    try:
        recorder = LedgerPostgresRecorder(datastore, events_table_name="ledger_events")
        ddl = " ".join(s.as_string() for s in recorder.sql_create_statements)
        assert recorder.pg_function_name_insert_events not in ddl
        assert "CREATE TABLE IF NOT EXISTS" in ddl
    finally:
        datastore.close()


def test_the_postgres_factory_builds_snapshots_with_the_ledgers_recorder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgresFactory.aggregate_recorder uses the class attribute the ledger sets."""
    url = require_postgres()
    from eventsourcing.utils import Environment

    from dinsos_ledger.persistence import parse_target
    from dinsos_ledger.persistence.postgres import LedgerPostgresFactory, LedgerSnapshotsRecorder

    monkeypatch.setenv("DINSOS_LEDGER_DB", url)
    env = Environment("Ledger", parse_target(None).env)
    factory = LedgerPostgresFactory(env)
    try:
        recorder = factory.aggregate_recorder("snapshots")
        assert isinstance(recorder, LedgerSnapshotsRecorder)
        assert recorder.events_table_name == "ledger_snapshots"
    finally:
        factory.close()
