"""The projection engine: read models kept in the ledger's own database, exactly once.

A :class:`Projection` is a set of tables in the ledger's database (the SQLite file, or the
PostgreSQL schema) plus a *tracking position*: the position of the last event it has applied.
:class:`ProjectionEngine` catches projections up by reading the event log a page at a time
through the recorder's ``select_notifications`` and, for each page, applies the events and
writes every projection's new tracking position **in one transaction**. A crash part-way
through a page rolls back both, so every event is applied exactly once however often the
process dies; a second process catching up at the same time is detected (the tracking
position is advanced with a compare-and-set) and its page rolled back and read again.

Within a page the writes of a projection are queued and sent in batches (``executemany``),
in the order they were made. Built-in projections are applied to a page before custom ones,
and the :class:`SubjectsProjection` before everything else, so a projection can always ask
the :class:`Writer` who the originator of an event is (:meth:`Writer.subject`): events after
the first of a subject carry no ref, only the aggregate id.

The SQL a projection writes is the common ground of SQLite and PostgreSQL; the writer hides
the rest (placeholders, upserts, column types, the schema).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Final, Literal, Protocol
from uuid import UUID

import attrs
from eventsourcing.persistence import PersistenceError

from dinsos_ledger.aggregates import Enrolment, Household, TrainingCohort, Veteran
from dinsos_ledger.aggregates.base import Account, Person, Subject
from dinsos_ledger.bulk import paused_gc
from dinsos_ledger.codec import converter
from dinsos_ledger.errors import LedgerError, StorageError
from dinsos_ledger.projections.connection import Connection, Dialect
from dinsos_ledger.types import subject_id

__all__ = [
    "COLUMN_TYPES",
    "DEFAULT_PAGE_SIZE",
    "TRACKING_TABLE",
    "Dialect",
    "Progress",
    "Projection",
    "ProjectionEngine",
    "RawEvent",
    "Reader",
    "RebuildReport",
    "Role",
    "Step",
    "SubjectInfo",
    "SubjectsProjection",
    "UnknownProjection",
    "Writer",
    "as_date",
    "class_kind",
    "defer_update",
    "event_kind",
    "event_role",
    "event_type",
    "send_deferred",
    "translate",
]

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with events applied so far and events to apply."""

#: Events applied per transaction. A commit costs a sync of the disk (milliseconds on a
#: network disk), so a page is large; its decoded events stay a few megabytes.
DEFAULT_PAGE_SIZE: Final = 5000

#: The table holding each projection's name, version and tracking position.
TRACKING_TABLE: Final = "proj_tracking"

#: Portable column types of :meth:`Writer.create_table`, as each backend spells them.
#: ``key`` is text compared byte by byte on both backends (so ``ORDER BY`` agrees with
#: Python's sort of ASCII refs); dates are ISO text on SQLite and ``date`` on PostgreSQL.
COLUMN_TYPES: Final[Mapping[Dialect, Mapping[str, str]]] = {
    "sqlite": {
        "text": "TEXT",
        "key": "TEXT",
        "integer": "INTEGER",
        "date": "TEXT",
        "boolean": "INTEGER",
        "timestamp": "TEXT",
    },
    "postgres": {
        "text": "text",
        "key": 'text COLLATE "C"',
        "integer": "bigint",
        "date": "date",
        "boolean": "boolean",
        "timestamp": "timestamptz",
    },
}

_IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")
_KINDS: Final = {
    "Household": "household",
    "Veteran": "veteran",
    "TrainingCohort": "cohort",
    "Enrolment": "enrolment",
    "Programme": "programme",
}
_DIRECTORY_LIMIT: Final = 200_000
_IN_CHUNK: Final = 500
_PLAIN: Final = frozenset({str, int, type(None)})
_MAX_CONFLICTS: Final = 50
# The PostgreSQL advisory lock that serialises projection DDL between processes.
_DDL_LOCK: Final = 0x64696E736F73


class UnknownProjection(LedgerError, LookupError):
    """Raised when a projection name is not one of the ledger's projections."""

    code = "unknown_projection"


class _Conflict(Exception):
    """Another process advanced a tracking position while this page was being applied."""


def _identifier(name: str, what: str = "table") -> str:
    if not _IDENTIFIER.fullmatch(name):
        msg = f"'{what}' must be a lower-case SQL identifier like monthly_totals (got {name!r})"
        raise ValueError(msg)
    return name


_TYPE_NAMES: dict[type, str] = {}
_TYPE_KINDS: dict[type, str | None] = {}


