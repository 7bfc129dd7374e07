"""No verb ends in a traceback on a store that is damaged, foreign or changed behind its back.

Every verb that reads a ledger meets every kind of damage an operator or an attacker can
cause: a text file given as ``--db``, a truncated SQLite file, another program's SQLite
database, another application's PostgreSQL schema, and a ledger whose event row was
deleted by hand. Each gives one clear message and exit 2 (``verify``: exit 1, naming it).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dinsos_ledger.cli import main
from dinsos_ledger.types import subject_id

from tests.conftest import _drop_schema, require_postgres

ROOT = Path(__file__).resolve().parents[2]
FIELD_OFFICE = ROOT / "tests" / "data" / "field_office.jsonl"

VERBS: dict[str, list[str]] = {
    "show": ["show", "KT-HH-0001", "--json"],
    "import": ["import", str(FIELD_OFFICE)],
    "history": ["history", "KT-HH-0001"],
    "balances": ["balances", "--json"],
    "export": ["export", "--format", "csv", "-"],
    "report": ["report", "{tmp}/report"],
    "verify": ["verify"],
}

Damage = Callable[[Path], str]


def _import(target: str) -> None:
    result = CliRunner().invoke(main, ["--db", target, "import", str(FIELD_OFFICE)])
    assert result.exit_code == 1, result.output  # the file has rejects, the rest is recorded


def text_file(tmp: Path) -> str:
    """A notes file given as --db."""
    path = tmp / "notes.txt"
    path.write_text("meeting notes, not a ledger\n" * 40, encoding="utf-8")
    return str(path)


def truncated_sqlite(tmp: Path) -> str:
    """A ledger file cut short, as by a full disk or an interrupted copy."""
    whole = tmp / "whole.sqlite"
    _import(str(whole))
    cut = tmp / "cut.sqlite"
    cut.write_bytes(whole.read_bytes()[:12_000])
    key = Path(str(whole) + ".key")
    if key.exists():
        cut_key = Path(str(cut) + ".key")
        cut_key.write_bytes(key.read_bytes())
        cut_key.chmod(0o600)
    return str(cut)


def foreign_sqlite(tmp: Path) -> str:
    """Another program's SQLite database."""
    path = tmp / "inventory.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Toko Sembako')")
    return str(path)


def _delete_event_row(target: str, version: int) -> None:
    """Delete one event row of KT-HH-0001 by hand (switching the table's guards off first)."""
    oid = subject_id("KT-HH-0001")
    if target.startswith("postgresql://"):
        import psycopg

        url, _, query = target.partition("?")
        schema = query.removeprefix("schema=")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'ALTER TABLE "{schema}".ledger_events DISABLE TRIGGER ALL')
            conn.execute(
                f'DELETE FROM "{schema}".ledger_events '
                "WHERE originator_id = %s AND originator_version = %s",
                (oid, version),
            )
        return
    with contextlib.closing(sqlite3.connect(target)) as conn, conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f'DROP TRIGGER "{name}"')
        deleted = conn.execute(
            "DELETE FROM stored_events WHERE originator_version = ? AND originator_id IN (?, ?, ?)",
            (version, oid.hex, str(oid), oid.bytes),
        ).rowcount
        assert deleted == 1


@pytest.fixture
def postgres_target() -> Iterator[Callable[[], str]]:
    """A fresh PostgreSQL schema per call, dropped afterwards."""
    url = require_postgres()
    schemas: list[str] = []

    def make() -> str:
        schema = f"d_{uuid.uuid4().hex[:16]}"
        schemas.append(schema)
        return f"{url}?schema={schema}"

    yield make
    for schema in schemas:
        _drop_schema(url, schema)


KINDS = ["text_file", "truncated_sqlite", "foreign_sqlite", "deleted_event_sqlite"]
PG_KINDS = ["foreign_postgres", "deleted_event_postgres"]


