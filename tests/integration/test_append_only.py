"""Append-only at the database: stored events and chain links can only be inserted.

Each refused statement is tried as an attacker would try it: with the ``sqlite3`` module
on the file, or as the PostgreSQL superuser; then nothing must have changed. With the
guard triggers dropped first (a deliberate act), ``verify`` still finds the edit and names
the missing guard.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dinsos_ledger import audit
from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.importer import import_files

from tests.attacker import SQLITE_GUARDS, drop_guards, run_sql, split

FIELD_OFFICE = Path(__file__).resolve().parents[1] / "data" / "field_office.jsonl"


def _state(target: str) -> tuple[list[Any], list[Any]]:
    """Every stored event row and chain link, as stored."""
    events = run_sql(
        target,
        "SELECT {pos}, originator_id, originator_version, topic, state FROM {events} ORDER BY 1",
    )
    links = run_sql(target, "SELECT position, hash FROM {chain} ORDER BY 1")
    return [tuple(map(_plain, row)) for row in events], [tuple(map(_plain, r)) for r in links]


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


@pytest.fixture
def loaded(target: str) -> str:
    """A ledger holding the field-office fixture (59 events)."""
    with Ledger(target) as ledger:
        report = import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
        assert report.accepted == 60
    return target


REFUSED = [
    "UPDATE {events} SET topic = topic",
    "UPDATE {events} SET state = ? WHERE {pos} = 3",
    "DELETE FROM {events} WHERE {pos} = 59",
    "DELETE FROM {events}",
    "UPDATE {chain} SET hash = ? WHERE position = 3",
    "DELETE FROM {chain} WHERE position = 59",
    "DELETE FROM {chain}",
]


@pytest.mark.parametrize("statement", REFUSED)
def test_each_update_or_delete_of_events_or_links_is_refused_and_changes_nothing(
    loaded: str, statement: str
) -> None:
    """UPDATE and DELETE on the events and chain tables fail; every row stays as it was."""
    target = loaded
    before = _state(target)
    params = (b"forged",) if "?" in statement else ()
    with pytest.raises(Exception, match="append-only"):
        run_sql(target, statement, params)
    assert _state(target) == before
    with Ledger(target) as ledger:
        assert audit.verify(ledger).ok


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE {events}",
        "TRUNCATE {chain}",
        "TRUNCATE {events}, {chain}",
        "TRUNCATE {events}, {chain} CASCADE",
    ],
)
@pytest.mark.parametrize("replica", [False, True], ids=["origin", "replica-role"])
def test_truncate_is_refused_even_for_the_superuser(
    loaded: str, backend: str, statement: str, *, replica: bool
) -> None:
    """PostgreSQL's superuser cannot TRUNCATE, even with session_replication_role = replica."""
    if backend != "postgres":
        pytest.skip("SQLite has no TRUNCATE (its DELETE without WHERE is refused above)")
    import psycopg

    target = loaded
    before = _state(target)
    url, schema = split(target)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if replica:
            conn.execute("SET session_replication_role = replica")
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(f'DELETE FROM "{schema}".ledger_events')
        events, chain = f'"{schema}".ledger_events', f'"{schema}".dinsos_chain'
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute(statement.format(events=events, chain=chain))
    assert _state(target) == before


def test_the_sqlite_shell_gets_the_guards_message(loaded: str, backend: str) -> None:
    """The sqlite3 module (what the command-line shell uses) is refused with a clear message."""
    if backend != "sqlite":
        pytest.skip("the SQLite file")
    with (
        contextlib.closing(sqlite3.connect(loaded)) as conn,
        pytest.raises(sqlite3.IntegrityError, match="stored_events is append-only, DELETE"),
    ):
        conn.execute("DELETE FROM stored_events")


def test_with_the_guards_dropped_verify_finds_the_edit(loaded: str) -> None:
    """Dropping the triggers is possible, but the edit made after it is still found."""
    target = loaded
    drop_guards(target)
    run_sql(target, "DELETE FROM {events} WHERE {pos} = 30")
    with Ledger(target) as ledger:
        report = audit.verify(ledger)
    assert not report.ok
    assert report.finding is not None
    assert report.finding.kind == "removed"
    assert report.finding.position == 30