def event_type(event: object) -> str:
    """The snake-case name of an event's class: ``disbursed``, ``disbursement_reversed`` …."""
    cls = type(event)
    name = _TYPE_NAMES.get(cls)
    if name is None:
        name = _TYPE_NAMES[cls] = _CAMEL.sub("_", cls.__name__).lower()
    return name


def event_kind(event: object) -> str | None:
    """The kind of subject an event belongs to (``household`` …), from its class."""
    return class_kind(type(event))


class RawEvent:
    """A stored event decoded only as far as its JSON, for projections that set ``raw``.

    ``cls`` is the event class, ``originator_id`` the aggregate id as 32 hex digits and
    ``state`` the stored fields by name, as stored: dates as ``YYYY-MM-DD``, value objects
    as their scalar (a programme's code, a reference's text, an amount in rupiah), enums as
    their value. Building no objects from it is what makes a rebuild fast.
    """

    __slots__ = ("cls", "originator_id", "originator_version", "state")

    def __init__(
        self, cls: type[Any], originator_id: str, originator_version: int, state: dict[str, Any]
    ) -> None:
        self.cls = cls
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.state = state


#: What an event class means to the built-in projections (see :func:`event_role`).
Role = Literal[
    "created",
    "closed",
    "forgotten",
    "allocated",
    "disbursed",
    "reversed",
    "confirmed",
    "followed_up",
    "assessed",
    "attended",
    "completed",
    "",
]
_ROLES: dict[type, Role] = {}


def event_role(cls: type[Any]) -> Role:
    """The role of an event class for the built-in projections (``""``: none), memoised."""
    role = _ROLES.get(cls)
    if role is None:
        role = _ROLES[cls] = _role_of(cls)
    return role


# An event class has the role of the first of these bases it derives from.
_ROLE_BASES: Final[tuple[tuple[type | tuple[type, ...], Role], ...]] = (
    (Subject.Created, "created"),
    (Person.Closed, "closed"),
    (Person.Forgotten, "forgotten"),
    (Account.Allocated, "allocated"),
    (Account.Disbursed, "disbursed"),
    (Account.DisbursementReversed, "reversed"),
    (Account.DisbursementConfirmed, "confirmed"),
    ((Person.FollowedUp, Enrolment.FollowedUp), "followed_up"),
    ((Household.Assessed, Veteran.Assessed), "assessed"),
    (Enrolment.Attended, "attended"),
    (Enrolment.Completed, "completed"),
)


def _role_of(cls: type[Any]) -> Role:
    for base, role in _ROLE_BASES:
        if issubclass(cls, base):
            return role
    return ""


def class_kind(cls: type[Any]) -> str | None:
    """The kind of subject an event class belongs to (``household`` …)."""
    try:
        return _TYPE_KINDS[cls]
    except KeyError:
        kind = _TYPE_KINDS[cls] = _KINDS.get(cls.__qualname__.partition(".")[0])
        return kind


def as_date(value: Any) -> dt.date | None:
    """A date read back from a projection table (ISO text on SQLite, ``date`` on PostgreSQL)."""
    if value is None or type(value) is dt.date:
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


@attrs.frozen
class SubjectInfo:
    """What never changes about a subject once registered: who it is and where.

    ``household`` and ``cohort`` are set for enrolments, ``region`` for households,
    veterans and cohorts.
    """

    subject_id: str
    ref: str
    kind: str
    registered_on: dt.date
    region: str | None = None
    household: str | None = None
    cohort: str | None = None

    @property
    def kecamatan(self) -> str | None:
        """The ``NN.NN.NN`` kecamatan prefix of the region, if the subject has one."""
        return None if self.region is None else self.region[:8]


class _Cursor(Protocol):
    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...  # pragma: no cover

    def executemany(self, sql: Any, params: Any, /) -> Any: ...  # pragma: no cover

    def fetchall(self) -> Any: ...  # pragma: no cover


