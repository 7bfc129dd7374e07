"""A third party follows the ledger's notification log with eventsourcing's own classes.

It needs only the ledger's target settings and ``MAPPER_TOPIC`` naming
:class:`~dinsos_ledger.codec.LedgerMapper`: eventsourcing's factory builds the mapper with
its standard arguments, and every stored event decodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import DomainEvent

from dinsos_ledger.application import Ledger
from dinsos_ledger.importer import import_files
from dinsos_ledger.persistence import parse_target

FIELD_OFFICE = Path(__file__).resolve().parents[1] / "data" / "field_office.jsonl"


class Follower(Application[Any]):
    """A plain eventsourcing application reading the ledger's tables (named after "Ledger")."""

    name = "Ledger"


def test_an_eventsourcing_application_decodes_every_event_of_the_log(target: str) -> None:
    """eventsourcing's notification log and mapper read every event the ledger stored."""
    with Ledger(target) as ledger:
        import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
        expected = [row[0] for row in ledger.recorder.iter_rows()]
    env = {**parse_target(target).env, "MAPPER_TOPIC": "dinsos_ledger.codec:LedgerMapper"}
    follower = Follower(env=env)
    try:
        notifications = follower.recorder.select_notifications(start=1, limit=10_000)
        assert [n.id for n in notifications] == expected
        events = [follower.mapper.to_domain_event(n) for n in notifications]
        assert all(isinstance(e, DomainEvent) for e in events)
        assert {type(e).__qualname__ for e in events} >= {
            "Household.Registered",
            "Household.Assessed",
        }
    finally:
        follower.close()
