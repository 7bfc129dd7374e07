"""Two writers on one ledger, the second one's steps interleaved with the first at every point.

Each test opens the same store twice (two :class:`Ledger` objects, as two processes would)
and lets the first writer record a command just before the second writer's recorder makes
its 1st call, then (on fresh subjects) before its 2nd call, its 3rd, … until the second
writer's step makes no more calls. The hook wraps the recorder's public read and write
methods (``select_*``, ``max_notification_id``, ``insert_events``), so every point between
two steps of a batch is tried, deterministically, whatever those steps are.

The first writer's command is always recorded before the second writer commits, so the
only serial order is "first, then second": the second writer's outcomes must be the ones
that order gives, and the recorded history must read as that story.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from dinsos_ledger.application import Ledger, Outcome

from tests.reliability import harness
from tests.reliability.invariants import check_invariants

REGION = "64.08.04.2001"

#: Recorder methods a batch calls to read and to record; a race may come before any call.
_CALLS = ("select_", "max_notification_id", "insert_events")

#: What a race returns: the first writer's step, the second writer's step, and the check
#: of the second writer's outcomes.
Race = tuple[Callable[[], Any], Callable[[], list[Outcome]], Callable[[list[Outcome]], None]]


def household(ref: str, command_id: str | None = None) -> dict[str, Any]:
    """A household registration on 2025-01-01."""
    return {
        "id": command_id or f"reg-{ref}",
        "command": "register_household",
        "ref": ref,
        "on": "2025-01-01",
        "actor": "petugas.01",
        "region": REGION,
        "members": 3,
        "family_card": "6408040101250001",
        "head_nik": "6408041203820001",
        "head_name": "Rahmat Hidayat",
    }


def cohort(ref: str, capacity: int) -> dict[str, Any]:
    """A cohort planned for February 2025."""
    return {
        "id": f"plan-{ref}",
        "command": "plan_cohort",
        "ref": ref,
        "on": "2025-01-01",
        "actor": "instruktur",
        "region": REGION,
        "programme": "PELATIHAN",
        "capacity": capacity,
        "starts": "2025-02-01",
        "ends": "2025-02-28",
    }


def command(
    command_id: str, name: str, ref: str, on: str = "2025-01-10", **fields: Any
) -> dict[str, Any]:
    """Any other command."""
    return {
        "id": command_id,
        "command": name,
        "ref": ref,
        "on": on,
        "actor": "petugas.01",
        **fields,
    }


def allocate(command_id: str, ref: str, amount: int, reference: str) -> dict[str, Any]:
    """A BPNT allocation."""
    return command(
        command_id,
        "allocate",
        ref,
        programme="BPNT",
        amount=amount,
        period="2025-01",
        reference=reference,
    )


def disburse(command_id: str, ref: str, amount: int, reference: str) -> dict[str, Any]:
    """A BPNT payment by bank."""
    return command(
        command_id,
        "disburse",
        ref,
        programme="BPNT",
        amount=amount,
        reference=reference,
        channel="bank",
    )


@contextmanager
def interleaved_at(ledger: Ledger, call: int, meanwhile: Callable[[], Any]) -> Iterator[list[Any]]:
    """Run ``meanwhile()`` just before ``ledger``'s recorder makes its ``call``-th call.

    Yields the list of what ``meanwhile`` returned (empty while the hook has not fired).
    """
    recorder: Any = ledger.recorder
    names = [n for n in dir(recorder) if n.startswith(_CALLS) and callable(getattr(recorder, n))]
    counted = [0]
    fired: list[Any] = []

    def hook(real: Callable[..., Any]) -> Callable[..., Any]:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            counted[0] += 1
            if counted[0] == call:
                fired.append(meanwhile())
            return real(*args, **kwargs)

        return hooked

    for name in names:
        setattr(recorder, name, hook(getattr(recorder, name)))
    try:
        yield fired
    finally:
        for name in names:
            delattr(recorder, name)


def every_interleaving(target: str, race: Callable[[Ledger, Ledger, str], Race]) -> int:
    """Run ``race`` with the first writer coming before each recorder call of the second.

    ``race(first, second, tag)`` records its set-up (refs named with ``tag``, so that each
    interleaving starts afresh) and returns a :data:`Race`. Returns how many interleavings
    were tried; each ends with the race's check and the ledger's invariants.
    """
    for call in range(1, 40):
        with Ledger(target) as first, Ledger(target) as second:
            meanwhile, act, check = race(first, second, f"{call:02d}")
            with interleaved_at(second, call, meanwhile) as fired:
                outcomes = act()
            if not fired:
                assert call > 2, "the second writer's step made fewer than two recorder calls"
                return call - 1
            check(outcomes)
        check_invariants(target)
    raise AssertionError("the second writer's step makes more recorder calls than expected")


def _statuses(outcomes: list[Outcome]) -> list[tuple[str, str | None]]:
    return [(o.status, o.code) for o in outcomes]


def test_the_same_command_from_two_writers_is_recorded_once_and_is_a_duplicate_for_the_second(
    target: str,
) -> None:
    """Both send one registration; the second sees a duplicate, whenever the first came."""

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        register = household(f"KT-HH-{tag}")

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("duplicate", None)]
            assert second.show(f"KT-HH-{tag}")["version"] == 1

        return (lambda: first.execute(register), lambda: second.apply_batch([register]), check)

    assert every_interleaving(target, race) >= 3


def test_a_batch_that_another_writer_partly_recorded_meanwhile_is_judged_on_consistent_state(
    target: str,
) -> None:
    """The first writer records a batch's first command: it is a duplicate, the next accepted.

    The next command (an allocation) needs the first (the assessment): judged against a
    subject read before the assessment was recorded but with the assessment's id already
    known, it would be refused as not_eligible though the assessment is recorded.
    """

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        ref = f"KT-HH-{tag}"
        first.execute(household(ref))
        assess = command(f"a-{tag}", "assess", ref, desil=2)
        grant = allocate(f"al-{tag}", ref, 400_000, f"ALO-{tag}")

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("duplicate", None), ("accepted", None)]
            assert second.show(ref)["balances"]["BPNT"]["allocated"] == 400_000

        return (lambda: first.execute(assess), lambda: second.apply_batch([assess, grant]), check)

    assert every_interleaving(target, race) >= 3


def test_one_id_with_two_bodies_from_two_writers_gives_an_id_conflict_to_the_second(
    target: str,
) -> None:
    """Same id, different bodies: the first is recorded, the second is an id_conflict."""

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        mine = household(f"KT-HH-A{tag}", command_id=f"c-{tag}")
        theirs = household(f"KT-HH-B{tag}", command_id=f"c-{tag}")

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("rejected", "id_conflict")]
            with pytest.raises(LookupError):
                second.show(f"KT-HH-B{tag}")

        return (lambda: first.execute(mine), lambda: second.apply_batch([theirs]), check)

    assert every_interleaving(target, race) >= 3


def test_two_writers_enrolling_into_the_last_seat_do_not_overfill_the_cohort(
    target: str,
) -> None:
    """Capacity 1, two enrolments at once: the second is cohort_full."""

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        co, one, two = f"KT-CO-{tag}", f"KT-HH-A{tag}", f"KT-HH-B{tag}"
        first.apply_batch([cohort(co, 1), household(one), household(two)])
        enrol_one = command(f"e1-{tag}", "enrol", f"KT-ENR-A{tag}", cohort=co, household=one)
        enrol_two = command(f"e2-{tag}", "enrol", f"KT-ENR-B{tag}", cohort=co, household=two)

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("rejected", "cohort_full")]
            assert second.show(co)["active_enrolments"] == 1

        return (lambda: first.execute(enrol_one), lambda: second.apply_batch([enrol_two]), check)

    assert every_interleaving(target, race) >= 3


def test_one_payment_reference_sent_by_two_writers_is_paid_once(target: str) -> None:
    """Two payments with one reference (different ids) at once: the second is refused."""

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        ref = f"KT-HH-{tag}"
        first.apply_batch(
            [
                household(ref),
                command(f"a-{tag}", "assess", ref, desil=2),
                allocate(f"al-{tag}", ref, 400_000, f"ALO-{tag}"),
            ]
        )
        one = disburse(f"p1-{tag}", ref, 200_000, f"SP2D-{tag}")
        two = disburse(f"p2-{tag}", ref, 200_000, f"SP2D-{tag}")

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("rejected", "duplicate_reference")]
            assert second.show(ref)["balances"]["BPNT"]["disbursed"] == 200_000

        return (lambda: first.execute(one), lambda: second.apply_batch([two]), check)

    assert every_interleaving(target, race) >= 3


def test_two_payments_that_together_exceed_the_allocation_are_not_both_paid(target: str) -> None:
    """Each payment fits the balance alone, not together: the second is refused."""

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        ref = f"KT-HH-{tag}"
        first.apply_batch(
            [
                household(ref),
                command(f"a-{tag}", "assess", ref, desil=2),
                allocate(f"al-{tag}", ref, 300_000, f"ALO-{tag}"),
            ]
        )
        one = disburse(f"p1-{tag}", ref, 200_000, f"SP2D-A{tag}")
        two = disburse(f"p2-{tag}", ref, 200_000, f"SP2D-B{tag}")

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("rejected", "insufficient_allocation")]
            assert second.show(ref)["balances"]["BPNT"]["outstanding"] == 100_000

        return (lambda: first.execute(one), lambda: second.apply_batch([two]), check)

    assert every_interleaving(target, race) >= 3


def test_a_batch_that_loses_a_race_is_recorded_whole_from_fresh_state(target: str) -> None:
    """The losing batch is worked out again: all its commands are recorded, once, after the winner's."""

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        ref = f"KT-HH-{tag}"
        first.execute(household(ref))
        batch: list[Mapping[str, Any]] = [
            household(f"KT-HH-B{tag}"),
            command(f"a3-{tag}", "assess", ref, desil=3),
            command(f"f-{tag}", "follow_up", ref, outcome="visited"),
            household(f"KT-HH-C{tag}"),
        ]

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("accepted", None)] * 4
            # The winner's assessment comes first in recorded order; the batch's is latest.
            assert second.show(ref)["desil"] == 3
            ids = set(harness.command_ids(second))
            assert {f"a9-{tag}", f"a3-{tag}", f"f-{tag}", f"reg-KT-HH-B{tag}"} <= ids

        return (
            lambda: first.execute(command(f"a9-{tag}", "assess", ref, desil=9)),
            lambda: second.apply_batch(batch),
            check,
        )

    assert every_interleaving(target, race) >= 3


