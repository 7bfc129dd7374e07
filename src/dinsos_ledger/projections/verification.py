"""Verification of stored projections: recompute every one from the events and compare.

Projections are derived data, yet ``balances``, ``continuity`` and the report print what
their tables hold: a row changed in the database (``UPDATE proj_money SET amount = …``)
would be printed as if it were the ledger's. :func:`check_projections` rebuilds every
registered projection (built-in or a plugin's, through the same engine and the same
handlers) into a **shadow** store that only this call sees, then compares the stored
tables with the shadow's, table by table, row by row in one order, and returns the first
difference: the projection, the table, the row's key and the column.

- The shadow is a temporary SQLite file for a SQLite ledger, and PostgreSQL temporary
  tables (``pg_temp``, gone with the session) for a PostgreSQL one, so the projections
  run the same SQL as they do for real and the values compare type for type. Nothing is
  written to the ledger's database: ``verify`` needs no write right on it.
- Each stored projection is compared at its own tracking position (all of them are at
  the same one unless a catch-up was interrupted): the shadow is caught up to each
  position in turn. Stored rows are read in one snapshot; both sides are streamed in the
  same ``ORDER BY``, so memory stays bounded whatever the size of the tables.
- A projection stored with another version than the registered one is skipped: the next
  catch-up drops and rebuilds it, so its rows are never printed.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any, Final

import attrs

from dinsos_ledger.persistence.common import INDEX_TABLE
from dinsos_ledger.projections.engine import (
    TRACKING_TABLE,
    Projection,
    ProjectionEngine,
    Reader,
)

__all__ = ["ProjectionDifference", "check_projections"]

# A value is shown in a message up to this many characters.
_SHOWN: Final = 80


@attrs.frozen
class ProjectionDifference:
    """The first stored projection row that differs from the one the events give.

    ``key`` is the row's primary key (column → value; every column for a table without
    one; empty when the difference is the table itself), ``column`` the first column that
    differs (None for a missing or extra row), ``ref`` the subject when the key names one.
    """

    projection: str
    table: str
    key: dict[str, Any]
    column: str | None
    message: str

    @property
    def ref(self) -> str | None:
        """The subject's ref when the row's key holds one."""
        value = self.key.get("ref")
        return value if isinstance(value, str) else None

    def key_text(self) -> str:
        """The key as ``name=value, …`` for people."""
        return ", ".join(f"{name}={_shown(value)}" for name, value in self.key.items())


def _shown(value: Any, *, typed: bool = False) -> str:
    """A value for a message; ``typed`` shows its Python form (``'1000'`` apart from ``1000``)."""
    if value is None:
        text = "null"
    elif typed:
        text = repr(value)
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        text = str(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


# ------------------------------------------------------------------ the shadow store


class _ShadowRecorder:
    """The ledger's recorder as the shadow engine sees it: the same events, up to ``stop``."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder
        self.stop = 0

    def select_notifications(
        self, start: int | None, limit: int, stop: int | None = None, *args: Any, **kwargs: Any
    ) -> Sequence[Any]:
        stop = self.stop if stop is None else min(stop, self.stop)
        return list(self._recorder.select_notifications(start, limit, stop, *args, **kwargs))

    def max_notification_id(self) -> int:
        return min(int(self._recorder.max_notification_id() or 0), self.stop)


class _ShadowLedger:
    """What :class:`ProjectionEngine` needs of a ledger: its target, mapper and events."""

    def __init__(self, ledger: Any) -> None:
        self.target = ledger.target
        self.app = ledger.app
        self.recorder = _ShadowRecorder(ledger.recorder)


