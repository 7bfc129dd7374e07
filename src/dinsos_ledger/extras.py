"""Optional parts of the package and the message that says how to get one that is missing.

The core install is what a SQLite ledger needs. PostgreSQL (psycopg), the report's charts
(matplotlib) and Parquet exports (pyarrow) are extras, installed with
``pip install 'dinsos-ledger[postgres]'`` (or ``[report]``, ``[parquet]``).
"""

from __future__ import annotations

import importlib.util
from typing import Final

__all__ = ["EXTRAS", "MissingExtra", "require_extra"]

#: Extra name -> (the module it provides, what it is for).
EXTRAS: Final = {
    "postgres": ("psycopg", "a PostgreSQL ledger"),
    "report": ("matplotlib", "the HTML report's charts"),
    "parquet": ("pyarrow", "Parquet exports"),
}


class MissingExtra(ImportError):
    """Raised when a verb needs an optional dependency that is not installed."""

    def __init__(self, extra: str) -> None:
        module, purpose = EXTRAS[extra]
        self.extra = extra
        self.message = (
            f"{purpose} needs the Python package {module}, which is not installed: "
            f"install dinsos-ledger[{extra}] (pip install 'dinsos-ledger[{extra}]')"
        )
        super().__init__(self.message, name=module)


def require_extra(extra: str) -> None:
    """Raise :class:`MissingExtra` unless the module of ``extra`` can be imported."""
    module, _ = EXTRAS[extra]
    if importlib.util.find_spec(module) is None:
        raise MissingExtra(extra)