def test_an_enrolment_is_never_recorded_after_its_household_was_closed(target: str) -> None:
    """Enrol read the household open; another writer closed it first: the enrol is refused.

    ``enrol`` reads the household but records nothing on it, so no version conflict
    stops it: unless the ledger checks what it read, the enrolment is recorded after the
    household's close, which the command format forbids (``closed``).
    """

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        co, hh = f"KT-CO-{tag}", f"KT-HH-{tag}"
        first.apply_batch([cohort(co, 5), household(hh)])
        close = command(f"c-{tag}", "close", hh, reason="moved")
        enrol = command(
            f"e-{tag}", "enrol", f"KT-ENR-{tag}", on="2025-01-11", cohort=co, household=hh
        )

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("rejected", "closed")]

        return (lambda: first.execute(close), lambda: second.apply_batch([enrol]), check)

    assert every_interleaving(target, race) >= 3


# ------------------------------------------------------------------------- programmes


def _define(code: str, on: str, recipients: list[str], limit: int | None) -> dict[str, Any]:
    # ``name`` is also command()'s parameter for the command's name.
    body = command(f"def-{code}", "define_programme", code, on=on, recipients=recipients)
    return body | {"name": "Bantuan daerah", "desil_limit": limit}


def _allocate_programme(tag: str, ref: str, code: str) -> dict[str, Any]:
    return command(
        f"a-{tag}",
        "allocate",
        ref,
        on="2025-01-10",
        programme=code,
        amount=200_000,
        period="2025-01",
        reference=f"{code}/2025-01",
    )