def _adapt_sqlite(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if isinstance(value, dt.date):  # datetime too: ISO text compares in date order
        return value.isoformat()
    return _adapt_common(value)


def _adapt_postgres(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or value is None or isinstance(value, dt.date):
        return value
    return _adapt_common(value)


def _adapt_common(value: Any) -> Any:
    if isinstance(value, bool | float):
        return value
    if isinstance(value, UUID):
        return value.hex
    if isinstance(value, enum.Enum):
        return value.value
    return converter.unstructure(value)


def translate(sql: str, dialect: Dialect) -> str:
    """Turn SQL written with ``?`` placeholders into the dialect's paramstyle."""
    if dialect == "sqlite":
        return sql
    return sql.replace("%", "%%").replace("?", "%s")


class _Directory:
    """A bounded cache of :class:`SubjectInfo` by aggregate id, filled from the subjects table.

    Entries are facts fixed at registration, so they stay true whatever transaction later
    rolls back; the cache is simply emptied when it grows past its limit.
    """

    def __init__(self) -> None:
        self._known: dict[str, SubjectInfo] = {}

    def get(self, sid: str) -> SubjectInfo | None:
        return self._known.get(sid)

    def load(self, cursor: _Cursor, dialect: Dialect, ids: Iterable[str]) -> None:
        missing = sorted({sid for sid in ids if sid not in self._known})
        if not missing:
            return
        if len(self._known) + len(missing) > _DIRECTORY_LIMIT:
            self._known.clear()
        for start in range(0, len(missing), _IN_CHUNK):
            chunk = missing[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor.execute(
                translate(
                    "SELECT subject_id, ref, kind, registered_on, region, household, cohort "
                    f"FROM {SubjectsProjection.table} WHERE subject_id IN ({marks})",
                    dialect,
                ),
                chunk,
            )
            for row in cursor.fetchall():
                registered = as_date(row[3])
                assert registered is not None
                info = SubjectInfo(row[0], row[1], row[2], registered, row[4], row[5], row[6])
                self._known[info.subject_id] = info


class Writer:
    """The write side of one projection inside the transaction of one page.

    Writes are queued and sent in order at the end of the projection's share of the page,
    consecutive writes of the same statement together through ``executemany``. Write SQL
    with ``?`` placeholders; values may be ``str``, ``int``, ``bool``, ``None``, dates,
    datetimes, UUIDs, enums or the ledger's value objects (``Programme``, ``Rupiah`` …).

    Attributes: ``dialect`` is ``"sqlite"`` or ``"postgres"``.
    """

    def __init__(self, cursor: _Cursor, dialect: Dialect, directory: _Directory) -> None:
        self.dialect: Dialect = dialect
        self._cursor = cursor
        self._directory = directory
        self._adapt = _adapt_sqlite if dialect == "sqlite" else _adapt_postgres
        self._runs: list[tuple[str, list[tuple[Any, ...]]]] = []
        self._statements: dict[tuple[Any, ...], str] = {}
        # Plain inserts, which PostgreSQL loads fastest through COPY.
        self._copy: dict[str, str] = {}
        self.page: dict[str, Any] = {}
        """Scratch space of one projection for one page: fresh for every page (and for
        every retry of a page), so state kept here never outlives a rolled-back page."""
        self._types = COLUMN_TYPES[dialect]

    # ---------------------------------------------------------------- schema

    def create_table(
        self,
        table: str,
        columns: Mapping[str, str],
        *,
        primary_key: Sequence[str] = (),
        unique: Sequence[Sequence[str]] = (),
    ) -> None:
        """Create ``table`` if it does not exist.

        ``columns`` maps each column to a portable type from :data:`COLUMN_TYPES`
        (``text``, ``key``, ``integer``, ``date``, ``boolean``, ``timestamp``), optionally
        followed by `` not null``.
        """
        parts = []
        for column, spec in columns.items():
            base, _, rest = spec.partition(" ")
            if base not in self._types:
                msg = f"column type must be one of {', '.join(self._types)} (got {base!r})"
                raise ValueError(msg)
            parts.append(
                f"{_identifier(column, 'column')} {self._types[base]} {rest.upper()}".strip()
            )
        if primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(primary_key)})")
        parts.extend(f"UNIQUE ({', '.join(columns_)})" for columns_ in unique)
        self.execute(f"CREATE TABLE IF NOT EXISTS {_identifier(table)} ({', '.join(parts)})")

    def create_index(self, table: str, columns: Sequence[str], *, name: str | None = None) -> None:
        """Create an index on ``columns`` of ``table`` if it does not exist."""
        index = _identifier(name or f"{table}_{'_'.join(columns)}_idx", "index")
        self.execute(
            f"CREATE INDEX IF NOT EXISTS {index} ON {_identifier(table)} ({', '.join(columns)})"
        )

    def drop_table(self, table: str) -> None:
        """Drop ``table`` if it exists."""
        self.execute(f"DROP TABLE IF EXISTS {_identifier(table)}")

    # ---------------------------------------------------------------- writes

    def insert(self, table: str, row: Mapping[str, Any]) -> None:
        """Insert one row."""
        key = ("insert", table, tuple(row))
        sql = self._statements.get(key)
        if sql is None:
            sql = self._placeholders(
                f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
            )
            self._statements[key] = sql
            self._copy[sql] = f"COPY {table} ({', '.join(row)}) FROM STDIN"
        self._queue(sql, row.values())

    def upsert(self, table: str, row: Mapping[str, Any], *, key: Sequence[str]) -> None:
        """Insert ``row``, or replace the non-key columns of the row with the same ``key``."""
        cache = ("upsert", table, tuple(row), tuple(key))
        sql = self._statements.get(cache)
        if sql is None:
            others = [c for c in row if c not in key]
            action = (
                "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in others)
                if others
                else "DO NOTHING"
            )
            sql = self._placeholders(
                f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) "
                f"ON CONFLICT ({', '.join(key)}) {action}"
            )
            self._statements[cache] = sql
        self._queue(sql, row.values())

    def accumulate(self, table: str, key: Mapping[str, Any], add: Mapping[str, Any]) -> None:
        """Add the numbers in ``add`` to the row with ``key``, creating it when missing."""
        cache = ("accumulate", table, tuple(key), tuple(add))
        sql = self._statements.get(cache)
        if sql is None:
            columns = [*key, *add]
            sets = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in add)
            sql = self._placeholders(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
            )
            self._statements[cache] = sql
        self._queue(sql, [*key.values(), *add.values()])

    def update(self, table: str, values: Mapping[str, Any], *, where: Mapping[str, Any]) -> None:
        """Set ``values`` on the rows whose columns equal ``where``."""
        cache = ("update", table, tuple(values), tuple(where))
        sql = self._statements.get(cache)
        if sql is None:
            sets = ", ".join(f"{c} = ?" for c in values)
            conditions = " AND ".join(f"{c} = ?" for c in where)
            sql = self._placeholders(f"UPDATE {table} SET {sets} WHERE {conditions}")
            self._statements[cache] = sql
        self._queue(sql, [*values.values(), *where.values()])

    def delete(self, table: str, *, where: Mapping[str, Any]) -> None:
        """Delete the rows whose columns equal ``where``."""
        cache = ("delete", table, tuple(where))
        sql = self._statements.get(cache)
        if sql is None:
            conditions = " AND ".join(f"{c} = ?" for c in where)
            sql = self._placeholders(f"DELETE FROM {table} WHERE {conditions}")
            self._statements[cache] = sql
        self._queue(sql, where.values())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queue any statement written with ``?`` placeholders (and no literal ``?``)."""
        self._queue(translate(sql, self.dialect), params)

    # ----------------------------------------------------------------- reads

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Send the queued writes, then run a query and return its rows as tuples.

        Dates come back as ISO text on SQLite and as ``date`` on PostgreSQL (see
        :func:`as_date`). Every query breaks the current batch, so keep lookups rare.
        """
        self.flush()
        self._cursor.execute(translate(sql, self.dialect), [self._adapt(p) for p in params])
        return [tuple(row) for row in self._cursor.fetchall()]

    def subject(self, key: UUID | str) -> SubjectInfo | None:
        """Who a subject is, by aggregate id (an event's ``originator_id``) or by ref."""
        return self.subject_by_id(key.hex if isinstance(key, UUID) else subject_id(key).hex)

    def subject_by_id(self, sid: str) -> SubjectInfo | None:
        """Who a subject is, by aggregate id as 32 hex digits (a :class:`RawEvent`'s)."""
        info = self._directory.get(sid)
        if info is None:
            self.flush()
            self._directory.load(self._cursor, self.dialect, [sid])
            info = self._directory.get(sid)
        return info

    # ----------------------------------------------------------------- batches

    def flush(self) -> None:
        """Send the queued writes now (the engine does this at the end of each page)."""
        runs, self._runs = self._runs, []
        for sql, rows in runs:
            if len(rows) == 1:
                self._cursor.execute(sql, rows[0])
            elif self.dialect == "postgres" and sql in self._copy:
                # psycopg's executemany sends one message per row; COPY streams them.
                with self._cursor.copy(self._copy[sql]) as copy:  # type: ignore[attr-defined]
                    for row in rows:
                        copy.write_row(row)
            else:
                self._cursor.executemany(sql, rows)

    def _queue(self, sql: str, params: Iterable[Any]) -> None:
        adapt = self._adapt
        # Most values are already plain: skip the call for them (this runs per column).
        adapted = tuple([p if type(p) in _PLAIN else adapt(p) for p in params])
        if self._runs and self._runs[-1][0] is sql:
            self._runs[-1][1].append(adapted)
        else:
            self._runs.append((sql, [adapted]))

    def _placeholders(self, sql: str) -> str:
        return translate(sql, self.dialect)


