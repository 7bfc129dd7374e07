"""The store under attack: ids in another spelling, half-written batches, hostile settings.

Each test acts as someone with access to the database or the process environment would,
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dinsos_ledger import audit
from dinsos_ledger.application import Ledger
from dinsos_ledger.errors import StorageError
from dinsos_ledger.types import subject_id

from tests.attacker import drop_guards, restore_guards, run_sql


def _command(n: int, name: str, ref: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"c-{n:04d}",
        "command": name,
        "ref": ref,
        "on": "2025-02-01",
        "actor": "petugas.sangatta",
        **fields,
    }


def _household(n: int, ref: str) -> dict[str, Any]:
    digits = f"{n:04d}"
    return _command(
        n,
        "register_household",
        ref,
        region="64.08.04.2001",
        members=3,
        family_card=f"640804010125{digits}",
        head_nik=f"640804120382{digits}",
        head_name="Rahmat Hidayat",
    )


def _assess(n: int, ref: str) -> dict[str, Any]:
    return _command(n, "assess", ref, desil=2)


def _allocate(n: int, ref: str) -> dict[str, Any]:
    return _command(
        n, "allocate", ref, programme="PKH", amount=750_000, period="2025-02", reference=f"A-{n}"
    )


def _disburse(n: int, ref: str) -> dict[str, Any]:
    return _command(
        n, "disburse", ref, programme="PKH", amount=750_000, reference=f"D-{n}", channel="bank"
    )


def _counts(target: str) -> dict[str, int]:
    return {
        table: run_sql(target, f"SELECT COUNT(*) FROM {{{table}}}")[0][0]
        for table in ("events", "chain", "keys")
    } | {"commands": _command_count(target)}


def _command_count(target: str) -> int:
    table = "dinsos_commands"
    if target.startswith("postgresql://"):
        schema = target.partition("?schema=")[2]
        table = f'"{schema}".dinsos_commands'
    return int(run_sql(target, f"SELECT COUNT(*) FROM {table}")[0][0])


# ----------------------------------------------------------------- ids as stored


@pytest.mark.parametrize("spelling", ["upper", "hyphens"])
def test_an_id_rewritten_in_an_equivalent_spelling_fails_verify_naming_the_event(
    make_target: Callable[[], str], backend: str, spelling: str
) -> None:
    """A disbursement's originator id in another spelling hides it: verify names it (exit 1)."""
    target = make_target()
    with Ledger(target) as ledger:
        outcomes = ledger.apply_batch(
            [_household(1, "KT-HH-0001"), _assess(2, "KT-HH-0001"), _allocate(3, "KT-HH-0001")]
        )
        assert all(o.accepted for o in outcomes)
        assert ledger.execute(_disburse(4, "KT-HH-0001")).accepted
        position = max(row[0] for row in ledger.recorder.iter_rows())
    drop_guards(target)
    hex_id = subject_id("KT-HH-0001").hex
    if backend == "sqlite":
        spelled = hex_id.upper() if spelling == "upper" else str(subject_id("KT-HH-0001"))
        run_sql(
            target,
            "UPDATE {events} SET originator_id = ? WHERE {pos} = ?",
            (spelled, position),
        )
        expected = position
    else:
        # A uuid column has one spelling; an attacker must first make it text, which
        # changes the stored bytes of every row: the first event no longer matches.
        run_sql(target, "ALTER TABLE {events} ALTER COLUMN originator_id TYPE text")
        case = "upper(originator_id)" if spelling == "upper" else "originator_id"
        run_sql(
            target, f"UPDATE {{events}} SET originator_id = {case} WHERE {{pos}} = ?", (position,)
        )
        expected = 1
    with Ledger(target) as ledger:
        report = audit.verify(ledger)
    assert not report.ok
    assert report.finding is not None
    assert report.finding.kind == "altered"
    assert report.finding.position == expected
    if backend == "sqlite":
        assert report.finding.ref == "KT-HH-0001"
        assert report.finding.event is not None


# ----------------------------------------------------------------- one batch, one transaction

