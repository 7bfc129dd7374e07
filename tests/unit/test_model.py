"""Focused tests of the reference model: one small story per rule of the command format."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from tests.model import CODES, Model
from tests.strategies import command_lists, commands, hostile_lines, registrations

ROOT = Path(__file__).resolve().parents[2]

DATA = ROOT / "tests" / "data"

_counter = iter(range(1, 10**9))


def cmd(command: str, ref: str, on: str = "2025-01-10", **fields: Any) -> dict[str, Any]:
    """Return a command with a fresh id and the given fields."""
    return {
        "id": f"t-{next(_counter)}",
        "command": command,
        "ref": ref,
        "on": on,
        "actor": "petugas",
        **fields,
    }


def household(ref: str = "HH-1", on: str = "2025-01-01") -> dict[str, Any]:
    """Return a valid register_household command."""
    return cmd(
        "register_household",
        ref,
        on,
        region="64.08.04.2001",
        members=4,
        family_card="6408040101250001",
        head_nik="6408041203820001",
        head_name="Rahmat Hidayat",
    )


def veteran(ref: str = "VT-1", on: str = "2025-01-01") -> dict[str, Any]:
    """Return a valid register_veteran command."""
    return cmd(
        "register_veteran", ref, on, region="64.08.05.2002", nik="6408050807450001", name="Sudarmo"
    )


def cohort(
    ref: str = "CO-1",
    on: str = "2025-01-01",
    capacity: int = 2,
    starts: str = "2025-02-01",
    ends: str = "2025-02-28",
) -> dict[str, Any]:
    """Return a valid plan_cohort command."""
    return cmd(
        "plan_cohort",
        ref,
        on,
        region="64.08.04.2001",
        programme="PELATIHAN",
        capacity=capacity,
        starts=starts,
        ends=ends,
    )


def allocate(
    ref: str,
    amount: int = 750_000,
    reference: str = "A-1",
    on: str = "2025-01-10",
    programme: str = "PKH",
) -> dict[str, Any]:
    """Return an allocate command."""
    return cmd(
        "allocate",
        ref,
        on,
        programme=programme,
        amount=amount,
        period="2025-01",
        reference=reference,
    )


def disburse(
    ref: str,
    amount: int = 750_000,
    reference: str = "D-1",
    on: str = "2025-01-15",
    programme: str = "PKH",
) -> dict[str, Any]:
    """Return a disburse command."""
    return cmd(
        "disburse", ref, on, programme=programme, amount=amount, reference=reference, channel="bank"
    )


def enrol(
    ref: str, cohort_ref: str = "CO-1", household_ref: str = "HH-1", on: str = "2025-01-20"
) -> dict[str, Any]:
    """Return an enrol command."""
    return cmd("enrol", ref, on, cohort=cohort_ref, household=household_ref)


def run(*commands_: dict[str, Any] | str) -> tuple[Model, list[tuple[str, str | None]]]:
    """Execute the commands on a fresh model; return it and every outcome."""
    model = Model()
    return model, [model.execute(c) for c in commands_]


def last(*commands_: dict[str, Any] | str) -> tuple[str, str | None]:
    """Return the outcome of the last of the commands executed on a fresh model."""
    return run(*commands_)[1][-1]


def rejected(code: str) -> tuple[str, str]:
    """Return the outcome of a command rejected with ``code``."""
    return ("rejected", code)


ACCEPTED = ("accepted", None)


def assessed_household(desil: int = 2) -> list[dict[str, Any]]:
    """Return commands that register HH-1 and assess it."""
    return [household(), cmd("assess", "HH-1", desil=desil)]


# ------------------------------------------------------------------ invalid


def test_a_registered_household_is_accepted() -> None:
    """A well-formed register_household on an empty ledger is accepted."""
    assert last(household()) == ACCEPTED


@pytest.mark.parametrize(
    "line",
    [
        '{"id": "x", "command": "register_veteran"',
        "[1, 2]",
        "null",
        '"register_household"',
        "42",
        "not json at all",
        '{"id": "a", "id": "b"}',
        '{"amount": NaN}',
        b"\xff\xfe{}",
        "[" * 5000 + "]" * 5000,
    ],
)
def test_a_line_that_is_not_a_json_object_is_invalid(line: str | bytes) -> None:
    """Malformed JSON, non-objects, NaN, duplicated keys and bad UTF-8 are invalid."""
    assert last(line) == rejected("invalid")


def test_a_raw_line_and_its_parsed_object_are_treated_alike() -> None:
    """execute takes a JSON line or the dict it parses to, with the same result."""
    command = household()
    assert last(json.dumps(command)) == last(command) == ACCEPTED


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 750_000.0},
        {"amount": 0},
        {"amount": 10**12 + 1},
        {"amount": True},
        {"amount": "750000"},
        {"period": "2025-13"},
        {"period": "2025-00"},
        {"reference": "A 1"},
        {"programme": "pkh"},
        {"on": "2025-02-30"},
        {"on": "2025-2-3"},
        {"actor": ""},
        {"actor": "x" * 129},
        {"note": "x" * 2001},
        {"note": None},
        {"id": ""},
        {"id": "x" * 129},
        {"ref": "hh-1"},
        {"extra": 1},
    ],
)
def test_a_bad_field_makes_an_allocation_invalid(change: dict[str, Any]) -> None:
    """Floats, bools, out-of-range values, bad formats and unknown fields are invalid."""
    assert last(*assessed_household(), allocate("HH-1") | change) == rejected("invalid")


def test_amount_limits_are_inclusive() -> None:
    """Amounts of 1 and 10^12 are accepted."""
    assert run(*assessed_household(), allocate("HH-1", 1, "A-1"), allocate("HH-1", 10**12, "A-2"))[
        1
    ][-2:] == [
        ACCEPTED,
        ACCEPTED,
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"head_nik": "640804120382000"},
        {"family_card": 6408040101250001},
        {"head_nik": "64080412038200011"},
        {"members": 0},
        {"members": 31},
        {"members": True},
        {"head_name": ""},
        {"head_name": "x" * 201},
        {"region": "64.08.04.201"},
        {"region": "64-08-04-2001"},
    ],
)
def test_a_bad_field_makes_a_registration_invalid(change: dict[str, Any]) -> None:
    """Identity numbers are 16-digit strings, members 1–30, names 1–200, regions NN.NN.NN.NNNN."""
    assert last(household() | change) == rejected("invalid")


def test_a_missing_field_is_invalid() -> None:
    """Every field but note is required."""
    command = household()
    del command["members"]
    assert last(command) == rejected("invalid")


def test_assess_needs_exactly_one_of_desil_and_eligible() -> None:
    """assess with both or neither of desil and eligible is invalid."""
    assert last(household(), cmd("assess", "HH-1", desil=2, eligible=True)) == rejected("invalid")
    assert last(household(), cmd("assess", "HH-1")) == rejected("invalid")
    assert last(household(), cmd("assess", "HH-1", desil=11)) == rejected("invalid")
    assert last(veteran(), cmd("assess", "VT-1", eligible=1)) == rejected("invalid")


def test_a_cohort_that_ends_before_it_starts_is_invalid() -> None:
    """plan_cohort needs starts on or before ends; a one-day cohort is fine."""
    assert last(cohort(starts="2025-03-02", ends="2025-03-01")) == rejected("invalid")
    assert last(cohort(starts="2025-03-01", ends="2025-03-01")) == ACCEPTED


def test_enums_are_checked() -> None:
    """channel, outcome and the close reason must be one of their values."""
    assert last(
        *assessed_household(), allocate("HH-1"), disburse("HH-1") | {"channel": "giro"}
    ) == rejected("invalid")
    assert last(household(), cmd("follow_up", "HH-1", outcome="absent")) == rejected("invalid")
    assert last(household(), cmd("close", "HH-1", reason="meninggal")) == rejected("invalid")


# ------------------------------------------------------- duplicates and ids


def test_an_identical_resend_is_a_duplicate_and_records_nothing() -> None:
    """The same id with the same body is skipped as a duplicate."""
    model, outcomes = run(*assessed_household(), (a := allocate("HH-1")), dict(a))
    assert outcomes[-1] == ("duplicate", None)
    assert model.balances()[0]["allocated"] == 750_000


def test_a_reused_id_with_another_body_is_an_id_conflict() -> None:
    """The id of an accepted command with a different body is id_conflict."""
    first = household()
    second = veteran() | {"id": first["id"]}
    assert last(first, second) == rejected("id_conflict")


def test_a_rejected_id_may_be_sent_again_and_accepted() -> None:
    """Rejected commands leave no trace: the same command succeeds once its need is met."""
    model = Model()
    allocation = allocate("HH-1")
    model.execute(household())
    assert model.execute(allocation) == rejected("not_eligible")
    model.execute(cmd("assess", "HH-1", desil=3))
    assert model.execute(allocation) == ACCEPTED


# --------------------------------------------------------------- the rules


def test_a_command_on_an_unregistered_ref_is_unknown_subject() -> None:
    """A ref that was never registered is unknown_subject."""
    assert last(cmd("assess", "HH-9", desil=2)) == rejected("unknown_subject")


def test_enrol_checks_its_cohort_and_household_exist() -> None:
    """enrol names a cohort and a household that must be registered."""
    assert last(household(), enrol("EN-1")) == rejected("unknown_subject")
    assert last(cohort(), enrol("EN-1")) == rejected("unknown_subject")


def test_unknown_subject_comes_before_already_registered_in_enrol() -> None:
    """enrol with an existing ref and an unknown cohort is unknown_subject."""
    assert last(household(), enrol("HH-1", cohort_ref="CO-9")) == rejected("unknown_subject")


def test_refs_are_unique_across_kinds() -> None:
    """Registering any kind under an existing ref is already_registered."""
    assert last(household("X-1"), veteran("X-1")) == rejected("already_registered")
    assert last(household(), cohort(), enrol("HH-1")) == rejected("already_registered")
    assert last(household(), household()) == rejected("already_registered")


@pytest.mark.parametrize(
    ("command", "ref", "fields"),
    [
        ("assess", "VT-1", {"desil": 3}),
        ("assess", "HH-1", {"eligible": True}),
        ("assess", "CO-1", {"desil": 3}),
        ("attend", "HH-1", {}),
        ("complete", "VT-1", {}),
        ("withdraw", "CO-1", {"reason": "x"}),
        (
            "allocate",
            "EN-1",
            {"programme": "PKH", "amount": 1, "period": "2025-01", "reference": "R"},
        ),
        (
            "disburse",
            "EN-1",
            {"programme": "PKH", "amount": 1, "reference": "R", "channel": "bank"},
        ),
        ("reverse", "EN-1", {"reference": "R", "reason": "x"}),
        ("follow_up", "CO-1", {"outcome": "visited"}),
        ("close", "CO-1", {"reason": "other"}),
        ("close", "EN-1", {"reason": "other"}),
        ("forget", "EN-1", {"reason": "x"}),
    ],
)
def test_a_command_on_the_wrong_kind_is_not_applicable(
    command: str, ref: str, fields: dict[str, Any]
) -> None:
    """Each command applies to the kinds of the command format only."""
    story = [household(), veteran(), cohort(), enrol("EN-1")]
    assert last(*story, cmd(command, ref, "2025-01-25", **fields)) == rejected("not_applicable")


def test_enrol_with_refs_of_the_wrong_kind_is_not_applicable() -> None:
    """enrol's cohort must be a cohort and its household a household."""
    story = [household(), household("HH-2"), cohort()]
    assert last(*story, enrol("EN-1", cohort_ref="HH-2")) == rejected("not_applicable")
    assert last(*story, enrol("EN-1", household_ref="CO-1")) == rejected("not_applicable")


