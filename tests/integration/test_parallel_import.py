"""A parallel import (a second process validates the next batch) is the same import.

The reader process only moves work between processes: every line must get the same
outcome and the same reject, and the ledger must end in the same state, as when the
importing process reads the file itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dinsos_ledger import importer
from dinsos_ledger.application import Ledger
from dinsos_ledger.importer import Reject, import_files
from dinsos_ledger.scenario import ScenarioConfig, write_scenario

from tests.conftest import _drop_schema, require_postgres

ROOT = Path(__file__).resolve().parents[2]
FIELD_OFFICE = ROOT / "tests" / "data" / "field_office.jsonl"
AS_OF = dt.date(2026, 10, 31)


def _import(
    target: str, paths: list[Path], *, parallel: bool, batch_size: int = 500
) -> tuple[Any, ...]:
    rejects: list[Reject] = []
    with Ledger(target) as ledger:
        report = import_files(
            ledger, paths, on_reject=rejects.append, parallel=parallel, batch_size=batch_size
        )
        state = (
            ledger.projections.balances(AS_OF),
            ledger.projections.continuity(AS_OF),
            int(ledger.recorder.max_notification_id() or 0),
        )
    return report.to_json(), report.lines, rejects, state


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small district with its field-office mistakes (duplicates, conflicts, bad lines)."""
    path = tmp_path_factory.mktemp("parallel") / "district.jsonl"
    write_scenario(ScenarioConfig(households=60, veterans=6, cohorts=3, seed=7), path)
    return path


@pytest.fixture
def fresh(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], str]]:
    """A function returning the target of another fresh ledger on ``backend`` each call."""
    schemas: list[str] = []
    if backend == "postgres":
        url = require_postgres()
        monkeypatch.setenv("DINSOS_LEDGER_KEY", base64.b64encode(os.urandom(32)).decode())

    def make() -> str:
        name = f"p_{uuid.uuid4().hex[:16]}"
        if backend == "sqlite":
            return str(tmp_path / f"{name}.sqlite")
        schemas.append(name)
        return f"{url}?schema={name}"

    try:
        yield make
    finally:
        for schema in schemas:
            _drop_schema(url, schema)


def test_a_parallel_import_gives_every_line_the_same_outcome(
    fresh: Callable[[], str], scenario: Path
) -> None:
    """Two files, small batches: same counts, same rejects in order, same balances."""
    here = _import(fresh(), [FIELD_OFFICE, scenario], parallel=False)
    elsewhere = _import(fresh(), [FIELD_OFFICE, scenario], parallel=True)
    assert here[2], "the files hold mistakes"
    assert elsewhere == here
    small = _import(fresh(), [FIELD_OFFICE, scenario], parallel=True, batch_size=7)
    assert small == here


def test_importing_again_in_parallel_records_nothing_twice(ledger: Ledger, scenario: Path) -> None:
    """The second run finds every accepted command a duplicate (the digest is the same)."""
    first = import_files(ledger, [scenario], on_reject=lambda _: None, parallel=True)
    head = ledger.recorder.max_notification_id()
    again = import_files(ledger, [scenario], on_reject=lambda _: None, parallel=False)
    assert again.accepted == 0
    assert again.duplicates == first.accepted + first.duplicates
    assert ledger.recorder.max_notification_id() == head
    third = import_files(ledger, [scenario], on_reject=lambda _: None, parallel=True)
    assert third.to_json() == again.to_json()


def test_a_reader_that_dies_stops_the_import_with_a_clear_error(
    ledger: Ledger, scenario: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No batch arrives, nothing is recorded, and the error names the reader's exit."""
    python = sys.executable
    monkeypatch.setattr(importer.sys, "executable", "/bin/false")
    with pytest.raises(RuntimeError, match=r"reader process stopped unexpectedly \(exit code 1\)"):
        import_files(ledger, [scenario], on_reject=lambda _: None, parallel=True)
    assert (ledger.recorder.max_notification_id() or 0) == 0
    monkeypatch.setattr(importer.sys, "executable", python)
    report = import_files(ledger, [scenario], on_reject=lambda _: None, parallel=True)
    assert report.accepted > 0


def test_large_files_are_read_in_parallel_by_default(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auto mode: a second process for files past the threshold, none below it."""
    calls: list[str] = []
    real_here, real_elsewhere = importer._read_here, importer._read_elsewhere
    monkeypatch.setattr(importer, "_read_here", lambda *a: calls.append("here") or real_here(*a))
    monkeypatch.setattr(
        importer, "_read_elsewhere", lambda *a: calls.append("elsewhere") or real_elsewhere(*a)
    )
    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", FIELD_OFFICE.stat().st_size)
    monkeypatch.setattr(importer.os, "cpu_count", lambda: 2)
    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    monkeypatch.setattr(importer.os, "cpu_count", lambda: 1)
    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    assert calls == ["here", "elsewhere", "here"]