#: Each write of a batch, by a pattern of its statement.
WRITES = {
    "events": r"INSERT INTO \S*(stored_events|ledger_events)",
    "links": r"INSERT INTO \S*dinsos_chain",
    "command ids": r"INSERT INTO \S*dinsos_commands",
    "keys": r"INSERT INTO \S*dinsos_keys",
    "key deletes": r"DELETE FROM \S*dinsos_keys",
    "index entries": r"INSERT INTO \S*dinsos_index",
    "index deletes": r"DELETE FROM \S*dinsos_index",
    "after every write": None,
}


class Injected(RuntimeError):
    """The failure a test injects into a batch's transaction."""


class FailingCursor:
    """A cursor that fails right after running the statement matching ``pattern``."""

    def __init__(self, cursor: Any, pattern: str) -> None:
        self._cursor = cursor
        self._pattern = re.compile(pattern)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def _after(self, statement: Any) -> None:
        text = statement if isinstance(statement, str) else statement.as_string()
        if self._pattern.search(text.replace('"', "")):
            raise Injected(text)

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the statement, then fail if it is the one."""
        result = self._cursor.execute(statement, *args, **kwargs)
        self._after(statement)
        return result

    def executemany(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the statements, then fail if they are the ones."""
        result = self._cursor.executemany(statement, *args, **kwargs)
        self._after(statement)
        return result


def _inject(ledger: Ledger, monkeypatch: pytest.MonkeyPatch, pattern: str | None) -> None:
    recorder: Any = ledger.recorder
    original = recorder._insert_events

    def failing(cursor: Any, stored_events: Any, **kwargs: Any) -> Any:
        if pattern is None:
            original(cursor, stored_events, **kwargs)
            raise Injected("after every write")
        return original(FailingCursor(cursor, pattern), stored_events, **kwargs)

    monkeypatch.setattr(recorder, "_insert_events", failing)


@pytest.fixture
def prepared(target: str) -> str:
    """A ledger holding a closed household (to forget) and an assessed one."""
    with Ledger(target) as ledger:
        outcomes = ledger.apply_batch(
            [
                _household(1, "KT-HH-0001"),
                _assess(2, "KT-HH-0001"),
                _household(3, "KT-HH-0002"),
                _command(4, "close", "KT-HH-0002", reason="moved"),
            ]
        )
        assert all(o.accepted for o in outcomes), outcomes
    return target


def _batch() -> list[dict[str, Any]]:
    return [
        _household(10, "KT-HH-0010"),
        _allocate(11, "KT-HH-0001"),
        _disburse(12, "KT-HH-0001"),
        _command(13, "forget", "KT-HH-0002", reason="permintaan penghapusan data"),
    ]