def _guard_names(backend: str) -> list[str]:
    if backend == "sqlite":
        return list(SQLITE_GUARDS)
    return [
        f"dinsos_guard_{kind} ON {{{table}}}"
        for table in ("events", "chain")
        for kind in ("rows", "truncate")
    ]


def test_verify_names_each_missing_guard_and_exits_1(loaded: str, backend: str) -> None:
    """A guard dropped (and nothing else changed) is a ``guard`` finding, exit 1, named."""
    target = loaded
    for name in _guard_names(backend):
        run_sql(target, f"DROP TRIGGER {name}")
        shown = name.split(" ON ")[0]
        with Ledger(target) as ledger:
            report = audit.verify(ledger)
        assert not report.ok
        assert report.finding is not None
        assert report.finding.kind == "guard"
        assert shown in report.finding.message
        assert "missing" in report.finding.message
    result = CliRunner().invoke(main, ["--db", target, "verify"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "guard" in result.stdout
    assert "missing" in result.stdout


def test_verify_reports_a_guard_that_was_altered_or_disabled(loaded: str, backend: str) -> None:
    """A guard replaced by one that lets edits through, or disabled, is a ``guard`` finding."""
    target = loaded
    if backend == "sqlite":
        run_sql(target, "DROP TRIGGER dinsos_guard_stored_events_update")
        run_sql(
            target,
            "CREATE TRIGGER dinsos_guard_stored_events_update BEFORE UPDATE ON stored_events "
            "WHEN 0 BEGIN SELECT RAISE(ABORT, 'append-only'); END",
        )
        alterations = ["altered"]
    else:
        _, schema = split(target)
        run_sql(target, "ALTER TABLE {events} DISABLE TRIGGER dinsos_guard_rows")
        with Ledger(target) as ledger:
            report = audit.verify(ledger)
        assert report.finding is not None
        assert report.finding.kind == "guard"
        assert "not enabled" in report.finding.message
        run_sql(target, "ALTER TABLE {events} ENABLE ALWAYS TRIGGER dinsos_guard_rows")
        run_sql(
            target,
            f'CREATE OR REPLACE FUNCTION "{schema}".dinsos_refuse_change() RETURNS trigger '
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        )
        alterations = ["altered"]
    with Ledger(target) as ledger:
        report = audit.verify(ledger)
    assert not report.ok
    assert report.finding is not None
    assert report.finding.kind == "guard"
    assert all(word in report.finding.message for word in alterations)


def test_an_older_ledger_gets_its_guards_on_first_open_without_rewriting_a_row(
    loaded: str,
) -> None:
    """A ledger made before the guards is guarded on first open; no stored row changes."""
    target = loaded
    drop_guards(target)
    _, schema = split(target)
    storage = f'"{schema}".dinsos_storage' if target.startswith("postgresql") else "dinsos_storage"
    run_sql(target, f"DROP TABLE {storage}")  # as before this version
    before = _state(target)
    with Ledger(target) as ledger:
        assert audit.verify(ledger).ok
    assert _state(target) == before
    with pytest.raises(Exception, match="append-only"):
        run_sql(target, "DELETE FROM {chain}")
    # Installed once: dropped again later, they are reported, not silently put back.
    drop_guards(target)
    with Ledger(target) as ledger:
        report = audit.verify(ledger)
    assert report.finding is not None
    assert report.finding.kind == "guard"


def test_forget_snapshots_and_rebuild_work_with_the_guards(loaded: str) -> None:
    """forget deletes a wrapped key, not an event; the ledger's other work needs no edit."""
    target = loaded
    with Ledger(target) as ledger:
        outcome = ledger.execute(
            {
                "id": "forget-kt-hh-0002",
                "command": "forget",
                "ref": "KT-HH-0002",
                "on": "2025-04-01",
                "actor": "operator.dinsos",
                "reason": "permintaan penghapusan data",
            }
        )
        assert outcome.status in {"accepted", "duplicate"}, outcome
        assert ledger.show("KT-HH-0002")["head_nik"] is None
        assert audit.verify(ledger).ok
    result = CliRunner().invoke(main, ["--db", target, "rebuild"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------- PostgreSQL roles


@pytest.fixture
def roles(make_target: Callable[[], str], backend: str) -> Iterator[tuple[str, str, str, str]]:
    """An owner-created ledger schema, a writer role and a read-only role (dropped after)."""
    if backend != "postgres":
        pytest.skip("PostgreSQL roles")
    import psycopg

    target = make_target()
    url, schema = split(target)
    suffix = uuid.uuid4().hex[:10]
    owner, writer, reader = (f"dinsos_{r}_{suffix}" for r in ("owner", "writer", "reader"))
    with psycopg.connect(url, autocommit=True) as conn:
        for role in (owner, writer, reader):
            conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield target, owner, writer, reader
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            for role in (writer, reader, owner):
                conn.execute(f'DROP OWNED BY "{role}"')
                conn.execute(f'DROP ROLE "{role}"')


def _as(target: str, role: str) -> str:
    url, schema = split(target)
    return url.replace("postgres@", f"{role}@", 1) + f"?schema={schema}"


def test_a_writer_role_imports_and_a_reader_role_verifies(
    roles: tuple[str, str, str, str], tmp_path: Path
) -> None:
    """Owner, writer and reader roles: the writer imports, the reader verifies, neither edits.

    The owner creates the schema; the writer has INSERT and SELECT only on events and chain.
    """
    import psycopg

    target, owner, writer, reader = roles
    url, schema = split(target)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{owner}"')
    # The owner creates the tables, the guards and the projection tables.
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = CliRunner().invoke(main, ["--db", _as(target, owner), "import", str(empty)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["--db", _as(target, owner), "rebuild"])
    assert result.exit_code == 0, result.output
    sql = Path(__file__).resolve().parents[2] / "docs" / "postgresql-roles.sql"
    grants = sql.read_text().replace("ledger_schema", schema)
    grants = grants.replace("ledger_writer", writer).replace("ledger_reader", reader)
    with psycopg.connect(_as(target, owner).split("?")[0], autocommit=True) as conn:
        conn.execute(grants)  # type: ignore[call-overload]
    with Ledger(_as(target, writer)) as ledger:
        report = import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
        assert report.accepted == 60
    with psycopg.connect(_as(target, writer).split("?")[0], autocommit=True) as conn:
        for statement in ("UPDATE {t} SET {c} = {c}", "DELETE FROM {t}", "TRUNCATE {t}"):
            for table, column in (("ledger_events", "topic"), ("dinsos_chain", "hash")):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement.format(t=f'"{schema}".{table}', c=column))
    reader_target = _as(target, reader)
    result = CliRunner().invoke(main, ["--db", reader_target, "verify"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: {len(_state(target)[0])} events\n"
    with Ledger(reader_target) as ledger:
        assert sum(1 for _ in ledger.recorder.iter_rows()) == len(_state(target)[0])
    with (
        psycopg.connect(reader_target.split("?")[0], autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(f'INSERT INTO "{schema}".dinsos_chain VALUES (1000, %s)', (b"x",))


def test_the_command_line_tools_are_refused(loaded: str, backend: str) -> None:
    """``sqlite3 FILE`` and ``psql`` (as the superuser) fail to edit the history, nothing moves."""
    import shutil
    import subprocess

    target = loaded
    before = _state(target)
    if backend == "sqlite":
        tool = shutil.which("sqlite3")
        if tool is None:
            pytest.skip("no sqlite3 command-line tool")
        statements = ["DELETE FROM stored_events;", "UPDATE dinsos_chain SET hash = zeroblob(32);"]
        commands = [[tool, target, statement] for statement in statements]
    else:
        tool = shutil.which("psql")
        if tool is None:
            pytest.skip("no psql")
        url, schema = split(target)
        statements = [
            f'TRUNCATE "{schema}".ledger_events, "{schema}".dinsos_chain',
            f'DELETE FROM "{schema}".ledger_events',
            f'UPDATE "{schema}".dinsos_chain SET hash = hash',
        ]
        commands = [[tool, url, "-v", "ON_ERROR_STOP=1", "-c", s] for s in statements]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode != 0, command
        assert "append-only" in result.stderr
    assert _state(target) == before
