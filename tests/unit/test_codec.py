"""The stored form of events: every event class round-trips through :class:`LedgerMapper`.

Events are built with hypothesis-drawn values of each field's declared type; the stored
state must be plain JSON that reads like the command (dates ``YYYY-MM-DD``, money as
integers, value objects as their scalar, choices as their value) and must come back equal.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import operator
import re
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger.aggregates import Enrolment, Household, Programme, TrainingCohort, Veteran
from dinsos_ledger.aggregates.rules import RECIPIENT_KINDS, AllocationRule
from dinsos_ledger.codec import LedgerMapper
from dinsos_ledger.types import (
    MAX_AMOUNT,
    Period,
    Reference,
    RegionCode,
    Rupiah,
    Sealed,
)
from dinsos_ledger.types import Programme as ProgrammeCode

AGGREGATES = (Household, Veteran, TrainingCohort, Enrolment, Programme)
ABSTRACT = frozenset({"Event", "Created", "Snapshot"})


def event_classes() -> list[type[Any]]:
    """Every stored event class of the four aggregates (see test_event_topics)."""
    found = []
    for aggregate in AGGREGATES:
        for name, value in inspect.getmembers(aggregate, inspect.isclass):
            if issubclass(value, DomainEvent) and name not in ABSTRACT:
                found.append(value)
    return found


EVENT_CLASSES = event_classes()

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = _UPPER + _UPPER.lower() + "0123456789"


def _joined(first: str, rest: str, longest: int) -> st.SearchStrategy[str]:
    """A character of ``first`` then up to ``longest`` of ``rest`` (the shape of a code)."""
    return st.builds(operator.add, st.sampled_from(first), st.text(alphabet=rest, max_size=longest))


_SCALARS: dict[type[Any], st.SearchStrategy[Any]] = {
    RegionCode: st.builds(
        "{:02d}.{:02d}.{:02d}.{:04d}".format,
        st.integers(0, 99),
        st.integers(0, 99),
        st.integers(0, 99),
        st.integers(0, 9999),
    ).map(RegionCode),
    ProgrammeCode: st.builds(
        operator.add,
        st.sampled_from(_UPPER),
        st.text(alphabet=_UPPER + "0123456789_", min_size=1, max_size=31),
    ).map(ProgrammeCode),
    Reference: _joined(_ALNUM, _ALNUM + "._:/-", 127).map(Reference),
    Period: st.builds("{:04d}-{:02d}".format, st.integers(0, 9999), st.integers(1, 12)).map(Period),
    Rupiah: st.integers(0, MAX_AMOUNT).map(Rupiah),
    Sealed: st.text(alphabet=_ALNUM + "-_=", min_size=1).map(Sealed),
}

_TIMESTAMPS = st.datetimes(
    # hypothesis takes naive bounds and adds a zone from ``timezones``.
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
)


def strategy_for(name: str, tp: Any) -> st.SearchStrategy[Any]:
    """Values of the declared type ``tp`` of field ``name``."""
    if name == "originator_id":
        return st.uuids()
    if name == "originator_version":
        return st.integers(1, 2**31)
    if name == "timestamp":
        return _TIMESTAMPS
    if tp in _SCALARS:
        return _SCALARS[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if tp is date:
        return st.dates()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(2**63), 2**63)
    if tp is str:
        return st.text(max_size=40)
    if tp == (str | None):
        return st.none() | st.text(max_size=40)
    if tp == (int | None):
        return st.none() | st.integers(1, 10)
    if tp == tuple[str, ...]:
        return st.lists(st.sampled_from(RECIPIENT_KINDS), unique=True, min_size=1).map(tuple)
    if tp == (AllocationRule | None):
        return st.none() | _RULES
    raise AssertionError(f"no strategy for field {name!r} of type {tp!r}: add one")


_RULES = st.builds(
    AllocationRule,
    source=st.sampled_from(("default", "define_programme", "amend_programme")),
    on=st.none() | st.dates(),
    programme_version=st.none() | st.integers(1, 2**31),
    desil_limit=st.none() | st.integers(1, 10),
    recipients=st.lists(st.sampled_from(RECIPIENT_KINDS), unique=True).map(tuple),
    desil=st.none() | st.integers(1, 10),
    eligible=st.none() | st.booleans(),
)


def declared_fields(cls: type[Any]) -> dict[str, Any]:
    """``{field name: declared type}`` of an event class."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def events(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Events of class ``cls`` with every field drawn from its declared type."""
    return st.fixed_dictionaries(
        {name: strategy_for(name, tp) for name, tp in declared_fields(cls).items()}
    ).map(lambda kwargs: cls(**kwargs))


def test_every_aggregate_has_its_events_under_test() -> None:
    """All 32 stored event classes are exercised (the list of test_event_topics)."""
    assert len(EVENT_CLASSES) == 32
    assert {cls.__qualname__.split(".")[0] for cls in EVENT_CLASSES} == {
        "Household",
        "Veteran",
        "TrainingCohort",
        "Enrolment",
        "Programme",
    }


def test_every_event_carries_the_envelope_of_the_spec() -> None:
    """Each event has its business date, actor, command id and note, and the recorded time."""
    for cls in EVENT_CLASSES:
        fields = declared_fields(cls)
        assert fields["on"] is date, cls
        assert fields["actor"] is str, cls
        assert fields["command_id"] is str, cls
        assert fields["note"] == (str | None), cls
        assert fields["timestamp"] is datetime, cls


