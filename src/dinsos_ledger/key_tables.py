"""The tables of the ledger's keys: its wrapped secrets, its key check value, its rotations.

Mixed into both recorders of :mod:`dinsos_ledger.storage` (they are additions of tables and
methods, kept here so the recorders stay about events):

- ``dinsos_secrets (name, value)``: the check value of the master key the ledger was
  created with (``key_check``, 32 hex digits as ASCII bytes) and the ledger's own random
  keys wrapped under the master key (``idempotency``, ``index``, and for a ledger upgraded
  from before them ``legacy-digest``); see :class:`~dinsos_ledger.privacy.LedgerSecrets`.
- ``dinsos_key_rotations``: one row per rotation of the master key (when, who, the old
  and the new check value, how many data keys were re-wrapped): the audit fact.

A batch that stores new wrapped data keys names the check value of the key that wrapped
them (``key_check=``); the insert transaction refuses the batch when the ledger's check
value is another one by then (the master key was rotated meanwhile), so no data key is ever
stored under a key the ledger no longer accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final
from uuid import UUID

from dinsos_ledger.errors import StorageError

__all__ = [
    "KEY_CHECK",
    "SQLITE_KEY_TABLES",
    "KeyChanged",
    "KeyRefused",
    "NoLedger",
    "Rewrap",
    "SQLiteKeyTables",
    "sqlite_check_key",
]

#: The name of the key check value in ``dinsos_secrets``.
KEY_CHECK: Final = "key_check"

#: Re-wraps a page of ``(subject id, wrapped data key)`` under the new master key.
Rewrap = Callable[[Sequence[tuple[UUID, bytes]]], list[tuple[UUID, bytes]]]

SQLITE_KEY_TABLES: Final = (
    (
        "CREATE TABLE IF NOT EXISTS dinsos_secrets ("
        "name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
    ),
    (
        "CREATE TABLE IF NOT EXISTS dinsos_key_rotations ("
        "id INTEGER PRIMARY KEY, rotated_at TEXT NOT NULL, actor TEXT NOT NULL, "
        "old_check TEXT NOT NULL, new_check TEXT NOT NULL, data_keys INTEGER NOT NULL)"
    ),
)


class KeyChanged(StorageError):
    """Raised when a batch's data keys were wrapped under a key the ledger no longer accepts."""

    def __init__(self) -> None:
        super().__init__(
            "the master key of this ledger was rotated while this process was running: "
            "nothing of this batch was recorded; run it again with the new key"
        )


def _check(stored: Any, expected: str | None) -> None:
    if expected is None:
        return
    if stored is None or bytes(stored).decode("ascii", "replace") != expected:
        raise KeyChanged


def sqlite_check_key(c: Any, expected: str | None) -> None:
    """In a SQLite write transaction: refuse the batch unless the check value is ``expected``."""
    if expected is None:
        return
    c.execute("SELECT value FROM dinsos_secrets WHERE name = ?", (KEY_CHECK,))
    row = c.fetchone()
    _check(row[0] if row else None, expected)


def _rotation_row(
    rotated_at: str, actor: str, old_check: str, new_check: str, count: int
) -> tuple[str, str, str, str, int]:
    return (rotated_at, actor, old_check, new_check, count)


