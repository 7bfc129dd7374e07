"""The benchmark keeps working: its quick run completes and prints every measurement.

Speed is never asserted here (the machines are noisy); docs/performance.md has the numbers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_benchmark_runs_and_reports_every_measurement(tmp_path: Path) -> None:
    """`benchmarks/run.py --quick` exits 0 and writes a table with every row.

    Both kinds of row: in one process against a bare application, and whole `dinsos-ledger`
    processes against bare processes.
    """
    out = tmp_path / "table.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--write", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DINSOS_LEDGER_TEST_POSTGRES": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = out.read_text()
    for row in (
        "import, sqlite",
        "continuity for",
        "balances for",
        "rebuild (",
        "verify (",
        "load a subject",
        "catch-up after",
        "process: import, sqlite, many subjects",
        "process: rebuild, sqlite, long histories",
        "process: verify, sqlite, many subjects",
        "process: balances --json, sqlite",
        "process: district import",
    ):
        assert row in table, row