def test_a_closed_household_accepts_only_reverse_and_forget() -> None:
    """After close, follow_up, assess and close are closed; reverse and forget are accepted."""
    story = [
        *assessed_household(),
        allocate("HH-1"),
        disburse("HH-1"),
        cmd("close", "HH-1", "2025-01-20", reason="moved"),
    ]
    assert last(*story, cmd("follow_up", "HH-1", "2025-01-21", outcome="visited")) == rejected(
        "closed"
    )
    assert last(*story, cmd("assess", "HH-1", "2025-01-21", desil=2)) == rejected("closed")
    assert last(*story, cmd("close", "HH-1", "2025-01-21", reason="other")) == rejected("closed")
    assert (
        last(*story, cmd("reverse", "HH-1", "2025-01-21", reference="D-1", reason="x")) == ACCEPTED
    )
    assert last(*story, cmd("forget", "HH-1", "2025-01-21", reason="x")) == ACCEPTED


def test_a_forgotten_subject_accepts_nothing() -> None:
    """After forget even reverse and forget are closed."""
    story = [
        veteran(),
        cmd("assess", "VT-1", eligible=True),
        allocate("VT-1"),
        disburse("VT-1"),
        cmd("close", "VT-1", "2025-01-20", reason="deceased"),
        cmd("forget", "VT-1", "2025-01-21", reason="ahli waris"),
    ]
    assert last(
        *story, cmd("reverse", "VT-1", "2025-01-22", reference="D-1", reason="x")
    ) == rejected("closed")
    assert last(*story, cmd("forget", "VT-1", "2025-01-22", reason="x")) == rejected("closed")