class SQLiteKeyTables:
    """The key tables on SQLite (mixed into the SQLite recorder, which has ``datastore``)."""

    datastore: Any

    def select_secrets(self) -> dict[str, bytes]:
        """Every row of ``dinsos_secrets``: the check value and the wrapped secrets."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT name, value FROM dinsos_secrets")
            return {row[0]: bytes(row[1]) for row in c.fetchall()}

    def insert_secrets(self, items: dict[str, bytes]) -> None:
        """Store each secret not stored yet (a concurrent first open stores the same)."""
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                "INSERT OR IGNORE INTO dinsos_secrets (name, value) VALUES (?, ?)",
                list(items.items()),
            )

    def holds_records(self) -> bool:
        """True when any event, accepted command id or data key is stored."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT EXISTS (SELECT 1 FROM stored_events) "
                "OR EXISTS (SELECT 1 FROM dinsos_commands) OR EXISTS (SELECT 1 FROM dinsos_keys)"
            )
            return bool(c.fetchone()[0])

    def select_some_wrapped_keys(self, limit: int) -> list[tuple[UUID, bytes]]:
        """Up to ``limit`` stored ``(subject id, wrapped data key)``."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT subject_id, wrapped FROM dinsos_keys LIMIT ?", (limit,))
            return [(UUID(row[0]), bytes(row[1])) for row in c.fetchall()]

    def select_rotations(self) -> list[dict[str, Any]]:
        """The recorded rotations of the master key, oldest first."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT rotated_at, actor, old_check, new_check, data_keys "
                "FROM dinsos_key_rotations ORDER BY id"
            )
            return [_rotation_json(row) for row in c.fetchall()]

    def rotate_master_key(
        self,
        *,
        old_check: str,
        new_check: str,
        rewrap: Rewrap,
        secrets: dict[str, bytes],
        rotated_at: str,
        actor: str,
        page: int = 5000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Re-wrap every data key and store ``secrets`` and the new check value, in one transaction.

        Returns how many data keys were re-wrapped. Writers wait for it (it holds the write
        lock from its first statement); it is refused when the check value is not
        ``old_check`` (another rotation got there first).
        """
        count = 0
        with self.datastore.transaction(commit=True) as c:
            # A write first: the transaction takes the write lock now, not at its first
            # update, so no writer slips in between the check and the re-wrapping.
            c.execute("UPDATE dinsos_secrets SET value = value WHERE name = ?", (KEY_CHECK,))
            c.execute("SELECT value FROM dinsos_secrets WHERE name = ?", (KEY_CHECK,))
            row = c.fetchone()
            _expect_check(row[0] if row else None, old_check)
            after = ""
            while True:
                c.execute(
                    "SELECT subject_id, wrapped FROM dinsos_keys WHERE subject_id > ? "
                    "ORDER BY subject_id LIMIT ?",
                    (after, page),
                )
                rows = [(UUID(r[0]), bytes(r[1])) for r in c.fetchall()]
                if not rows:
                    break
                c.executemany(
                    "UPDATE dinsos_keys SET wrapped = ? WHERE subject_id = ?",
                    [(wrapped, sid.hex) for sid, wrapped in rewrap(rows)],
                )
                after = rows[-1][0].hex
                count += len(rows)
                if progress is not None:
                    progress(count)
            c.executemany(
                "INSERT OR REPLACE INTO dinsos_secrets (name, value) VALUES (?, ?)",
                [*secrets.items(), (KEY_CHECK, new_check.encode("ascii"))],
            )
            c.execute(
                "INSERT INTO dinsos_key_rotations "
                "(rotated_at, actor, old_check, new_check, data_keys) VALUES (?, ?, ?, ?, ?)",
                _rotation_row(rotated_at, actor, old_check, new_check, count),
            )
        return count


def _expect_check(stored: Any, old_check: str) -> None:
    if stored is None or bytes(stored).decode("ascii", "replace") != old_check:
        msg = (
            "the ledger's master key changed while the rotation started (another rotation?): "
            "nothing was rotated"
        )
        raise StorageError(msg)


def _rotation_json(row: Iterable[Any]) -> dict[str, Any]:
    rotated_at, actor, old_check, new_check, data_keys = row
    return {
        "rotated_at": rotated_at,
        "actor": actor,
        "old_check": old_check,
        "new_check": new_check,
        "data_keys": int(data_keys),
    }


class NoLedger(StorageError):
    """Raised when a verb that does not create a ledger is given a target that holds none."""

    def __init__(self, display: str) -> None:
        super().__init__(f"no ledger at {display}")


class KeyRefused(StorageError):
    """Raised when the master key is missing or is not the one the ledger was created with."""
