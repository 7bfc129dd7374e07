"""Direct access to a ledger's store, as someone with database access would have it.

``drop_guards`` removes the append-only triggers the way a deliberate attacker (or a
careless administrator) would, so that tests of what ``verify`` finds can edit rows.
``run_sql`` runs one statement straight on the store, outside the ledger.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any

SQLITE_GUARDS = (
    "dinsos_guard_stored_events_update",
    "dinsos_guard_stored_events_delete",
    "dinsos_guard_dinsos_chain_update",
    "dinsos_guard_dinsos_chain_delete",
)


def split(target: str) -> tuple[str, str]:
    """``(url, schema)`` of a PostgreSQL test target ``URL?schema=NAME``."""
    url, _, query = target.partition("?")
    return url, query.removeprefix("schema=")


def tables(target: str) -> dict[str, str]:
    """The names of the events and chain tables and the position column, as the store has them."""
    if target.startswith("postgresql://"):
        _, schema = split(target)
        return {
            "events": f'"{schema}".ledger_events',
            "chain": f'"{schema}".dinsos_chain',
            "keys": f'"{schema}".dinsos_keys',
            "snapshots": f'"{schema}".ledger_snapshots',
            "pos": "notification_id",
        }
    return {
        "events": "stored_events",
        "chain": "dinsos_chain",
        "keys": "dinsos_keys",
        "snapshots": "stored_snapshots",
        "pos": "rowid",
    }


def run_sql(target: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (``?`` marks, ``{events}``-style names) on the store, committed."""
    sql = sql.format(**tables(target))
    if target.startswith("postgresql://"):
        import psycopg

        url, _ = split(target)
        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(sql.replace("?", "%s"), params)  # type: ignore[call-overload]
            return list(cursor.fetchall()) if cursor.description else []
    with contextlib.closing(sqlite3.connect(target)) as conn, conn:
        return list(conn.execute(sql, params).fetchall())


def drop_guards(target: str) -> None:
    """Drop the append-only guard triggers of the events and chain tables."""
    if target.startswith("postgresql://"):
        for table in ("{events}", "{chain}"):
            run_sql(target, f"DROP TRIGGER IF EXISTS dinsos_guard_rows ON {table}")
            run_sql(target, f"DROP TRIGGER IF EXISTS dinsos_guard_truncate ON {table}")
        return
    for name in SQLITE_GUARDS:
        run_sql(target, f"DROP TRIGGER IF EXISTS {name}")


def restore_guards(target: str) -> None:
    """Put the guard triggers back exactly, as an attacker hiding an edit would.

    The ledger installs them again on its next open once its record of having installed
    them is gone.
    """
    storage = "dinsos_storage"
    if target.startswith("postgresql://"):
        storage = f'"{split(target)[1]}".dinsos_storage'
    run_sql(target, f"DELETE FROM {storage} WHERE name = 'guards'")
    from dinsos_ledger.application import Ledger

    with Ledger(target):
        pass


def edit_quietly(target: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Drop the guards, run ``sql`` on the store, and put the guards back."""
    drop_guards(target)
    try:
        return run_sql(target, sql, params)
    finally:
        restore_guards(target)