def _copy_index(engine: ProjectionEngine, shadow: ProjectionEngine) -> None:
    """Give the shadow a copy of the keyed index, which the findings projection joins.

    The index is a ledger table, not derived from the events (its MACs need the master
    key), so the shadow cannot recompute it: it reads the stored one, as the real
    projection does.
    """
    if engine.dialect == "postgres":
        from psycopg.sql import SQL, Identifier

        with shadow.connection.write() as cursor:
            cursor.execute(
                SQL("CREATE TEMP TABLE {0} AS SELECT subject_id, field, mac FROM {1}.{0}").format(
                    Identifier(INDEX_TABLE), Identifier(engine.connection.schema)
                )
            )
        return
    with engine.reading() as reader:
        index = reader.all(f"SELECT subject_id, field, mac FROM {INDEX_TABLE}")
    with shadow.connection.write() as cursor:
        cursor.execute(
            f"CREATE TABLE {INDEX_TABLE} (subject_id TEXT NOT NULL, field TEXT NOT NULL, "
            "mac TEXT NOT NULL, PRIMARY KEY (subject_id, field)) WITHOUT ROWID"
        )
        cursor.executemany(f"INSERT INTO {INDEX_TABLE} VALUES (?, ?, ?)", index)


# ------------------------------------------------------------------ catalogue


def _exists(reader: Reader, table: str) -> bool:
    if reader.dialect == "sqlite":
        found = reader.all("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
        return bool(found)
    return reader.all("SELECT to_regclass(?) IS NOT NULL", [table])[0][0] is True


def _layout(reader: Reader, table: str) -> tuple[list[str], list[str]]:
    """The columns of ``table`` in order, and its primary key's columns in key order."""
    if reader.dialect == "sqlite":
        info = reader.all(f"PRAGMA table_info({table})")
        columns = [str(row[1]) for row in info]
        key = [str(row[1]) for row in sorted(info, key=lambda row: int(row[5])) if row[5]]
        return columns, key
    columns = [
        str(row[0])
        for row in reader.all(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?) "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [table],
        )
    ]
    key = [
        str(row[0])
        for row in reader.all(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[]) "
            "WHERE i.indrelid = to_regclass(?) AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)",
            [table],
        )
    ]
    return columns, key


def _tracking(reader: Reader) -> dict[str, tuple[Any, Any]] | None:
    """Each tracked projection's stored (version, position); None without a tracking table."""
    if not _exists(reader, TRACKING_TABLE):
        return None
    rows = reader.all(f"SELECT name, version, position FROM {TRACKING_TABLE}")
    return {str(name): (version, position) for name, version, position in rows}


# ------------------------------------------------------------------ comparison


def _same(mine: tuple[Any, ...] | None, theirs: tuple[Any, ...] | None) -> bool:
    """Equal rows, value for value and type for type (``1000`` is not ``'1000'`` nor ``True``)."""
    if mine is None or theirs is None:
        return mine is theirs
    return mine == theirs and all(type(a) is type(b) for a, b in zip(mine, theirs, strict=True))


def _compare_table(
    projection: Projection, table: str, stored: Reader, shadow: Reader
) -> ProjectionDifference | None:
    """The first difference between the stored ``table`` and the recomputed one, if any."""

    def differ(key: dict[str, Any], column: str | None, message: str) -> ProjectionDifference:
        return ProjectionDifference(projection.name, table, key, column, message)

    columns, key_columns = _layout(shadow, table)
    if not _exists(stored, table):
        return differ({}, None, f"table {table} is missing from the database")
    stored_columns, _ = _layout(stored, table)
    if stored_columns != columns:
        return differ(
            {},
            None,
            f"table {table} has the columns {', '.join(stored_columns)}, "
            f"but the projection makes {', '.join(columns)}",
        )
    key_columns = key_columns or columns
    order = [*key_columns, *(c for c in columns if c not in key_columns)]
    sql = f"SELECT {', '.join(order)} FROM {table} ORDER BY {', '.join(order)}"
    width = len(key_columns)

    def key_of(row: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(key_columns, row[:width], strict=True))

    ours, theirs = stored.stream(sql), shadow.stream(sql)
    mine, recomputed = next(ours, None), next(theirs, None)
    while mine is not None or recomputed is not None:
        if _same(mine, recomputed):
            mine, recomputed = next(ours, None), next(theirs, None)
            continue
        if mine is None:
            assert recomputed is not None
            return differ(key_of(recomputed), None, _MISSING)
        if recomputed is None:
            return differ(key_of(mine), None, _EXTRA)
        if _same(mine[:width], recomputed[:width]):
            for column, stored_value, value in zip(order, mine, recomputed, strict=True):
                if not _same((stored_value,), (value,)):
                    typed = stored_value == value  # equal but of another type
                    return differ(
                        key_of(mine),
                        column,
                        f"{column} is {_shown(stored_value, typed=typed)} in the database, "
                        f"but the events give {_shown(value, typed=typed)}",
                    )
        # Different keys: either the recomputed row is missing here (the stored row is
        # then the next recomputed one), or the stored row is one the events do not give.
        following = next(theirs, None)
        if following is not None and _same(following[:width], mine[:width]):
            return differ(key_of(recomputed), None, _MISSING)
        return differ(key_of(mine), None, _EXTRA)
    return None


