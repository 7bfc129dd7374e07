"""Database faults during an import: PostgreSQL connections cut, SQLite locked by another writer.

The import either retries transparently or stops with a clear error (exit 2, one
``Error: …`` line, no traceback). Either way nothing is recorded but whole batches, and a
later run completes the import to the state of one clean import.

PostgreSQL connections are cut with ``pg_terminate_backend`` aimed only at the import's own
connections: the child process runs with ``PGAPPNAME`` set to a name of its own, which
libpq reports as ``application_name``. The server is never restarted and no other
session is touched, so these tests can share the server with other test runs.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import pytest

from dinsos_ledger.application import Ledger

from tests.conftest import require_postgres
from tests.reliability import harness

BATCH = 10


def _whole_batches(target: str, cumulative: list[set[str]]) -> bool:
    with Ledger(target) as ledger:
        recorded = set(harness.command_ids(ledger))
    return recorded in cumulative


def _cumulative(
    clean_states: dict[Any, Any], backend: str, fresh_target: Callable[[str], str], path: Path
) -> list[set[str]]:
    key = (backend, str(path), "batches", BATCH)
    if key not in clean_states:
        clean_states[key] = harness.import_in_batches(
            fresh_target(f"batches-{path.stem}"), path, BATCH
        )
    cumulative: list[set[str]] = clean_states[key][0]
    return cumulative


def _assert_clear_failure_or_success(run: harness.Run) -> None:
    """Exit 0/1 with the counts, or exit 2 with one ``Error: …`` message; never a traceback."""
    assert "Traceback" not in run.stderr, run.describe()
    assert run.returncode in (0, 1, 2), run.describe()
    if run.returncode == 2:
        _assert_storage_error(run)
    else:
        assert set(run.counts) == {"accepted", "duplicates", "rejected"}


def _assert_storage_error(run: harness.Run) -> None:
    """Exit 2 and an ``Error: …`` message that blames the store, not the input file."""
    assert run.returncode == 2, run.describe()
    assert run.stderr.startswith("Error: "), run.describe()
    # libpq's own message may add indented lines; a traceback would add 'File "…"' lines.
    assert "Traceback" not in run.stderr, run.describe()
    assert 'File "' not in run.stderr, run.describe()
    # The command file was read fine: the message must not send the user to it.
    assert "cannot read input" not in run.stderr, run.describe()


# ------------------------------------------------------------------- PostgreSQL


def _terminate(url: str, application_name: str) -> int:
    """Cut every connection of ``application_name`` to the test database; return how many."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = %s",
            (application_name,),
        ).fetchall()
    return sum(1 for (done,) in rows if done)


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(
    "cuts", [pytest.param(3, id="few"), pytest.param(25, id="many", marks=pytest.mark.slow)]
)
def test_an_import_whose_postgresql_connections_are_cut_stops_cleanly_and_a_rerun_completes(
    backend: str,
    target: str,
    fresh_target: Callable[[str], str],
    command_files: Callable[[str, int], Path],
    clean_import: Callable[[Path], dict[str, Any]],
    clean_states: dict[Any, Any],
    cuts: int,
) -> None:
    """Connections cut mid-import: a clear error or a transparent retry, whole batches, rerun ends clean."""
    url = require_postgres()
    path = command_files("stable", 30)
    clean = clean_import(path)
    cumulative = _cumulative(clean_states, backend, fresh_target, path)
    name = f"dinsos-reliability-{uuid.uuid4().hex[:12]}"
    rng = random.Random(f"cut-{cuts}")
    terminated = 0
    with harness.running([]) as processes:
        process = harness.start_cli(
            target,
            "import",
            str(path),
            "--json",
            "--batch-size",
            str(BATCH),
            "--rejects",
            str(path.parent / f"cut-{name}.jsonl"),
            env={"PGAPPNAME": name},
        )
        processes.append(process)
        # Cut once the import has started recording, then again at random moments.
        harness.wait_for(
            lambda: process.poll() is not None or harness.recorded_command_count(target) > 0,
            timeout=120,
        )
        for _ in range(cuts):
            if process.poll() is not None:
                break
            terminated += _terminate(url, name)
            time.sleep(rng.uniform(0.05, 0.4))
        run = harness.finish(process)

    _assert_clear_failure_or_success(run)
    assert terminated >= 1, "no connection of the import was cut: the test tested nothing"
    print(f"\n{terminated} connections cut: exit {run.returncode} {run.stderr.strip()[:200]}")
    assert _whole_batches(target, cumulative), "a part of a batch was recorded"

    rerun = harness.cli(target, "import", str(path), "--json")
    assert rerun.returncode in (0, 1), rerun.stderr
    state = harness.ledger_state(target, clean["refs"])
    assert state == clean["state"], harness.diff_states(state, clean["state"])


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_ledger_whose_idle_connections_were_cut_recovers_without_a_restart(
    target: str, command_files: Callable[[str, int], Path]
) -> None:
    """After its pooled connections are cut, a ledger fails cleanly at most a few times, then answers.

    Each question either gets the right answer or a StorageError (a clear message, as the
    command line prints it); no other exception escapes, and within as many questions as
    the pool held connections the ledger answers again, without being reopened.
    """
    from dinsos_ledger.errors import StorageError

    url = require_postgres()
    harness.import_here(target, command_files("stable", 5))
    name = f"dinsos-reliability-{uuid.uuid4().hex[:12]}"
    before = os.environ.get("PGAPPNAME")
    os.environ["PGAPPNAME"] = name
    try:
        with Ledger(target) as ledger:
            first = [row.to_json() for row in ledger.projections.balances()]
            assert _terminate(url, name) >= 1
            failures = 0
            for _ in range(20):
                try:
                    again = [row.to_json() for row in ledger.projections.balances()]
                    break
                except StorageError:
                    failures += 1
            else:
                pytest.fail("the ledger never answered again after its connections were cut")
    finally:
        if before is None:
            os.environ.pop("PGAPPNAME", None)
        else:
            os.environ["PGAPPNAME"] = before
    assert again == first
    print(f"\n{failures} questions failed cleanly before the ledger answered again")


