"""Upgrades: events and snapshots written by an older schema are read by the new code.

Event classes and aggregate classes carry eventsourcing's ``class_version``; a release that
changes one raises it and adds ``upcast_vN_vN+1`` static methods. Here the older schema is
played out for real: a household's registration stored its ``members`` as ``size``, and its
snapshots did not keep a ``close_reason``. The rows are written as that older version
wrote them (straight through the recorder, with their chain links), then the new classes
(version 2, with upcasts) open the ledger, verify it, replay it and accept commands.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic

from dinsos_ledger import audit
from dinsos_ledger.aggregates import Household
from dinsos_ledger.application import Ledger
from dinsos_ledger.codec import LedgerMapper
from dinsos_ledger.types import subject_id

from tests.attacker import run_sql

# ----------------------------------------------------------------- the mapper's upcast loop


class Meter(Aggregate):
    """An aggregate of this test module, whose event went through three schemas."""

    class Read(Aggregate.Event):
        """Version 3: ``total`` (was ``count`` in v1) and ``label`` (new in v3)."""

        class_version = 3
        total: int
        label: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """v1 called the total ``count``."""
            state["total"] = state.pop("count")

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            """v3 added a label."""
            state["label"] = "unlabelled"


def _read_event() -> Any:
    meter = Meter()
    meter.trigger_event(Meter.Read, total=7, label="gate")
    return meter.collect_events()[-1]


def _older(stored: StoredEvent, version: int) -> StoredEvent:
    state = json.loads(stored.state)
    if version < 3:
        del state["label"]
        state["class_version"] = 2
    if version == 1:
        del state["class_version"]
        state["count"] = state.pop("total")
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )


def test_the_mapper_writes_the_class_version_and_reads_it_back() -> None:
    """An event of version 3 is stored with ``class_version: 3`` and decodes to itself."""
    mapper = LedgerMapper()
    event = _read_event()
    stored = mapper.to_stored_event(event)
    assert json.loads(stored.state)["class_version"] == 3
    decoded = mapper.to_domain_event(stored)
    assert (decoded.total, decoded.label) == (7, "gate")
    assert decoded.timestamp == event.timestamp


@pytest.mark.parametrize(("version", "label"), [(1, "unlabelled"), (2, "unlabelled"), (3, "gate")])
def test_the_mapper_upcasts_every_older_version_step_by_step(version: int, label: str) -> None:
    """v1 and v2 states run through each upcast in turn; fast decoding does the same."""
    mapper = LedgerMapper()
    stored = _older(mapper.to_stored_event(_read_event()), version)
    decoded = mapper.to_domain_event(stored)
    assert (decoded.total, decoded.label) == (7, label)
    cls, state = mapper.decode_state(stored)
    assert cls is Meter.Read
    assert (state["total"], state["label"]) == (7, label)
    assert "class_version" not in state


def test_a_missing_upcast_is_a_decoding_error_naming_the_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A class raised to a version with no upcast to it fails clearly, not with KeyError."""
    mapper = LedgerMapper()
    stored = mapper.to_stored_event(_read_event())
    monkeypatch.setattr(Meter.Read, "class_version", 4)
    with pytest.raises(MapperDeserialisationError, match=r"Meter\.Read") as caught:
        mapper.to_domain_event(stored)
    assert "upcast_v3_v4" in str(caught.value)


def test_the_mapper_takes_eventsourcing_standard_arguments() -> None:
    """eventsourcing's factory builds it with transcoder, cipher and compressor keywords."""
    mapper = LedgerMapper(transcoder=None, cipher=None, compressor=None)
    stored = mapper.to_stored_event(_read_event())
    assert mapper.to_domain_event(stored).total == 7
    with pytest.raises(ValueError, match="plain JSON"):
        LedgerMapper(cipher=object())  # type: ignore[arg-type]


# ----------------------------------------------------------------- a ledger of an older schema


def _register(n: int) -> dict[str, Any]:
    return {
        "id": f"reg-{n}",
        "command": "register_household",
        "ref": f"KT-HH-{n:04d}",
        "on": "2025-02-01",
        "actor": "petugas.sangatta",
        "region": "64.08.04.2001",
        "members": 3 + n,
        "family_card": f"640804010125{n:04d}",
        "head_nik": f"640804120382{n:04d}",
        "head_name": "Rahmat Hidayat",
    }


