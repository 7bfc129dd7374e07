"""The PostgreSQL side of :mod:`dinsos_ledger.storage`, imported only for a PostgreSQL target.

It imports psycopg (the ``postgres`` extra), so a SQLite ledger never loads it:
:mod:`dinsos_ledger.storage` re-exports these names on first use, and a PostgreSQL target
names this module in its settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresFactory,
)
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from dinsos_ledger import chain
from dinsos_ledger.storage import (
    _DDL_LOCK_CLASS,
    StoredRow,
    _blob,
    _check_version,
    _hex,
    _links,
    _stored,
)

__all__ = ["LedgerPostgresFactory", "LedgerPostgresRecorder", "LedgerSnapshotsRecorder"]


# As eventsourcing does for its own reads: a connection cut while idle in the pool (a
# server restart, a network drop) is replaced and the read tried again, not reported.
_retry_reads = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)


def _create_one_at_a_time(datastore: Any, create: Callable[[], None]) -> None:
    """Run eventsourcing's DDL ``create`` under a session advisory lock named after the schema.

    Its ``CREATE TYPE``, ``CREATE TABLE IF NOT EXISTS`` and ``CREATE OR REPLACE FUNCTION``
    fail when two processes run them at once ("tuple concurrently updated", a duplicate
    ``pg_type`` key), and every process that opens the ledger runs them.
    """
    schema = datastore.schema or "public"
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_DDL_LOCK_CLASS, schema))
        try:
            if schema != "public":
                conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(schema)))
            create()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_DDL_LOCK_CLASS, schema))


class LedgerSnapshotsRecorder(PostgresAggregateRecorder):
    """eventsourcing's recorder of the snapshots table, its DDL one process at a time."""

    def create_table(self) -> None:
        """Create the snapshots table under the ledger's DDL lock."""
        _create_one_at_a_time(self.datastore, super().create_table)


class LedgerPostgresFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory, with the snapshots recorder above."""

    aggregate_recorder_class = LedgerSnapshotsRecorder


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """PostgreSQL recorder that also keeps command ids, data keys and the chain, atomically.

    The chain is extended while eventsourcing's EXCLUSIVE lock on the events table is held,
    so links follow commit order even with many writers.
    """

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        self.commands_table = SQL("{0}.{1}").format(schema, Identifier("dinsos_commands"))
        self.keys_table = SQL("{0}.{1}").format(schema, Identifier("dinsos_keys"))
        self.chain_table = SQL("{0}.{1}").format(schema, Identifier("dinsos_chain"))
        self.events_table = SQL("{0}.{1}").format(schema, Identifier(self.events_table_name))
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (id text PRIMARY KEY, digest text NOT NULL)"
                ).format(self.commands_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} "
                    "(subject_id text PRIMARY KEY, wrapped bytea NOT NULL)"
                ).format(self.keys_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} "
                    "(position bigint PRIMARY KEY, hash bytea NOT NULL)"
                ).format(self.chain_table),
            ]
        )

    def create_table(self) -> None:
        """Create the schema (when named) and the tables, one process at a time.

        eventsourcing's DDL (``CREATE TYPE``, ``CREATE TABLE IF NOT EXISTS``, ``CREATE OR
        REPLACE FUNCTION``) fails when two processes run it at once ("tuple concurrently
        updated", a duplicate ``pg_type`` key), and every process that opens the ledger runs
        it: so it runs under a session advisory lock named after the schema.
        """
        _create_one_at_a_time(self.datastore, super().create_table)

    # The signature is eventsourcing's, which passes ``stored_events`` positionally; this
    # override runs before the events are inserted and needs only the versions it expects.
    def _insert_events(
        self,
        curs: Any,
        stored_events: Sequence[StoredEvent],  # noqa: ARG002
        **kwargs: Any,
    ) -> None:
        """Check the versions of the subjects the batch read but does not write.

        Runs in the insert transaction before the events are inserted (an exception here
        rolls the transaction back; later ones are caught by eventsourcing and committed
        around), under the EXCLUSIVE lock that inserting takes anyway, so no writer can
        change those subjects between the check and the commit.
        """
        expect = kwargs.get("expect") or ()
        if not expect:
            return
        self._lock_table(curs)
        for sid, version in expect:
            curs.execute(
                SQL("SELECT MAX(originator_version) AS v FROM {0} WHERE originator_id = %s").format(
                    self.events_table
                ),
                (sid,),
            )
            row = curs.fetchone()
            _check_version(sid, version, row["v"] if row else None)

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        assert positions is not None
        curs.execute(
            SQL("SELECT hash FROM {0} ORDER BY position DESC LIMIT 1").format(self.chain_table)
        )
        row = curs.fetchone()
        head = bytes(row["hash"]) if row else chain.GENESIS
        # One statement of two arrays per table: executemany sends one statement per row.
        links = _links(head, positions, stored_events)
        curs.execute(
            SQL(
                "INSERT INTO {0} (position, hash) SELECT * FROM unnest(%s::bigint[], %s::bytea[])"
            ).format(self.chain_table),
            ([p for p, _ in links], [h for _, h in links]),
        )
        commands = kwargs.get("commands") or ()
        if commands:
            curs.execute(
                SQL(
                    "INSERT INTO {0} (id, digest) SELECT * FROM unnest(%s::text[], %s::text[])"
                ).format(self.commands_table),
                ([i for i, _ in commands], [d for _, d in commands]),
            )
        keys = kwargs.get("keys") or ()
        if keys:
            curs.executemany(
                SQL("INSERT INTO {0} (subject_id, wrapped) VALUES (%s, %s)").format(
                    self.keys_table
                ),
                [(sid.hex, wrapped) for sid, wrapped in keys],
            )
        for sid in kwargs.get("shred") or ():
            curs.execute(
                SQL("DELETE FROM {0} WHERE subject_id = %s").format(self.keys_table), (sid.hex,)
            )
        return positions

    @_retry_reads
    def select_command_digests(self, ids: Iterable[str]) -> dict[str, str]:
        """The stored digests of those of ``ids`` that were accepted."""
        ids = list(ids)
        if not ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT id, digest FROM {0} WHERE id = ANY(%s)").format(self.commands_table),
                (ids,),
            )
            return {row["id"]: row["digest"] for row in curs.fetchall()}

    @_retry_reads
    def select_events_of(
        self, subject_ids: Sequence[UUID], *, snapshots_table: str = "ledger_snapshots"
    ) -> tuple[list[StoredEvent], list[StoredEvent]]:
        """The latest snapshot (if any) and the later events of each of ``subject_ids``."""
        snapshots: dict[UUID, StoredEvent] = {}
        events: list[StoredEvent] = []
        ids = list(subject_ids)
        table = SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(snapshots_table)
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, "
                    "state FROM {0} WHERE originator_id = ANY(%s) "
                    "ORDER BY originator_id, originator_version DESC"
                ).format(table),
                (ids,),
            )
            for row in curs.fetchall():
                snapshots[row["originator_id"]] = _stored(
                    (row["originator_id"], row["originator_version"], row["topic"], row["state"])
                )
            plain = [sid for sid in ids if sid not in snapshots]
            versions = [0] * len(plain) + [s.originator_version for s in snapshots.values()]
            curs.execute(
                SQL(
                    "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                    "FROM {0} e JOIN unnest(%s::uuid[], %s::bigint[]) AS w(id, after) "
                    "ON e.originator_id = w.id AND e.originator_version > w.after "
                    "ORDER BY e.originator_id, e.originator_version"
                ).format(self.events_table),
                ([*plain, *snapshots], versions),
            )
            events = [
                _stored((r["originator_id"], r["originator_version"], r["topic"], r["state"]))
                for r in curs.fetchall()
            ]
        return list(snapshots.values()), events

    @_retry_reads
    def select_originators_after(self, position: int, *, limit: int) -> list[tuple[int, UUID]]:
        """``(position, subject id)`` of up to ``limit`` events recorded after ``position``."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT notification_id, originator_id FROM {0} WHERE notification_id > %s "
                    "ORDER BY notification_id LIMIT %s"
                ).format(self.events_table),
                (position, limit),
            )
            return [(row["notification_id"], row["originator_id"]) for row in curs.fetchall()]

    @_retry_reads
    def select_wrapped_key(self, subject_id: UUID) -> bytes | None:
        """The wrapped data key of a subject, or None once shredded."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT wrapped FROM {0} WHERE subject_id = %s").format(self.keys_table),
                (subject_id.hex,),
            )
            row = curs.fetchone()
            return bytes(row["wrapped"]) if row else None

    def iter_rows(self, *, after: int = 0, page: int = 1000) -> Iterator[StoredRow]:
        """Stream ``(position, originator_id, version, topic, state)`` in position order."""
        while True:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(
                    SQL(
                        "SELECT notification_id, originator_id, originator_version, topic, state "
                        "FROM {0} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
                    ).format(self.events_table),
                    (after, page),
                )
                rows = curs.fetchall()
            if not rows:
                return
            for row in rows:
                yield (
                    row["notification_id"],
                    _hex(row["originator_id"]),
                    row["originator_version"],
                    row["topic"],
                    _blob(row["state"]),
                )
            after = rows[-1]["notification_id"]

    def iter_links(self, *, after: int = 0, page: int = 1000) -> Iterator[tuple[int, bytes]]:
        """Stream the stored chain ``(position, hash)`` in position order."""
        while True:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(
                    SQL(
                        "SELECT position, hash FROM {0} WHERE position > %s "
                        "ORDER BY position LIMIT %s"
                    ).format(self.chain_table),
                    (after, page),
                )
                rows = curs.fetchall()
            if not rows:
                return
            for row in rows:
                yield (row["position"], _blob(row["hash"]))
            after = rows[-1]["position"]