def test_a_completed_enrolment_accepts_only_follow_up() -> None:
    """complete closes an enrolment to attend, complete and withdraw, not to follow_up."""
    story = [household(), cohort(), enrol("EN-1"), cmd("complete", "EN-1", "2025-02-28")]
    assert last(*story, cmd("attend", "EN-1", "2025-02-28")) == rejected("closed")
    assert last(*story, cmd("withdraw", "EN-1", "2025-03-01", reason="x")) == rejected("closed")
    assert last(*story, cmd("follow_up", "EN-1", "2025-03-10", outcome="visited")) == ACCEPTED


def test_a_withdrawn_enrolment_accepts_nothing() -> None:
    """withdraw closes an enrolment to every command."""
    story = [
        household(),
        cohort(),
        enrol("EN-1"),
        cmd("withdraw", "EN-1", "2025-02-02", reason="x"),
    ]
    assert last(*story, cmd("follow_up", "EN-1", "2025-02-03", outcome="visited")) == rejected(
        "closed"
    )
    assert last(*story, cmd("complete", "EN-1", "2025-02-03")) == rejected("closed")


def test_enrolling_a_closed_household_is_closed_before_the_cohort_is_full() -> None:
    """enrol of a closed household is closed, even into a full cohort."""
    story = [
        household(),
        household("HH-2"),
        cohort(capacity=1),
        enrol("EN-1", household_ref="HH-2"),
        cmd("close", "HH-1", "2025-01-15", reason="moved"),
    ]
    assert last(*story, enrol("EN-2")) == rejected("closed")


