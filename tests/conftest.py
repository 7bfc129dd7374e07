"""Shared fixtures: a ledger on each backend, and hypothesis profiles.

PostgreSQL tests find the server through ``DINSOS_LEDGER_TEST_POSTGRES`` (a
``postgresql://`` URL, set by ``.ci/run``). Each test gets its own schema, dropped
afterwards, so runs never see each other's data. With ``CI=true`` a missing or unreachable
PostgreSQL fails the run instead of skipping its tests.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from dinsos_ledger.application import Ledger
from dinsos_ledger.privacy import MasterKey

settings.register_profile("fast", max_examples=10, deadline=None)
settings.register_profile(
    "dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

POSTGRES_URL = os.environ.get("DINSOS_LEDGER_TEST_POSTGRES")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["sqlite", "postgres"]


def _postgres_available() -> str | None:
    """None when PostgreSQL can be used, else why not."""
    if not POSTGRES_URL:
        return "DINSOS_LEDGER_TEST_POSTGRES is not set"
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL.split("?")[0], connect_timeout=5):
            return None
    except Exception as e:  # noqa: BLE001 - any failure means "not available"
        return f"PostgreSQL at DINSOS_LEDGER_TEST_POSTGRES is unreachable: {e}"


_PG_PROBLEM = _postgres_available()


def require_postgres() -> str:
    """The PostgreSQL URL, or skip (fail under CI) when there is none."""
    if _PG_PROBLEM is not None:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL tests cannot run: {_PG_PROBLEM}")
        pytest.skip(_PG_PROBLEM)
    assert POSTGRES_URL is not None
    return POSTGRES_URL.split("?")[0]


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def master_key() -> MasterKey:
    """A fresh master key (what DINSOS_LEDGER_KEY would hold)."""
    return MasterKey.generate()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each storage backend in turn."""
    return str(request.param)


@pytest.fixture
def make_target(
    backend: str, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], str]]:
    """A function returning the ``--db`` target of a fresh, empty ledger on ``backend``.

    Every call in one test returns the same target (so a test can reopen its ledger);
    for PostgreSQL the schema is created on first use and dropped after the test, and
    ``DINSOS_LEDGER_KEY`` is set for the test.
    """
    if backend == "sqlite":
        target = str(tmp_path / "ledger.sqlite")  # type: ignore[operator]
        yield lambda: target
        return
    url = require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    monkeypatch.setenv("DINSOS_LEDGER_KEY", base64.b64encode(os.urandom(32)).decode())
    target = f"{url}?schema={schema}"
    try:
        yield lambda: target
    finally:
        _drop_schema(url, schema)


@pytest.fixture
def target(make_target: Callable[[], str]) -> str:
    """The ``--db`` target of a fresh ledger on the current backend."""
    return make_target()


@pytest.fixture
def ledger(target: str) -> Iterator[Ledger]:
    """A fresh, empty ledger on the current backend."""
    with Ledger(target) as opened:
        yield opened


@pytest.fixture
def memory_ledger() -> Iterator[Ledger]:
    """A private in-memory ledger, for unit tests of rules."""
    with Ledger(":memory:") as opened:
        yield opened
