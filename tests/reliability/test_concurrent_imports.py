"""Several processes importing overlapping command files into one ledger at the same time.

Each process runs the real command line. Whatever the interleaving, every command is
recorded once: the accepted counts of all processes add up to the commands recorded, a
payment reference is never paid twice, no cohort holds more active enrolments than seats,
and optimistic-concurrency conflicts are retried inside the processes, never reported.
With a file whose rejects are final (``harness.stable_scenario``) the ledger ends exactly
as one clean import leaves it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dinsos_ledger.application import Ledger

from tests.reliability import harness
from tests.reliability.invariants import (
    check_invariants,
    recorded_events,
    violations,
)


def _import_concurrently(
    target: str, files: list[Path], batch_sizes: list[int], out: Path
) -> list[tuple[harness.Run, Path]]:
    """Start one import per batch size at once, each of all ``files``; wait for all."""
    runs: list[tuple[harness.Run, Path]] = []
    with harness.running([]) as processes:
        rejects = []
        for n, size in enumerate(batch_sizes):
            path = out / f"rejects-{n}.jsonl"
            rejects.append(path)
            processes.append(
                harness.start_cli(
                    target,
                    "import",
                    *map(str, files),
                    "--json",
                    "--batch-size",
                    str(size),
                    "--rejects",
                    str(path),
                )
            )
        for process, path in zip(processes, rejects, strict=True):
            runs.append((harness.finish(process), path))
    return runs


def _assert_clean_runs(runs: list[tuple[harness.Run, Path]], lines: int) -> None:
    for run, _ in runs:
        assert run.returncode in (0, 1), run.describe()
        assert "Traceback" not in run.stderr, run.describe()
        assert "Error" not in run.stderr, run.describe()
        counts = run.counts
        assert counts["accepted"] + counts["duplicates"] + counts["rejected"] == lines


def _prime(target: str) -> None:
    """Create the ledger's tables before the race (concurrent creation is tested apart)."""
    with Ledger(target) as ledger:
        ledger.projections.catch_up()


@pytest.mark.parametrize(
    ("households", "batch_sizes"),
    [
        pytest.param(30, [3, 7, 25, 500], id="small"),
        pytest.param(250, [1, 5, 11, 40, 200, 500], id="large", marks=pytest.mark.slow),
    ],
)
def test_processes_importing_the_same_file_together_record_each_command_once(
    target: str,
    command_files: Callable[[str, int], Path],
    clean_import: Callable[[Path], dict[str, Any]],
    tmp_path: Path,
    households: int,
    batch_sizes: list[int],
) -> None:
    """Concurrent imports of one file end as one clean import, each command accepted once."""
    path = command_files("stable", households)
    clean = clean_import(path)
    lines = len(harness.non_blank_lines(path))
    _prime(target)

    runs = _import_concurrently(target, [path], batch_sizes, tmp_path)

    _assert_clean_runs(runs, lines)
    accepted = [run.counts["accepted"] for run, _ in runs]
    assert sum(accepted) == clean["counts"]["accepted"], accepted
    clean_lines = {line for line, _ in clean["rejects"]}
    for run, rejects in runs:
        # A process may read a line after others recorded what follows it; a final code
        # can then be another final code (closed before before_registration), but the
        # line is refused all the same, and an accepted line is never refused.
        refused = {r["line"] for r in harness.read_rejects(rejects)}
        assert refused == clean_lines, (sorted(refused ^ clean_lines), run.describe())
    state = harness.ledger_state(target, clean["refs"])
    assert state == clean["state"], harness.diff_states(state, clean["state"])
    check_invariants(target, path)