def test_forget_of_an_open_subject_is_not_closed() -> None:
    """forget needs a close first."""
    assert last(household(), cmd("forget", "HH-1", reason="x")) == rejected("not_closed")


def test_a_command_dated_before_registration_is_before_registration() -> None:
    """on earlier than the subject's registration date is refused; the same day is fine."""
    assert last(
        household(on="2025-01-10"), cmd("assess", "HH-1", "2025-01-09", desil=2)
    ) == rejected("before_registration")
    assert (
        last(household(on="2025-01-10"), cmd("assess", "HH-1", "2025-01-10", desil=2)) == ACCEPTED
    )
    assert last(cohort(on="2025-01-10"), allocate("CO-1", on="2025-01-09")) == rejected(
        "before_registration"
    )


def test_enrol_is_dated_after_both_the_household_and_the_cohort() -> None:
    """enrol before the household's registration or the cohort's plan is before_registration."""
    assert last(household(on="2025-01-20"), cohort(), enrol("EN-1", on="2025-01-19")) == rejected(
        "before_registration"
    )
    assert last(household(), cohort(on="2025-01-20"), enrol("EN-1", on="2025-01-19")) == rejected(
        "before_registration"
    )


def test_closed_comes_before_before_registration() -> None:
    """A closed subject answers closed whatever the date."""
    story = [household(on="2025-01-10"), cmd("close", "HH-1", "2025-01-11", reason="moved")]
    assert last(*story, cmd("assess", "HH-1", "2025-01-01", desil=2)) == rejected("closed")


def test_allocation_follows_the_latest_assessment() -> None:
    """allocate needs an assessment; the latest recorded one decides, desil 4 is the limit."""
    assert last(household(), allocate("HH-1")) == rejected("not_eligible")
    assert last(*assessed_household(5), allocate("HH-1")) == rejected("not_eligible")
    assert last(*assessed_household(4), allocate("HH-1")) == ACCEPTED
    later_poorer = [*assessed_household(2), cmd("assess", "HH-1", "2025-01-05", desil=8)]
    assert last(*later_poorer, allocate("HH-1")) == rejected("not_eligible")
    # Recorded order, not business date, makes an assessment the latest.
    dated_earlier = [*assessed_household(8), cmd("assess", "HH-1", "2025-01-02", desil=2)]
    assert last(*dated_earlier, allocate("HH-1")) == ACCEPTED


