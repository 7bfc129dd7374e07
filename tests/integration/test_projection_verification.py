"""``verify`` recomputes every stored projection from the events and names the first forged row.

Each test imports the field-office file, then edits a projection table straight in the
database, as someone with write access to it would, and runs ``verify`` from the command
line (or, for a plugin's projection, through the Python API), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dinsos_ledger import audit
from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.projections.engine import Projection, Writer, event_kind

ROOT = Path(__file__).resolve().parents[2]
FIELD_OFFICE = ROOT / "tests" / "data" / "field_office.jsonl"


def cli(target: str, *args: str) -> Result:
    """Run ``dinsos-ledger --db TARGET ARGS…``."""
    return CliRunner().invoke(main, ["--db", target, *args], catch_exceptions=False)


def sql(target: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run ``statement`` (``?`` marks) straight on the store, outside the ledger."""
    if target.startswith("postgresql://"):
        import psycopg

        url, _, query = target.partition("?")
        schema = query.removeprefix("schema=")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            cursor = conn.execute(statement.replace("?", "%s"), params)  # type: ignore[call-overload]
            return list(cursor.fetchall()) if cursor.description else []
    with contextlib.closing(sqlite3.connect(target)) as conn, conn:
        return list(conn.execute(statement, params).fetchall())


@pytest.fixture
def loaded(target: str) -> str:
    """A ledger holding the field-office file, its projections caught up by the import."""
    result = cli(target, "import", str(FIELD_OFFICE), "--json")
    assert json.loads(result.stdout)["accepted"] == 60
    return target


def verify_json(target: str) -> tuple[int, dict[str, Any]]:
    """``verify --json``: the exit code and the report."""
    result = cli(target, "verify", "--json")
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def test_an_intact_ledger_verifies_with_its_projections(loaded: str) -> None:
    """Nothing touched: exit 0."""
    assert verify_json(loaded)[0] == 0


def test_a_forged_balance_is_printed_by_balances_but_named_by_verify(loaded: str) -> None:
    """UPDATE proj_money SET amount = amount + 1000000: verify names projection, row and column."""
    before = json.loads(cli(loaded, "balances", "--json").stdout)
    sql(
        loaded,
        "UPDATE proj_money SET amount = amount + 1000000 WHERE ref = ? AND reference = ?",
        ("KT-VT-0001", "TA-2025-01-VT0001"),
    )
    forged = json.loads(cli(loaded, "balances", "--json").stdout)
    assert forged != before  # what an operator would be shown
    code, report = verify_json(loaded)
    assert code == 1
    assert report["ok"] is False
    assert report["finding"] == {
        "kind": "projection",
        "position": None,
        "ref": "KT-VT-0001",
        "subject_kind": None,
        "version": None,
        "event": None,
        "message": "amount is 1225000 in the database, but the events give 225000",
        "projection": "money",
        "table": "proj_money",
        "row": {"ref": "KT-VT-0001", "reference": "TA-2025-01-VT0001"},
        "column": "amount",
    }
    text = cli(loaded, "verify")
    assert text.exit_code == 1
    assert text.stdout == (
        "projection money (table proj_money, ref=KT-VT-0001, reference=TA-2025-01-VT0001, "
        "column amount): amount is 1225000 in the database, but the events give 225000\n"
    )
    assert cli(loaded, "rebuild", "money").exit_code == 0
    assert verify_json(loaded)[0] == 0
    assert json.loads(cli(loaded, "balances", "--json").stdout) == before


def test_a_deleted_projection_row_is_named_as_missing(loaded: str) -> None:
    """A contact removed from proj_contacts: the row the events give is missing."""
    (position,) = sql(loaded, "SELECT MIN(position) FROM proj_contacts")[0]
    sql(loaded, "DELETE FROM proj_contacts WHERE position = ?", (position,))
    code, report = verify_json(loaded)
    assert code == 1
    finding = report["finding"]
    assert (finding["projection"], finding["table"], finding["row"], finding["column"]) == (
        "contacts",
        "proj_contacts",
        {"position": position},
        None,
    )
    assert finding["message"] == "the row the events give is missing from the database"