@pytest.mark.parametrize("write", list(WRITES))
def test_a_failure_at_any_write_of_a_batch_records_nothing_of_it(
    prepared: str, write: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever write fails, nothing of the batch is recorded; the same commands then import."""
    target = prepared
    before = _counts(target)
    with Ledger(target) as ledger:
        with monkeypatch.context() as patch:
            _inject(ledger, patch, WRITES[write])
            with pytest.raises(Injected):
                ledger.apply_batch(_batch())
        assert _counts(target) == before
        assert audit.verify(ledger).ok
        assert ledger.show("KT-HH-0002")["head_nik"] is not None  # its key is still there
        outcomes = ledger.apply_batch(_batch())
        assert [o.status for o in outcomes] == ["accepted"] * 4, outcomes
        again = ledger.apply_batch(_batch())
        assert [o.status for o in again] == ["duplicate"] * 4, again
        assert audit.verify(ledger).ok
        assert ledger.show("KT-HH-0002")["head_nik"] is None
    after = _counts(target)
    assert after["events"] == after["chain"] == before["events"] + 4
    assert after["commands"] == before["commands"] + 4
    assert after["keys"] == before["keys"]  # one key added, one shredded


# ----------------------------------------------------------------- settings from the environment


@pytest.mark.parametrize(
    "variable",
    [
        "LEDGER_POSTGRES_ENABLE_DB_FUNCTIONS",
        "POSTGRES_ENABLE_DB_FUNCTIONS",
        "LEDGER_APPLICATION_RECORDER_TOPIC",
        "LEDGER_PERSISTENCE_MODULE",
        "LEDGER_SQLITE_DBNAME",
        "LEDGER_POSTGRES_SCHEMA",
    ],
)
def test_no_environment_variable_switches_the_ledger_into_an_unsafe_store(
    target: str, variable: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """eventsourcing settings in the environment are ignored: every write keeps its guarantees."""
    hostile = {
        "LEDGER_POSTGRES_ENABLE_DB_FUNCTIONS": "y",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
        "LEDGER_APPLICATION_RECORDER_TOPIC": "eventsourcing.sqlite:SQLiteApplicationRecorder",
        "LEDGER_PERSISTENCE_MODULE": "eventsourcing.popo",
        "LEDGER_SQLITE_DBNAME": str(tmp_path / "elsewhere.sqlite"),
        "LEDGER_POSTGRES_SCHEMA": "public",
    }
    monkeypatch.setenv(variable, hostile[variable])
    with Ledger(target) as ledger:
        outcomes = ledger.apply_batch([_household(1, "KT-HH-0001"), _assess(2, "KT-HH-0001")])
        assert all(o.accepted for o in outcomes)
        assert audit.verify(ledger).ok
    counts = _counts(target)
    assert counts == {"events": 2, "chain": 2, "keys": 1, "commands": 2}
    assert not (tmp_path / "elsewhere.sqlite").exists()


def test_a_ledger_refuses_to_open_with_eventsourcing_database_functions(
    make_target: Callable[[], str], backend: str
) -> None:
    """Asked explicitly for the database-function insert path, PostgreSQL refuses to open."""
    if backend != "postgres":
        pytest.skip("a PostgreSQL setting")
    with pytest.raises(StorageError, match="POSTGRES_ENABLE_DB_FUNCTIONS"):
        Ledger(make_target(), env={"POSTGRES_ENABLE_DB_FUNCTIONS": "y"})


# ----------------------------------------------------------------- every spelling, every event


def _respell(hex_id: str, how: str, mask: int) -> str:
    """``hex_id`` (32 lower-case hex digits) written another way that names the same uuid."""
    u = uuid.UUID(hex_id)
    spelled = {
        "upper": hex_id.upper(),
        "hyphens": str(u),
        "braces": "{" + str(u) + "}",
        "urn": u.urn,
        "upper hyphens": str(u).upper(),
    }.get(how)
    if spelled is None:  # "mixed": upper-case the letters chosen by the mask
        spelled = "".join(
            c.upper() if c.isalpha() and mask >> (i % 16) & 1 else c for i, c in enumerate(hex_id)
        )
    return spelled


@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SQLite ledger (6 events) that each example copies before rewriting an id."""
    directory = tmp_path_factory.mktemp("spellings")
    with Ledger(str(directory / "ledger.sqlite")) as ledger:
        outcomes = ledger.apply_batch(
            [
                _household(1, "KT-HH-0001"),
                _assess(2, "KT-HH-0001"),
                _allocate(3, "KT-HH-0001"),
                _disburse(4, "KT-HH-0001"),
                _household(5, "KT-HH-0002"),
                _assess(6, "KT-HH-0002"),
            ]
        )
        assert all(o.accepted for o in outcomes)
    return directory


@given(
    position=st.integers(1, 6),
    how=st.sampled_from(["upper", "hyphens", "braces", "urn", "upper hyphens", "mixed"]),
    mask=st.integers(1, 2**16 - 1),
)
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_event_with_its_id_in_any_other_spelling_is_found_there(
    small_ledger: Path, tmp_path_factory: pytest.TempPathFactory, position: int, how: str, mask: int
) -> None:
    """Whatever event's id is respelled, and however, verify names that event (SQLite)."""
    directory = tmp_path_factory.mktemp("respelled")
    for name in ("ledger.sqlite", "ledger.sqlite.key"):
        shutil.copy(small_ledger / name, directory / name)
    target = str(directory / "ledger.sqlite")
    ((hex_id,),) = run_sql(
        target, "SELECT originator_id FROM {events} WHERE {pos} = ?", (position,)
    )
    spelled = _respell(hex_id, how, mask)
    assume(spelled != hex_id)
    assert uuid.UUID(spelled) == uuid.UUID(hex_id)
    drop_guards(target)
    run_sql(target, "UPDATE {events} SET originator_id = ? WHERE {pos} = ?", (spelled, position))
    restore_guards(target)
    with Ledger(target) as ledger:
        report = audit.verify(ledger)
    assert not report.ok
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", position)
    shutil.rmtree(directory, ignore_errors=True)