class Projection:
    """A read model kept in the ledger's database; subclass it for your own views.

    Set ``name`` (a lower-case identifier, also the name given to ``rebuild``), ``tables``
    (every table it owns, dropped by :meth:`drop`) and ``version`` (raise it when the
    tables change: a stored projection of another version is dropped and rebuilt from
    the first event). Implement :meth:`create_tables` and :meth:`handle`.

    ``handle`` is called once per event, in position order, exactly once across crashes
    and restarts: the engine commits the writes of a page together with the tracking
    position. Handlers must only *write* through the writer (never commit, never open
    other connections) and must not depend on anything but the events they have seen and
    the tables of the ledger's projections: that is what makes a rebuild equal the
    incrementally maintained result. Built-in projections are applied to each page before
    custom ones, so their tables already hold every event up to the end of the current
    page when ``handle`` runs (facts fixed when recorded, such as a disbursement's amount,
    are safe to look up; columns such as ``reversed_on`` may already show a later event
    of the same page).
    """

    name: ClassVar[str] = ""
    tables: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[int] = 1
    raw: ClassVar[bool] = False
    """When True the engine calls :meth:`handle_raw` with a :class:`RawEvent` instead of
    :meth:`handle` with a decoded event: no value objects are built, which roughly halves
    the cost of reading the log. The built-in projections are raw."""

    def create_tables(self, writer: Writer) -> None:
        """Create this projection's tables (``IF NOT EXISTS``)."""
        raise NotImplementedError

    def handle(self, event: Any, position: int, writer: Writer) -> None:
        """Apply one decoded event recorded at ``position``."""
        raise NotImplementedError

    def handle_raw(self, event: RawEvent, position: int, writer: Writer) -> None:
        """Apply one event recorded at ``position``, as stored (when ``raw`` is True)."""
        raise NotImplementedError

    def end_page(self, writer: Writer) -> None:
        """Called after the last event of each page, before its writes are sent.

        Keep per-page state in ``writer.page`` and write it here, for example totals
        summed over the page so that each total is written once per page.
        """

    def drop(self, writer: Writer) -> None:
        """Drop this projection's tables (the engine resets its tracking position)."""
        for table in self.tables:
            writer.drop_table(table)


