"""Fixtures of the reliability tests: more fresh ledgers, shared command files, references.

Builds on ``tests/conftest.py`` (``backend``, ``make_target``, ``target``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _drop_schema, require_postgres
from tests.reliability import harness

ROOT = Path(__file__).resolve().parents[2]

FIELD_OFFICE = ROOT / "tests" / "data" / "field_office.jsonl"


@pytest.fixture
def fresh_target(
    backend: str, make_target: Callable[[], str], tmp_path: Path
) -> Iterator[Callable[[str], str]]:
    """A function giving, by name, the target of another fresh ledger on ``backend``.

    The same name gives the same target within a test; PostgreSQL schemas are dropped
    afterwards. ``make_target`` is requested first so that ``DINSOS_LEDGER_KEY`` is set.
    """
    make_target()
    made: dict[str, str] = {}
    schemas: list[str] = []

    def fresh(name: str) -> str:
        if name not in made:
            if backend == "sqlite":
                made[name] = str(tmp_path / f"{name}.sqlite")
            else:
                url = require_postgres()
                schema = f"r_{uuid.uuid4().hex[:16]}"
                schemas.append(schema)
                made[name] = f"{url}?schema={schema}"
        return made[name]

    try:
        yield fresh
    finally:
        if schemas:
            url = require_postgres()
            for schema in schemas:
                _drop_schema(url, schema)


@pytest.fixture(scope="session")
def command_files(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, int], Path]:
    """A function giving a generated command file by kind and size, written once a session.

    ``kind`` is ``"stable"`` (see :func:`harness.stable_scenario`) or ``"full"`` (the
    generated file as is, with state-dependent mistakes).
    """
    folder = tmp_path_factory.mktemp("commands")
    written: dict[tuple[str, int], Path] = {}

    def get(kind: str, households: int) -> Path:
        key = (kind, households)
        if key not in written:
            path = folder / f"{kind}-{households}.jsonl"
            if kind == "stable":
                harness.stable_scenario(path, households=households)
            else:
                harness.scenario(path, households=households)
            written[key] = path
        return written[key]

    return get


@pytest.fixture(scope="session")
def clean_states() -> dict[Any, Any]:
    """Results of clean imports, kept for the session (key: backend, file, what)."""
    return {}


@pytest.fixture
def clean_import(
    backend: str, fresh_target: Callable[[str], str], clean_states: dict[Any, Any]
) -> Callable[[Path], dict[str, Any]]:
    """A function returning what one clean import of a file leaves (computed once a session).

    The result has ``state`` (:func:`harness.ledger_state`), ``counts`` (the ``--json``
    summary), ``rejects`` (``(line, code)`` pairs) and ``refs``.
    """

    def run(path: Path) -> dict[str, Any]:
        key = (backend, str(path))
        if key not in clean_states:
            target = fresh_target(f"clean-{path.stem}")
            out = path.parent / f"{path.stem}.{backend}.clean-rejects.jsonl"
            out.unlink(missing_ok=True)
            result = harness.cli(target, "import", str(path), "--json", "--rejects", str(out))
            assert result.returncode in (0, 1), harness.Run(
                result.returncode, result.stdout, result.stderr
            ).describe()
            refs = harness.refs_in(path)
            clean_states[key] = {
                "state": harness.ledger_state(target, refs),
                "counts": harness.Run(result.returncode, result.stdout, result.stderr).counts,
                "rejects": {(r["line"], r["code"]) for r in harness.read_rejects(out)},
                "refs": refs,
            }
        return clean_states[key]

    return run