def _check_plain(name: str, tp: Any, value: Any, stored: Any) -> None:
    """``stored`` is the plain JSON form of ``value`` (declared type ``tp``)."""
    if tp is date:
        assert isinstance(stored, str)
        assert _DATE_RE.fullmatch(stored), stored
        assert stored == value.isoformat()
    elif tp is datetime:
        assert isinstance(stored, str)
        assert datetime.fromisoformat(stored) == value
    elif tp is Rupiah:
        assert type(stored) is int
        assert stored == value.amount
    elif tp in (RegionCode, ProgrammeCode):
        assert stored == value.code
    elif tp in (Reference, Period):
        assert stored == value.value
    elif tp is Sealed:
        assert stored == value.token
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        assert stored == value.value
    elif tp is int:
        assert type(stored) is int
        assert stored == value
    elif tp == (AllocationRule | None):
        assert stored == (None if value is None else value.to_json()), name
    elif tp == tuple[str, ...]:
        assert stored == list(value), name
    else:
        assert stored == value, name


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__qualname__)
@given(data=st.data())
def test_an_event_round_trips_through_the_mapper_as_plain_json(
    cls: type[Any], data: st.DataObject
) -> None:
    """An event comes back equal through the mapper, stored as JSON of plain values on the way."""
    # Plain values: dates YYYY-MM-DD, amounts integers, value objects their scalar, no float.
    mapper = LedgerMapper()
    event = data.draw(events(cls))
    stored = mapper.to_stored_event(event)
    assert stored.topic == get_topic(cls)
    assert stored.originator_id == event.originator_id
    assert stored.originator_version == event.originator_version
    state = json.loads(stored.state.decode("utf-8"))
    # A class past version 1 says so in the stored state, for its upcasters.
    assert state.pop("class_version", 1) == getattr(cls, "class_version", 1)
    fields = declared_fields(cls)
    assert set(state) == set(fields) - {"originator_id", "originator_version"}
    for name, value in state.items():
        assert not isinstance(value, float), name
        _check_plain(name, fields[name], getattr(event, name), value)
    back = mapper.to_domain_event(stored)
    assert type(back) is cls
    assert back == event
    assert isinstance(back.originator_id, UUID)
    # The raw decoding the built-in projections read is the same class and the same JSON.
    raw_cls, raw_state = mapper.decode_state(stored)
    assert raw_cls is cls
    assert raw_state == state


def test_a_known_allocation_is_stored_as_the_command_reads() -> None:
    """A worked example: the stored JSON of an allocation, field by field."""
    event = Household.Allocated(
        originator_id=UUID(int=1),
        originator_version=3,
        timestamp=datetime(2025, 1, 20, 8, 30, tzinfo=UTC),
        on=date(2025, 1, 20),
        actor="petugas.sangatta",
        command_id="ktm-0017",
        note=None,
        programme=ProgrammeCode("PKH"),
        amount=Rupiah(750_000),
        period=Period("2025-01"),
        reference=Reference("PKH-2025-01-HH0001"),
        rule=AllocationRule("define_programme", date(2025, 1, 1), 1, 4, ("household",), desil=2),
    )
    state = json.loads(LedgerMapper().to_stored_event(event).state)
    assert state == {
        "timestamp": "2025-01-20T08:30:00+00:00",
        "on": "2025-01-20",
        "actor": "petugas.sangatta",
        "command_id": "ktm-0017",
        "note": None,
        "programme": "PKH",
        "amount": 750000,
        "period": "2025-01",
        "reference": "PKH-2025-01-HH0001",
        "rule": {
            "source": "define_programme",
            "on": "2025-01-01",
            "programme_version": 1,
            "desil_limit": 4,
            "recipients": ["household"],
            "desil": 2,
            "eligible": None,
        },
        "class_version": 2,
    }


#: An allocation as version 1 stored it, before allocations recorded their rule.
V1_ALLOCATION = (
    b'{"timestamp":"2025-01-20T08:30:00+00:00","on":"2025-01-20","actor":"petugas.sangatta",'
    b'"command_id":"ktm-0017","note":null,"programme":"PKH","amount":750000,'
    b'"period":"2025-01","reference":"PKH-2025-01-HH0001"}'
)


@pytest.mark.parametrize("cls", [Household.Allocated, Veteran.Allocated, TrainingCohort.Allocated])
def test_an_allocation_stored_before_rules_were_recorded_reads_back_without_a_rule(
    cls: type[Any],
) -> None:
    """A version 1 row (no ``rule``, no ``class_version``) is upcast: its rule is unknown."""
    stored = StoredEvent(
        originator_id=UUID(int=1), originator_version=3, topic=get_topic(cls), state=V1_ALLOCATION
    )
    mapper = LedgerMapper()
    event = mapper.to_domain_event(stored)
    assert event.rule is None
    assert event.amount == Rupiah(750_000)
    assert event.programme == ProgrammeCode("PKH")
    _, raw = mapper.decode_state(stored)
    assert raw["rule"] is None
    # Written again, it is a version 2 event.
    assert json.loads(mapper.to_stored_event(event).state)["class_version"] == 2
