"""Where the ledger keeps its events: SQLite (embedded default) or PostgreSQL.

Both recorders extend eventsourcing's application recorders so that, in the one transaction
that inserts a batch of events, they also

- remember the ids (and keyed digests) of the accepted commands, so that a restart does not
  forget them and a repeated id is recognised;
- store each new subject's wrapped data key, and delete the keys of forgotten subjects;
- extend the integrity chain by one link per event (see :mod:`dinsos_ledger.chain`).

So a batch is recorded whole or not at all, on both backends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from dinsos_ledger import chain
from dinsos_ledger.errors import StorageError

__all__ = [
    "DEFAULT_TARGET",
    "LedgerPostgresRecorder",
    "LedgerRecorder",
    "LedgerSQLiteRecorder",
    "StoredRow",
    "Target",
    "parse_target",
]

DEFAULT_TARGET: Final = "dinsos-ledger.sqlite"
_SCHEMA_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: First key of the advisory lock that serialises table creation ("dins" in ASCII).
_DDL_LOCK_CLASS: Final = 0x64696E73

#: One stored event row as the integrity chain reads it.
StoredRow = tuple[int, str, int, str, bytes]


class Target:
    """A parsed ``--db`` target: a SQLite file path or a PostgreSQL URL."""

    def __init__(self, *, kind: str, display: str, env: dict[str, str], path: str | None):
        self.kind = kind
        self.display = display
        self.env = env
        self.path = path

    @property
    def is_postgres(self) -> bool:
        """True for a PostgreSQL target."""
        return self.kind == "postgres"


def parse_target(target: str | None) -> Target:
    """Turn ``--db`` (or ``$DINSOS_LEDGER_DB``, or the default file) into a :class:`Target`.

    ``postgresql://user[:password]@host[:port]/dbname`` selects PostgreSQL; an optional
    ``?schema=NAME`` keeps the ledger's tables in that schema. Anything else is a SQLite path.
    """
    raw = target or os.environ.get("DINSOS_LEDGER_DB") or DEFAULT_TARGET
    if raw.startswith(("postgresql://", "postgres://")):
        return _postgres_target(raw)
    # ":memory:" is a private in-memory database (for tests and trials): it has no key file.
    dbname = f"file:dinsos-{uuid4().hex}?mode=memory&cache=shared" if raw == ":memory:" else raw
    return Target(
        kind="sqlite",
        display=raw,
        path=None if raw == ":memory:" else raw,
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": dbname,
            "SQLITE_LOCK_TIMEOUT": os.environ.get("DINSOS_LEDGER_LOCK_TIMEOUT", "30"),
            "APPLICATION_RECORDER_TOPIC": "dinsos_ledger.storage:LedgerSQLiteRecorder",
        },
    )


def _postgres_target(raw: str) -> Target:
    parts = urlsplit(raw)
    dbname = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not dbname:
        msg = (
            "'--db' must be postgresql://user[:password]@host[:port]/dbname (got no host or dbname)"
        )
        raise StorageError(msg)
    env = {
        "PERSISTENCE_MODULE": "dinsos_ledger.storage_postgres:LedgerPostgresFactory",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": os.environ.get("DINSOS_LEDGER_CONNECT_TIMEOUT", "10"),
        # The database functions path skips the tracking records: keep it off.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "APPLICATION_RECORDER_TOPIC": "dinsos_ledger.storage_postgres:LedgerPostgresRecorder",
    }
    schema = parse_qs(parts.query).get("schema", [None])[0]
    if schema is not None:
        if not _SCHEMA_RE.fullmatch(schema):
            msg = f"'schema' must be a lower-case SQL identifier (got {schema!r})"
            raise StorageError(msg)
        env["POSTGRES_SCHEMA"] = schema
    user, port = parts.username or "postgres", parts.port or 5432
    shown = f"postgresql://{user}@{parts.hostname}:{port}/{dbname}"
    return Target(kind="postgres", display=shown, env=env, path=None)


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else UUID(originator_id).hex


def _check_version(subject_id: UUID, expected: int, stored: int | None) -> None:
    """Raise IntegrityError when a subject a batch read (and did not write) has changed since.

    ``insert_events(..., expect=[(subject id, version)])`` names those subjects: a command
    that rests on another subject's state (``enrol`` reads whether the household is open)
    is then recorded only if that state is still the one it was judged against.
    """
    if (stored or 0) != expected:
        msg = f"subject {subject_id.hex} is at version {stored}, not {expected} as read"
        raise IntegrityError(msg)


def _links(
    head: bytes, positions: Sequence[int], stored_events: Sequence[StoredEvent]
) -> list[tuple[int, bytes]]:
    links = []
    link = chain.link_unchecked  # positions from the database, parts just encoded
    for position, s in zip(positions, stored_events, strict=True):
        state = s.state if type(s.state) is bytes else bytes(s.state)
        head = link(head, position, _hex(s.originator_id), s.originator_version, s.topic, state)
        links.append((position, head))
    return links


def _blob(value: Any) -> bytes:
    """Stored bytes as bytes; any other value (edited into the database) as its text.

    ``bytes(50_000_000)`` would allocate 50 MB of zeros: a tampered column must not be able
    to exhaust memory, only to fail verification.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return repr(value).encode()


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        originator_id=UUID(str(row[0])) if not isinstance(row[0], UUID) else row[0],
        originator_version=row[1],
        topic=row[2],
        state=bytes(row[3]),
    )


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite recorder that also keeps command ids, data keys and the chain, atomically."""

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
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = self._append(c, stored_events)
        for sid, version in kwargs.get("expect") or ():
            c.execute(
                f"SELECT MAX(originator_version) FROM {self.events_table_name} "
                "WHERE originator_id = ?",
                (sid.hex,),
            )
            _check_version(sid, version, c.fetchone()[0])
        c.execute("SELECT hash FROM dinsos_chain ORDER BY position DESC LIMIT 1")
        row = c.fetchone()
        head = bytes(row[0]) if row else chain.GENESIS
        c.executemany(
            "INSERT INTO dinsos_chain (position, hash) VALUES (?, ?)",
            _links(head, positions, stored_events),
        )
        commands = kwargs.get("commands") or ()
        if commands:
            c.executemany("INSERT INTO dinsos_commands (id, digest) VALUES (?, ?)", commands)
        keys = kwargs.get("keys") or ()
        if keys:
            c.executemany(
                "INSERT INTO dinsos_keys (subject_id, wrapped) VALUES (?, ?)",
                [(sid.hex, wrapped) for sid, wrapped in keys],
            )
        shred = kwargs.get("shred") or ()
        if shred:
            # Overwrite the deleted key bytes in the page, not just unlink them.
            c.execute("PRAGMA secure_delete = ON")
        for sid in shred:
            c.execute("DELETE FROM dinsos_keys WHERE subject_id = ?", (sid.hex,))
        return positions

    def _append(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Insert the events in one ``executemany`` and return their positions (rowids).

        eventsourcing inserts one row per statement to read each ``lastrowid``. Inside this
        write transaction nothing else can insert, and SQLite gives each new row the rowid
        after the largest, so the rows take consecutive positions ending at the last
        insert's; the count below proves it rather than trusting it.
        """
        table = self.events_table_name
        rows = [
            (_hex(s.originator_id), s.originator_version, s.topic, s.state) for s in stored_events
        ]
        if not rows:
            return []
        c.executemany(f"INSERT INTO {table} VALUES (?,?,?,?)", rows)
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        first = last - len(rows) + 1
        c.execute(f"SELECT COUNT(*) FROM {table} WHERE rowid >= ?", (first,))
        if c.fetchone()[0] != len(rows):  # pragma: no cover - only past rowid 2**63 - 1
            msg = f"the new events did not take consecutive positions from {first}"
            raise OperationalError(msg)
        return list(range(first, last + 1))

    def purge_shredded(self) -> None:
        """Truncate the write-ahead log, so no old page image of a shredded key survives.

        Best effort: a reader in another process can keep the log from being truncated now;
        SQLite then truncates it at a later checkpoint.
        """
        with self.datastore.transaction(commit=False) as c:
            c.execute("ROLLBACK")
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            c.execute("BEGIN")

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
                    snapshots[row[0]] = _stored(row)
                plain = [h for h in chunk if h not in snapshots]
                if plain:
                    marks = ",".join("?" * len(plain))
                    c.execute(
                        f"SELECT originator_id, originator_version, topic, state "
                        f"FROM {self.events_table_name} WHERE originator_id IN ({marks}) "
                        "ORDER BY originator_id, originator_version",
                        plain,
                    )
                    events.extend(_stored(row) for row in c.fetchall())
            for hex_id, snapshot in snapshots.items():
                c.execute(
                    f"SELECT originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} WHERE originator_id = ? "
                    "AND originator_version > ? ORDER BY originator_version",
                    (hex_id, snapshot.originator_version),
                )
                events.extend(_stored(row) for row in c.fetchall())
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

    def iter_rows(self, *, after: int = 0, page: int = 1000) -> Iterator[StoredRow]:
        """Stream ``(position, originator_id, version, topic, state)`` in position order."""
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
                yield (row[0], _hex(row[1]), row[2], row[3], _blob(row[4]))
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
                yield (row[0], _blob(row[1]))
            after = rows[-1][0]


_POSTGRES_NAMES: Final = frozenset(
    {"LedgerPostgresFactory", "LedgerPostgresRecorder", "LedgerSnapshotsRecorder"}
)

if TYPE_CHECKING:
    from dinsos_ledger.storage_postgres import (
        LedgerPostgresRecorder,
    )

    #: The recorder of a ledger: a target's ``APPLICATION_RECORDER_TOPIC`` names one of these.
    LedgerRecorder: TypeAlias = LedgerSQLiteRecorder | LedgerPostgresRecorder


def __getattr__(name: str) -> Any:
    """The PostgreSQL recorders, imported (with psycopg) only when asked for."""
    if name in _POSTGRES_NAMES:
        import dinsos_ledger.storage_postgres as postgres

        return getattr(postgres, name)
    if name == "LedgerRecorder":
        # At run time only a name for casts; type checkers see the union above.
        return Any
    raise AttributeError(name)