class SubjectsProjection(Projection):
    """Table ``proj_subjects``: one row per registered subject, never personal data.

    Columns: ``ref`` (primary key), ``subject_id`` (aggregate id, hex), ``kind``,
    ``region`` and ``kecamatan`` (households, veterans, cohorts), ``registered_on``
    (the ``on`` of the registering event), ``closed_on`` and ``close_reason``
    (households and veterans), ``forgotten_on`` (personal data shredded),
    ``household`` and ``cohort`` (enrolments), ``programme`` (cohorts) and ``position``
    of the registering event. Every other projection finds subjects through it.
    """

    name: ClassVar[str] = "subjects"
    table: ClassVar[str] = "proj_subjects"
    tables: ClassVar[tuple[str, ...]] = ("proj_subjects",)

    def create_tables(self, writer: Writer) -> None:
        """Create ``proj_subjects``."""
        writer.create_table(
            self.table,
            {
                "ref": "key not null",
                "subject_id": "key not null",
                "kind": "key not null",
                "region": "key",
                "kecamatan": "key",
                "registered_on": "date not null",
                "closed_on": "date",
                "close_reason": "text",
                "forgotten_on": "date",
                "household": "key",
                "cohort": "key",
                "programme": "key",
                "position": "integer not null",
            },
            primary_key=("ref",),
            unique=(("subject_id",),),
        )

    raw: ClassVar[bool] = True

    def handle_raw(self, event: RawEvent, position: int, writer: Writer) -> None:
        """Insert a row on registration; mark closure and forgetting."""
        role = event_role(event.cls)
        state = event.state
        if role == "created":
            code = state.get("region")
            enrolled = issubclass(event.cls, Enrolment.Enrolled)
            writer.insert(
                self.table,
                {
                    "ref": state["ref"],
                    "subject_id": event.originator_id,
                    "kind": class_kind(event.cls),
                    "region": code,
                    "kecamatan": None if code is None else code[:8],
                    "registered_on": state["on"],
                    "closed_on": None,
                    "close_reason": None,
                    "forgotten_on": None,
                    "household": state["household"] if enrolled else None,
                    "cohort": state["cohort"] if enrolled else None,
                    "programme": (
                        state["programme"]
                        if issubclass(event.cls, TrainingCohort.Planned)
                        else None
                    ),
                    "position": position,
                },
            )
        elif role == "closed":
            defer_update(
                writer,
                self.table,
                {"closed_on": state["on"], "close_reason": state["reason"]},
                {"subject_id": event.originator_id},
            )
        elif role == "forgotten":
            defer_update(
                writer,
                self.table,
                {"forgotten_on": state["on"]},
                {"subject_id": event.originator_id},
            )

    def end_page(self, writer: Writer) -> None:
        """Send the page's closures and erasures after its registrations."""
        send_deferred(writer)


