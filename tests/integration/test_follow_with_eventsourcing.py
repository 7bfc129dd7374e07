"""A third party follows the ledger's notification log with eventsourcing's own classes.

It needs only the ledger's target settings and ``MAPPER_TOPIC`` naming
:class:`~dinsos_ledger.codec.LedgerMapper`: eventsourcing's factory builds the mapper with
its standard arguments, and every stored event decodes.
"""

from __future__ import annotations

from functools import singledispatchmethod
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import Tracking
from eventsourcing.popo import POPOTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner

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


class Counting(Projection[POPOTrackingRecorder]):
    """An eventsourcing projection counting the ledger's events by type (in memory)."""

    seen: ClassVar[list[str]] = []

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Count the event and track its position."""
        Counting.seen.append(type(domain_event).__qualname__)
        self.view.insert_tracking(tracking)


def test_eventsourcing_projection_runner_follows_the_ledger(target: str, backend: str) -> None:
    """eventsourcing's ProjectionRunner, woken by the ledger's NOTIFY, sees every event."""
    if backend != "postgres":
        pytest.skip("eventsourcing's SQLite recorder offers no subscription")
    if version("eventsourcing") == "9.5.0":
        # Seen in CI: with 9.5.0 the runner never returns (its subscription thread stays
        # blocked after the wait); newer 9.5 releases pass. Not yet diagnosed further.
        pytest.skip("eventsourcing 9.5.0's ProjectionRunner does not stop on this ledger")
    env = {
        **parse_target(target).env,
        "MAPPER_TOPIC": "dinsos_ledger.codec:LedgerMapper",
        "COUNTING_PERSISTENCE_MODULE": "eventsourcing.popo",
    }
    Counting.seen.clear()
    with Ledger(target) as ledger:
        runner = ProjectionRunner(
            application_class=Follower,
            projection_class=Counting,
            view_class=POPOTrackingRecorder,
            env=env,
        )
        with runner:
            import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
            positions = [row[0] for row in ledger.recorder.iter_rows()]
            runner.wait(positions[-1], timeout=20)
    assert len(Counting.seen) == len(positions)
    assert Counting.seen[0] == "Household.Registered"