_MISSING: Final = "the row the events give is missing from the database"
_EXTRA: Final = "the row is in the database, but the events give no such row"


def _behind(
    engine: ProjectionEngine, tracked: dict[str, tuple[Any, Any]], head: int
) -> tuple[dict[int, list[Projection]], ProjectionDifference | None]:
    """The stored projections to compare, grouped by tracking position; or a bad position."""
    groups: dict[int, list[Projection]] = {}
    for projection in engine.projections:
        if projection.name not in tracked:
            continue
        version, position = tracked[projection.name]
        if version != projection.version:
            continue  # rebuilt from the first event by the next catch-up
        if type(position) is not int or not 0 <= position <= head:
            message = (
                f"position of projection {projection.name} is {_shown(position)}, "
                f"but the last event is at {head}"
            )
            difference = ProjectionDifference(
                projection.name, TRACKING_TABLE, {"name": projection.name}, "position", message
            )
            return {}, difference
        groups.setdefault(position, []).append(projection)
    return groups, None


def _untracked_rows(
    engine: ProjectionEngine, tracked: dict[str, tuple[Any, Any]], stored: Reader
) -> ProjectionDifference | None:
    """Rows in the tables of a projection that has no tracking position.

    The next catch-up would start such a projection from the first event on top of those
    rows (created "if not exists"), and keep them: they can only have been put there by
    hand, or left by a tracking row deleted by hand.
    """
    for projection in engine.projections:
        if projection.name in tracked:
            continue
        for table in projection.tables:
            if _exists(stored, table) and stored.all(f"SELECT 1 FROM {table} LIMIT 1"):
                return ProjectionDifference(
                    projection.name,
                    table,
                    {},
                    None,
                    f"table {table} holds rows, but projection {projection.name} has no "
                    f"position in {TRACKING_TABLE}: its rows were not made by the ledger",
                )
    return None


def check_projections(ledger: Any) -> ProjectionDifference | None:
    """The first stored projection row that differs from the one the events give, if any.

    Every projection registered with ``ledger.projections`` (the built-ins and any a
    plugin added) is rebuilt in a shadow store, up to the position its stored copy has
    reached, and compared table by table with its stored copy. The ledger's database is
    only read. Returns None when every stored projection equals its recomputation.
    """
    engine: ProjectionEngine = ledger.projections.engine
    with ExitStack() as stack:
        stored = stack.enter_context(engine.reading())
        tracked = _tracking(stored) or {}
        untracked = _untracked_rows(engine, tracked, stored)
        if untracked is not None:
            return untracked
        head = int(ledger.recorder.max_notification_id() or 0)
        groups, difference = _behind(engine, tracked, head)
        if difference is not None or not groups:
            return difference
        # The shadow store: a temporary SQLite file, or PostgreSQL temporary tables of one
        # session (Connection.scratch); the ledger's database is only read.
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="dinsos-verify-"))
        shadow_ledger = _ShadowLedger(ledger)
        shadow = ProjectionEngine(
            shadow_ledger,
            [p for p in engine.projections if p is not engine.subjects],
            page_size=engine.page_size,
            connection=engine.connection.scratch(folder),
        )
        stack.callback(shadow.close)
        _copy_index(engine, shadow)
        shadow.ensure_ready()
        for position in sorted(groups):
            shadow_ledger.recorder.stop = position
            shadow.catch_up()
            with shadow.reading() as recomputed:
                for projection in groups[position]:
                    for table in projection.tables:
                        difference = _compare_table(projection, table, stored, recomputed)
                        if difference is not None:
                            return difference
    return None
