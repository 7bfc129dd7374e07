"""Where a ledger lives: the parsed ``--db`` target and the eventsourcing settings it implies.

Nothing here imports a database driver: parsing a PostgreSQL URL does not need psycopg,
and opening a SQLite ledger never imports it.
"""

from __future__ import annotations

import os
import re
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import uuid4

from dinsos_ledger.errors import StorageError

__all__ = ["DEFAULT_TARGET", "Target", "parse_target"]

DEFAULT_TARGET: Final = "dinsos-ledger.sqlite"
_SCHEMA_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SQLITE_RECORDER: Final = "dinsos_ledger.persistence.sqlite:LedgerSQLiteRecorder"
_POSTGRES_FACTORY: Final = "dinsos_ledger.persistence.postgres:LedgerPostgresFactory"
_POSTGRES_RECORDER: Final = "dinsos_ledger.persistence.postgres:LedgerPostgresRecorder"


class Target:
    """A parsed ``--db`` target: a SQLite file path or a PostgreSQL URL.

    ``env`` is the whole of the eventsourcing configuration of the ledger: the ledger's
    application does not read eventsourcing settings from the process environment (see
    :meth:`dinsos_ledger.application.LedgerApplication.construct_env`).
    """

    def __init__(self, *, kind: str, display: str, env: dict[str, str], path: str | None):
        self.kind = kind
        self.display = display
        self.env = env
        self.path = path

    @property
    def is_postgres(self) -> bool:
        """True for a PostgreSQL target."""
        return self.kind == "postgres"


def parse_target(target: str | None) -> Target:
    """Turn ``--db`` (or ``$DINSOS_LEDGER_DB``, or the default file) into a :class:`Target`.

    ``postgresql://user[:password]@host[:port]/dbname`` selects PostgreSQL; an optional
    ``?schema=NAME`` keeps the ledger's tables in that schema. Anything else is a SQLite path.
    """
    raw = target or os.environ.get("DINSOS_LEDGER_DB") or DEFAULT_TARGET
    if raw.startswith(("postgresql://", "postgres://")):
        return _postgres_target(raw)
    # ":memory:" is a private in-memory database (for tests and trials): it has no key file.
    dbname = f"file:dinsos-{uuid4().hex}?mode=memory&cache=shared" if raw == ":memory:" else raw
    return Target(
        kind="sqlite",
        display=raw,
        path=None if raw == ":memory:" else raw,
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": dbname,
            "SQLITE_LOCK_TIMEOUT": os.environ.get("DINSOS_LEDGER_LOCK_TIMEOUT", "30"),
            "APPLICATION_RECORDER_TOPIC": _SQLITE_RECORDER,
        },
    )


def _postgres_target(raw: str) -> Target:
    parts = urlsplit(raw)
    dbname = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not dbname:
        msg = (
            "'--db' must be postgresql://user[:password]@host[:port]/dbname (got no host or dbname)"
        )
        raise StorageError(msg)
    env = {
        "PERSISTENCE_MODULE": _POSTGRES_FACTORY,
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": os.environ.get("DINSOS_LEDGER_CONNECT_TIMEOUT", "10"),
        # eventsourcing's database-function insert path bypasses the recorder's own
        # writes (chain links, command ids, keys); the recorder refuses to open with it on.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "APPLICATION_RECORDER_TOPIC": _POSTGRES_RECORDER,
    }
    schema = parse_qs(parts.query).get("schema", [None])[0]
    if schema is not None:
        if not _SCHEMA_RE.fullmatch(schema):
            msg = f"'schema' must be a lower-case SQL identifier (got {schema!r})"
            raise StorageError(msg)
        env["POSTGRES_SCHEMA"] = schema
    user, port = parts.username or "postgres", parts.port or 5432
    shown = f"postgresql://{user}@{parts.hostname}:{port}/{dbname}"
    return Target(kind="postgres", display=shown, env=env, path=None)
