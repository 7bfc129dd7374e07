"""The bare eventsourcing baseline, importable without dinsos-ledger.

``benchmarks/run.py`` imports it for the in-process figures and runs it as a process of its
own for the whole-process figures, so the bare side's start-up is that of a process that
imports eventsourcing alone::

    python benchmarks/bare.py append TARGET EVENTS   # prints the seconds of the appends
    python benchmarks/bare.py decode TARGET          # prints the seconds and the count

TARGET is a SQLite file or ``postgresql://…?schema=NAME`` (the schema is created by
``append`` and left for ``decode``; the caller drops it).
"""

from __future__ import annotations

import sys
import time
import uuid
from urllib.parse import parse_qs, urlsplit

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class Thing(Aggregate):
    """A bare aggregate with events of about the size of the ledger's."""

    # The arguments are the event's fields, stored whether or not the applier keeps them.
    @event("Registered")
    def __init__(self, ref: str, on: str, actor: str, region: str) -> None:  # noqa: ARG002
        self.ref = ref

    @event("Noted")
    def note(
        self,
        on: str,  # noqa: ARG002
        actor: str,  # noqa: ARG002
        amount: int,
        reference: str,  # noqa: ARG002
        programme: str,  # noqa: ARG002
    ) -> None:
        """Record an event of about the size of an allocation."""
        self.amount = amount


class Bare(Application):
    """A bare eventsourcing application."""


def bare_env(target: str) -> dict[str, str]:
    """The eventsourcing environment of a bare application on the same kind of store.

    A PostgreSQL target names its schema with ``?schema=``; without one a fresh schema name
    is chosen.
    """
    if target.startswith("postgresql://"):
        parts = urlsplit(target)
        schema = parse_qs(parts.query).get("schema", [f"bare_{uuid.uuid4().hex[:10]}"])[0]
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": parts.username or "postgres",
            "POSTGRES_PASSWORD": parts.password or "",
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        }
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": target}


def create_schema(url: str, schema: str) -> None:
    """Create a PostgreSQL schema (if absent)."""
    import psycopg

    with psycopg.connect(url.split("?", maxsplit=1)[0], autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


def drop_schema(url: str, schema: str) -> None:
    """Drop a PostgreSQL schema and everything in it."""
    import psycopg

    with psycopg.connect(url.split("?", maxsplit=1)[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def bare_append(target: str, events: int, *, keep: bool = False) -> float:
    """Seconds a bare application takes to append ``events`` events, 100 per save().

    The events belong to aggregates of about 20 events each. A PostgreSQL schema is dropped
    afterwards unless ``keep``.
    """
    env = bare_env(target)
    if env.get("POSTGRES_SCHEMA"):
        create_schema(target, env["POSTGRES_SCHEMA"])
    app = Bare(env=env)
    started = time.perf_counter()
    pending: list[Thing] = []
    in_pending = 0
    count = 0
    while count < events:
        thing = Thing(ref=f"R{count}", on="2025-01-01", actor="petugas.01", region="64.08.01.2001")
        count += 1
        in_pending += 1
        for i in range(20):  # many aggregates of about 20 events each
            if count >= events:
                break
            thing.note(
                on="2025-01-02",
                actor="petugas.01",
                amount=200_000,
                reference=f"R-{i}",
                programme="BPNT",
            )
            count += 1
            in_pending += 1
        pending.append(thing)
        if in_pending >= 100:
            app.save(*pending)
            pending, in_pending = [], 0
    if pending:
        app.save(*pending)
    elapsed = time.perf_counter() - started
    app.close()
    if env.get("POSTGRES_SCHEMA") and not keep:
        drop_schema(target, env["POSTGRES_SCHEMA"])
    return elapsed


def select_and_decode(recorder: object, mapper: object) -> tuple[float, int]:
    """Seconds to select every stored event page by page and decode it; and the count."""
    started = time.perf_counter()
    count, after = 0, 0
    while True:
        page = recorder.select_notifications(after, 1000, inclusive_of_start=False)  # type: ignore[attr-defined]
        if not page:
            break
        for notification in page:
            mapper.to_domain_event(notification)  # type: ignore[attr-defined]
        count += len(page)
        after = page[-1].id
    return time.perf_counter() - started, count


def main(argv: list[str]) -> None:
    """``append TARGET EVENTS`` or ``decode TARGET``, as a process of its own."""
    if argv[0] == "append":
        print(f"{bare_append(argv[1], int(argv[2]), keep=True):.6f}")
    elif argv[0] == "decode":
        app = Bare(env=bare_env(argv[1]))
        seconds, count = select_and_decode(app.recorder, app.mapper)
        app.close()
        print(f"{seconds:.6f} {count}")
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}: append or decode")


if __name__ == "__main__":
    main(sys.argv[1:])