def defer_update(
    writer: Writer, table: str, values: Mapping[str, Any], where: Mapping[str, Any]
) -> None:
    """Queue an update to be sent by :func:`send_deferred` at the end of the page.

    Only for updates of rows that no later insert of the same page can match: sending
    them after the page's inserts keeps long runs of inserts in one batch.
    """
    writer.page.setdefault("deferred", []).append((table, values, where))


def send_deferred(writer: Writer) -> None:
    """Send the updates queued by :func:`defer_update`, in the order they were queued."""
    for table, values, where in writer.page.pop("deferred", ()):
        writer.update(table, values, where=where)


class _Page:
    """One page of the log, decoded for raw projections, for the others, or both."""

    def __init__(self, page: Sequence[Any], mapper: Any, projections: Sequence[Projection]):
        self.last: int = page[-1].id
        self.raw: list[tuple[int, RawEvent]] = []
        self.decoded: list[tuple[int, Any]] = []
        if any(p.raw for p in projections):
            # The ledger's mapper decodes a page at once; another mapper one event at a time.
            decode_states = getattr(mapper, "decode_states", None)
            states = (
                decode_states(page)
                if decode_states is not None
                else [mapper.decode_state(n) for n in page]
            )
            raw = self.raw
            for n, (cls, state) in zip(page, states, strict=True):
                oid = n.originator_id
                hex_id = oid.hex if type(oid) is UUID else UUID(str(oid)).hex
                raw.append((n.id, RawEvent(cls, hex_id, n.originator_version, state)))
        if not all(p.raw for p in projections):
            self.decoded = [(n.id, mapper.to_domain_event(n)) for n in page]

    def originator_ids(self) -> Iterator[str]:
        """The aggregate ids of the page's events, as hex."""
        if self.raw:
            return (event.originator_id for _, event in self.raw)
        return (event.originator_id.hex for _, event in self.decoded)


@attrs.frozen
class Step:
    """What one :meth:`ProjectionEngine.step` did.

    ``applied`` events (0: caught up, or ``conflict``); ``behind`` is how many events the
    furthest-behind projection had still to apply before the step, ``head`` the position
    of the last recorded event then.
    """

    applied: int
    behind: int
    head: int
    conflict: bool


@attrs.frozen
class RebuildReport:
    """What a rebuild did: the projections dropped and rebuilt, and the events applied."""

    names: tuple[str, ...]
    events: int


class Reader:
    """Queries inside one read transaction (a consistent snapshot on both backends)."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self.dialect: Dialect = dialect
        self._connection = connection
        self._streams = 0

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query written with ``?`` placeholders and return every row as a tuple."""
        return list(self.stream(sql, params))

    def stream(
        self, sql: str, params: Sequence[Any] = (), *, size: int = 5000
    ) -> Iterator[tuple[Any, ...]]:
        """Yield the rows of a query one at a time, fetching ``size`` at once.

        On PostgreSQL a server-side cursor is used, so memory stays bounded.
        """
        adapt = _adapt_sqlite if self.dialect == "sqlite" else _adapt_postgres
        values = [adapt(p) for p in params]
        if self.dialect == "sqlite":
            cursor = self._connection.cursor()
        else:
            from psycopg.rows import tuple_row

            self._streams += 1
            cursor = self._connection.cursor(
                name=f"dinsos_stream_{self._streams}", row_factory=tuple_row
            )
            cursor.itersize = size
        try:
            cursor.execute(translate(sql, self.dialect), values)
            while True:
                rows = cursor.fetchmany(size)
                if not rows:
                    return
                for row in rows:
                    yield tuple(row)
        finally:
            cursor.close()


