"""The ledger's storage, as one import: a thin re-export of :mod:`dinsos_ledger.persistence`.

The PostgreSQL names are imported on first use, so ``import dinsos_ledger.storage`` (and
opening a SQLite ledger) never imports psycopg.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeAlias

from dinsos_ledger.persistence.common import StoredRow
from dinsos_ledger.persistence.sqlite import LedgerSQLiteRecorder
from dinsos_ledger.persistence.target import DEFAULT_TARGET, Target, parse_target

if TYPE_CHECKING:
    from dinsos_ledger.persistence.postgres import (
        LedgerPostgresFactory,
        LedgerPostgresRecorder,
        LedgerSnapshotsRecorder,
    )

    #: The recorder of a ledger: a target's ``APPLICATION_RECORDER_TOPIC`` names one of these.
    LedgerRecorder: TypeAlias = LedgerSQLiteRecorder | LedgerPostgresRecorder

__all__ = [
    "DEFAULT_TARGET",
    "LedgerPostgresFactory",
    "LedgerPostgresRecorder",
    "LedgerRecorder",
    "LedgerSQLiteRecorder",
    "LedgerSnapshotsRecorder",
    "StoredRow",
    "Target",
    "parse_target",
]

_POSTGRES_NAMES = frozenset(
    {"LedgerPostgresFactory", "LedgerPostgresRecorder", "LedgerSnapshotsRecorder"}
)


def __getattr__(name: str) -> Any:
    """The PostgreSQL recorders, imported (with psycopg) only when asked for."""
    if name in _POSTGRES_NAMES:
        module = importlib.import_module("dinsos_ledger.persistence.postgres")
        return getattr(module, name)
    if name == "LedgerRecorder":
        # At run time only a name for casts; type checkers see the union above.
        return Any
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
