"""A read verb starts without loading what only other verbs need.

Start-up is part of every command a user types; these tests pin which modules a read verb on
a SQLite ledger must not load (no timing is asserted: the machines are noisy).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import sys
from dinsos_ledger.cli import main
try:
    main(sys.argv[1:], prog_name="dinsos-ledger")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""

#: Modules a read verb never needs: the PostgreSQL driver, the importer's reader process,
#: rich's progress bars, the report's charts and the Parquet export. (The audit module is
#: needed: opening a ledger counts its rows and links first.)
_NOT_FOR_A_READ = (
    "multiprocessing",
    "rich",
    "psycopg",
    "psycopg_pool",
    "matplotlib",
    "numpy",
    "pyarrow",
)


_ONE_HOUSEHOLD = {
    "id": "c-1",
    "command": "register_household",
    "ref": "KT-START-01",
    "on": "2025-01-06",
    "actor": "petugas.01",
    "region": "64.08.01.2001",
    "members": 3,
    "family_card": "6408010101000001",
    "head_nik": "6408010101000001",
    "head_name": "Kepala Satu",
}


@pytest.fixture
def ledger_db(tmp_path: Path) -> str:
    """A SQLite ledger holding one household, made by `import` (read verbs create none)."""
    commands = tmp_path / "one.jsonl"
    commands.write_text(json.dumps(_ONE_HOUSEHOLD) + "\n")
    db = str(tmp_path / "l.sqlite")
    subprocess.run(
        [sys.executable, "-m", "dinsos_ledger.cli", "--db", db, "-q", "import", str(commands)],
        check=True,
        capture_output=True,
    )
    return db


def _modules_loaded_by(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", "import json\n" + _PROBE, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_balances_on_a_sqlite_ledger_loads_none_of_the_other_verbs_modules(
    ledger_db: str,
) -> None:
    """`balances --json` leaves psycopg, multiprocessing, rich, charts and Parquet out."""
    loaded = _modules_loaded_by("--db", ledger_db, "balances", "--json")
    assert "dinsos_ledger.projections.views" in loaded  # the probe did run the verb
    assert not {m for m in loaded if m.split(".")[0] in _NOT_FOR_A_READ or m in _NOT_FOR_A_READ}


def test_the_cli_runs_as_a_module_like_the_installed_command(ledger_db: str) -> None:
    """`python -m dinsos_ledger.cli balances --json` runs the verb and prints its JSON."""
    result = subprocess.run(
        [sys.executable, "-m", "dinsos_ledger.cli", "--db", ledger_db, "balances", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []  # a registered household has no balance yet


def test_a_rebuild_without_a_terminal_draws_no_bars_and_loads_no_rich(ledger_db: str) -> None:
    """`rebuild --json` with stderr not a terminal leaves rich unloaded (no bars to draw)."""
    loaded = _modules_loaded_by("--db", ledger_db, "rebuild", "--json")
    assert "dinsos_ledger.projections.engine" in loaded
    assert not {m for m in loaded if m.split(".")[0] == "rich"}


def test_verify_on_a_sqlite_ledger_does_not_load_the_postgresql_driver(ledger_db: str) -> None:
    """`verify --json` on a SQLite ledger checks the chain without importing psycopg."""
    loaded = _modules_loaded_by("--db", ledger_db, "verify", "--json")
    assert "dinsos_ledger.audit" in loaded  # the probe did run the verb
    assert not {m for m in loaded if m.split(".")[0] in ("psycopg", "psycopg_pool")}
