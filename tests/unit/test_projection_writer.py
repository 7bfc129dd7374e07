"""The projection writer without a database: the SQL it sends, in what order, how batched."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from dinsos_ledger.projections.engine import (
    COLUMN_TYPES,
    Writer,
    _Directory,
    as_date,
    defer_update,
    send_deferred,
    translate,
)
from dinsos_ledger.types import Channel, Programme, Rupiah, subject_id


class FakeCursor:
    """Records what a writer sends: ("execute"|"executemany"|"copy", sql, params)."""

    def __init__(self, rows: list[tuple[Any, ...]] | None = None) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.rows = rows or []

    def execute(self, sql: str, params: Any = ()) -> None:
        """Record one statement."""
        self.sent.append(("execute", sql, list(params)))

    def executemany(self, sql: str, params: Any) -> None:
        """Record one statement with many parameter rows."""
        self.sent.append(("executemany", sql, [list(p) for p in params]))

    def fetchall(self) -> list[tuple[Any, ...]]:
        """The rows the test gave."""
        return self.rows

    @contextmanager
    def copy(self, sql: str) -> Iterator[Any]:
        """Record a COPY and the rows written to it."""
        rows: list[list[Any]] = []
        outer = self

        class Copy:
            def write_row(self, row: Any) -> None:
                rows.append(list(row))

        yield Copy()
        outer.sent.append(("copy", sql, rows))


def writer(
    dialect: str = "sqlite", rows: list[tuple[Any, ...]] | None = None
) -> tuple[Writer, FakeCursor]:
    """A writer on a fake cursor."""
    cursor = FakeCursor(rows)
    return Writer(cursor, dialect, _Directory()), cursor  # type: ignore[arg-type]


def test_consecutive_inserts_into_one_table_go_in_one_batch() -> None:
    """Three inserts with the same columns are one executemany, values in order."""
    w, cursor = writer()
    for n in range(3):
        w.insert("t", {"a": n, "b": f"x{n}"})
    assert cursor.sent == []  # nothing is sent before the flush
    w.flush()
    assert cursor.sent == [
        ("executemany", "INSERT INTO t (a, b) VALUES (?, ?)", [[0, "x0"], [1, "x1"], [2, "x2"]])
    ]


def test_writes_keep_their_order_across_statements() -> None:
    """insert, update, insert: three runs in that order (an update may depend on an insert)."""
    w, cursor = writer()
    w.insert("t", {"a": 1})
    w.update("t", {"b": 2}, where={"a": 1})
    w.insert("t", {"a": 3})
    w.flush()
    assert cursor.sent == [
        ("execute", "INSERT INTO t (a) VALUES (?)", [1]),
        ("execute", "UPDATE t SET b = ? WHERE a = ?", [2, 1]),
        ("execute", "INSERT INTO t (a) VALUES (?)", [3]),
    ]


def test_deferred_updates_are_sent_after_the_page_inserts() -> None:
    """defer_update keeps inserts together; send_deferred sends the updates in order."""
    w, cursor = writer()
    w.insert("t", {"a": 1})
    defer_update(w, "t", {"b": 2}, {"a": 1})
    w.insert("t", {"a": 3})
    defer_update(w, "t", {"b": 4}, {"a": 3})
    send_deferred(w)
    w.flush()
    assert cursor.sent == [
        ("executemany", "INSERT INTO t (a) VALUES (?)", [[1], [3]]),
        ("executemany", "UPDATE t SET b = ? WHERE a = ?", [[2, 1], [4, 3]]),
    ]
    assert "deferred" not in w.page


def test_upsert_and_accumulate_speak_the_on_conflict_both_backends_know() -> None:
    """upsert replaces the other columns; accumulate adds to the stored numbers."""
    w, cursor = writer("postgres")
    w.upsert("t", {"k": "a", "v": 1}, key=("k",))
    w.accumulate("totals", {"month": "2025-01"}, {"n": 1, "amount": 5})
    w.flush()
    assert cursor.sent == [
        (
            "execute",
            "INSERT INTO t (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            ["a", 1],
        ),
        (
            "execute",
            (
                "INSERT INTO totals (month, n, amount) VALUES (%s, %s, %s) ON CONFLICT (month) "
                "DO UPDATE SET n = totals.n + excluded.n, amount = totals.amount + excluded.amount"
            ),
            ["2025-01", 1, 5],
        ),
    ]


def test_postgres_loads_runs_of_inserts_through_copy() -> None:
    """On PostgreSQL a run of plain inserts is one COPY; a single insert stays an INSERT."""
    w, cursor = writer("postgres")
    w.insert("t", {"a": 1, "on_date": dt.date(2025, 1, 2)})
    w.insert("t", {"a": 2, "on_date": dt.date(2025, 1, 3)})
    w.flush()
    w.insert("t", {"a": 3, "on_date": None})
    w.flush()
    assert cursor.sent == [
        (
            "copy",
            "COPY t (a, on_date) FROM STDIN",
            [[1, dt.date(2025, 1, 2)], [2, dt.date(2025, 1, 3)]],
        ),
        ("execute", "INSERT INTO t (a, on_date) VALUES (%s, %s)", [3, None]),
    ]


def test_values_are_adapted_to_what_each_backend_stores() -> None:
    """Dates become ISO text on SQLite only; ids, enums and value objects become scalars."""
    sid = uuid.uuid4()
    row = {
        "d": dt.date(2025, 3, 1),
        "id": sid,
        "channel": Channel.IN_KIND,
        "programme": Programme("PKH"),
        "amount": Rupiah(750_000),
        "flag": True,
    }
    lite, lite_cursor = writer("sqlite")
    lite.insert("t", row)
    lite.flush()
    assert lite_cursor.sent[0][2] == ["2025-03-01", sid.hex, "in_kind", "PKH", 750_000, True]
    pg, pg_cursor = writer("postgres")
    pg.insert("t", row)
    pg.flush()
    assert pg_cursor.sent[0][2] == [dt.date(2025, 3, 1), sid.hex, "in_kind", "PKH", 750_000, True]


def test_placeholders_and_percent_signs_are_translated_for_postgres() -> None:
    """``?`` becomes ``%s`` and a literal ``%`` is doubled; SQLite SQL is left alone."""
    sql = "SELECT * FROM t WHERE region LIKE '64.08.%' AND ref = ?"
    assert translate(sql, "sqlite") == sql
    assert translate(sql, "postgres") == "SELECT * FROM t WHERE region LIKE '64.08.%%' AND ref = %s"


def test_a_query_sends_the_queued_writes_first() -> None:
    """Reads see the projection's own writes of the page (read-your-writes)."""
    w, cursor = writer(rows=[("x",)])
    w.insert("t", {"a": 1})
    assert w.query("SELECT a FROM t WHERE a = ?", (1,)) == [("x",)]
    assert [kind for kind, _, _ in cursor.sent] == ["execute", "execute"]
    assert cursor.sent[0][1].startswith("INSERT")


