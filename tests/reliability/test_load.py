"""Sustained imports while other processes keep asking for balances and continuity.

Importers run the real command line on a generated file; query processes
(``query_loop.py``) ask the projections again and again. Every answer must be a
consistent state (outstanding = allocated - disbursed and never negative, gaps and
covered days adding up, sorted rows), the totals only grow (allocations are never taken
back, rows and registered subjects never disappear), and when the importers are done
nothing is lost: the ledger is the one a clean import gives. Response times are measured
and printed (run with ``-s`` to see them), never asserted.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dinsos_ledger.application import Ledger

from tests.reliability import harness
from tests.reliability.invariants import check_invariants

QUERY_LOOP = Path(__file__).with_name("query_loop.py")
AS_OF = "2025-09-30"


def _summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no answers"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"{name}: {len(values)} answers, median {statistics.median(values) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


@pytest.mark.parametrize(
    ("households", "importers", "queriers"),
    [
        pytest.param(60, [100], 1, id="one-importer"),
        pytest.param(400, [7, 50, 500], 2, id="three-importers", marks=pytest.mark.slow),
    ],
)
def test_queries_during_sustained_imports_are_consistent_and_nothing_is_lost(
    target: str,
    command_files: Callable[[str, int], Path],
    clean_import: Callable[[Path], dict[str, Any]],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    households: int,
    importers: list[int],
    queriers: int,
) -> None:
    """Answers during the import are consistent and growing; afterwards the ledger is complete."""
    path = command_files("stable", households)
    clean = clean_import(path)
    with Ledger(target) as ledger:  # the tables exist before the race starts
        ledger.projections.catch_up()
    stop = tmp_path / "stop"
    logs = [tmp_path / f"answers-{n}.jsonl" for n in range(queriers)]
    with harness.running([]) as processes:
        queries = [
            harness.start_script(QUERY_LOOP, target, str(log), str(stop), AS_OF) for log in logs
        ]
        processes.extend(queries)
        # Let the queries start before the load does.
        harness.wait_for(lambda: all(log.exists() and log.stat().st_size for log in logs), 120)
        imports = [
            harness.start_cli(
                target,
                "import",
                str(path),
                "--json",
                "--batch-size",
                str(size),
                "--rejects",
                str(tmp_path / f"rejects-{size}.jsonl"),
            )
            for size in importers
        ]
        processes.extend(imports)
        runs = [harness.finish(p, timeout=900) for p in imports]
        stop.touch()
        ended = [harness.finish(q, timeout=120) for q in queries]

    for run in runs:
        assert run.returncode in (0, 1), run.describe()
        assert "Traceback" not in run.stderr, run.describe()
        assert "Error" not in run.stderr, run.describe()
    for query in ended:
        assert query.returncode == 0, query.describe()

    balances_s: list[float] = []
    continuity_s: list[float] = []
    for log in logs:
        answers = [json.loads(line) for line in log.read_text().splitlines()]
        assert len(answers) >= 2
        for n, answer in enumerate(answers):
            assert answer["problems"] == [], (log.name, n, answer["problems"][:5])
        for before, after in itertools.pairwise(answers):
            assert after["allocated"] >= before["allocated"]
            assert after["rows"] >= before["rows"]
            assert after["timelines"] >= before["timelines"]
        # Timed are the answers given while the imports ran (some, not all, rows there).
        during = [a for a in answers if 0 < a["rows"] < answers[-1]["rows"]] or answers
        balances_s += [a["balances_s"] for a in during]
        continuity_s += [a["continuity_s"] for a in during]
    report = [_summary("balances", balances_s), _summary("continuity", continuity_s)]
    print("\n" + "\n".join(report))
    for line in report:
        record_property(line.split(":")[0], line)

    # Nothing lost, nothing twice: the ledger is the one a clean import gives.
    accepted = sum(run.counts["accepted"] for run in runs)
    assert accepted == clean["counts"]["accepted"]
    state = harness.ledger_state(target, clean["refs"])
    assert state == clean["state"], harness.diff_states(state, clean["state"])
    check_invariants(target)
