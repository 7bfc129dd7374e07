"""The few undocumented eventsourcing names the ledger's storage relies on, in one place.

Everything else in :mod:`dinsos_ledger.persistence` uses eventsourcing's documented API:
recorder subclasses, ``construct_create_table_statements``, ``_insert_events`` overridden
with a call to ``super()`` (the library's own "searchable content" examples do so),
``datastore.transaction``, ``APPLICATION_RECORDER_TOPIC``. What is not documented lives
here, each with the reason it is needed; ``tests/unit/test_persistence_adapter.py`` pins
the behaviour relied on, so an eventsourcing upgrade that changes it fails in CI (which
runs against the oldest and the newest eventsourcing that ``pyproject.toml`` allows).

Besides the functions here, :mod:`dinsos_ledger.persistence.postgres` sets
``PostgresFactory.aggregate_recorder_class`` (the class eventsourcing's factory builds the
snapshots recorder from) and overrides ``insert_events`` whole (see
:data:`POSTGRES_INSERT_OVERRIDDEN`); both are pinned by the same tests.

This module imports no database driver: the PostgreSQL parts take the objects they act
on as arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore
from eventsourcing.utils import retry

__all__ = [
    "POSTGRES_INSERT_OVERRIDDEN",
    "SQLiteCursor",
    "drop_postgres_insert_function",
    "extend_postgres_create_statements",
    "retry_reads",
    "run_outside_transaction",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: eventsourcing's ``PostgresApplicationRecorder.insert_events`` catches an exception raised
#: while the new positions are fetched (``_fetch_ids_after_insert_events``), lets the
#: transaction commit, then re-raises; and its documented ``_insert_events`` hook runs
#: before the events are inserted, so it cannot see their positions. The ledger's
#: PostgreSQL recorder therefore owns ``insert_events`` whole: one transaction, the events
#: table locked, the events inserted, then the ledger's rows, and any exception rolls all
#: of it back. This flag names that deviation for the pinning tests.
POSTGRES_INSERT_OVERRIDDEN: Final = True


def retry_reads(func: _F) -> _F:
    """Retry a read when an idle pooled connection was cut, as eventsourcing's own reads do.

    ``eventsourcing.utils.retry`` is not documented; it is what the library wraps its own
    PostgreSQL reads in (a server restart or network drop replaces the connection).
    """
    wrapped: _F = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)(func)
    return wrapped


def run_outside_transaction(datastore: SQLiteDatastore, statement: str) -> None:
    """Run one SQLite statement that cannot run inside a transaction (a WAL checkpoint).

    eventsourcing's SQLite datastore hands out connections only inside a transaction it has
    begun; this ends that transaction, runs the statement and begins another one, which
    eventsourcing then ends as it would have.
    """
    with datastore.transaction(commit=False) as c:
        c.execute("ROLLBACK")
        c.execute(statement)
        c.execute("BEGIN")


def extend_postgres_create_statements(recorder: Any, statements: Iterable[Any]) -> None:
    """Add the ledger's DDL to a PostgreSQL recorder's ``sql_create_statements``.

    eventsourcing's PostgreSQL recorders keep their DDL in that list (its SQLite recorders
    offer ``construct_create_table_statements`` instead); ``create_table`` runs all of it.
    """
    recorder.sql_create_statements.extend(statements)


def drop_postgres_insert_function(recorder: Any) -> None:
    """Leave eventsourcing's database insert function out of a PostgreSQL recorder's DDL.

    The ledger never inserts through it (it would skip the ledger's own rows, so the
    recorder refuses ``POSTGRES_ENABLE_DB_FUNCTIONS``), and eventsourcing 9.5.0 creates it
    unqualified, in the first schema of the search path (``public``), which a ledger's
    owner role need not be allowed to write.
    """
    name = recorder.pg_function_name_insert_events
    recorder.sql_create_statements[:] = [
        statement
        for statement in recorder.sql_create_statements
        if not (
            "CREATE OR REPLACE FUNCTION" in statement.as_string() and name in statement.as_string()
        )
    ]
