"""The key tables on PostgreSQL: the counterpart of :mod:`dinsos_ledger.key_tables`.

Kept apart so that a SQLite ledger never imports psycopg.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from psycopg.sql import SQL, Composable, Composed, Identifier

from dinsos_ledger.key_tables import (
    KEY_CHECK,
    Rewrap,
    _check,
    _expect_check,
    _rotation_json,
    _rotation_row,
)

__all__ = ["PostgresKeyTables", "postgres_check_key", "postgres_key_tables"]


def postgres_key_tables(schema: Identifier) -> list[Composed]:
    """The PostgreSQL DDL of the key tables in ``schema``."""
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {0}.dinsos_secrets "
            "(name text PRIMARY KEY, value bytea NOT NULL)"
        ).format(schema),
        SQL(
            "CREATE TABLE IF NOT EXISTS {0}.dinsos_key_rotations ("
            "id bigserial PRIMARY KEY, rotated_at text NOT NULL, actor text NOT NULL, "
            "old_check text NOT NULL, new_check text NOT NULL, data_keys bigint NOT NULL)"
        ).format(schema),
    ]


def postgres_check_key(curs: Any, schema: str, expected: str | None) -> None:
    """In a PostgreSQL write transaction (table locked): the same check as SQLite's."""
    if expected is None:
        return
    curs.execute(
        SQL("SELECT value FROM {0}.dinsos_secrets WHERE name = %s").format(Identifier(schema)),
        (KEY_CHECK,),
    )
    row = curs.fetchone()
    _check(row["value"] if row else None, expected)


class PostgresKeyTables:
    """The key tables on PostgreSQL (mixed into the PostgreSQL recorder)."""

    datastore: Any
    write_lock: Callable[[Any], None]
    events_table: Composable
    keys_table: Composable
    commands_table: Composable

    def _table(self, name: str) -> Composable:
        return SQL("{0}.{1}").format(Identifier(self.datastore.schema), Identifier(name))

    def select_secrets(self) -> dict[str, bytes]:
        """Every row of ``dinsos_secrets``: the check value and the wrapped secrets."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT name, value FROM {0}").format(self._table("dinsos_secrets")))
            return {row["name"]: bytes(row["value"]) for row in curs.fetchall()}

    def insert_secrets(self, items: dict[str, bytes]) -> None:
        """Store each secret not stored yet (a concurrent first open stores the same)."""
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            curs.executemany(
                SQL(
                    "INSERT INTO {0} (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING"
                ).format(self._table("dinsos_secrets")),
                list(items.items()),
            )

    def holds_records(self) -> bool:
        """True when any event, accepted command id or data key is stored."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT EXISTS (SELECT 1 FROM {0}) OR EXISTS (SELECT 1 FROM {1}) "
                    "OR EXISTS (SELECT 1 FROM {2}) AS any"
                ).format(self.events_table, self.commands_table, self.keys_table)
            )
            row = curs.fetchone()
            return bool(row["any"])

    def select_some_wrapped_keys(self, limit: int) -> list[tuple[UUID, bytes]]:
        """Up to ``limit`` stored ``(subject id, wrapped data key)``."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT subject_id, wrapped FROM {0} LIMIT %s").format(self.keys_table),
                (limit,),
            )
            return [(UUID(r["subject_id"]), bytes(r["wrapped"])) for r in curs.fetchall()]

    def select_rotations(self) -> list[dict[str, Any]]:
        """The recorded rotations of the master key, oldest first."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT rotated_at, actor, old_check, new_check, data_keys FROM {0} ORDER BY id"
                ).format(self._table("dinsos_key_rotations"))
            )
            return [
                _rotation_json(
                    (r["rotated_at"], r["actor"], r["old_check"], r["new_check"], r["data_keys"])
                )
                for r in curs.fetchall()
            ]

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

        It takes the writers' transaction advisory lock (see ``write_lock``), so writers
        wait until the rotation has committed, while readers, and the ``CREATE … IF NOT
        EXISTS`` that every process runs when it opens the ledger, do not.
        """
        secrets_table = self._table("dinsos_secrets")
        count = 0
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self.write_lock(curs)
            curs.execute(
                SQL("SELECT value FROM {0} WHERE name = %s FOR UPDATE").format(secrets_table),
                (KEY_CHECK,),
            )
            row = curs.fetchone()
            _expect_check(row["value"] if row else None, old_check)
            after = ""
            while True:
                curs.execute(
                    SQL(
                        "SELECT subject_id, wrapped FROM {0} WHERE subject_id > %s "
                        "ORDER BY subject_id LIMIT %s"
                    ).format(self.keys_table),
                    (after, page),
                )
                rows = [(UUID(r["subject_id"]), bytes(r["wrapped"])) for r in curs.fetchall()]
                if not rows:
                    break
                done = rewrap(rows)
                curs.execute(
                    SQL(
                        "UPDATE {0} AS k SET wrapped = v.w "
                        "FROM unnest(%s::text[], %s::bytea[]) AS v(s, w) WHERE k.subject_id = v.s"
                    ).format(self.keys_table),
                    ([sid.hex for sid, _ in done], [w for _, w in done]),
                )
                after = rows[-1][0].hex
                count += len(rows)
                if progress is not None:
                    progress(count)
            curs.executemany(
                SQL(
                    "INSERT INTO {0} (name, value) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"
                ).format(secrets_table),
                [*secrets.items(), (KEY_CHECK, new_check.encode("ascii"))],
            )
            curs.execute(
                SQL(
                    "INSERT INTO {0} (rotated_at, actor, old_check, new_check, data_keys) "
                    "VALUES (%s, %s, %s, %s, %s)"
                ).format(self._table("dinsos_key_rotations")),
                _rotation_row(rotated_at, actor, old_check, new_check, count),
            )
        return count