def test_subject_lookups_fall_back_to_one_query_and_are_cached() -> None:
    """A subject not yet cached is read from proj_subjects once, then served from memory."""
    sid = subject_id("HH-1").hex
    w, cursor = writer(rows=[(sid, "HH-1", "household", "2025-01-02", "64.08.04.2001", None, None)])
    info = w.subject("HH-1")
    assert info is not None
    assert (info.ref, info.kind, info.registered_on, info.kecamatan) == (
        "HH-1",
        "household",
        dt.date(2025, 1, 2),
        "64.08.04",
    )
    assert w.subject(subject_id("HH-1")) == info
    assert len(cursor.sent) == 1


def test_create_table_maps_portable_types_per_backend() -> None:
    """``key`` is byte-ordered text on PostgreSQL; dates are text on SQLite, date on PostgreSQL."""
    for dialect, expected in (
        (
            "sqlite",
            (
                "CREATE TABLE IF NOT EXISTS t (ref TEXT NOT NULL, on_date TEXT, n INTEGER, "
                "PRIMARY KEY (ref))"
            ),
        ),
        (
            "postgres",
            (
                'CREATE TABLE IF NOT EXISTS t (ref text COLLATE "C" NOT NULL, on_date date, '
                "n bigint, PRIMARY KEY (ref))"
            ),
        ),
    ):
        w, cursor = writer(dialect)
        w.create_table(
            "t", {"ref": "key not null", "on_date": "date", "n": "integer"}, primary_key=("ref",)
        )
        w.flush()
        assert cursor.sent == [("execute", expected, [])]
    assert set(COLUMN_TYPES["sqlite"]) == set(COLUMN_TYPES["postgres"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: w.create_table("t", {"a": "money"}), "column type must be one of"),
        (lambda w: w.create_table("Robert'); DROP", {"a": "text"}), "'table' must be a lower-case"),
        (lambda w: w.create_table("t", {"a b": "text"}), "'column' must be a lower-case"),
        (lambda w: w.drop_table("proj money"), "'table' must be a lower-case"),
    ],
)
def test_schema_names_and_types_are_checked(call: Any, message: str) -> None:
    """Names that are not plain identifiers and unknown types are refused before any SQL."""
    w, cursor = writer()
    with pytest.raises(ValueError, match=message):
        call(w)
    assert cursor.sent == []


def test_as_date_reads_both_backends_storage() -> None:
    """ISO text (SQLite) and ``date`` (PostgreSQL) read back as the same date; None stays."""
    assert as_date("2025-02-03") == as_date(dt.date(2025, 2, 3)) == dt.date(2025, 2, 3)
    # A naive timestamp, as a driver may return one.
    assert as_date(dt.datetime(2025, 2, 3, 4, 5)) == dt.date(2025, 2, 3)  # noqa: DTZ001
    assert as_date(None) is None
