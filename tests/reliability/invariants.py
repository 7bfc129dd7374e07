"""Invariants of a ledger's recorded history, checked by replaying every stored event.

Whatever happened to the processes that wrote it (races, crashes, lost connections), the
history must read as a story the rules of the command format allow, in recorded order:

- every subject's versions run 1, 2, 3 … without a gap;
- every event belongs to a recorded command id, and every recorded id has events;
- a reference is used once per subject (allocations and payments together), a reversal
  names an earlier payment not yet reversed;
- no programme's outstanding balance goes below zero at any point;
- every allocation records the rule in force for it when it was recorded: its programme's
  latest definition or amendment dated on or before it, or the default rule when the
  programme was not yet defined;
- a cohort never holds more active enrolments than its capacity, nor one household twice;
- a closed household or veteran records only reversals and its forgetting, a forgotten
  one nothing; an enrolment of a household is never recorded after that household closed;
- the projections' balances equal the balances replayed from the events, with no negative
  outstanding balance.

The replay uses the stored events only (decoded through the ledger's mapper), not the
aggregates, so it checks the ledger rather than repeating it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from dinsos_ledger.application import Ledger

__all__ = ["check_invariants", "recorded_events", "replay_balances", "violations"]


def recorded_events(ledger: Ledger) -> list[Any]:
    """Every stored event of ``ledger``, decoded, in recorded order."""
    mapper = ledger.app.mapper
    return [
        mapper.to_domain_event(
            StoredEvent(
                originator_id=UUID(originator_id),
                originator_version=version,
                topic=topic,
                state=state,
            )
        )
        for _, originator_id, version, topic, state in ledger.recorder.iter_rows()  # type: ignore[attr-defined]
    ]


def _name(event: Any) -> str:
    return type(event).__name__


def _wrong_rule(
    ref: str, event: Any, changes: list[tuple[Any, int | None, int]] | None
) -> list[str]:
    """Why the rule recorded on allocation ``event`` is not the one in force, if it is not."""
    rule = event.rule
    if rule is None:  # recorded before allocations recorded their rule
        return []
    if changes is None:
        wanted: tuple[Any, ...] = ("default", None, None, 4)
    else:
        in_force = [c for c in changes if c[0] <= event.on]
        if not in_force:
            return [f"{ref}: allocation of {event.programme.code} before its definition"]
        on, limit, version = max(in_force, key=lambda c: (c[0], c[2]))
        source = "define_programme" if version == 1 else "amend_programme"
        wanted = (source, on, version, limit)
    got = (rule.source, rule.on, rule.programme_version, rule.desil_limit)
    if got != wanted:
        return [f"{ref}: allocation {event.reference.value} records rule {got}, not {wanted}"]
    return []


def violations(events: Sequence[Any], recorded_ids: Collection[str]) -> list[str]:
    """What in ``events`` (in recorded order) breaks the invariants of the module docstring."""
    found: list[str] = []
    refs: dict[UUID, str] = {}
    versions: dict[UUID, int] = {}
    references: dict[UUID, set[str]] = defaultdict(set)
    payments: dict[UUID, dict[str, tuple[str, int, bool]]] = defaultdict(dict)
    outstanding: dict[tuple[UUID, str], int] = defaultdict(int)
    capacity: dict[str, int] = {}
    seats: dict[str, dict[str, str]] = defaultdict(dict)
    closed: dict[str, bool] = {}
    forgotten: set[UUID] = set()
    closed_ids: set[UUID] = set()
    withdrawn: set[UUID] = set()
    completed: set[UUID] = set()
    used_ids: set[str] = set()
    # Programme code -> its (on, desil_limit, version) changes in recorded order.
    rules: dict[str, list[tuple[Any, int | None, int]]] = {}

    for event in events:
        sid = event.originator_id
        expected = versions.get(sid, 0) + 1
        if event.originator_version != expected:
            found.append(
                f"{refs.get(sid, sid)}: version {event.originator_version}, expected {expected}"
            )
        versions[sid] = event.originator_version
        if event.originator_version == 1:
            refs[sid] = event.ref
        ref = refs.get(sid, str(sid))
        used_ids.add(event.command_id)
        if event.command_id not in recorded_ids:
            found.append(f"{ref}: event of command {event.command_id!r}, which is not recorded")
        name = _name(event)

        if sid in forgotten:
            found.append(f"{ref}: {name} recorded after the subject was forgotten")
        elif sid in closed_ids and name not in ("DisbursementReversed", "Forgotten"):
            found.append(f"{ref}: {name} recorded after the subject was closed")
        elif sid in withdrawn or (sid in completed and name != "FollowedUp"):
            found.append(f"{ref}: {name} recorded after the enrolment ended")

        if name == "Planned":
            capacity[event.ref] = event.capacity
        elif name == "Registered":
            closed[event.ref] = False
        elif name == "Enrolled":
            if closed.get(event.household, True):
                found.append(f"{event.ref}: enrols {event.household}, which is closed or unknown")
        elif name == "ParticipantEnrolled":
            taken = seats[ref]
            if event.household in taken:
                found.append(f"{ref}: {event.household} holds two seats")
            taken[event.household] = event.enrolment
            if len(taken) > capacity.get(ref, 0):
                found.append(f"{ref}: {len(taken)} active enrolments, capacity {capacity.get(ref)}")
        elif name == "ParticipantWithdrawn":
            seats[ref].pop(event.household, None)
        elif name == "Defined":
            rules[event.ref] = [(event.on, event.desil_limit, 1)]
        elif name == "Amended":
            rules[ref].append((event.on, event.desil_limit, event.originator_version))
        if name == "Allocated":
            found.extend(_wrong_rule(ref, event, rules.get(event.programme.code)))
        if name in ("Allocated", "Disbursed"):
            reference = event.reference.value
            if reference in references[sid]:
                kind = "paid twice" if name == "Disbursed" else "allocated twice"
                found.append(f"{ref}: reference {reference} {kind}")
            references[sid].add(reference)
            key = (sid, event.programme.code)
            if name == "Allocated":
                outstanding[key] += event.amount.amount
            else:
                outstanding[key] -= event.amount.amount
                payments[sid][reference] = (event.programme.code, event.amount.amount, False)
                if outstanding[key] < 0:
                    found.append(f"{ref}: {event.programme.code} outstanding {outstanding[key]}")
        elif name == "DisbursementReversed":
            reference = event.reference.value
            payment = payments[sid].get(reference)
            if payment is None or payment[2]:
                found.append(f"{ref}: reversal of {reference}, not an unreversed payment")
            else:
                payments[sid][reference] = (payment[0], payment[1], True)
                outstanding[(sid, payment[0])] += payment[1]
        elif name == "Closed":
            closed_ids.add(sid)
            closed[ref] = True
        elif name == "Forgotten":
            forgotten.add(sid)
        elif name == "Withdrawn":
            withdrawn.add(sid)
        elif name == "Completed":
            completed.add(sid)

    missing = set(recorded_ids) - used_ids
    if missing:
        found.append(
            f"{len(missing)} recorded command ids without events, e.g. {sorted(missing)[:3]}"
        )
    return found


def replay_balances(events: Iterable[Any]) -> list[dict[str, Any]]:
    """Balances per ref and programme over everything recorded (the balance rules), from events."""
    refs: dict[UUID, tuple[str, str]] = {}
    allocated: dict[tuple[str, str], int] = defaultdict(int)
    paid: dict[tuple[str, str], int] = defaultdict(int)
    payments: dict[tuple[UUID, str], tuple[tuple[str, str], int]] = {}
    kinds = {"Household": "household", "Veteran": "veteran", "TrainingCohort": "cohort"}
    for event in events:
        if event.originator_version == 1:
            owner = type(event).__qualname__.partition(".")[0]
            refs[event.originator_id] = (event.ref, kinds.get(owner, "enrolment"))
        ref, _ = refs[event.originator_id]
        name = _name(event)
        if name == "Allocated":
            allocated[(ref, event.programme.code)] += event.amount.amount
        elif name == "Disbursed":
            key = (ref, event.programme.code)
            allocated[key] += 0  # a payment lists its programme's row
            paid[key] += event.amount.amount
            payments[(event.originator_id, event.reference.value)] = (key, event.amount.amount)
        elif name == "DisbursementReversed":
            key, amount = payments[(event.originator_id, event.reference.value)]
            paid[key] -= amount
    return _rows(refs, allocated, paid)


def _rows(
    refs: dict[UUID, tuple[str, str]],
    allocated: dict[tuple[str, str], int],
    paid: dict[tuple[str, str], int],
) -> list[dict[str, Any]]:
    kinds = dict(refs.values())
    return [
        {
            "ref": ref,
            "kind": kinds[ref],
            "programme": programme,
            "allocated": allocated[(ref, programme)],
            "disbursed": paid.get((ref, programme), 0),
            "outstanding": allocated[(ref, programme)] - paid.get((ref, programme), 0),
        }
        for ref, programme in sorted(allocated)
    ]


def check_invariants(target: str, path: Path | None = None) -> None:
    """Assert that the ledger at ``target`` keeps every invariant (``path``: for messages)."""
    del path
    with Ledger(target) as ledger:
        from tests.reliability.harness import command_ids

        events = recorded_events(ledger)
        recorded = set(command_ids(ledger))
        problems = violations(events, recorded)
        assert not problems, "\n".join(problems[:20])
        balances = [row.to_json() for row in ledger.projections.balances()]
    assert balances == replay_balances(events)
    negative = [row for row in balances if row["outstanding"] < 0]
    assert not negative, negative[:5]
