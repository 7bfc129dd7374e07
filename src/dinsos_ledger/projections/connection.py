"""The projection engine's own connection to the ledger's database.

Projections live in the ledger's database (the SQLite file, or the PostgreSQL schema), but
they are written through a connection of their own, opened from the same target with the
database's own driver (``sqlite3``, ``psycopg``), not through eventsourcing's datastore.
That keeps the projection layer on eventsourcing's documented reading API only (the
recorder's ``select_notifications`` and ``max_notification_id``) and lets it control its
transactions fully: a page and its tracking positions commit together or not at all.

- **SQLite**: connections in autocommit mode; a write transaction starts with
  ``BEGIN IMMEDIATE``, so it holds the database's write lock from its first statement
  (two processes never both believe they may write a page), and waits up to the ledger's
  lock timeout for it. ``synchronous=NORMAL`` on this connection only: projections are
  derived data, and WAL keeps every commit atomic (see :meth:`Connection.write`).
- **PostgreSQL**: sessions with ``search_path`` set to the ledger's schema; a write
  transaction sets ``synchronous_commit`` off for itself; a read is ``REPEATABLE READ``
  (one snapshot for every query in it). A session found closed is opened again, and one
  idle for a while is checked first, so a connection cut while idle costs nothing.

Usually one connection serves every transaction in turn; a transaction begun while another
is open (a query made while a streamed read is still being consumed) gets one of its own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

from dinsos_ledger.errors import StorageError

__all__ = ["Connection", "Dialect"]

Dialect = Literal["sqlite", "postgres"]

# A PostgreSQL session idle longer than this is checked before use (it may have been cut).
_IDLE_CHECK_SECONDS: Final = 5.0
# Idle connections kept for the next transaction; more are closed when released.
_IDLE_KEPT: Final = 2


class _Settings:
    """Setting names looked up in layers, first non-empty value wins."""

    def __init__(self, *layers: Any) -> None:
        self._layers = [layer for layer in layers if layer is not None]

    def get(self, key: str, default: str = "") -> str:
        for layer in self._layers:
            value = layer.get(key)
            if value:
                return str(value)
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if not value:
            raise KeyError(key)
        return value


class Connection:
    """The projection engine's connections to the database of ``target``.

    ``target`` is the ledger's :class:`~dinsos_ledger.storage.Target`; ``settings`` maps
    eventsourcing's setting names (``SQLITE_DBNAME``, ``POSTGRES_HOST`` …) to the values
    the ledger's application was opened with (its ``env``), so both connect alike.
    Nothing is opened until the first transaction.
    """

    def __init__(
        self,
        target: Any,
        settings: Mapping[str, str] | _Settings | None = None,
        *,
        single: bool = False,
    ) -> None:
        self.dialect: Dialect = "postgres" if target.is_postgres else "sqlite"
        self._target = target
        # The application's settings first (what the ledger was opened with), then the target's.
        self._env: _Settings = _Settings(settings, target.env)
        self._display: str = target.display
        # Idle driver connections with the time each was last used. A transaction opened
        # while another is open (a query inside a streamed read) gets a connection of its
        # own, as it would from a pool; ``single`` forbids that (temporary tables live in
        # one session).
        self._idle: list[tuple[Any, float]] = []
        self._busy = 0
        self._single = single

    def scratch(self, folder: str) -> Connection:
        """A connection to a private, empty store of the same kind, for derived copies.

        SQLite: a new file in ``folder``. PostgreSQL: a session of its own whose tables
        are temporary (``search_path`` is ``pg_temp``), gone when the session closes.
        ``verify`` rebuilds projections there to compare them with the stored ones.
        """
        overrides = {
            "SQLITE_DBNAME": str(Path(folder) / "scratch.sqlite"),
            "POSTGRES_SCHEMA": "pg_temp",
        }
        return Connection(self._target, _Settings(overrides, self._env), single=True)

    # ---------------------------------------------------------------- opening

    def _connect_sqlite(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._env["SQLITE_DBNAME"],
                uri=True,
                isolation_level=None,  # transactions are begun explicitly
                check_same_thread=False,
                timeout=float(self._env.get("SQLITE_LOCK_TIMEOUT", "5")),
            )
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the projections at {self._display}: {e}") from e
        return conn

    def postgres_conninfo(self) -> dict[str, Any]:
        """The keyword arguments of ``psycopg.connect`` for the ledger's database."""
        env = self._env
        return {
            "dbname": env["POSTGRES_DBNAME"],
            "host": env["POSTGRES_HOST"],
            "port": int(env.get("POSTGRES_PORT", "5432")),
            "user": env.get("POSTGRES_USER", "postgres"),
            "password": env.get("POSTGRES_PASSWORD", ""),
            "connect_timeout": int(env.get("POSTGRES_CONNECT_TIMEOUT", "10")),
        }

    @property
    def schema(self) -> str:
        """The PostgreSQL schema of the ledger's tables."""
        return self._env.get("POSTGRES_SCHEMA") or "public"

    def connect_postgres(self, *, autocommit: bool = True) -> Any:
        """A new PostgreSQL session on the ledger's schema (tuples for rows)."""
        import psycopg
        from psycopg.sql import SQL, Identifier

        try:
            conn = psycopg.connect(**self.postgres_conninfo(), autocommit=autocommit)
            conn.execute(SQL("SET search_path TO {0}").format(Identifier(self.schema)))
        except psycopg.Error as e:
            raise StorageError(f"cannot connect to {self._display}: {e}") from e
        return conn

    def _alive(self, conn: Any, used: float) -> bool:
        if self.dialect == "sqlite":
            return True
        import psycopg

        if conn.closed:
            return False
        if time.monotonic() - used <= _IDLE_CHECK_SECONDS:
            return True
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            conn.close()
            return False
        return True

    def _acquire(self) -> Any:
        while self._idle:
            conn, used = self._idle.pop()
            if self._alive(conn, used):
                self._busy += 1
                return conn
        if self._single and self._busy:
            msg = "a private projection store allows one transaction at a time"
            raise StorageError(msg)
        conn = self._connect_sqlite() if self.dialect == "sqlite" else self.connect_postgres()
        self._busy += 1
        return conn

    def _release(self, conn: Any) -> None:
        self._busy -= 1
        broken = self.dialect == "postgres" and (conn.closed or conn.broken)
        if broken or len(self._idle) >= _IDLE_KEPT:
            conn.close()
            return
        self._idle.append((conn, time.monotonic()))

    # ---------------------------------------------------------- transactions

    @contextmanager
    def write(self) -> Iterator[Any]:
        """A write transaction (a DB-API cursor): commits on success, else rolls back."""
        conn = self._acquire()
        try:
            if self.dialect == "sqlite":
                with self._errors("update"):
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield conn.cursor()
                        conn.commit()
                    except BaseException:
                        if conn.in_transaction:
                            conn.rollback()
                        raise
                return
            from psycopg.rows import tuple_row

            with self._errors("update"), conn.transaction():
                cursor = conn.cursor(row_factory=tuple_row)
                # A page lost to a crash before it reached the disk is simply applied again.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
                yield cursor
        finally:
            self._release(conn)

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A read-only transaction seeing one snapshot; yields the driver's connection."""
        conn = self._acquire()
        try:
            if self.dialect == "sqlite":
                with self._errors("read"):
                    conn.execute("BEGIN")
                    try:
                        yield conn
                    finally:
                        conn.rollback()
                return
            with self._errors("read"), conn.transaction(force_rollback=True):
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                # A reader may pause between its queries for as long as its caller works
                # (verify rebuilds every projection in a shadow store while this snapshot
                # stays open): a session's idle-in-transaction timeout must not cut it.
                conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                yield conn
        finally:
            self._release(conn)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise StorageError(f"cannot {what} the projections: {e}") from e
        except Exception as e:
            import psycopg

            if isinstance(e, psycopg.Error):
                raise StorageError(f"cannot {what} the projections: {e}") from e
            raise

    def close(self) -> None:
        """Close the idle connections (a later transaction opens one again)."""
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()