def test_an_allocation_is_never_decided_by_a_rule_amended_meanwhile(target: str) -> None:
    """The allocation read BPNT's limit 5; another writer lowered it to 4 first: refused.

    ``allocate`` reads the programme but records nothing on it, so only the check of what
    the batch read stops an allocation decided by a rule that is no longer the recorded one.
    """

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        code, hh = f"BANJIR_{tag}", f"KT-HH-{tag}"
        first.apply_batch(
            [
                _define(code, "2025-01-01", ["household"], 5),
                household(hh),
                command(f"as-{tag}", "assess", hh, on="2025-01-02", desil=5),
            ]
        )
        amend = command(f"am-{tag}", "amend_programme", code, on="2025-01-05", desil_limit=4)

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("rejected", "not_eligible")]

        return (
            lambda: first.execute(amend),
            lambda: second.apply_batch([_allocate_programme(tag, hh, code)]),
            check,
        )

    assert every_interleaving(target, race) >= 3


def test_an_allocation_under_the_default_rule_is_refused_if_the_programme_was_defined_meanwhile(
    target: str,
) -> None:
    """Undefined, the programme would admit desil 4; defined meanwhile for veterans only."""

    def race(first: Ledger, second: Ledger, tag: str) -> Race:
        code, hh = f"BARU_{tag}", f"KT-HH-{tag}"
        first.apply_batch(
            [household(hh), command(f"as-{tag}", "assess", hh, on="2025-01-02", desil=4)]
        )
        define = _define(code, "2025-01-01", ["veteran"], None)

        def check(outcomes: list[Outcome]) -> None:
            assert _statuses(outcomes) == [("rejected", "not_eligible")]

        return (
            lambda: first.execute(define),
            lambda: second.apply_batch([_allocate_programme(tag, hh, code)]),
            check,
        )

    assert every_interleaving(target, race) >= 3
