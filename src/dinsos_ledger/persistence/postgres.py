"""The ledger's PostgreSQL recorder (the production store).

It extends eventsourcing's PostgreSQL application recorder. eventsourcing's own
``insert_events`` cannot carry the ledger's rows safely (its documented ``_insert_events``
hook runs before the events have positions, and an exception raised after the events are
inserted is re-raised only once the transaction has committed; see
:mod:`dinsos_ledger.persistence.adapter`), so this recorder owns ``insert_events``: in one
``datastore.transaction(commit=True)`` it takes the ledger's write lock, checks the
versions the batch read, inserts the events, then the chain links, command ids, data keys
and key deletions. Any exception anywhere rolls all of it back.

Triggers refuse UPDATE, DELETE and TRUNCATE on the events and chain tables, for every role
(a superuser included, and whatever ``session_replication_role`` says), see
:meth:`LedgerPostgresRecorder.guard_statements`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Final
from uuid import UUID

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresFactory,
)
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal

from dinsos_ledger import chain
from dinsos_ledger.persistence.adapter import (
    drop_postgres_insert_function,
    extend_postgres_create_statements,
    retry_reads,
)
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
from dinsos_ledger.persistence.postgres_keys import (
    PostgresKeyTables,
    postgres_check_key,
    postgres_key_tables,
)

__all__ = ["LedgerPostgresFactory", "LedgerPostgresRecorder", "LedgerSnapshotsRecorder"]

#: First key of the advisory lock that serialises table creation ("dins" in ASCII).
_DDL_LOCK_CLASS: Final = 0x64696E73
#: First key of the transaction advisory lock that serialises the ledger's writers ("dinw").
_WRITE_LOCK_CLASS: Final = 0x64696E77
_GUARD_FUNCTION: Final = "dinsos_refuse_change"
_GUARD_ROWS: Final = f"{GUARD_PREFIX}rows"
_GUARD_TRUNCATE: Final = f"{GUARD_PREFIX}truncate"
# pg_trigger.tgtype bits: ROW 1, BEFORE 2, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32.
_GUARD_TYPES: Final = {_GUARD_ROWS: 1 | 2 | 8 | 16, _GUARD_TRUNCATE: 2 | 32}
_GUARD_BODY: Final = (
    "\nBEGIN\n"
    "  RAISE EXCEPTION 'dinsos-ledger: %.% is append-only, % refused',\n"
    "    TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP\n"
    "    USING ERRCODE = 'insufficient_privilege';\n"
    "END\n"
)
_CREATED_TABLE_RE: Final = re.compile(r'CREATE TABLE IF NOT EXISTS (?:"?\w+"?\.)?"?(\w+)"?')


def _create_one_at_a_time(datastore: Any, create: Callable[[], None]) -> None:
    """Run DDL ``create`` under a session advisory lock named after the schema.

    eventsourcing's ``CREATE TYPE``, ``CREATE TABLE IF NOT EXISTS`` and ``CREATE OR REPLACE
    FUNCTION`` fail when two processes run them at once ("tuple concurrently updated", a
    duplicate ``pg_type`` key).
    """
    schema = datastore.schema or "public"
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_DDL_LOCK_CLASS, schema))
        try:
            # Only when missing: even with IF NOT EXISTS, CREATE SCHEMA needs the CREATE right
            # on the database, which the owner of an existing schema need not have.
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
            if found.fetchone() is None:
                conn.execute(SQL("CREATE SCHEMA {0}").format(Identifier(schema)))
            create()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_DDL_LOCK_CLASS, schema))


def _tables_exist(datastore: Any, names: Iterable[str]) -> bool:
    """True when every table in ``names`` exists in the datastore's schema (no DDL run)."""
    schema = datastore.schema or "public"
    qualified = [f'"{schema}"."{name}"' for name in names]
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            "SELECT bool_and(to_regclass(q) IS NOT NULL) AS ok FROM unnest(%s::text[]) AS q",
            (qualified,),
        )
        row = curs.fetchone()
    return bool(row and row["ok"])


def _created_tables(statements: Iterable[Composable]) -> list[str]:
    """The names of the tables a list of DDL statements creates."""
    names = []
    for statement in statements:
        match = _CREATED_TABLE_RE.search(statement.as_string())
        if match:
            names.append(match.group(1))
    return names


class LedgerSnapshotsRecorder(PostgresAggregateRecorder):
    """eventsourcing's recorder of the snapshots table, its DDL one process at a time."""

    def create_table(self) -> None:
        """Create the snapshots table under the ledger's DDL lock, unless it exists.

        When it exists, no DDL runs at all, so a role without CREATE rights can open it.
        """
        if _tables_exist(self.datastore, _created_tables(self.sql_create_statements)):
            self.datastore.register_type_adapters()
            return
        _create_one_at_a_time(self.datastore, super().create_table)


class LedgerPostgresFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory, with the snapshots recorder above."""

    aggregate_recorder_class = LedgerSnapshotsRecorder


class LedgerPostgresRecorder(PostgresKeyTables, PostgresApplicationRecorder):
    """PostgreSQL recorder that also keeps command ids, data keys and the chain, atomically.

    Writers take a transaction advisory lock (one per schema and events table) before
    inserting, so positions are committed in order and the chain follows commit order even
    with many writers, and the role needs no UPDATE, DELETE or TRUNCATE right (which
    ``LOCK TABLE … IN EXCLUSIVE MODE`` would require).
    """

    #: Which backend this recorder writes to.
    backend: ClassVar[str] = "postgres"
    #: The table of chain links.
    chain_table_name: ClassVar[str] = "dinsos_chain"

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        if datastore.enable_db_functions:
            # Its database-function insert path would skip the chain, command ids and keys.
            msg = (
                "the ledger cannot run with eventsourcing's database functions "
                "(POSTGRES_ENABLE_DB_FUNCTIONS): they would skip its chain, command ids and keys"
            )
            raise ProgrammingError(msg)
        super().__init__(datastore, **kwargs)
        drop_postgres_insert_function(self)
        schema = Identifier(self.datastore.schema)
        self.commands_table = SQL("{0}.{1}").format(schema, Identifier("dinsos_commands"))
        self.keys_table = SQL("{0}.{1}").format(schema, Identifier("dinsos_keys"))
        self.chain_table = SQL("{0}.{1}").format(schema, Identifier(self.chain_table_name))
        self.storage_table = SQL("{0}.{1}").format(schema, Identifier(STORAGE_TABLE))
        self.index_table = SQL("{0}.{1}").format(schema, Identifier(INDEX_TABLE))
        self.events_table = SQL("{0}.{1}").format(schema, Identifier(self.events_table_name))
        extend_postgres_create_statements(
            self,
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
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (name text PRIMARY KEY, value text NOT NULL)"
                ).format(self.storage_table),
                *postgres_key_tables(schema),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (subject_id text NOT NULL, "
                    "field text NOT NULL, mac text NOT NULL, PRIMARY KEY (subject_id, field))"
                ).format(self.index_table),
                SQL("CREATE INDEX IF NOT EXISTS {0} ON {1} (field, mac)").format(
                    Identifier(f"{INDEX_TABLE}_mac"), self.index_table
                ),
            ],
        )

    # ------------------------------------------------------------------ tables and guards

    def guard_statements(self) -> list[Composed]:
        """The DDL of the guard triggers: a function that refuses, and two triggers per table.

        A row-level BEFORE UPDATE OR DELETE trigger and a statement-level BEFORE TRUNCATE
        trigger on the events and chain tables, both ``ENABLE ALWAYS``: they fire for every
        role, a superuser included, even with ``session_replication_role = replica``.
        """
        schema = Identifier(self.datastore.schema)
        function = SQL("{0}.{1}").format(schema, Identifier(_GUARD_FUNCTION))
        statements: list[Composed] = [
            SQL("CREATE OR REPLACE FUNCTION {0}() RETURNS trigger LANGUAGE plpgsql AS {1}").format(
                function, Literal(_GUARD_BODY)
            )
        ]
        for table in (self.events_table, self.chain_table):
            statements += [
                SQL(
                    "CREATE OR REPLACE TRIGGER {0} BEFORE UPDATE OR DELETE ON {1} "
                    "FOR EACH ROW EXECUTE FUNCTION {2}()"
                ).format(Identifier(_GUARD_ROWS), table, function),
                SQL(
                    "CREATE OR REPLACE TRIGGER {0} BEFORE TRUNCATE ON {1} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION {2}()"
                ).format(Identifier(_GUARD_TRUNCATE), table, function),
                SQL("ALTER TABLE {0} ENABLE ALWAYS TRIGGER {1}").format(
                    table, Identifier(_GUARD_ROWS)
                ),
                SQL("ALTER TABLE {0} ENABLE ALWAYS TRIGGER {1}").format(
                    table, Identifier(_GUARD_TRUNCATE)
                ),
            ]
        return statements

    def create_table(self) -> None:
        """Create the schema and tables, and install the guards once, one process at a time.

        When every table exists and the guards were installed, no DDL runs: a writer or a
        read-only role (without CREATE rights) can open the ledger. The guards are installed
        with a new ledger, or on the first open of one made before them (an upgrade that
        rewrites no row); a row in the storage table records it, so guards dropped later are
        not silently put back: ``verify`` reports them (:meth:`guard_problems`).
        """
        tables = _created_tables(self.sql_create_statements)
        if _tables_exist(self.datastore, tables) and self._guards_installed():
            self.datastore.register_type_adapters()
            return
        _create_one_at_a_time(self.datastore, self._create_and_guard)

    def _guards_installed(self) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT value FROM {0} WHERE name = 'guards'").format(self.storage_table)
            )
            return curs.fetchone() is not None

    def _create_and_guard(self) -> None:
        super().create_table()
        if self._guards_installed():
            return
        with self.datastore.transaction(commit=True) as curs:
            for statement in self.guard_statements():
                curs.execute(statement)
            curs.execute(
                SQL("INSERT INTO {0} (name, value) VALUES ('guards', %s)").format(
                    self.storage_table
                ),
                (GUARDS_VERSION,),
            )

    def guard_problems(self) -> list[str]:
        """A sentence for each guard trigger that is missing, disabled or not the ledger's."""
        schema = self.datastore.schema or "public"
        tables = [self.events_table_name, self.chain_table_name]
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT c.relname AS tbl, t.tgname AS name, t.tgenabled::text AS enabled, "
                "t.tgtype AS type, t.tgqual IS NULL AS unconditional, "
                "t.tgattr::text AS columns, p.proname AS function, "
                "pn.nspname AS function_schema, p.prosrc AS body "
                "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_proc p ON p.oid = t.tgfoid "
                "JOIN pg_namespace pn ON pn.oid = p.pronamespace "
                "WHERE n.nspname = %s AND c.relname = ANY(%s) AND NOT t.tgisinternal",
                (schema, tables),
            )
            found = {(row["tbl"], row["name"]): row for row in curs.fetchall()}
        problems = []
        for table in tables:
            for name, tgtype in _GUARD_TYPES.items():
                row = found.get((table, name))
                if row is None:
                    problems.append(
                        f"guard trigger {name} on {table} is missing: "
                        "the append-only guard was removed"
                    )
                elif row["enabled"] != "A":
                    problems.append(
                        f"guard trigger {name} on {table} is not enabled for every session"
                    )
                elif (
                    row["type"] != tgtype
                    or not row["unconditional"]
                    or row["columns"] != ""
                    or row["function"] != _GUARD_FUNCTION
                    or row["function_schema"] != schema
                    or row["body"] != _GUARD_BODY
                ):
                    problems.append(
                        f"guard trigger {name} on {table} was altered: it is not the ledger's"
                    )
        return problems

    # ------------------------------------------------------------------ writes

    @retry_reads  # as eventsourcing retries its own insert on a cut connection
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert a batch of events and the ledger's rows in one transaction.

        Keyword arguments (passed by ``Application.save`` through ``EventStore.put``):
        ``expect`` (subject id, version) pairs the batch read, ``commands`` (id, digest)
        pairs, ``keys`` (subject id, wrapped key) pairs, ``index`` (subject id, field, MAC)
        entries of the keyed index, ``shred`` subject ids whose keys and index entries
        to delete. Returns the positions of the events, in the order given.
        """
        with self.datastore.transaction(commit=True) as curs:
            return self._insert_events(curs, stored_events, **kwargs)

    def _insert_events(  # type: ignore[override]
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        """Everything :meth:`insert_events` writes, on its transaction's cursor."""
        curs.execute(
            SQL("SET LOCAL lock_timeout = {0}").format(Literal(f"{self.datastore.lock_timeout}s"))
        )
        self.write_lock(curs)
        if kwargs.get("keys"):
            # Under the lock a rotation of the master key holds while it re-wraps the keys.
            postgres_check_key(curs, self.datastore.schema, kwargs.get("key_check"))
        for sid, version in kwargs.get("expect") or ():
            curs.execute(
                SQL("SELECT MAX(originator_version) AS v FROM {0} WHERE originator_id = %s").format(
                    self.events_table
                ),
                (sid,),
            )
            row = curs.fetchone()
            check_version(sid, version, row["v"] if row else None)
        positions = self._append(curs, stored_events)
        if positions:
            self._extend_chain(curs, positions, stored_events)
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
        index = kwargs.get("index") or ()
        if index:
            # A subject registered and forgotten in one batch: its entries go in, then out.
            curs.execute(
                SQL(
                    "INSERT INTO {0} (subject_id, field, mac) "
                    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])"
                ).format(self.index_table),
                (
                    [sid.hex for sid, _, _ in index],
                    [field for _, field, _ in index],
                    [mac for _, _, mac in index],
                ),
            )
        for sid in kwargs.get("shred") or ():
            curs.execute(
                SQL("DELETE FROM {0} WHERE subject_id = %s").format(self.keys_table), (sid.hex,)
            )
            curs.execute(
                SQL("DELETE FROM {0} WHERE subject_id = %s").format(self.index_table), (sid.hex,)
            )
        return positions

    def write_lock(self, curs: Any) -> None:
        """Take the writers' transaction advisory lock (one per schema and events table)."""
        curs.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
            (_WRITE_LOCK_CLASS, f"{self.datastore.schema}.{self.events_table_name}"),
        )

    def _append(self, curs: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Insert the events with one statement; their positions, in the order given."""
        if not stored_events:
            return []
        # Followers listening with eventsourcing's subscriptions wake on this channel.
        curs.execute(SQL("NOTIFY {0}").format(Identifier(self.channel_name)))
        curs.execute(
            SQL(
                "INSERT INTO {0} (originator_id, originator_version, topic, state) "
                "SELECT i, v, t, s FROM unnest(%s::uuid[], %s::bigint[], %s::text[], "
                "%s::bytea[]) WITH ORDINALITY AS u(i, v, t, s, n) ORDER BY n "
                "RETURNING notification_id, originator_id, originator_version"
            ).format(self.events_table),
            (
                [s.originator_id for s in stored_events],
                [s.originator_version for s in stored_events],
                [s.topic for s in stored_events],
                [s.state for s in stored_events],
            ),
        )
        found = {
            (row["originator_id"], row["originator_version"]): row["notification_id"]
            for row in curs.fetchall()
        }
        return [found[(UUID(str(s.originator_id)), s.originator_version)] for s in stored_events]

    def _extend_chain(
        self, curs: Any, positions: Sequence[int], stored_events: Sequence[StoredEvent]
    ) -> None:
        curs.execute(
            SQL("SELECT hash FROM {0} ORDER BY position DESC LIMIT 1").format(self.chain_table)
        )
        row = curs.fetchone()
        head = bytes(row["hash"]) if row else chain.GENESIS
        # The chain runs in position order, whatever order the batch listed its events in.
        ordered = sorted(zip(positions, stored_events, strict=True), key=lambda pair: pair[0])
        links = links_for(head, [p for p, _ in ordered], [s for _, s in ordered])
        curs.execute(
            SQL(
                "INSERT INTO {0} (position, hash) SELECT * FROM unnest(%s::bigint[], %s::bytea[])"
            ).format(self.chain_table),
            ([p for p, _ in links], [h for _, h in links]),
        )

    # ------------------------------------------------------------------ reads

    @retry_reads
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

    @retry_reads
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
                snapshots[row["originator_id"]] = stored_event(
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
                stored_event((r["originator_id"], r["originator_version"], r["topic"], r["state"]))
                for r in curs.fetchall()
            ]
        return list(snapshots.values()), events

    @retry_reads
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

    @retry_reads
    def select_wrapped_key(self, subject_id: UUID) -> bytes | None:
        """The wrapped data key of a subject, or None once shredded."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT wrapped FROM {0} WHERE subject_id = %s").format(self.keys_table),
                (subject_id.hex,),
            )
            row = curs.fetchone()
            return bytes(row["wrapped"]) if row else None

    @retry_reads
    def select_position(self, what: str, which: str, after: int = 0) -> int | None:
        """A position in the events (``row``) or chain (``link``) table; None when none.

        ``which`` is ``first``, ``last`` or ``next`` (the first after ``after``). Reads no
        column but the position, so a row of any content is found.
        """
        table = self.events_table if what == "row" else self.chain_table
        column = Identifier("notification_id" if what == "row" else "position")
        aggregate = SQL("MAX" if which == "last" else "MIN")
        query = SQL("SELECT {0}({1}) AS p FROM {2}").format(aggregate, column, table)
        params: tuple[int, ...] = ()
        if which == "next":
            query = SQL("{0} WHERE {1} > %s").format(query, column)
            params = (after,)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(query, params)
            found = curs.fetchone()
        return None if found is None or found["p"] is None else int(found["p"])

    def iter_rows(self, *, after: int = 0, page: int = 1000) -> Iterator[StoredRow]:
        """Stream ``(position, originator_id, version, topic, state)`` in position order.

        Each column exactly as stored (see
        :func:`~dinsos_ledger.persistence.common.stored_value`); the ``uuid`` id as the 32
        hex digits of its 16 stored bytes.
        """
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
                    stored_value(row["originator_id"]),
                    stored_value(row["originator_version"]),
                    stored_value(row["topic"]),
                    stored_value(row["state"]),
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
                yield (row["position"], stored_blob(row["hash"]))
            after = rows[-1]["position"]