def test_a_veteran_needs_an_eligible_latest_assessment() -> None:
    """allocate to a veteran without assessment or assessed not eligible is not_eligible."""
    assert last(veteran(), allocate("VT-1")) == rejected("not_eligible")
    assert last(veteran(), cmd("assess", "VT-1", eligible=False), allocate("VT-1")) == rejected(
        "not_eligible"
    )
    assert last(veteran(), cmd("assess", "VT-1", eligible=True), allocate("VT-1")) == ACCEPTED


def test_a_cohort_needs_no_assessment() -> None:
    """Allocations to cohorts are not checked for eligibility."""
    assert last(cohort(), allocate("CO-1", programme="PELATIHAN")) == ACCEPTED


def test_disbursing_more_than_outstanding_is_insufficient_allocation() -> None:
    """disburse is bounded by allocated minus disbursed (not reversed) in that programme."""
    story = [*assessed_household(), allocate("HH-1", 750_000), disburse("HH-1", 500_000, "D-1")]
    assert last(*story, disburse("HH-1", 250_001, "D-2")) == rejected("insufficient_allocation")
    assert last(*story, disburse("HH-1", 250_000, "D-2")) == ACCEPTED
    assert last(*story, disburse("HH-1", 1, "D-2", programme="BPNT")) == rejected(
        "insufficient_allocation"
    )
    reversed_ = [*story, cmd("reverse", "HH-1", "2025-01-16", reference="D-1", reason="x")]
    assert last(*reversed_, disburse("HH-1", 750_000, "D-2")) == ACCEPTED


def test_insufficient_allocation_ignores_dates() -> None:
    """The balance compared is over everything recorded, not as of the payment's date."""
    story = [*assessed_household(), allocate("HH-1", on="2025-01-20")]
    assert last(*story, disburse("HH-1", on="2025-01-10")) == ACCEPTED


def test_a_reference_is_used_once_per_subject() -> None:
    """allocate and disburse share the subject's references; other subjects may reuse them."""
    story = [*assessed_household(), allocate("HH-1", reference="R-1")]
    assert last(*story, allocate("HH-1", reference="R-1", programme="BPNT")) == rejected(
        "duplicate_reference"
    )
    assert last(*story, disburse("HH-1", 1, reference="R-1")) == rejected("duplicate_reference")
    other = [household("HH-2"), cmd("assess", "HH-2", desil=1)]
    assert last(*story, *other, allocate("HH-2", reference="R-1")) == ACCEPTED


def test_insufficient_allocation_comes_before_duplicate_reference() -> None:
    """A too-large payment with a used reference is insufficient_allocation."""
    story = [*assessed_household(), allocate("HH-1", 100, reference="R-1")]
    assert last(*story, disburse("HH-1", 101, reference="R-1")) == rejected(
        "insufficient_allocation"
    )


def test_reversing_an_unknown_reference_is_unknown_reference() -> None:
    """reverse needs a disbursement of that subject; an allocation's reference will not do."""
    story = [
        *assessed_household(),
        allocate("HH-1", reference="A-1"),
        disburse("HH-1", reference="D-1"),
    ]
    assert last(
        *story, cmd("reverse", "HH-1", "2025-01-16", reference="A-1", reason="x")
    ) == rejected("unknown_reference")
    assert last(
        *story, cmd("reverse", "HH-1", "2025-01-16", reference="D-9", reason="x")
    ) == rejected("unknown_reference")


def test_reversing_twice_is_already_reversed() -> None:
    """A disbursement is reversed at most once."""
    story = [
        *assessed_household(),
        allocate("HH-1"),
        disburse("HH-1"),
        cmd("reverse", "HH-1", "2025-01-16", reference="D-1", reason="x"),
    ]
    assert last(
        *story, cmd("reverse", "HH-1", "2025-01-17", reference="D-1", reason="y")
    ) == rejected("already_reversed")