def test_an_inserted_projection_row_is_named_as_extra(loaded: str) -> None:
    """A disbursement row copied under another ref: the events give no such row."""
    sql(
        loaded,
        "INSERT INTO proj_money (ref, reference, kind, programme, entry, on_date, amount, "
        "period, channel, reversed_on, position) SELECT 'KT-HH-9999', reference, kind, "
        "programme, entry, on_date, amount, period, channel, reversed_on, position "
        "FROM proj_money WHERE ref = 'KT-VT-0001'",
    )
    code, report = verify_json(loaded)
    assert code == 1
    assert report["finding"]["row"]["ref"] == "KT-HH-9999"
    assert report["finding"]["message"] == (
        "the row is in the database, but the events give no such row"
    )


def test_a_forged_subject_row_is_named(loaded: str) -> None:
    """Reopening a closed household in proj_subjects (closed_on set to null) is found."""
    (ref,) = sql(loaded, "SELECT MIN(ref) FROM proj_subjects WHERE closed_on IS NOT NULL")[0]
    sql(loaded, "UPDATE proj_subjects SET closed_on = NULL WHERE ref = ?", (ref,))
    code, report = verify_json(loaded)
    assert code == 1
    finding = report["finding"]
    assert (finding["projection"], finding["row"], finding["column"]) == (
        "subjects",
        {"ref": ref},
        "closed_on",
    )
    assert finding["message"].startswith("closed_on is null in the database, but the events give ")


def test_a_tracking_position_moved_past_the_last_event_is_named(loaded: str) -> None:
    """A tracking row that claims events that do not exist is a finding on proj_tracking."""
    sql(loaded, "UPDATE proj_tracking SET position = position + 1000 WHERE name = 'money'")
    code, report = verify_json(loaded)
    assert code == 1
    finding = report["finding"]
    assert (finding["table"], finding["row"], finding["column"]) == (
        "proj_tracking",
        {"name": "money"},
        "position",
    )


def test_a_deleted_tracking_row_leaves_rows_nobody_can_vouch_for(loaded: str) -> None:
    """Rows kept in a table whose projection lost its tracking position are a finding."""
    sql(loaded, "DELETE FROM proj_tracking WHERE name = 'money'")
    code, report = verify_json(loaded)
    assert code == 1
    assert (report["finding"]["projection"], report["finding"]["table"]) == ("money", "proj_money")
    assert "has no position in proj_tracking" in report["finding"]["message"]


def test_a_column_added_to_a_projection_table_is_named(loaded: str) -> None:
    """A table whose columns are not the projection's is reported as the table itself."""
    sql(loaded, "ALTER TABLE proj_money ADD COLUMN bonus INTEGER")
    code, report = verify_json(loaded)
    assert code == 1
    assert (report["finding"]["table"], report["finding"]["row"]) == ("proj_money", {})
    assert "bonus" in report["finding"]["message"]