@pytest.mark.parametrize(
    ("households", "batch_sizes"),
    [
        pytest.param(30, [2, 9, 500], id="small"),
        pytest.param(200, [1, 3, 17, 64, 500], id="large", marks=pytest.mark.slow),
    ],
)
def test_overlapping_files_with_every_kind_of_mistake_keep_the_invariants(
    target: str,
    command_files: Callable[[str, int], Path],
    tmp_path: Path,
    households: int,
    batch_sizes: list[int],
) -> None:
    """Overlapping imports of a file with late-acceptable mistakes never record anything twice."""
    path = command_files("full", households)
    lines = harness.non_blank_lines(path)
    # The second half as a file of its own: its lines race the full imports' lines.
    half = tmp_path / "second-half.jsonl"
    half.write_bytes(b"".join(raw for _, raw in lines[len(lines) // 2 :]))
    _prime(target)

    runs = _import_concurrently(target, [path], batch_sizes, tmp_path)
    with harness.running([]) as processes:
        processes.append(harness.start_cli(target, "import", str(half), "--json"))
        processes.append(harness.start_cli(target, "import", str(path), "--json"))
        late = [harness.finish(p) for p in processes]

    _assert_clean_runs(runs, len(lines))
    for run in late:
        assert run.returncode in (0, 1), run.describe()
        assert "Traceback" not in run.stderr, run.describe()
        assert "Error" not in run.stderr, run.describe()
    with Ledger(target) as ledger:
        recorded = harness.command_ids(ledger)
    total = sum(run.counts["accepted"] for run, _ in runs) + sum(
        run.counts["accepted"] for run in late
    )
    # Every "accepted" any process reported is one recorded command, and vice versa.
    assert total == len(recorded)
    check_invariants(target, path)


def test_concurrent_first_imports_into_a_new_ledger_all_succeed(
    target: str, command_files: Callable[[str, int], Path], tmp_path: Path
) -> None:
    """Processes that open a ledger that does not exist yet, at once, all create and use it."""
    path = command_files("stable", 5)
    lines = len(harness.non_blank_lines(path))

    runs = _import_concurrently(target, [path], [50, 50, 50, 50], tmp_path)

    _assert_clean_runs(runs, lines)
    with Ledger(target) as ledger:
        recorded = harness.command_ids(ledger)
        if ledger.target.is_postgres:  # its snapshots table is created under the DDL lock too
            from dinsos_ledger.persistence.postgres import LedgerSnapshotsRecorder

            assert ledger.app.snapshots is not None
            assert isinstance(ledger.app.snapshots.recorder, LedgerSnapshotsRecorder)
    assert sum(run.counts["accepted"] for run, _ in runs) == len(recorded)


def test_the_invariant_check_finds_a_payment_recorded_twice(ledger: Ledger) -> None:
    """The invariants are not vacuous: a history with one payment stored twice breaks them."""
    for command in _PAYMENT_STORY:
        assert ledger.execute(command).accepted
    events = recorded_events(ledger)
    recorded = set(harness.command_ids(ledger))
    assert violations(events, recorded) == []
    paid = next(e for e in events if type(e).__name__ == "Disbursed")
    again = copy.copy(paid)
    object.__setattr__(again, "originator_version", paid.originator_version + 1)
    found = violations([*events, again], recorded)
    assert any("paid twice" in v for v in found), found
    assert any("outstanding -" in v for v in found), found


_PAYMENT_STORY: list[dict[str, Any]] = [
    {
        "id": "r",
        "command": "plan_cohort",
        "ref": "CO-1",
        "on": "2025-01-01",
        "actor": "a",
        "region": "64.08.04.2001",
        "programme": "PELATIHAN",
        "capacity": 3,
        "starts": "2025-02-01",
        "ends": "2025-03-01",
    },
    {
        "id": "a",
        "command": "allocate",
        "ref": "CO-1",
        "on": "2025-01-02",
        "actor": "a",
        "programme": "PELATIHAN",
        "amount": 1000,
        "period": "2025-01",
        "reference": "A-1",
    },
    {
        "id": "d",
        "command": "disburse",
        "ref": "CO-1",
        "on": "2025-01-03",
        "actor": "a",
        "programme": "PELATIHAN",
        "amount": 600,
        "reference": "P-1",
        "channel": "bank",
    },
]
