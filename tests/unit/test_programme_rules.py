"""Programmes' rules as values and as an aggregate: the rule in force on a date.

The rule in force on D is that of the latest definition or amendment with ``on`` ≤ D, the
later recorded among equal dates. :func:`rule_in_force` is checked against a fold of the
changes dated on or before D in recorded order, and the :class:`Programme` aggregate
replayed from its events against the same fold.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger.aggregates import Household, Programme, Stamp, TrainingCohort, Veteran
from dinsos_ledger.aggregates.rules import (
    DEFAULT_DESIL_LIMIT,
    RECIPIENT_KINDS,
    AllocationRule,
    RuleChange,
    in_force_order,
    rule_in_force,
)
from dinsos_ledger.commands import AmendProgramme, DefineProgramme, parse_command
from dinsos_ledger.errors import BeforeRegistration, InvalidCommand, NotEligible
from dinsos_ledger.types import Period, Reference, RegionCode, Rupiah, Sealed
from dinsos_ledger.types import Programme as Code

START = date(2025, 1, 1)
D = date

_days = st.integers(0, 40).map(lambda n: START + timedelta(days=n))
_limits = st.none() | st.integers(1, 10)


@st.composite
def changes(draw: st.DrawFn) -> list[RuleChange]:
    """A definition then amendments, in recorded order, dated anywhere after the definition."""
    defined = draw(_days)
    count = draw(st.integers(0, 6))
    result = [RuleChange(defined, draw(_limits), "define_programme", 1)]
    for version in range(2, count + 2):
        on = defined + timedelta(days=draw(st.integers(0, 20)))
        result.append(RuleChange(on, draw(_limits), "amend_programme", version))
    return result


def fold(events: list[RuleChange], day: date) -> RuleChange | None:
    """The reference: walk the changes dated on or before ``day`` in recorded order.

    A change replaces the one held unless the held one comes into force later (so among
    equal dates the later recorded wins).
    """
    held: RuleChange | None = None
    for change in events:
        if change.on > day:
            continue
        if held is None or change.on >= held.on:
            held = change
    return held


@given(changes(), _days)
def test_the_rule_in_force_is_the_fold_of_the_changes_dated_by_then(
    history: list[RuleChange], day: date
) -> None:
    """rule_in_force(D) equals the fold over the changes with on ≤ D, in recorded order."""
    assert rule_in_force(history, day) == fold(history, day)


@given(changes(), _days)
def test_the_rule_in_force_is_the_last_of_the_force_order_by_then(
    history: list[RuleChange], day: date
) -> None:
    """In force order (by on, then recorded), the rule in force on D is the last with on ≤ D."""
    ordered = in_force_order(history)
    assert [(c.on, c.version) for c in ordered] == sorted((c.on, c.version) for c in history)
    dated = [c for c in ordered if c.on <= day]
    assert rule_in_force(history, day) == (dated[-1] if dated else None)


def test_before_the_definition_no_rule_is_in_force() -> None:
    """A day before every change has no rule in force."""
    history = [RuleChange(date(2025, 3, 1), 4, "define_programme", 1)]
    assert rule_in_force(history, date(2025, 2, 28)) is None
    assert rule_in_force(history, date(2025, 3, 1)) == history[0]


def test_among_changes_of_one_date_the_later_recorded_is_in_force() -> None:
    """Two amendments dated alike: the second recorded one decides from that date."""
    history = [
        RuleChange(date(2025, 1, 1), 4, "define_programme", 1),
        RuleChange(date(2025, 6, 1), 3, "amend_programme", 2),
        RuleChange(date(2025, 6, 1), 5, "amend_programme", 3),
        RuleChange(date(2025, 2, 1), 2, "amend_programme", 4),
    ]
    assert rule_in_force(history, date(2025, 6, 1)).desil_limit == 5  # type: ignore[union-attr]
    # Recorded last but dated earlier: in force only until the June amendments.
    assert rule_in_force(history, date(2025, 5, 31)).desil_limit == 2  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- aggregate


def stamp(on: date, n: int = 1) -> Stamp:
    """A stamp of command ``c-n`` on ``on``."""
    return Stamp(on=on, actor="operator", command_id=f"c-{n}")


def replay(programme: Programme) -> Programme:
    """The programme rebuilt from its own events (as the repository would)."""
    rebuilt: Any = None
    for event in programme.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert isinstance(rebuilt, Programme)
    return rebuilt


@given(changes(), _days)
def test_a_programme_replayed_from_its_events_decides_as_the_fold(
    history: list[RuleChange], day: date
) -> None:
    """Defined and amended as ``history``, the replayed programme's rule on D is the fold's."""
    first, *rest = history
    programme = Programme.define(
        stamp(first.on),
        id=uuid4(),
        code="BPNT",
        name="Bantuan Pangan Non Tunai",
        recipients=["household"],
        desil_limit=first.desil_limit,
    )
    for n, change in enumerate(rest, start=2):
        programme.amend(stamp(change.on, n), change.desil_limit)
    rebuilt = replay(programme)
    expected = fold(history, day) or history[0]
    rule = rebuilt.rule_on(day)
    assert (rule.on, rule.desil_limit, rule.programme_version) == (
        expected.on,
        expected.desil_limit,
        expected.version,
    )
    assert rule.in_force_on(day) == (day >= first.on)
    assert rule.source == ("define_programme" if expected.version == 1 else "amend_programme")


def test_recipients_are_kept_in_kind_order_whatever_order_they_came_in() -> None:
    """["cohort", "household"] is kept as household, cohort (the listing order)."""
    programme = Programme.define(
        stamp(START),
        id=uuid4(),
        code="PELATIHAN",
        name="Pelatihan",
        recipients=["cohort", "household"],
        desil_limit=None,
    )
    assert programme.recipients == ("household", "cohort")
    assert replay(programme).recipients == ("household", "cohort")


def test_an_amendment_before_the_definition_is_before_registration() -> None:
    """amend_programme dated before define_programme names the definition date."""
    programme = Programme.define(
        stamp(START), id=uuid4(), code="BPNT", name="B", recipients=["household"], desil_limit=4
    )
    with pytest.raises(BeforeRegistration, match="definition on 2025-01-01"):
        programme.amend(stamp(START - timedelta(days=1), 2), 5)


def test_programmes_summary_as_of_a_date_lists_only_rules_by_then() -> None:
    """summary() is the programmes row: limit in force then, rules from then or earlier."""
    programme = Programme.define(
        stamp(START), id=uuid4(), code="BPNT", name="B", recipients=["household"], desil_limit=4
    )
    programme.amend(stamp(date(2025, 3, 1), 2), 5)
    assert programme.summary(date(2024, 12, 31), date(2026, 1, 1)) is None
    assert programme.summary(date(2025, 2, 1), date(2026, 1, 1)) == {
        "programme": "BPNT",
        "name": "B",
        "recipients": ["household"],
        "desil_limit": 4,
        "defined_on": "2025-01-01",
        "rules": [{"on": "2025-01-01", "desil_limit": 4}],
    }
    today = programme.summary(None, date(2025, 3, 1))
    assert today is not None
    assert today["desil_limit"] == 5
    assert len(today["rules"]) == 2


# ------------------------------------------------------------------ deciding allocations


def _household(desil: int | None) -> Household:
    sealed = Sealed("x")
    household: Household = Household._create(
        Household.Registered,
        id=uuid4(),
        ref="HH-1",
        on=START,
        actor="operator",
        command_id="r",
        note=None,
        region=RegionCode("64.08.04.2001"),
        members=4,
        family_card=sealed,
        head_nik=sealed,
        head_name=sealed,
    )
    if desil is not None:
        household.assess(stamp(START), desil)
    return household


def _allocate(subject: Any, rule: AllocationRule | None, on: date = START) -> Any:
    subject.allocate(
        stamp(on, 9),
        Code("BPNT"),
        Rupiah(200_000),
        Period("2025-01"),
        Reference(f"A-{uuid4().hex[:8]}"),
        rule=rule,
    )
    return subject.collect_events()[-1]


def test_the_default_rule_is_desil_four_for_every_kind() -> None:
    """An undefined programme: households up to desil 4, every kind a recipient."""
    rule = AllocationRule.default()
    assert (rule.source, rule.on, rule.desil_limit) == ("default", None, DEFAULT_DESIL_LIMIT)
    assert rule.recipients == RECIPIENT_KINDS
    event = _allocate(_household(4), None)
    assert event.rule == AllocationRule("default", None, None, 4, RECIPIENT_KINDS, desil=4)
    with pytest.raises(NotEligible, match="at most 4"):
        _allocate(_household(5), None)


@pytest.mark.parametrize(
    ("desil", "limit", "admitted"),
    [(None, None, False), (10, None, True), (3, 3, True), (4, 3, False), (1, 1, True)],
)
def test_a_household_needs_an_assessment_and_a_desil_within_the_limit(
    desil: int | None, limit: int | None, admitted: bool
) -> None:
    """Latest assessment required; a null limit admits every desil."""
    rule = AllocationRule("define_programme", START, 1, limit, ("household",))
    if admitted:
        event = _allocate(_household(desil), rule)
        assert (event.rule.desil, event.rule.desil_limit) == (desil, limit)
    else:
        with pytest.raises(NotEligible):
            _allocate(_household(desil), rule)


def test_a_rule_not_yet_in_force_or_not_for_this_kind_refuses() -> None:
    """Allocation before the definition, or to a kind the programme does not reach."""
    later = AllocationRule("define_programme", date(2025, 2, 1), 1, None, ("household",))
    with pytest.raises(NotEligible, match="not in force on 2025-01-01"):
        _allocate(_household(1), later)
    veterans = AllocationRule("define_programme", START, 1, None, ("veteran",))
    with pytest.raises(NotEligible, match="does not reach a household"):
        _allocate(_household(1), veterans)


def test_a_veteran_records_its_eligibility_and_a_cohort_needs_nothing() -> None:
    """The rule a veteran's allocation records says eligible; a cohort's sees nothing."""
    veteran: Veteran = Veteran._create(
        Veteran.Registered,
        id=uuid4(),
        ref="VT-1",
        on=START,
        actor="o",
        command_id="r",
        note=None,
        region=RegionCode("64.08.04.2001"),
        nik=Sealed("x"),
        name=Sealed("x"),
    )
    rule = AllocationRule("define_programme", START, 1, 2, ("veteran",))
    with pytest.raises(NotEligible, match="no assessment"):
        _allocate(veteran, rule)
    veteran.assess(stamp(START), True)
    event = _allocate(veteran, rule)
    assert (event.rule.eligible, event.rule.desil) == (True, None)
    cohort: TrainingCohort = TrainingCohort._create(
        TrainingCohort.Planned,
        id=uuid4(),
        ref="CO-1",
        on=START,
        actor="o",
        command_id="r",
        note=None,
        region=RegionCode("64.08.04.2001"),
        programme=Code("PELATIHAN"),
        capacity=3,
        starts=START,
        ends=START,
    )
    event = _allocate(cohort, AllocationRule("define_programme", START, 1, 1, ("cohort",)))
    assert (event.rule.desil, event.rule.eligible) == (None, None)


# ------------------------------------------------------------------------------ commands

_COMMON = {"id": "p-1", "on": "2025-01-01", "actor": "operator"}


def define(**changes: Any) -> dict[str, Any]:
    """A well-formed define_programme, with ``changes``."""
    return {
        **_COMMON,
        "command": "define_programme",
        "ref": "TALI_ASIH",
        "name": "Tali asih veteran",
        "recipients": ["veteran"],
        "desil_limit": None,
        **changes,
    }


def test_define_and_amend_parse_into_their_classes() -> None:
    """A null desil_limit is a value; recipients come back as a tuple."""
    parsed = parse_command(define())
    assert isinstance(parsed, DefineProgramme)
    assert (parsed.ref, parsed.recipients, parsed.desil_limit) == ("TALI_ASIH", ("veteran",), None)
    amend = parse_command(
        {**_COMMON, "command": "amend_programme", "ref": "BPNT", "desil_limit": 5}
    )
    assert isinstance(amend, AmendProgramme)
    assert amend.desil_limit == 5


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"ref": "TALI-ASIH"}, "ref", "programme code"),
        ({"name": ""}, "name", "1–200 characters"),
        ({"name": "x" * 201}, "name", "1–200 characters"),
        ({"recipients": []}, "recipients", "empty array"),
        ({"recipients": "veteran"}, "recipients", "got a string"),
        ({"recipients": ["veteran", "veteran"]}, "recipients", "distinct"),
        ({"recipients": ["enrolment"]}, "recipients", "household, veteran, cohort"),
        ({"recipients": [1]}, "recipients", "got an integer"),
        ({"desil_limit": 0}, "desil_limit", "1–10 or null (got 0)"),
        ({"desil_limit": 11}, "desil_limit", "1–10 or null (got 11)"),
        ({"desil_limit": 4.0}, "desil_limit", "float"),
        ({"desil_limit": True}, "desil_limit", "boolean"),
    ],
)
def test_a_bad_programme_field_is_invalid_and_named(
    changes: dict[str, Any], field: str, words: str
) -> None:
    """Each wrong field of define_programme is named, with what was expected."""
    with pytest.raises(InvalidCommand) as info:
        parse_command(define(**changes))
    assert info.value.field == field
    assert f"'{field}' must be" in info.value.message
    assert words in info.value.message


def test_desil_limit_is_required_even_though_it_may_be_null() -> None:
    """Leaving desil_limit out is not the same as null: a missing field."""
    body = define()
    del body["desil_limit"]
    with pytest.raises(InvalidCommand, match="missing field 'desil_limit'"):
        parse_command(body)


def test_a_grant_kept_in_an_old_snapshot_reads_back_without_a_rule() -> None:
    """Snapshots taken before allocations recorded rules hold grants without ``rule``."""
    from dinsos_ledger.aggregates.base import Grant
    from dinsos_ledger.codec import converter

    old = {"programme": "PKH", "amount": 750_000, "period": "2025-01", "on": "2025-01-20"}
    assert converter.structure(old, Grant) == Grant("PKH", 750_000, "2025-01", D(2025, 1, 20))
    assert converter.structure(old, Grant).rule is None
