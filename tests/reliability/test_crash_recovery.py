"""Imports and rebuilds killed with SIGKILL at random points, then run again.

A batch is recorded in one transaction with its command ids, so a killed import leaves
whole batches or nothing, and has reported only rejects of batches it committed. Running it
again completes it: with a file whose rejects are final the ledger ends exactly as one
clean import leaves it (``show`` of every ref, events, command ids, balances, continuity,
``verify``), and the rejects of the two runs together are those of the clean import. A
file with mistakes that a later state may accept resumes from the last committed batch:
the result equals a clean import of the committed batches followed by the whole file.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dinsos_ledger.application import Ledger

from tests.reliability import harness
from tests.reliability.invariants import check_invariants

BATCH = 10


def _batches(
    clean_states: dict[Any, Any], backend: str, fresh_target: Callable[[str], str], path: Path
) -> tuple[list[set[str]], list[tuple[int, str | None, str]]]:
    """Accepted ids after each batch of a clean import in batches of :data:`BATCH`."""
    key = (backend, str(path), "batches", BATCH)
    if key not in clean_states:
        clean_states[key] = harness.import_in_batches(
            fresh_target(f"batches-{path.stem}"), path, BATCH
        )
    result: tuple[list[set[str]], list[tuple[int, str | None, str]]] = clean_states[key]
    return result


def _line_after(lines: list[tuple[int, bytes]], batches: int) -> int:
    """The line number of the last line of the first ``batches`` batches (0 for none)."""
    if batches == 0:
        return 0
    return lines[min(batches * BATCH, len(lines)) - 1][0]


def _committed_batches(recorded: set[str], cumulative: list[set[str]]) -> list[int]:
    """The batch counts whose accepted ids are exactly ``recorded`` (empty: none match)."""
    return [k for k, ids in enumerate(cumulative) if ids == recorded]


def _kill_import(
    target: str, path: Path, rejects: Path, rng: random.Random, total: int
) -> tuple[bool, int]:
    """Start an import and SIGKILL it at a random point; return (killed running, recorded).

    Half the time the point is a random share of the commands recorded (watched from
    outside), otherwise a random delay, which may fall in start-up or in the projections'
    catch-up at the end.
    """
    # Half the imports validate in a second process, which must not change the outcome.
    parallel = "--parallel" if rng.random() < 0.5 else "--no-parallel"
    with harness.running([]) as processes:
        process = harness.start_cli(
            target,
            "import",
            str(path),
            "--batch-size",
            str(BATCH),
            "--rejects",
            str(rejects),
            parallel,
        )
        processes.append(process)
        if rng.random() < 0.5:
            goal = rng.randint(1, max(1, total - 1))
            harness.wait_for(
                lambda: (
                    process.poll() is not None or harness.recorded_command_count(target) >= goal
                ),
                timeout=120,
                interval=0.005,
            )
        else:
            time.sleep(rng.uniform(0.0, 2.0))
        running = process.poll() is None
    return running, harness.recorded_command_count(target)


@pytest.mark.parametrize(
    ("households", "rounds"),
    [pytest.param(40, 3, id="quick"), pytest.param(120, 12, id="many", marks=pytest.mark.slow)],
)
def test_an_import_killed_at_random_points_then_run_again_ends_as_one_clean_import(
    backend: str,
    fresh_target: Callable[[str], str],
    command_files: Callable[[str, int], Path],
    clean_import: Callable[[Path], dict[str, Any]],
    clean_states: dict[Any, Any],
    tmp_path: Path,
    households: int,
    rounds: int,
) -> None:
    """Kill (once, or again during the re-run), run again: whole batches only, clean end state."""
    path = command_files("stable", households)
    clean = clean_import(path)
    cumulative, _ = _batches(clean_states, backend, fresh_target, path)
    clean_rejected_lines = {line for line, _ in clean["rejects"]}
    lines = harness.non_blank_lines(path)
    rng = random.Random(f"crash-{households}-{backend}")
    killed_running = 0
    for n in range(rounds):
        target = fresh_target(f"round-{n}")
        matches: list[int] = []
        # Odd rounds kill the re-run as well, before a third run finishes the import.
        for kill in range(1 + n % 2):
            killed_rejects = tmp_path / f"killed-{n}-{kill}.jsonl"
            running, _ = _kill_import(
                target, path, killed_rejects, rng, clean["counts"]["accepted"]
            )
            killed_running += running
            with Ledger(target) as ledger:
                recorded = set(harness.command_ids(ledger))
            matches = _committed_batches(recorded, cumulative)
            assert matches, f"round {n}: the killed import left a part of a batch recorded"
            reported = harness.read_rejects(killed_rejects)
            assert {(r["line"], r["code"]) for r in reported} <= clean["rejects"]
            assert all(r["line"] <= _line_after(lines, max(matches)) for r in reported), (
                f"round {n}: a reject was reported for a batch that was not recorded"
            )

        rerun_rejects = tmp_path / f"rerun-{n}.jsonl"
        rerun = harness.cli(target, "import", str(path), "--json", "--rejects", str(rerun_rejects))
        assert rerun.returncode in (0, 1), rerun.stderr
        assert "Traceback" not in rerun.stderr
        again = {(r["line"], r["code"]) for r in harness.read_rejects(rerun_rejects)}
        assert {line for line, _ in again} == clean_rejected_lines
        # Lines the killed runs never committed are read against the state a clean import
        # reads them against, so they get the same codes; earlier lines read again may get
        # another final code (closed rather than before_registration, say).
        resumed_at = _line_after(lines, min(matches))
        assert {p for p in again if p[0] > resumed_at} == {
            p for p in clean["rejects"] if p[0] > resumed_at
        }
        state = harness.ledger_state(target, clean["refs"])
        assert state == clean["state"], f"round {n}:\n" + harness.diff_states(state, clean["state"])
    # The watched kills land while the import runs; if none did, the test tested nothing.
    assert killed_running >= 1


@pytest.mark.parametrize(
    "rounds", [pytest.param(1, id="quick"), pytest.param(8, id="many", marks=pytest.mark.slow)]
)
def test_a_killed_import_with_late_acceptable_mistakes_resumes_from_its_last_batch(
    backend: str,
    fresh_target: Callable[[str], str],
    command_files: Callable[[str, int], Path],
    clean_states: dict[Any, Any],
    tmp_path: Path,
    rounds: int,
) -> None:
    """Killed, then run again = the committed batches imported cleanly, then the whole file."""
    path = command_files("full", 20)
    refs = harness.refs_in(path)
    cumulative, _ = _batches(clean_states, backend, fresh_target, path)
    lines = harness.non_blank_lines(path)
    rng = random.Random(f"resume-{backend}")
    for n in range(rounds):
        target = fresh_target(f"killed-{n}")
        _kill_import(target, path, tmp_path / f"k{n}.jsonl", rng, len(cumulative[-1]))
        with Ledger(target) as ledger:
            recorded = set(harness.command_ids(ledger))
        matches = _committed_batches(recorded, cumulative)
        assert matches, f"round {n}: the killed import left a part of a batch recorded"
        rerun = harness.cli(target, "import", str(path), "--json")
        assert rerun.returncode in (0, 1), rerun.stderr

        reference = fresh_target(f"reference-{n}")
        prefix = tmp_path / f"prefix-{n}.jsonl"
        prefix.write_bytes(b"".join(raw for _, raw in lines[: matches[0] * BATCH]))
        for source in (prefix, path):
            harness.import_here(reference, source, BATCH)
        expected = harness.ledger_state(reference, refs)
        state = harness.ledger_state(target, refs)
        assert state == expected, f"round {n}:\n" + harness.diff_states(state, expected)
        check_invariants(target)


def _projection_positions(target: str) -> list[int]:
    """The tracking positions of the projections, read from outside ([] if none yet)."""
    query = "SELECT position FROM proj_tracking"
    if target.startswith("postgresql://"):
        import psycopg

        url, _, rest = target.partition("?")
        schema = rest.partition("schema=")[2]
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute(f'SET search_path TO "{schema}"')
                return [int(r[0]) for r in conn.execute(query).fetchall()]
        except psycopg.Error:
            return []
    import sqlite3

    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=5)
    try:
        return [int(r[0]) for r in conn.execute(query).fetchall()]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


@pytest.mark.parametrize(
    "rounds", [pytest.param(1, id="quick"), pytest.param(8, id="many", marks=pytest.mark.slow)]
)
def test_a_rebuild_killed_mid_way_then_run_again_equals_the_incremental_projections(
    target: str,
    command_files: Callable[[str, int], Path],
    rounds: int,
) -> None:
    """A rebuild killed part-way leaves projections that catch up (or rebuild) to the same answers."""
    path = command_files("full", 200)
    harness.import_here(target, path)
    refs = harness.refs_in(path)
    before = harness.ledger_state(target, refs)
    with Ledger(target) as ledger:
        head = int(ledger.recorder.max_notification_id() or 0)
    rng = random.Random("rebuild")
    for n in range(rounds):
        # A rebuild applies a page of events per transaction; watch the tracking positions
        # and kill it past a random page. A try that ends before that is tried again.
        for _ in range(5):
            goal = rng.randint(1, max(1, head - 1))
            with harness.running([]) as processes:
                process = harness.start_cli(target, "--quiet", "rebuild", "--page-size", "50")
                processes.append(process)
                harness.wait_for(
                    lambda process=process, goal=goal: (
                        process.poll() is not None
                        or goal <= min(_projection_positions(target) or [0]) < head
                    ),
                    timeout=120,
                    interval=0.001,
                )
            if 0 < min(_projection_positions(target) or [0]) < head:
                break
        else:
            pytest.fail(f"round {n}: no rebuild could be killed part-way")
        # Asking a question catches up from where the killed rebuild stopped.
        assert harness.ledger_state(target, refs) == before, f"round {n}"
    again = harness.cli(target, "rebuild")
    assert again.returncode == 0, again.stderr
    assert harness.ledger_state(target, refs) == before
