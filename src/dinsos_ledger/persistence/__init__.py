"""Where the ledger keeps its events: SQLite (embedded default) or PostgreSQL.

- :mod:`~dinsos_ledger.persistence.target`: the ``--db`` target and its settings;
- :mod:`~dinsos_ledger.persistence.sqlite` and :mod:`~dinsos_ledger.persistence.postgres`:
  the recorders, each extending eventsourcing's application recorder of its backend;
- :mod:`~dinsos_ledger.persistence.adapter`: the few undocumented eventsourcing names
  relied on, pinned by tests.

Only the PostgreSQL module imports psycopg, and nothing imports it unless a PostgreSQL
target is opened. The stored format is described in ``docs/storage-format.md``.
"""

from __future__ import annotations

from dinsos_ledger.persistence.target import DEFAULT_TARGET, Target, parse_target

__all__ = ["DEFAULT_TARGET", "Target", "parse_target"]