def test_a_full_cohort_counts_completed_but_not_withdrawn_enrolments() -> None:
    """cohort_full counts enrolments that are active or completed."""
    story = [household(), household("HH-2"), household("HH-3"), cohort(capacity=2)]
    story += [
        enrol("EN-1"),
        enrol("EN-2", household_ref="HH-2"),
        cmd("complete", "EN-1", "2025-02-10"),
    ]
    assert last(*story, enrol("EN-3", household_ref="HH-3")) == rejected("cohort_full")
    story.append(cmd("withdraw", "EN-2", "2025-02-10", reason="x"))
    assert last(*story, enrol("EN-3", household_ref="HH-3")) == ACCEPTED


def test_a_household_enrols_once_per_cohort_unless_withdrawn() -> None:
    """already_enrolled until the earlier enrolment is withdrawn; completed still counts."""
    story = [household(), cohort(capacity=5), enrol("EN-1")]
    assert last(*story, enrol("EN-2")) == rejected("already_enrolled")
    assert last(*story, cmd("complete", "EN-1", "2025-02-10"), enrol("EN-2")) == rejected(
        "already_enrolled"
    )
    assert (
        last(*story, cmd("withdraw", "EN-1", "2025-01-25", reason="x"), enrol("EN-2")) == ACCEPTED
    )


def test_cohort_dates_bound_enrol_attend_and_complete() -> None:
    """enrol after ends, attend or complete outside starts..ends are outside_cohort_dates."""
    story = [household(), cohort(starts="2025-02-01", ends="2025-02-28")]
    assert last(*story, enrol("EN-1", on="2025-03-01")) == rejected("outside_cohort_dates")
    assert last(*story, enrol("EN-1", on="2025-02-28")) == ACCEPTED
    enrolled = [*story, enrol("EN-1", on="2025-01-20")]
    assert last(*enrolled, cmd("attend", "EN-1", "2025-01-31")) == rejected("outside_cohort_dates")
    assert last(*enrolled, cmd("attend", "EN-1", "2025-02-01")) == ACCEPTED
    assert last(*enrolled, cmd("complete", "EN-1", "2025-03-01")) == rejected(
        "outside_cohort_dates"
    )
    assert last(*enrolled, cmd("follow_up", "EN-1", "2025-04-01", outcome="visited")) == ACCEPTED


# ---------------------------------------------------------------- queries


def test_balances_as_of_a_date_count_only_what_happened_by_then() -> None:
    """As of D, allocations, payments and reversals dated after D do not count."""
    model, outcomes = run(
        *assessed_household(),
        allocate("HH-1", 750_000, on="2025-01-20"),
        disburse("HH-1", 500_000, "D-1", on="2025-01-10"),
        cmd("reverse", "HH-1", "2025-01-25", reference="D-1", reason="x"),
    )
    assert set(outcomes) == {ACCEPTED}
    row = {"ref": "HH-1", "kind": "household", "programme": "PKH"}
    assert model.balances(date(2025, 1, 9)) == []
    assert model.balances(date(2025, 1, 10)) == [
        row | {"allocated": 0, "disbursed": 500_000, "outstanding": -500_000}
    ]
    assert model.balances(date(2025, 1, 20)) == [
        row | {"allocated": 750_000, "disbursed": 500_000, "outstanding": 250_000}
    ]
    assert model.balances() == [
        row | {"allocated": 750_000, "disbursed": 0, "outstanding": 750_000}
    ]


def test_continuity_finds_gaps_between_contacts() -> None:
    """A household seen on day 1 and day 101 has a 10-day gap and is covered after."""
    model, _ = run(
        household(on="2025-01-01"),
        cmd("follow_up", "HH-1", "2025-04-11", outcome="visited"),
        cmd("follow_up", "HH-1", "2025-04-20", outcome="not_found"),
    )
    (row,) = model.continuity(date(2025, 5, 1))
    assert row["gaps"] == [{"from": "2025-04-01", "to": "2025-04-10", "days": 10}]
    assert (row["total_days"], row["covered_days"], row["longest_gap_days"]) == (121, 111, 10)
    assert row["coverage"] == 0.9174
    assert (row["status"], row["last_contact_on"], row["end_on"]) == (
        "covered",
        "2025-04-11",
        "2025-05-01",
    )