# ----------------------------------------------------------------------- SQLite


class _Holder:
    """Holds SQLite's write lock on a file from another connection (``BEGIN IMMEDIATE``)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=60)
        self.held = False

    def __enter__(self) -> Self:
        self.conn.execute("BEGIN IMMEDIATE")
        self.held = True
        return self

    def release(self) -> None:
        """Give the lock back (roll the empty transaction back)."""
        if self.held:
            self.conn.execute("ROLLBACK")
            self.held = False

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.conn.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_import_into_a_sqlite_file_locked_by_another_writer_waits_then_fails_cleanly(
    target: str,
    command_files: Callable[[str, int], Path],
    clean_import: Callable[[Path], dict[str, Any]],
) -> None:
    """Locked longer than DINSOS_LEDGER_LOCK_TIMEOUT: waits, exit 2, nothing recorded; later run completes."""
    path = command_files("stable", 20)
    clean = clean_import(path)
    lines = harness.non_blank_lines(path)
    first_half = path.parent / f"{path.stem}.first-half.jsonl"
    first_half.write_bytes(b"".join(raw for _, raw in lines[: len(lines) // 2]))
    harness.import_here(target, first_half)
    with Ledger(target) as ledger:
        before = harness.command_ids(ledger)

    with _Holder(target):
        started = time.monotonic()
        done = harness.cli(
            target,
            "import",
            str(path),
            "--json",
            "--rejects",
            str(path.parent / "locked.jsonl"),
            env={"DINSOS_LEDGER_LOCK_TIMEOUT": "1"},
        )
        waited = time.monotonic() - started
    run = harness.Run(done.returncode, done.stdout, done.stderr)

    _assert_storage_error(run)
    assert "locked" in run.stderr, run.describe()
    assert waited >= 1.0
    with Ledger(target) as ledger:
        assert harness.command_ids(ledger) == before

    rerun = harness.cli(target, "import", str(path), "--json")
    assert rerun.returncode in (0, 1), rerun.stderr
    state = harness.ledger_state(target, clean["refs"])
    assert state == clean["state"], harness.diff_states(state, clean["state"])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_import_waits_for_a_sqlite_lock_held_shorter_than_the_timeout(
    target: str,
    command_files: Callable[[str, int], Path],
    clean_import: Callable[[Path], dict[str, Any]],
) -> None:
    """A lock taken mid-import and released within the timeout only delays the import."""
    path = command_files("stable", 20)
    clean = clean_import(path)
    holder = _Holder(target)
    with harness.running([]) as processes:
        process = harness.start_cli(
            target,
            "import",
            str(path),
            "--json",
            "--batch-size",
            str(BATCH),
            env={"DINSOS_LEDGER_LOCK_TIMEOUT": "20"},
        )
        processes.append(process)
        harness.wait_for(
            lambda: process.poll() is not None or harness.recorded_command_count(target) > 100,
            timeout=120,
            interval=0.005,
        )
        with holder:
            count = harness.recorded_command_count(target)
            time.sleep(1.5)
            # Nothing can be recorded while the lock is held.
            assert harness.recorded_command_count(target) == count
        run = harness.finish(process)
    assert run.returncode in (0, 1), run.describe()
    assert "Traceback" not in run.stderr, run.describe()
    assert "Error" not in run.stderr, run.describe()
    assert run.counts["accepted"] == clean["counts"]["accepted"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_import_locked_out_mid_way_keeps_whole_batches_and_a_rerun_completes(
    backend: str,
    target: str,
    command_files: Callable[[str, int], Path],
    clean_import: Callable[[Path], dict[str, Any]],
    fresh_target: Callable[[str], str],
    clean_states: dict[Any, Any],
) -> None:
    """A lock held past the timeout mid-import: exit 2, whole batches kept, rerun ends clean."""
    path = command_files("stable", 20)
    clean = clean_import(path)
    cumulative = _cumulative(clean_states, backend, fresh_target, path)
    holder = _Holder(target)
    with harness.running([]) as processes:
        process = harness.start_cli(
            target,
            "import",
            str(path),
            "--json",
            "--batch-size",
            str(BATCH),
            "--rejects",
            str(path.parent / "locked-out.jsonl"),
            env={"DINSOS_LEDGER_LOCK_TIMEOUT": "1"},
        )
        processes.append(process)
        harness.wait_for(
            lambda: process.poll() is not None or harness.recorded_command_count(target) > 50,
            timeout=120,
            interval=0.005,
        )
        with holder:
            run = harness.finish(process)
    assert run.returncode == 2, "the import finished before the lock was taken: " + run.describe()
    _assert_storage_error(run)
    assert _whole_batches(target, cumulative), "a part of a batch was recorded"
    rerun = harness.cli(target, "import", str(path), "--json")
    assert rerun.returncode in (0, 1), rerun.stderr
    state = harness.ledger_state(target, clean["refs"])
    assert state == clean["state"], harness.diff_states(state, clean["state"])