def _command(n: int, name: str, ref: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"c-{n}", "command": name, "ref": ref, "on": "2025-02-02", "actor": "x", **fields}


def _as_older_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the mapper write what the older release wrote: ``size``, no ``close_reason``."""
    encode = LedgerMapper.to_stored_event

    def older(self: LedgerMapper, event: Any) -> StoredEvent:
        stored = encode(self, event)
        if isinstance(event, Household.Registered):
            state = json.loads(stored.state)
            state["size"] = state.pop("members")
        elif stored.topic.endswith("Snapshot") and event.topic == get_topic(Household):
            state = json.loads(stored.state)
            del state["state"]["close_reason"]
        else:
            return stored
        return StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=json.dumps(state, separators=(",", ":")).encode(),
        )

    decode = LedgerMapper.decode_state

    def older_read(self: LedgerMapper, stored: StoredEvent) -> tuple[type[Any], dict[str, Any]]:
        cls, state = decode(self, stored)
        if cls is Household.Registered:  # the older class called it size
            state["members"] = state.pop("size")
        return cls, state

    monkeypatch.setattr(LedgerMapper, "to_stored_event", older)
    monkeypatch.setattr(LedgerMapper, "decode_state", older_read)


def _as_new_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The release that renamed ``size`` and added ``close_reason``: version 2, with upcasts."""

    def registered_v1_v2(state: dict[str, Any]) -> None:
        state["members"] = state.pop("size")

    def household_v1_v2(state: dict[str, Any]) -> None:
        state["close_reason"] = None

    monkeypatch.setattr(Household.Registered, "class_version", 2)
    monkeypatch.setattr(
        Household.Registered, "upcast_v1_v2", staticmethod(registered_v1_v2), raising=False
    )
    monkeypatch.setattr(Household, "class_version", 2)
    monkeypatch.setattr(Household, "upcast_v1_v2", staticmethod(household_v1_v2), raising=False)


def test_a_ledger_of_an_older_schema_verifies_replays_and_accepts_commands(
    make_target: Callable[[], str],
) -> None:
    """Old events and an old snapshot open under the new classes: verify, show, new commands."""
    target = make_target()
    with pytest.MonkeyPatch.context() as older:
        _as_older_version(older)
        with Ledger(target) as ledger:
            outcomes = ledger.apply_batch(
                [
                    _register(1),
                    _register(2),
                    _command(3, "assess", "KT-HH-0001", desil=2),
                    _command(
                        4,
                        "allocate",
                        "KT-HH-0001",
                        programme="PKH",
                        amount=900_000,
                        period="2025-02",
                        reference="A-1",
                    ),
                ]
            )
            assert all(o.accepted for o in outcomes), outcomes
            ledger.app.take_snapshot(subject_id("KT-HH-0001"))
    stored = {json.loads(bytes(row[0])).get("size") for row in _registrations(target)}
    assert stored == {4, 5}  # the older schema, as stored
    ((snapshot,),) = run_sql(target, "SELECT state FROM {snapshots}")
    assert b"close_reason" not in bytes(snapshot)
    assert b"class_version" not in bytes(snapshot)
    with pytest.MonkeyPatch.context() as newer:
        _as_new_version(newer)
        with Ledger(target) as ledger:
            report = audit.verify(ledger)
            assert report.ok, report.finding
            assert ledger.show("KT-HH-0001")["members"] == 4
            assert ledger.show("KT-HH-0002")["members"] == 5
            outcomes = ledger.apply_batch(
                [
                    _command(
                        5,
                        "disburse",
                        "KT-HH-0001",
                        programme="PKH",
                        amount=900_000,
                        reference="D-1",
                        channel="bank",
                    ),
                    _register(3),
                    _command(6, "close", "KT-HH-0002", reason="moved"),
                ]
            )
            assert all(o.accepted for o in outcomes), outcomes
            assert ledger.show("KT-HH-0001")["balances"]["PKH"]["outstanding"] == 0
            assert ledger.show("KT-HH-0003")["members"] == 6
            assert audit.verify(ledger).ok
        newest = [json.loads(bytes(row[0])) for row in _registrations(target)][-1]
        assert newest["class_version"] == 2
        assert newest["members"] == 6


def _registrations(target: str) -> list[tuple[Any, ...]]:
    topic = get_topic(Household.Registered)
    return run_sql(target, "SELECT state FROM {events} WHERE topic = ? ORDER BY {pos}", (topic,))
