"""Is ``--db`` a dinsos-ledger store at all? Checked before a verb opens (or creates) a ledger.

A text file, a damaged SQLite file, the SQLite database of another program or a PostgreSQL
schema holding another application's tables must never be taken for a ledger: opening one
would end in a driver's traceback or, worse, add the ledger's tables to someone else's
database. :func:`store_problem` names what is wrong in one sentence; it reads the file's
header and the list of tables only, so it costs nothing on a large ledger.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Final
from urllib.parse import quote

from dinsos_ledger.storage import Target

__all__ = ["damaged_message", "store_problem"]

_SQLITE_HEADER: Final = b"SQLite format 3\x00"
# Tables that only a ledger has (eventsourcing's events table, the ledger's own).
_SQLITE_EVENTS: Final = "stored_events"
_POSTGRES_EVENTS: Final = "ledger_events"
_OURS: Final = ("dinsos_", "proj_")
_SHOWN_TABLES: Final = 5


def _foreign(display: str, tables: list[str], events: str) -> str | None:
    if not tables or events in tables or any(t.startswith(_OURS) for t in tables):
        return None
    shown = ", ".join(sorted(tables)[:_SHOWN_TABLES])
    more = "…" if len(tables) > _SHOWN_TABLES else ""
    return (
        f"{display} is not a dinsos-ledger database: it holds another application's "
        f"tables ({shown}{more}); give the ledger's own --db"
    )


def _sqlite_problem(path: Path, display: str) -> str | None:
    if not path.exists():
        return None
    if path.is_dir():
        return f"{display} is a directory, not a ledger file: give the ledger's file with --db"
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as e:
        return f"cannot read {display}: {e.strerror}"
    if not header:
        return None  # an empty file is an empty SQLite database
    if header != _SQLITE_HEADER:
        return (
            f"{display} is not a SQLite database (it does not start like one): "
            "give the ledger's file with --db"
        )
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error as e:
        return f"{display} is a damaged SQLite database ({e}): restore it from a backup"
    return _foreign(display, [str(row[0]) for row in rows], _SQLITE_EVENTS)


def _postgres_problem(target: Target) -> str | None:
    import psycopg

    env = target.env
    schema = env.get("POSTGRES_SCHEMA", "public")
    try:
        with psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env.get("POSTGRES_PASSWORD", ""),
            connect_timeout=int(float(env.get("POSTGRES_CONNECT_TIMEOUT", "10"))),
        ) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
    except psycopg.Error:
        return None  # unreachable or refused: the ledger's own opening reports it
    where = target.display if schema == "public" else f"{target.display} (schema {schema})"
    return _foreign(where, [str(row[0]) for row in rows], _POSTGRES_EVENTS)


def store_problem(target: Target) -> str | None:
    """Why ``target`` is not a ledger (damaged, foreign, not a database), or None.

    None also when there is nothing there yet: whether a verb may create a ledger is
    decided elsewhere.
    """
    if target.is_postgres:
        return _postgres_problem(target)
    if target.path is None:
        return None
    return _sqlite_problem(Path(target.path), target.display)


def damaged_message(display: str, error: BaseException) -> str:
    """The message for a store that failed while being read: what, where, what to do."""
    from eventsourcing.domain import OriginatorVersionError

    if isinstance(error, OriginatorVersionError) and len(error.args) == 2:  # noqa: PLR2004
        found, expected = error.args
        return (
            f"the ledger at {display} is inconsistent: a subject's events skip from one "
            f"version to {found} where {expected} was expected (an event was removed or "
            "changed outside the ledger); run `dinsos-ledger verify` to locate it"
        )
    reason = str(error).strip() or type(error).__name__
    return (
        f"cannot read the ledger at {display}: {reason[:300]} (the database is damaged or was "
        "changed outside the ledger; run `dinsos-ledger verify`)"
    )
