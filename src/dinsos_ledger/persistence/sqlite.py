"""The ledger's SQLite recorder (the embedded default). Imports no PostgreSQL driver.

It extends eventsourcing's SQLite application recorder so that, in the one transaction
that inserts a batch of events (eventsourcing's ``insert_events`` wraps ``_insert_events``
in ``datastore.transaction(commit=True)``), it also

- remembers the ids (and keyed digests) of the accepted commands, so that a restart does
  not forget them and a repeated id is recognised;
- stores each new subject's wrapped data key, and deletes the keys of forgotten subjects;
- extends the integrity chain by one link per event (see :mod:`dinsos_ledger.chain`);
- keeps the keyed index of NIKs and family-card numbers (MACs, never the values), adding a
  new subject's entries and deleting a forgotten subject's.

Any exception in any of these writes rolls the whole batch back. Triggers refuse UPDATE
and DELETE on the events and chain tables (SQLite has no TRUNCATE; its ``DELETE`` without
``WHERE`` fires the triggers too), see :meth:`LedgerSQLiteRecorder.guard_definitions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from dinsos_ledger import chain
from dinsos_ledger.key_tables import SQLITE_KEY_TABLES, SQLiteKeyTables, sqlite_check_key
from dinsos_ledger.persistence.adapter import SQLiteCursor, run_outside_transaction
from dinsos_ledger.persistence.common import (
    GUARD_PREFIX,
    GUARDS_VERSION,
    INDEX_TABLE,
    STORAGE_TABLE,
    StoredRow,
    check_version,
    links_for,
    stored_blob,
    stored_event,
    stored_value,
)

__all__ = ["LedgerSQLiteRecorder"]


class LedgerSQLiteRecorder(SQLiteKeyTables, SQLiteApplicationRecorder):
    """SQLite recorder that also keeps command ids, data keys and the chain, atomically."""

    #: Which backend this recorder writes to.
    backend: ClassVar[str] = "sqlite"
    #: The table of chain links.
    chain_table_name: ClassVar[str] = "dinsos_chain"

    def construct_create_table_statements(self) -> list[str]:
        """eventsourcing's events table plus the ledger's own tables."""
        return [
            *super().construct_create_table_statements(),
            (
                "CREATE TABLE IF NOT EXISTS dinsos_commands ("
                "id TEXT PRIMARY KEY, digest TEXT NOT NULL) WITHOUT ROWID"
            ),
            (
                "CREATE TABLE IF NOT EXISTS dinsos_keys ("
                "subject_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID"
            ),
            (
                "CREATE TABLE IF NOT EXISTS dinsos_chain ("
                "position INTEGER PRIMARY KEY, hash BLOB NOT NULL)"
            ),
            (
                f"CREATE TABLE IF NOT EXISTS {STORAGE_TABLE} ("
                "name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
            ),
            *SQLITE_KEY_TABLES,
            (
                f"CREATE TABLE IF NOT EXISTS {INDEX_TABLE} ("
                "subject_id TEXT NOT NULL, field TEXT NOT NULL, mac TEXT NOT NULL, "
                "PRIMARY KEY (subject_id, field)) WITHOUT ROWID"
            ),
            f"CREATE INDEX IF NOT EXISTS {INDEX_TABLE}_mac ON {INDEX_TABLE} (field, mac)",
        ]

    # ------------------------------------------------------------------ guards

    def guard_definitions(self) -> dict[str, str]:
        """The guard triggers, by name: each refuses UPDATE or DELETE on events or chain.

        ``RAISE(ABORT, …)`` ends the statement with an error and undoes what it changed; it
        holds for every connection, whatever tool (the ``sqlite3`` shell included) opens the
        file. SQLite has no TRUNCATE: a ``DELETE`` without ``WHERE`` fires the triggers.
        """
        definitions = {}
        for table in (self.events_table_name, self.chain_table_name):
            for operation in ("UPDATE", "DELETE"):
                name = f"{GUARD_PREFIX}{table}_{operation.lower()}"
                definitions[name] = (
                    f"CREATE TRIGGER {name} BEFORE {operation} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, 'dinsos-ledger: {table} is append-only, "
                    f"{operation} refused'); END"
                )
        return definitions

    def create_table(self) -> None:
        """Create the tables; install the guard triggers once, on creation or first open.

        A row in the storage table records that the guards were installed, so a ledger
        whose triggers were dropped later does not get them back silently on the next
        open: ``verify`` reports them missing (:meth:`guard_problems`) instead.
        """
        super().create_table()
        with self.datastore.transaction(commit=False) as c:
            if self._guards_installed(c):
                return
        with self.datastore.transaction(commit=True) as c:
            # A write first: it takes SQLite's write lock, waiting for other writers, where
            # a read first would pin a snapshot that another opener's commit makes stale
            # ("database is locked" at once, without waiting).
            c.execute(
                f"INSERT OR IGNORE INTO {STORAGE_TABLE} (name, value) VALUES ('guards', ?)",
                (GUARDS_VERSION,),
            )
            c.execute("SELECT changes()")
            if c.fetchone()[0] == 0:  # another process installed them meanwhile
                return
            for name, statement in self.guard_definitions().items():
                c.execute(f"DROP TRIGGER IF EXISTS {name}")
                c.execute(statement)

    @staticmethod
    def _guards_installed(c: SQLiteCursor) -> bool:
        c.execute(f"SELECT value FROM {STORAGE_TABLE} WHERE name = 'guards'")
        return c.fetchone() is not None

    def guard_problems(self) -> list[str]:
        """A sentence for each guard trigger that is missing or not as the ledger made it."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND substr(name, 1, ?) = ?",
                (len(GUARD_PREFIX), GUARD_PREFIX),
            )
            found = {row[0]: row[1] for row in c.fetchall()}
        problems = []
        for name, statement in self.guard_definitions().items():
            if name not in found:
                problems.append(
                    f"guard trigger {name} is missing: the append-only guard was removed"
                )
            elif found[name] != statement:
                problems.append(f"guard trigger {name} was altered: it is not the ledger's")
        return problems

    # ------------------------------------------------------------------ writes

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert the events (eventsourcing's own insert), then the ledger's rows.

        eventsourcing's ``insert_events`` runs this in one ``transaction(commit=True)``: an
        exception anywhere here rolls the events back too.
        """
        positions = list(super()._insert_events(c, stored_events, **kwargs) or ())
        for sid, version in kwargs.get("expect") or ():
            c.execute(
                f"SELECT MAX(originator_version) FROM {self.events_table_name} "
                "WHERE originator_id = ?",
                (sid.hex,),
            )
            check_version(sid, version, c.fetchone()[0])
        c.execute("SELECT hash FROM dinsos_chain ORDER BY position DESC LIMIT 1")
        row = c.fetchone()
        head = bytes(row[0]) if row else chain.GENESIS
        c.executemany(
            "INSERT INTO dinsos_chain (position, hash) VALUES (?, ?)",
            links_for(head, positions, stored_events),
        )
        commands = kwargs.get("commands") or ()
        if commands:
            c.executemany("INSERT INTO dinsos_commands (id, digest) VALUES (?, ?)", commands)
        keys = kwargs.get("keys") or ()
        if keys:
            sqlite_check_key(c, kwargs.get("key_check"))
            c.executemany(
                "INSERT INTO dinsos_keys (subject_id, wrapped) VALUES (?, ?)",
                [(sid.hex, wrapped) for sid, wrapped in keys],
            )
        # A subject registered and forgotten in one batch: its entries go in, then out.
        index = kwargs.get("index") or ()
        if index:
            c.executemany(
                f"INSERT INTO {INDEX_TABLE} (subject_id, field, mac) VALUES (?, ?, ?)",
                [(sid.hex, field, mac) for sid, field, mac in index],
            )
        shred = kwargs.get("shred") or ()
        if shred:
            # Overwrite the deleted key bytes in the page, not just unlink them.
            c.execute("PRAGMA secure_delete = ON")
        for sid in shred:
            c.execute("DELETE FROM dinsos_keys WHERE subject_id = ?", (sid.hex,))
            c.execute(f"DELETE FROM {INDEX_TABLE} WHERE subject_id = ?", (sid.hex,))
        return positions

    def purge_shredded(self) -> None:
        """Truncate the write-ahead log, so no old page image of a shredded key survives.

        Best effort: a reader in another process can keep the log from being truncated now;
        SQLite then truncates it at a later checkpoint.
        """
        run_outside_transaction(self.datastore, "PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------------ reads

    def select_command_digests(self, ids: Iterable[str]) -> dict[str, str]:
        """The stored digests of those of ``ids`` that were accepted."""
        found: dict[str, str] = {}
        ids = list(ids)
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                c.execute(f"SELECT id, digest FROM dinsos_commands WHERE id IN ({marks})", chunk)
                found.update((row[0], row[1]) for row in c.fetchall())
        return found

    def select_events_of(
        self, subject_ids: Sequence[UUID], *, snapshots_table: str = "stored_snapshots"
    ) -> tuple[list[StoredEvent], list[StoredEvent]]:
        """The latest snapshot (if any) and the later events of each of ``subject_ids``.

        One read transaction for a whole batch of subjects, instead of one per subject.
        Returns ``(snapshots, events)``, events ordered by subject and version.
        """
        snapshots: dict[str, StoredEvent] = {}
        events: list[StoredEvent] = []
        hexes = [sid.hex for sid in subject_ids]
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(hexes), 500):
                chunk = hexes[start : start + 500]
                marks = ",".join("?" * len(chunk))
                c.execute(
                    "SELECT originator_id, originator_version, topic, state "
                    f"FROM {snapshots_table} WHERE originator_id IN ({marks}) "
                    "ORDER BY originator_id, originator_version",
                    chunk,
                )
                for row in c.fetchall():
                    snapshots[row[0]] = stored_event(row)
                plain = [h for h in chunk if h not in snapshots]
                if plain:
                    marks = ",".join("?" * len(plain))
                    c.execute(
                        f"SELECT originator_id, originator_version, topic, state "
                        f"FROM {self.events_table_name} WHERE originator_id IN ({marks}) "
                        "ORDER BY originator_id, originator_version",
                        plain,
                    )
                    events.extend(stored_event(row) for row in c.fetchall())
            for hex_id, snapshot in snapshots.items():
                c.execute(
                    f"SELECT originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} WHERE originator_id = ? "
                    "AND originator_version > ? ORDER BY originator_version",
                    (hex_id, snapshot.originator_version),
                )
                events.extend(stored_event(row) for row in c.fetchall())
        return list(snapshots.values()), events

    def select_originators_after(self, position: int, *, limit: int) -> list[tuple[int, UUID]]:
        """``(position, subject id)`` of up to ``limit`` events recorded after ``position``."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid, originator_id FROM {self.events_table_name} WHERE rowid > ? "
                "ORDER BY rowid LIMIT ?",
                (position, limit),
            )
            return [(row[0], UUID(row[1])) for row in c.fetchall()]

    def select_wrapped_key(self, subject_id: UUID) -> bytes | None:
        """The wrapped data key of a subject, or None once shredded."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT wrapped FROM dinsos_keys WHERE subject_id = ?", (subject_id.hex,))
            row = c.fetchone()
            return bytes(row[0]) if row else None

    def select_position(self, what: str, which: str, after: int = 0) -> int | None:
        """A position in the events (``row``) or chain (``link``) table; None when none.

        ``which`` is ``first``, ``last`` or ``next`` (the first after ``after``). Reads no
        column but the position, so a row of any content is found.
        """
        table = self.events_table_name if what == "row" else self.chain_table_name
        column = "rowid" if what == "row" else "position"
        aggregate = "MAX" if which == "last" else "MIN"
        sql = f"SELECT {aggregate}({column}) FROM {table}"
        params: tuple[int, ...] = ()
        if which == "next":
            sql += f" WHERE {column} > ?"
            params = (after,)
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            found = c.fetchone()
        return None if found is None or found[0] is None else int(found[0])

    def iter_rows(self, *, after: int = 0, page: int = 1000) -> Iterator[StoredRow]:
        """Stream ``(position, originator_id, version, topic, state)`` in position order.

        Each column exactly as stored (see
        :func:`~dinsos_ledger.persistence.common.stored_value`): an id written in upper
        case or with hyphens is returned so, and no longer matches its chain link.
        """
        while True:
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    f"SELECT rowid, originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, page),
                )
                rows = c.fetchall()
            if not rows:
                return
            for row in rows:
                yield (row[0], *(stored_value(row[i]) for i in range(1, 5)))
            after = rows[-1][0]

    def iter_links(self, *, after: int = 0, page: int = 1000) -> Iterator[tuple[int, bytes]]:
        """Stream the stored chain ``(position, hash)`` in position order."""
        while True:
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    "SELECT position, hash FROM dinsos_chain WHERE position > ? "
                    "ORDER BY position LIMIT ?",
                    (after, page),
                )
                rows = c.fetchall()
            if not rows:
                return
            for row in rows:
                yield (row[0], stored_blob(row[1]))
            after = rows[-1][0]