class ProjectionEngine:
    """Keeps a ledger's projections up to date and gives them consistent reads.

    The :class:`SubjectsProjection` is always first; ``projections`` are the others, in
    the order they are applied to each page. Events are read from ``ledger.recorder``;
    the tables are written through ``connection`` (by default one to the ledger's own
    database; ``Connection.scratch`` gives a private one, for a copy to compare).
    """

    def __init__(
        self,
        ledger: Any,
        projections: Iterable[Projection] = (),
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        connection: Connection | None = None,
    ) -> None:
        if page_size < 1:
            msg = f"'page_size' must be at least 1 (got {page_size})"
            raise ValueError(msg)
        self.ledger = ledger
        self.page_size = page_size
        self.connection = connection or Connection(ledger.target, getattr(ledger.app, "env", None))
        self.dialect: Dialect = self.connection.dialect
        self.subjects = SubjectsProjection()
        self.projections: list[Projection] = [self.subjects]
        self._directory = _Directory()
        self._ready: set[str] = set()
        for projection in projections:
            self.register(projection)

    # ------------------------------------------------------------- registry

    def register(self, projection: Projection) -> None:
        """Add a projection (its tables are created on the next catch-up)."""
        name = _identifier(projection.name, "name")
        if name in self.names:
            msg = f"a projection named {name!r} is already registered"
            raise ValueError(msg)
        owned = {TRACKING_TABLE, *(t for p in self.projections for t in p.tables)}
        for table in projection.tables:
            if _identifier(table) in owned:
                msg = f"table {table!r} of projection {name!r} belongs to another projection"
                raise ValueError(msg)
        self.projections.append(projection)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the projections, in the order they are applied."""
        return tuple(p.name for p in self.projections)

    def select(self, names: Iterable[str] | None) -> list[Projection]:
        """The projections called ``names`` (all when None), in application order."""
        if names is None:
            return list(self.projections)
        wanted = list(dict.fromkeys(names))
        unknown = [n for n in wanted if n not in self.names]
        if unknown:
            msg = (
                f"projection must be one of {', '.join(self.names)} "
                f"(got {', '.join(repr(n) for n in unknown)})"
            )
            raise UnknownProjection(msg)
        return [p for p in self.projections if p.name in wanted]

    # --------------------------------------------------------- transactions

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """A write transaction: commits on success, rolls back on any exception."""
        with self.connection.write() as cursor:
            yield cursor

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """A read-only transaction over the projection tables (one consistent snapshot)."""
        with self.connection.read() as conn:
            yield Reader(conn, self.dialect)

    def _lock(self, cursor: Any) -> None:
        """Serialise schema changes between processes for the rest of the transaction."""
        if self.dialect == "postgres":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        # On SQLite the transaction began IMMEDIATE: it holds the write lock already.

    def close(self) -> None:
        """Close the engine's connection (the next use opens it again)."""
        self.connection.close()

    # ------------------------------------------------------------- tracking

    def _tracking_ddl(self, writer: Writer) -> None:
        writer.create_table(
            TRACKING_TABLE,
            {
                "name": "key not null",
                "version": "integer not null",
                "position": "integer not null",
                "updated_at": "text not null",
            },
            primary_key=("name",),
        )

    def ensure_ready(self) -> None:
        """Create missing tables and tracking rows; rebuild projections of another version."""
        if all(p.name in self._ready for p in self.projections):
            return
        with self._write() as cursor:
            # Lock before anything else: two processes creating the same tables at once
            # collide on PostgreSQL, and SQLite refuses to turn a transaction that has read
            # (the DDL reads the schema) into a writer once another process has committed.
            self._lock(cursor)
            writer = Writer(cursor, self.dialect, self._directory)
            self._tracking_ddl(writer)
            writer.flush()
            stored = {
                row[0]: row[1]
                for row in writer.query(f"SELECT name, version FROM {TRACKING_TABLE}")
            }
            for projection in self.projections:
                version = stored.get(projection.name)
                if version == projection.version:
                    continue
                if version is not None:
                    projection.drop(writer)
                projection.create_tables(writer)
                self._set_tracking(writer, projection, 0)
            writer.flush()
        self._ready.update(p.name for p in self.projections)

    @staticmethod
    def _set_tracking(writer: Writer, projection: Projection, position: int) -> None:
        writer.upsert(
            TRACKING_TABLE,
            {
                "name": projection.name,
                "version": projection.version,
                "position": position,
                "updated_at": _now(),
            },
            key=("name",),
        )

    def positions(self) -> dict[str, int]:
        """The tracking position of each projection (0: nothing applied yet)."""
        self.ensure_ready()
        with self.reading() as reader:
            stored = dict(reader.all(f"SELECT name, position FROM {TRACKING_TABLE}"))
        return {p.name: int(stored.get(p.name, 0)) for p in self.projections}

    def head(self) -> int:
        """The position of the last recorded event (0 when the ledger is empty)."""
        try:
            return int(self.ledger.recorder.max_notification_id() or 0)
        except PersistenceError as e:
            raise StorageError(f"cannot read the ledger: {e}") from e

    # -------------------------------------------------------------- catch-up

    def catch_up(self, progress: Progress | None = None, names: Iterable[str] | None = None) -> int:
        """Apply every event not yet applied; return how many events were applied.

        Pages of ``page_size`` events are each applied in one transaction together with
        the tracking positions, so an interrupted catch-up resumes where it stopped.
        ``names`` limits it to those projections (and the subjects table they rest on).
        """
        applied = 0
        conflicts = 0
        total: int | None = None
        while True:
            step = self.step(names)
            if total is None:
                total = step.behind
            if step.conflict:
                # Another process applied (part of) this page: start again from its positions.
                conflicts += 1
                if conflicts > _MAX_CONFLICTS:  # pragma: no cover - needs a live race
                    msg = "cannot catch the projections up: other processes keep moving them"
                    raise StorageError(msg) from None
                continue
            if not step.applied:
                return applied
            applied += step.applied
            if progress is not None:
                progress(applied, max(total, applied))

    def with_dependencies(self, names: Iterable[str] | None) -> list[Projection]:
        """The projections called ``names`` (all when None) and every one applied before.

        A projection may read the tables of those applied before it (the subjects table
        always, built-in ones from a plugin), so they are kept up to date together.
        """
        selected = self.select(names)
        last = max(self.projections.index(p) for p in selected) if selected else 0
        return self.projections[: last + 1]

    def step(self, names: Iterable[str] | None = None) -> Step:
        """Apply at most one page to the projections called ``names`` (all when None).

        The page and the new tracking positions commit in one transaction. When another
        process advanced a position meanwhile, nothing is written and ``conflict`` is set:
        read the positions again and retry.
        """
        selected = self.with_dependencies(names)
        self.ensure_ready()
        positions = self.positions()
        low = min(positions[p.name] for p in selected)
        head = self.head()
        try:
            page = self.ledger.recorder.select_notifications(
                low, self.page_size, inclusive_of_start=False
            )
        except PersistenceError as e:
            raise StorageError(f"cannot read the ledger: {e}") from e
        if not page:
            return Step(0, max(head - low, 0), head, conflict=False)
        with paused_gc():
            events = _Page(page, self.ledger.app.mapper, selected)
        try:
            with paused_gc():
                self._apply_page(events, positions, selected)
        except _Conflict:
            return Step(0, max(head - low, 0), head, conflict=True)
        return Step(len(page), max(head - low, 0), head, conflict=False)

    def _apply_page(
        self, events: _Page, positions: Mapping[str, int], selected: Sequence[Projection]
    ) -> None:
        last = events.last
        behind = [p for p in selected if positions[p.name] < last]
        with self._write() as cursor:
            # The compare-and-set comes first: it takes the write lock, and a process that
            # got here first makes it match nothing.
            for projection in behind:
                cursor.execute(
                    translate(
                        f"UPDATE {TRACKING_TABLE} SET position = ?, updated_at = ? "
                        "WHERE name = ? AND position = ? RETURNING name",
                        self.dialect,
                    ),
                    (last, _now(), projection.name, positions[projection.name]),
                )
                if len(cursor.fetchall()) != 1:
                    raise _Conflict
            directory_loaded = False
            for projection in behind:
                if projection is not self.subjects and not directory_loaded:
                    self._directory.load(cursor, self.dialect, events.originator_ids())
                    directory_loaded = True
                writer = Writer(cursor, self.dialect, self._directory)
                after = positions[projection.name]
                if projection.raw:
                    handle, items = projection.handle_raw, events.raw
                else:
                    handle, items = projection.handle, events.decoded
                for position, event in items:
                    if position > after:
                        handle(event, position, writer)
                projection.end_page(writer)
                writer.flush()

    def rebuild(
        self, names: Iterable[str] | None = None, progress: Progress | None = None
    ) -> RebuildReport:
        """Drop the named projections (default: all), recreate them and apply every event."""
        selected = self.select(names)
        self.ensure_ready()
        with self._write() as cursor:
            self._lock(cursor)
            writer = Writer(cursor, self.dialect, self._directory)
            for projection in selected:
                projection.drop(writer)
                projection.create_tables(writer)
                self._set_tracking(writer, projection, 0)
            writer.flush()
        events = self.catch_up(progress)
        return RebuildReport(tuple(p.name for p in selected), events)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