def test_continuity_counts_enrolment_contacts_and_stops_at_close() -> None:
    """A household's enrolment contacts count; the window ends at its close date."""
    model, outcomes = run(
        household(on="2025-01-01"),
        cohort(on="2025-01-01", starts="2025-04-01", ends="2025-04-30"),
        enrol("EN-1", on="2025-03-01"),
        cmd("close", "HH-1", "2025-03-15", reason="moved"),
        cmd("attend", "EN-1", "2025-04-02"),
    )
    assert set(outcomes) == {ACCEPTED}
    (row,) = model.continuity(date(2025, 12, 31))
    assert (row["end_on"], row["status"], row["last_contact_on"]) == (
        "2025-03-15",
        "closed",
        "2025-03-01",
    )
    assert row["covered_days"] == row["total_days"] == 74


def test_a_reversed_payment_is_not_a_contact_once_reversed() -> None:
    """A disbursement stops being a contact as of its reversal date."""
    model, _ = run(
        veteran(on="2025-01-01"),
        cmd("assess", "VT-1", "2025-01-01", eligible=True),
        allocate("VT-1", on="2025-01-01"),
        disburse("VT-1", on="2025-06-01"),
        cmd("reverse", "VT-1", "2025-08-01", reference="D-1", reason="x"),
    )
    assert model.continuity(date(2025, 7, 31))[0]["status"] == "covered"
    assert model.continuity(date(2025, 8, 1))[0]["status"] == "overdue"
    assert model.continuity(date(2024, 12, 31)) == []


def test_show_hides_personal_data_once_forgotten() -> None:
    """show keeps the ref and kind but reads the PII as None after forget."""
    model, _ = run(
        household(), cmd("close", "HH-1", reason="moved"), cmd("forget", "HH-1", reason="x")
    )
    state = model.show("HH-1")
    assert state is not None
    assert (state["ref"], state["kind"], state["closed"], state["forgotten"]) == (
        "HH-1",
        "household",
        True,
        True,
    )
    assert state["head_nik"] is None
    assert state["region"] == "64.08.04.2001"
    assert model.show("HH-9") is None


# --------------------------------------------------------- fixture and fuzz


def test_the_model_reproduces_the_field_office_fixture() -> None:
    """Every non-blank line of field_office.jsonl gets its expected outcome."""
    text = (DATA / "field_office.jsonl").read_text(encoding="utf-8")
    expected = [
        json.loads(line) for line in (DATA / "field_office.expected.jsonl").read_text().splitlines()
    ]
    assert Model().import_text(text) == expected


def test_the_fixture_meets_every_error_code() -> None:
    """field_office.expected.jsonl has a duplicate and at least one line per error code."""
    expected = [
        json.loads(line) for line in (DATA / "field_office.expected.jsonl").read_text().splitlines()
    ]
    assert {r["code"] for r in expected if r["outcome"] == "rejected"} == set(CODES)
    assert any(r["outcome"] == "duplicate" for r in expected)


@settings(max_examples=300, deadline=None)
@given(hostile_lines())
def test_every_hostile_line_is_invalid(line: str | bytes) -> None:
    """Garbage lines are rejected as invalid, never with an exception."""
    assert last(line) == rejected("invalid")


@settings(max_examples=200, deadline=None)
@given(commands(mutate="always"))
def test_a_mutated_command_is_invalid(command: dict[str, Any]) -> None:
    """Every mutation of commands(mutate="always") is invalid."""
    assert last(command) == rejected("invalid")


@settings(max_examples=200, deadline=None)
@given(command_lists())
def test_the_model_answers_every_command_list(commands_: list[dict[str, Any]]) -> None:
    """Outcomes are well formed, balances never go negative, and resends are duplicates."""
    model = Model()
    for command in commands_:
        outcome, code = model.execute(command)
        assert (outcome, code) in {ACCEPTED, ("duplicate", None)} or (
            outcome == "rejected" and code in CODES
        )
    assert all(row["outstanding"] >= 0 for row in model.balances())
    for accepted in list(model.log):
        assert model.execute(accepted) == ("duplicate", None)


@settings(max_examples=50, deadline=None)
@given(registrations())
def test_the_registration_prologue_is_accepted_in_full(prologue: list[dict[str, Any]]) -> None:
    """Every command of registrations() is accepted on an empty ledger."""
    model = Model()
    assert [model.execute(c) for c in prologue] == [ACCEPTED] * len(prologue)


# ------------------------------------------------------------------------- programmes