def _damaged(kind: str, tmp: Path, pg: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> str:
    if kind == "text_file":
        return text_file(tmp)
    if kind == "truncated_sqlite":
        return truncated_sqlite(tmp)
    if kind == "foreign_sqlite":
        return foreign_sqlite(tmp)
    if kind == "deleted_event_sqlite":
        target = str(tmp / "ledger.sqlite")
        _import(target)
        _delete_event_row(target, 3)
        return target
    import base64
    import os

    import psycopg

    monkeypatch.setenv("DINSOS_LEDGER_KEY", base64.b64encode(os.urandom(32)).decode())
    target = pg()
    if kind == "foreign_postgres":
        url, _, query = target.partition("?")
        schema = query.removeprefix("schema=")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".invoices (id serial PRIMARY KEY, total int)')
        return target
    _import(target)
    _delete_event_row(target, 3)
    return target


def _tables(target: str) -> list[str]:
    if target.startswith("postgresql://"):
        import psycopg

        url, _, query = target.partition("?")
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
                (query.removeprefix("schema="),),
            ).fetchall()
        return [str(row[0]) for row in rows]
    with contextlib.closing(sqlite3.connect(target)) as conn:
        return [
            str(row[0])
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]


@pytest.mark.parametrize("verb", list(VERBS))
@pytest.mark.parametrize("kind", KINDS + PG_KINDS)
def test_no_verb_ends_in_a_traceback_on_a_damaged_store(
    kind: str,
    verb: str,
    tmp_path: Path,
    postgres_target: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One clear message, exit 2 (verify: 1), nothing created in someone else's database."""
    target = _damaged(kind, tmp_path, postgres_target, monkeypatch)
    foreign = kind.startswith("foreign")
    before = _tables(target) if foreign else None
    args = [a.format(tmp=tmp_path) for a in VERBS[verb]]
    result: Result = CliRunner().invoke(main, ["--db", target, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.exit_code == (1 if verb == "verify" else 2), result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: ")
    if kind.startswith("deleted_event"):
        assert "removed" in result.output or "altered" in result.output, (
            result.output
        )  # named, and verify locates it
    elif foreign:
        assert "not a dinsos-ledger database" in result.output
        assert _tables(target) == before  # nothing added to another application's database
    else:
        assert "not a SQLite database" in result.output or "damaged" in result.output


def test_verify_finds_pages_overwritten_where_no_event_is_read(tmp_path: Path) -> None:
    """A page of the file overwritten on disk is a `damaged` finding, exit 1, not ok."""
    target = tmp_path / "ledger.sqlite"
    _import(str(target))
    data = bytearray(target.read_bytes())
    page = 4096
    start = 3 * page  # past the schema pages
    data[start : start + page] = b"\xff" * page
    target.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["--db", str(target), "verify"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "damaged" in result.output


def test_verify_json_reports_a_foreign_store_as_a_damaged_finding(tmp_path: Path) -> None:
    """--json gets a report, not only a message: ok false, kind damaged, exit 1."""
    target = foreign_sqlite(tmp_path)
    result = CliRunner().invoke(main, ["--db", target, "verify", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["finding"]["kind"] == "damaged"
    assert "not a dinsos-ledger database" in report["finding"]["message"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_history_refuses_a_gap_even_when_the_link_went_too(target: str) -> None:
    """An event deleted with its chain link keeps the counts equal: history still refuses."""
    _import(target)
    oid = subject_id("KT-HH-0001")
    with contextlib.closing(sqlite3.connect(target)) as conn, conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f'DROP TRIGGER "{name}"')
        (position,) = conn.execute(
            "SELECT rowid FROM stored_events WHERE originator_version = 2 "
            "AND originator_id IN (?, ?, ?)",
            (oid.hex, str(oid), oid.bytes),
        ).fetchone()
        conn.execute("DELETE FROM stored_events WHERE rowid = ?", (position,))
        conn.execute("DELETE FROM dinsos_chain WHERE position = ?", (position,))
    result = CliRunner().invoke(main, ["--db", target, "history", "KT-HH-0001"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: the events of KT-HH-0001 skip from version 1 to 3: an event was removed "
        "outside the ledger; run `dinsos-ledger verify` to locate it\n"
    )
    verified = CliRunner().invoke(main, ["--db", target, "verify"])
    assert verified.exit_code == 1
