"""Event topics are a storage format: every stored event names its class as ``module:QualName``.

Moving or renaming an event class would make stored events unreadable, so the topic of
every event class of the four aggregates is written out here and compared with the classes
as they are; a change must be deliberate (and register the old topic).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic, resolve_topic

from dinsos_ledger.aggregates import Enrolment, Household, Programme, TrainingCohort, Veteran
from dinsos_ledger.application import Ledger

#: Every event the ledger stores, by topic. Never edit a line of this list: add one.
TOPICS = (
    "dinsos_ledger.aggregates.household:Household.Registered",
    "dinsos_ledger.aggregates.household:Household.Assessed",
    "dinsos_ledger.aggregates.household:Household.Allocated",
    "dinsos_ledger.aggregates.household:Household.Disbursed",
    "dinsos_ledger.aggregates.household:Household.DisbursementReversed",
    "dinsos_ledger.aggregates.household:Household.FollowedUp",
    "dinsos_ledger.aggregates.household:Household.Closed",
    "dinsos_ledger.aggregates.household:Household.Forgotten",
    "dinsos_ledger.aggregates.veteran:Veteran.Registered",
    "dinsos_ledger.aggregates.veteran:Veteran.Assessed",
    "dinsos_ledger.aggregates.veteran:Veteran.Allocated",
    "dinsos_ledger.aggregates.veteran:Veteran.Disbursed",
    "dinsos_ledger.aggregates.veteran:Veteran.DisbursementReversed",
    "dinsos_ledger.aggregates.veteran:Veteran.FollowedUp",
    "dinsos_ledger.aggregates.veteran:Veteran.Closed",
    "dinsos_ledger.aggregates.veteran:Veteran.Forgotten",
    "dinsos_ledger.aggregates.cohort:TrainingCohort.Planned",
    "dinsos_ledger.aggregates.cohort:TrainingCohort.Allocated",
    "dinsos_ledger.aggregates.cohort:TrainingCohort.Disbursed",
    "dinsos_ledger.aggregates.cohort:TrainingCohort.DisbursementReversed",
    "dinsos_ledger.aggregates.cohort:TrainingCohort.ParticipantEnrolled",
    "dinsos_ledger.aggregates.cohort:TrainingCohort.ParticipantWithdrawn",
    "dinsos_ledger.aggregates.enrolment:Enrolment.Enrolled",
    "dinsos_ledger.aggregates.enrolment:Enrolment.Attended",
    "dinsos_ledger.aggregates.enrolment:Enrolment.Completed",
    "dinsos_ledger.aggregates.enrolment:Enrolment.Withdrawn",
    "dinsos_ledger.aggregates.enrolment:Enrolment.FollowedUp",
    # Confirmations by the payment channels (reconciliation).
    "dinsos_ledger.aggregates.household:Household.DisbursementConfirmed",
    "dinsos_ledger.aggregates.veteran:Veteran.DisbursementConfirmed",
    "dinsos_ledger.aggregates.cohort:TrainingCohort.DisbursementConfirmed",
    "dinsos_ledger.aggregates.programme:Programme.Defined",
    "dinsos_ledger.aggregates.programme:Programme.Amended",
)

AGGREGATES = (Household, Veteran, TrainingCohort, Enrolment, Programme)

#: Nested classes every aggregate has that are bases, never stored: the envelope of all
#: events (``Event``), the generic first event (``Created``) and eventsourcing's ``Snapshot``
#: (snapshots are not used).
ABSTRACT = frozenset({"Event", "Created", "Snapshot"})


def nested_event_classes() -> list[type[Any]]:
    """Every nested event class of the four aggregates (inherited ones included)."""
    found = []
    for aggregate in AGGREGATES:
        for name, value in inspect.getmembers(aggregate, inspect.isclass):
            if issubclass(value, DomainEvent) and name not in ABSTRACT:
                found.append(value)
    return found


def test_the_topics_are_unique() -> None:
    """No topic is listed twice."""
    assert len(set(TOPICS)) == len(TOPICS)


def test_every_event_class_of_the_aggregates_has_its_listed_topic() -> None:
    """The nested event classes of the four aggregates are exactly the listed topics."""
    assert sorted(get_topic(cls) for cls in nested_event_classes()) == sorted(TOPICS)


@pytest.mark.parametrize("topic", TOPICS)
def test_a_listed_topic_resolves_to_the_event_class_of_its_aggregate(topic: str) -> None:
    """Each topic resolves to a class nested in its aggregate, which gives back the same topic."""
    cls = resolve_topic(topic)
    module, qualname = topic.split(":")
    aggregate_name, event_name = qualname.split(".")
    aggregate = next(a for a in AGGREGATES if a.__name__ == aggregate_name)
    assert cls is getattr(aggregate, event_name)
    assert cls.__module__ == module
    assert issubclass(cls, aggregate.Event)
    assert get_topic(cls) == topic


def test_the_base_classes_are_not_stored() -> None:
    """``Event``, ``Created`` and ``Snapshot`` are bases: none of them is a listed topic."""
    for aggregate in AGGREGATES:
        for name in ABSTRACT:
            assert get_topic(getattr(aggregate, name)) not in TOPICS


def _story() -> list[dict[str, Any]]:
    """Commands that make the ledger record every listed event at least once."""
    base = {"actor": "petugas"}
    lines: list[dict[str, Any]] = [
        {
            "command": "register_household",
            "ref": "HH-1",
            "on": "2025-01-06",
            "region": "64.08.04.2001",
            "members": 4,
            "family_card": "6408040101250001",
            "head_nik": "6408041203820001",
            "head_name": "Rahmat",
        },
        {
            "command": "register_household",
            "ref": "HH-2",
            "on": "2025-01-06",
            "region": "64.08.04.2001",
            "members": 2,
            "family_card": "6408040101250002",
            "head_nik": "6408041203820002",
            "head_name": "Siti",
        },
        {
            "command": "register_veteran",
            "ref": "VT-1",
            "on": "2025-01-06",
            "region": "64.08.05.2002",
            "nik": "6408050807450001",
            "name": "Sudarmo",
        },
        {
            "command": "plan_cohort",
            "ref": "CO-1",
            "on": "2025-01-06",
            "region": "64.08.04.2001",
            "programme": "PELATIHAN",
            "capacity": 5,
            "starts": "2025-02-01",
            "ends": "2025-02-28",
        },
        {
            "command": "define_programme",
            "ref": "TALI_ASIH",
            "on": "2025-01-01",
            "name": "Tali asih veteran",
            "recipients": ["veteran"],
            "desil_limit": None,
        },
        {"command": "amend_programme", "ref": "TALI_ASIH", "on": "2025-01-02", "desil_limit": 3},
        {"command": "assess", "ref": "HH-1", "on": "2025-01-07", "desil": 2},
        {"command": "assess", "ref": "VT-1", "on": "2025-01-07", "eligible": True},
    ]
    for ref, programme in (("HH-1", "PKH"), ("VT-1", "TALI_ASIH"), ("CO-1", "PELATIHAN")):
        lines += [
            {
                "command": "allocate",
                "ref": ref,
                "on": "2025-01-08",
                "programme": programme,
                "amount": 500_000,
                "period": "2025-01",
                "reference": "A-1",
            },
            {
                "command": "disburse",
                "ref": ref,
                "on": "2025-01-09",
                "programme": programme,
                "amount": 500_000,
                "reference": "D-1",
                "channel": "bank",
            },
            {
                "command": "confirm",
                "ref": ref,
                "on": "2025-01-10",
                "reference": "D-1",
                "amount": 500_000,
                "channel_ref": "BRI-1",
            },
            {
                "command": "reverse",
                "ref": ref,
                "on": "2025-01-10",
                "reference": "D-1",
                "reason": "kembali",
            },
        ]
    lines += [
        {
            "command": "enrol",
            "ref": "EN-1",
            "on": "2025-01-20",
            "cohort": "CO-1",
            "household": "HH-1",
        },
        {
            "command": "enrol",
            "ref": "EN-2",
            "on": "2025-01-20",
            "cohort": "CO-1",
            "household": "HH-2",
        },
        {"command": "attend", "ref": "EN-1", "on": "2025-02-03"},
        {"command": "complete", "ref": "EN-1", "on": "2025-02-28"},
        {"command": "follow_up", "ref": "EN-1", "on": "2025-03-10", "outcome": "visited"},
        {"command": "withdraw", "ref": "EN-2", "on": "2025-02-05", "reason": "pindah"},
    ]
    for ref in ("HH-1", "VT-1"):
        lines += [
            {"command": "follow_up", "ref": ref, "on": "2025-03-01", "outcome": "phoned"},
            {"command": "close", "ref": ref, "on": "2025-04-01", "reason": "moved"},
            {"command": "forget", "ref": ref, "on": "2025-04-02", "reason": "permintaan"},
        ]
    return [base | line | {"id": f"t-{n}"} for n, line in enumerate(lines)]


def test_the_ledger_stores_exactly_the_listed_topics(memory_ledger: Ledger) -> None:
    """A story using every command stores every listed topic, and no other."""
    results = memory_ledger.apply_batch(_story())
    assert [o.status for o in results] == ["accepted"] * len(results), [
        o.message for o in results if o.rejected
    ]
    stored = {row[3] for row in memory_ledger.recorder.iter_rows()}
    assert stored == set(TOPICS)