def test_verify_leaves_the_database_as_it_found_it(loaded: str) -> None:
    """The shadow rebuild writes nowhere in the ledger's database: same tables, same rows."""

    def tables() -> list[tuple[Any, ...]]:
        if loaded.startswith("postgresql://"):
            return sql(
                loaded,
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() ORDER BY 1",
            )
        return sql(loaded, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")

    before = tables(), sql(loaded, "SELECT name, position FROM proj_tracking ORDER BY name")
    assert verify_json(loaded)[0] == 0
    assert (tables(), sql(loaded, "SELECT name, position FROM proj_tracking ORDER BY name")) == (
        before
    )


class KindCounts(Projection):
    """A plugin's projection: events per kind of subject."""

    name: ClassVar[str] = "kind_counts"
    tables: ClassVar[tuple[str, ...]] = ("custom_kind_counts",)

    def create_tables(self, writer: Writer) -> None:
        """Create ``custom_kind_counts``."""
        writer.create_table(
            "custom_kind_counts",
            {"kind": "key not null", "events": "integer not null"},
            primary_key=("kind",),
        )

    def handle(self, event: Any, position: int, writer: Writer) -> None:
        """Count the event under its subject's kind."""
        del position
        writer.accumulate("custom_kind_counts", {"kind": event_kind(event)}, {"events": 1})


def test_a_plugin_projection_is_verified_the_same_way(loaded: str) -> None:
    """A registered projection's forged row is found like a built-in one's."""
    with Ledger(loaded) as ledger:
        ledger.projections.register(KindCounts())
        ledger.projections.catch_up()
        assert audit.verify(ledger).ok
    sql(loaded, "UPDATE custom_kind_counts SET events = events - 1 WHERE kind = 'veteran'")
    with Ledger(loaded) as ledger:
        ledger.projections.register(KindCounts())
        report = audit.verify(ledger)
    assert report.finding is not None
    difference = report.finding.projection
    assert difference is not None
    assert (difference.projection, difference.table, difference.key, difference.column) == (
        "kind_counts",
        "custom_kind_counts",
        {"kind": "veteran"},
        "events",
    )


@pytest.mark.parametrize("backend", ["sqlite"])
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_changed_amount_is_found_at_its_row(loaded: str, data: st.DataObject) -> None:
    """Whichever money row is changed by whatever amount, verify names that row and column."""
    rows = sql(loaded, "SELECT ref, reference, amount FROM proj_money ORDER BY ref, reference")
    ref, reference, amount = data.draw(st.sampled_from(rows))
    delta = data.draw(st.integers(-amount, 10**9).filter(lambda d: d != 0))
    sql(
        loaded,
        "UPDATE proj_money SET amount = amount + ? WHERE ref = ? AND reference = ?",
        (delta, ref, reference),
    )
    try:
        code, report = verify_json(loaded)
        assert code == 1
        assert report["finding"]["row"] == {"ref": ref, "reference": reference}
        assert report["finding"]["column"] == "amount"
    finally:
        sql(
            loaded,
            "UPDATE proj_money SET amount = ? WHERE ref = ? AND reference = ?",
            (amount, ref, reference),
        )


def test_projections_at_different_positions_are_each_compared_at_their_own(
    loaded: str, tmp_path: Path
) -> None:
    """A plugin's projection left behind by later imports is compared as of its own position."""
    with Ledger(loaded) as ledger:
        ledger.projections.register(KindCounts())
        ledger.projections.catch_up()
        behind = ledger.projections.positions()["kind_counts"]
    more = tmp_path / "more.jsonl"
    more.write_text(
        json.dumps(
            {
                "id": "more-1",
                "command": "follow_up",
                "ref": "KT-HH-0001",
                "on": "2025-06-01",
                "actor": "petugas",
                "outcome": "visited",
            }
        )
        + "\n"
    )
    assert cli(loaded, "import", str(more)).exit_code == 0  # catches up the built-ins only
    with Ledger(loaded) as ledger:
        ledger.projections.register(KindCounts())
        positions = dict(sql(loaded, "SELECT name, position FROM proj_tracking"))
        assert positions["kind_counts"] == behind < positions["money"]
        assert audit.verify(ledger).ok
    sql(loaded, "UPDATE custom_kind_counts SET events = events + 1 WHERE kind = 'household'")
    with Ledger(loaded) as ledger:
        ledger.projections.register(KindCounts())
        report = audit.verify(ledger)
    assert report.finding is not None
    assert report.finding.projection is not None
    assert report.finding.projection.key == {"kind": "household"}


def test_the_findings_projections_which_read_the_keyed_index_are_verified_too(
    loaded: str,
) -> None:
    """Projections that read the ledger's own tables (the keyed index) rebuild and compare."""
    assert verify_json(loaded)[0] == 0
    tables = ["proj_closures", "proj_payments", "proj_shared", "proj_future", "proj_not_found"]
    table = next(t for t in tables if sql(loaded, f"SELECT COUNT(*) FROM {t}")[0][0])
    sql(loaded, f"DELETE FROM {table}")
    code, report = verify_json(loaded)
    assert code == 1
    assert report["finding"]["table"] == table