def define(
    code: str = "BPNT",
    on: str = "2025-01-01",
    recipients: tuple[str, ...] = ("household",),
    desil_limit: int | None = 4,
) -> dict[str, Any]:
    """Define a programme."""
    return cmd(
        "define_programme",
        code,
        on,
        name=f"Programme {code}",
        recipients=list(recipients),
        desil_limit=desil_limit,
    )


def test_a_defined_programme_decides_by_the_rule_in_force_on_the_allocation_date() -> None:
    """Desil 5 is refused before the amendment's on and accepted from it."""
    story = [
        define(),
        *assessed_household(5),
        cmd("amend_programme", "BPNT", "2025-02-01", desil_limit=5),
    ]
    assert last(*story, allocate("HH-1", on="2025-01-31", programme="BPNT")) == rejected(
        "not_eligible"
    )
    assert last(*story, allocate("HH-1", on="2025-02-01", programme="BPNT")) == ACCEPTED


def test_among_amendments_of_one_date_the_later_recorded_wins() -> None:
    """Two amendments dated alike: the second one recorded is in force."""
    story = [
        define(),
        *assessed_household(5),
        cmd("amend_programme", "BPNT", "2025-02-01", desil_limit=5),
        cmd("amend_programme", "BPNT", "2025-02-01", desil_limit=3),
    ]
    assert last(*story, allocate("HH-1", on="2025-02-10", programme="BPNT")) == rejected(
        "not_eligible"
    )


def test_recipients_a_null_limit_and_the_definition_date_decide_too() -> None:
    """Kind outside recipients, allocation before the definition: not_eligible; null: no limit."""
    veterans = define("TALI_ASIH", recipients=("veteran",), desil_limit=None)
    assert last(veterans, *assessed_household(2), allocate("HH-1", programme="TALI_ASIH")) == (
        rejected("not_eligible")
    )
    open_ = define("BANJIR", on="2025-01-05", desil_limit=None)
    assert last(open_, *assessed_household(10), allocate("HH-1", programme="BANJIR")) == ACCEPTED
    early = allocate("HH-1", on="2025-01-04", programme="BANJIR")
    assert last(open_, *assessed_household(1), early) == rejected("not_eligible")
    cohorts = define("PELATIHAN", recipients=("cohort",), desil_limit=1)
    assert last(cohorts, cohort(), allocate("CO-1", programme="PELATIHAN")) == ACCEPTED


def test_programme_commands_follow_the_rule_table() -> None:
    """already_registered, not_applicable and before_registration for programmes."""
    assert last(household("PKH"), define("PKH")) == rejected("already_registered")
    assert last(define("PKH"), household("PKH")) == rejected("already_registered")
    assert last(define(), cmd("assess", "BPNT", desil=2)) == rejected("not_applicable")
    assert last(household(), cmd("amend_programme", "HH-1", desil_limit=2)) == rejected(
        "not_applicable"
    )
    assert last(define(), cmd("amend_programme", "BPNT", "2024-12-31", desil_limit=2)) == (
        rejected("before_registration")
    )
    assert last(cmd("amend_programme", "NEW_ONE", desil_limit=2)) == rejected("unknown_subject")
    assert last(define("TALI-ASIH")) == rejected("invalid")
    assert last(define(recipients=())) == rejected("invalid")
    assert last(define(desil_limit=0)) == rejected("invalid")


def test_programmes_lists_the_rules_as_of_a_date() -> None:
    """Only rules from DATE or earlier, programmes defined by then, the limit then in force."""
    model, _ = run(
        define(),
        define("PKH", on="2025-03-01", recipients=("household", "veteran")),
        cmd("amend_programme", "BPNT", "2025-02-01", desil_limit=5),
    )
    assert model.programmes(date(2025, 2, 15), date(2026, 1, 1)) == [
        {
            "programme": "BPNT",
            "name": "Programme BPNT",
            "recipients": ["household"],
            "desil_limit": 5,
            "defined_on": "2025-01-01",
            "rules": [
                {"on": "2025-01-01", "desil_limit": 4},
                {"on": "2025-02-01", "desil_limit": 5},
            ],
        }
    ]
    assert [row["programme"] for row in model.programmes(None, date(2026, 1, 1))] == [
        "BPNT",
        "PKH",
    ]
