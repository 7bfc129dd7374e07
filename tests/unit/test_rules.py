"""The rules of the command format, each with its error code, and the order they are checked in.

Every story runs on a private in-memory ledger through :meth:`Ledger.execute` (the path a
command file takes) and looks only at the outcome: accepted, duplicate, or rejected with
a code.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from dinsos_ledger import errors
from dinsos_ledger.application import Ledger
from dinsos_ledger.errors import CODES

_ids = itertools.count(1)

ACCEPTED = ("accepted", None)
DUPLICATE = ("duplicate", None)


def rejected(code: str) -> tuple[str, str]:
    """The outcome of a command refused with ``code``."""
    return ("rejected", code)


def command(verb: str, ref: str, on: str = "2025-01-20", /, **fields: Any) -> dict[str, Any]:
    """A command with a fresh id (``name`` is a field of register_veteran, hence positional)."""
    return {
        "id": f"r-{next(_ids)}",
        "command": verb,
        "ref": ref,
        "on": on,
        "actor": "petugas",
        **fields,
    }


def household(ref: str = "HH-1", on: str = "2025-01-06") -> dict[str, Any]:
    """Register a household."""
    return command(
        "register_household",
        ref,
        on,
        region="64.08.04.2001",
        members=4,
        family_card="6408040101250001",
        head_nik="6408041203820001",
        head_name="Rahmat Hidayat",
    )


def veteran(ref: str = "VT-1", on: str = "2025-01-06") -> dict[str, Any]:
    """Register a veteran."""
    return command(
        "register_veteran", ref, on, region="64.08.05.2002", nik="6408050807450001", name="Sudarmo"
    )


def cohort(
    ref: str = "CO-1",
    on: str = "2025-01-06",
    capacity: int = 2,
    starts: str = "2025-03-03",
    ends: str = "2025-03-28",
) -> dict[str, Any]:
    """Plan a cohort."""
    return command(
        "plan_cohort",
        ref,
        on,
        region="64.08.04.2001",
        programme="PELATIHAN",
        capacity=capacity,
        starts=starts,
        ends=ends,
    )


def assess(ref: str = "HH-1", on: str = "2025-01-13", **value: Any) -> dict[str, Any]:
    """Assess a household (desil, default 2) or, with ``eligible=``, a veteran."""
    return command("assess", ref, on, **(value or {"desil": 2}))


def allocate(
    ref: str = "HH-1",
    amount: int = 750_000,
    reference: str = "A-1",
    on: str = "2025-01-20",
    programme: str = "PKH",
) -> dict[str, Any]:
    """Allocate money."""
    return command(
        "allocate",
        ref,
        on,
        programme=programme,
        amount=amount,
        period="2025-01",
        reference=reference,
    )


def disburse(
    ref: str = "HH-1",
    amount: int = 750_000,
    reference: str = "D-1",
    on: str = "2025-01-25",
    programme: str = "PKH",
) -> dict[str, Any]:
    """Pay money."""
    return command(
        "disburse", ref, on, programme=programme, amount=amount, reference=reference, channel="bank"
    )


def reverse(ref: str = "HH-1", reference: str = "D-1", on: str = "2025-01-28") -> dict[str, Any]:
    """Reverse a payment."""
    return command("reverse", ref, on, reference=reference, reason="dana kembali")


def confirm(
    ref: str = "HH-1",
    reference: str = "D-1",
    on: str = "2025-01-29",
    amount: int = 500_000,
) -> dict[str, Any]:
    """The payment channel confirms a payment (of PAID's amount by default)."""
    return command(
        "confirm", ref, on, reference=reference, amount=amount, channel_ref="BRI/2025/01/88121"
    )


def follow_up(
    ref: str = "HH-1", on: str = "2025-02-10", outcome: str = "visited"
) -> dict[str, Any]:
    """Follow a subject up."""
    return command("follow_up", ref, on, outcome=outcome)


def enrol(
    ref: str = "EN-1", cohort_ref: str = "CO-1", household_ref: str = "HH-1", on: str = "2025-02-10"
) -> dict[str, Any]:
    """Enrol a household in a cohort."""
    return command("enrol", ref, on, cohort=cohort_ref, household=household_ref)


def attend(ref: str = "EN-1", on: str = "2025-03-10") -> dict[str, Any]:
    """Record an attendance."""
    return command("attend", ref, on)


def complete(ref: str = "EN-1", on: str = "2025-03-28") -> dict[str, Any]:
    """Record a completion."""
    return command("complete", ref, on)


def withdraw(ref: str = "EN-1", on: str = "2025-03-12") -> dict[str, Any]:
    """Withdraw an enrolment."""
    return command("withdraw", ref, on, reason="pindah kerja")


def close(ref: str = "HH-1", on: str = "2025-04-01", reason: str = "moved") -> dict[str, Any]:
    """Close a case."""
    return command("close", ref, on, reason=reason)


def forget(ref: str = "HH-1", on: str = "2025-04-02") -> dict[str, Any]:
    """Forget a closed subject's personal data."""
    return command("forget", ref, on, reason="permintaan penghapusan data")


def outcomes(ledger: Ledger, *commands: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Execute ``commands`` in order; the outcome of each."""
    results = []
    for item in commands:
        outcome = ledger.execute(item)
        results.append((outcome.status, outcome.code))
    return results


def last(ledger: Ledger, *commands: dict[str, Any]) -> tuple[str, str | None]:
    """Execute ``commands``; all but the last must be accepted; the last one's outcome."""
    results = outcomes(ledger, *commands)
    assert results[:-1] == [ACCEPTED] * (len(results) - 1), results
    return results[-1]


@pytest.fixture
def ledger(memory_ledger: Ledger) -> Ledger:
    """A fresh in-memory ledger."""
    return memory_ledger


# A household HH-1 assessed desil 2, a veteran VT-1 found eligible, a cohort CO-1 of two.
BASE = [household(), assess(), veteran(), assess("VT-1", eligible=True), cohort()]
PAID = [*BASE, allocate(), disburse(amount=500_000)]
ENROLLED = [*BASE, enrol()]
FULL = [*BASE, household("HH-2"), household("HH-3"), enrol(), enrol("EN-2", household_ref="HH-2")]


def scenario(*prefix: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
    """Commands of the prefixes and single commands, each with a fresh id unless it chose one."""
    out: list[dict[str, Any]] = []
    for part in prefix:
        for item in part if isinstance(part, list) else [part]:
            fresh = item["id"].startswith("r-")
            out.append({**item, "id": f"r-{next(_ids)}"} if fresh else item)
    return out


# --------------------------------------------------------------- one story per code

CASES = [
    pytest.param(BASE, allocate(amount=750_000.0), "invalid", id="invalid-float-amount"),  # type: ignore[arg-type]
    pytest.param([], command("assess", "HH-1"), "invalid", id="invalid-assess-without-value"),
    pytest.param([], assess("ZZ-404"), "unknown_subject", id="unknown_subject-ref"),
    pytest.param(BASE, enrol(cohort_ref="CO-9"), "unknown_subject", id="unknown_subject-cohort"),
    pytest.param(
        BASE, enrol(household_ref="HH-9"), "unknown_subject", id="unknown_subject-household"
    ),
    pytest.param(BASE, household(), "already_registered", id="already_registered-household"),
    pytest.param(BASE, veteran("HH-1"), "already_registered", id="already_registered-across-kinds"),
    pytest.param(BASE, cohort("VT-1"), "already_registered", id="already_registered-cohort-ref"),
    pytest.param(BASE, enrol("CO-1"), "already_registered", id="already_registered-enrolment-ref"),
    pytest.param(BASE, assess("CO-1"), "not_applicable", id="not_applicable-assess-cohort"),
    pytest.param(
        BASE, assess("VT-1", desil=2), "not_applicable", id="not_applicable-desil-veteran"
    ),
    pytest.param(
        BASE,
        assess("HH-1", eligible=True),
        "not_applicable",
        id="not_applicable-eligible-household",
    ),
    pytest.param(
        ENROLLED, allocate("EN-1"), "not_applicable", id="not_applicable-allocate-enrolment"
    ),
    pytest.param(BASE, follow_up("CO-1"), "not_applicable", id="not_applicable-follow_up-cohort"),
    pytest.param(BASE, attend("HH-1"), "not_applicable", id="not_applicable-attend-household"),
    pytest.param(BASE, withdraw("VT-1"), "not_applicable", id="not_applicable-withdraw-veteran"),
    pytest.param(BASE, close("CO-1"), "not_applicable", id="not_applicable-close-cohort"),
    pytest.param(ENROLLED, forget("EN-1"), "not_applicable", id="not_applicable-forget-enrolment"),
    pytest.param(
        BASE,
        enrol(cohort_ref="HH-1"),
        "not_applicable",
        id="not_applicable-enrol-cohort-is-household",
    ),
    pytest.param(
        BASE,
        enrol(household_ref="VT-1"),
        "not_applicable",
        id="not_applicable-enrol-household-is-veteran",
    ),
    pytest.param([*BASE, close()], follow_up(), "closed", id="closed-household"),
    pytest.param(
        [*BASE, close("VT-1")],
        assess("VT-1", on="2025-04-05", eligible=True),
        "closed",
        id="closed-veteran",
    ),
    pytest.param([*BASE, close()], close(on="2025-04-05"), "closed", id="closed-close-twice"),
    pytest.param([*BASE, close()], enrol(), "closed", id="closed-enrol-household"),
    pytest.param([*ENROLLED, complete()], attend(), "closed", id="closed-completed-enrolment"),
    pytest.param(
        [*ENROLLED, withdraw()], follow_up("EN-1"), "closed", id="closed-withdrawn-enrolment"
    ),
    pytest.param(
        [*PAID, close(), forget()],
        reverse(on="2025-04-05"),
        "closed",
        id="closed-forgotten-reverse",
    ),
    pytest.param(
        [*BASE, close(), forget()], forget(on="2025-04-05"), "closed", id="closed-forgotten-forget"
    ),
    pytest.param(BASE, forget(), "not_closed", id="not_closed"),
    pytest.param(BASE, follow_up(on="2025-01-05"), "before_registration", id="before_registration"),
    pytest.param(
        BASE, enrol(on="2025-01-05"), "before_registration", id="before_registration-enrol"
    ),
    pytest.param(
        [*BASE, cohort("CO-2", on="2025-02-05")],
        enrol(cohort_ref="CO-2", on="2025-02-04"),
        "before_registration",
        id="before_registration-enrol-cohort",
    ),
    pytest.param(
        [*ENROLLED],
        attend(on="2025-02-09"),
        "before_registration",
        id="before_registration-enrolment",
    ),
    pytest.param(
        [household(), veteran()], allocate(), "not_eligible", id="not_eligible-unassessed-household"
    ),
    pytest.param(BASE, allocate(), None, id="eligible-desil-2"),
    pytest.param([*BASE, assess(desil=5)], allocate(), "not_eligible", id="not_eligible-desil-5"),
    pytest.param(
        [household(), veteran()],
        allocate("VT-1"),
        "not_eligible",
        id="not_eligible-unassessed-veteran",
    ),
    pytest.param(
        [*BASE, assess("VT-1", eligible=False)],
        allocate("VT-1"),
        "not_eligible",
        id="not_eligible-veteran",
    ),
    pytest.param(
        BASE, disburse(), "insufficient_allocation", id="insufficient_allocation-nothing-allocated"
    ),
    pytest.param(
        PAID,
        disburse(amount=250_001, reference="D-2"),
        "insufficient_allocation",
        id="insufficient_allocation",
    ),
    pytest.param(
        PAID,
        disburse(amount=250_000, reference="D-1", programme="BPNT"),
        "insufficient_allocation",
        id="insufficient_allocation-other-programme",
    ),
    pytest.param(
        PAID, allocate(reference="D-1"), "duplicate_reference", id="duplicate_reference-allocate"
    ),
    pytest.param(
        PAID,
        disburse(amount=1, reference="A-1"),
        "duplicate_reference",
        id="duplicate_reference-disburse",
    ),
    pytest.param(PAID, reverse(reference="D-9"), "unknown_reference", id="unknown_reference"),
    pytest.param(
        PAID, reverse(reference="A-1"), "unknown_reference", id="unknown_reference-allocation"
    ),
    pytest.param(
        [*PAID, reverse()], reverse(on="2025-01-29"), "already_reversed", id="already_reversed"
    ),
    pytest.param(PAID, confirm(), None, id="confirm"),
    pytest.param([*PAID, confirm()], reverse(), None, id="reverse-of-a-confirmed-payment"),
    pytest.param([*PAID, close()], confirm(), None, id="confirm-on-a-closed-household"),
    pytest.param(
        [*PAID, close(), forget()],
        confirm(on="2025-04-05"),
        "closed",
        id="closed-confirm-forgotten",
    ),
    pytest.param(ENROLLED, confirm("EN-1"), "not_applicable", id="not_applicable-confirm"),
    pytest.param(
        PAID, confirm(on="2025-01-01"), "before_registration", id="before_registration-confirm"
    ),
    pytest.param(
        PAID, confirm(reference="D-9"), "unknown_reference", id="unknown_reference-confirm"
    ),
    pytest.param(
        PAID, confirm(reference="A-1"), "unknown_reference", id="unknown_reference-confirm-alloc"
    ),
    pytest.param([*PAID, reverse()], confirm(), "already_reversed", id="already_reversed-confirm"),
    pytest.param(
        [*PAID, confirm()], confirm(on="2025-02-03"), "already_confirmed", id="already_confirmed"
    ),
    pytest.param(PAID, confirm(amount=499_999), "amount_mismatch", id="amount_mismatch"),
    pytest.param(
        [*PAID, confirm(), reverse()],
        confirm(amount=1),
        "already_reversed",
        id="already_reversed-before-already_confirmed",
    ),
    pytest.param(
        [*PAID, confirm()],
        confirm(amount=1),
        "already_confirmed",
        id="already_confirmed-before-amount_mismatch",
    ),
    pytest.param(FULL, enrol("EN-3", household_ref="HH-3"), "cohort_full", id="cohort_full"),
    pytest.param(ENROLLED, enrol("EN-2"), "already_enrolled", id="already_enrolled"),
    pytest.param(
        [*ENROLLED, complete()], enrol("EN-2"), "already_enrolled", id="already_enrolled-completed"
    ),
    pytest.param(
        BASE, enrol(on="2025-03-29"), "outside_cohort_dates", id="outside_cohort_dates-enrol"
    ),
    pytest.param(
        ENROLLED,
        attend(on="2025-03-02"),
        "outside_cohort_dates",
        id="outside_cohort_dates-attend-early",
    ),
    pytest.param(
        ENROLLED,
        complete(on="2025-03-29"),
        "outside_cohort_dates",
        id="outside_cohort_dates-complete-late",
    ),
]


@pytest.mark.parametrize(("setup", "item", "code"), CASES)
def test_a_command_breaking_a_rule_is_rejected_with_its_code(
    ledger: Ledger, setup: list[dict[str, Any]], item: dict[str, Any], code: str | None
) -> None:
    """Each rule of the command format refuses its command with the rule's code."""
    expected = ACCEPTED if code is None else rejected(code)
    assert last(ledger, *scenario(setup, item)) == expected


def test_every_error_code_of_the_spec_has_a_story() -> None:
    """The stories above cover every code of the the rules table, in the table's order."""
    assert CODES == (
        "invalid",
        "id_conflict",
        "unknown_subject",
        "already_registered",
        "not_applicable",
        "closed",
        "not_closed",
        "before_registration",
        "not_eligible",
        "insufficient_allocation",
        "duplicate_reference",
        "unknown_reference",
        "already_reversed",
        "already_confirmed",
        "amount_mismatch",
        "cohort_full",
        "already_enrolled",
        "outside_cohort_dates",
    )
    covered = {case.values[2] for case in CASES} | {"id_conflict"}
    assert covered - {None} == set(CODES)


def test_every_code_has_its_error_class() -> None:
    """Each code is the ``code`` of exactly one public error class."""
    classes = [getattr(errors, name) for name in errors.__all__]
    codes = [c.code for c in classes if isinstance(c, type) and c.__dict__.get("code") in CODES]
    assert sorted(codes) == sorted(CODES)


# ------------------------------------------------------------------------ idempotency


def test_an_identical_resend_is_a_duplicate_that_records_nothing(ledger: Ledger) -> None:
    """Same id, same body: skipped as a duplicate, the subject's version unchanged."""
    first = household()
    assert outcomes(ledger, first) == [ACCEPTED]
    assert outcomes(ledger, dict(reversed(list(first.items())))) == [DUPLICATE]
    assert ledger.show("HH-1")["version"] == 1


def test_a_resend_with_another_body_is_an_id_conflict(ledger: Ledger) -> None:
    """Same id as an accepted command, other body (even only a note added): id_conflict."""
    first = household()
    assert outcomes(ledger, first, first | {"note": ""}, first | {"members": 5}) == [
        ACCEPTED,
        rejected("id_conflict"),
        rejected("id_conflict"),
    ]
    assert ledger.show("HH-1")["members"] == 4


def test_a_rejected_command_leaves_no_trace_and_its_id_may_come_back(ledger: Ledger) -> None:
    """A refused id is not remembered: the same id is accepted once what it needed is recorded."""
    early = allocate()
    assert outcomes(ledger, household(), early) == [ACCEPTED, rejected("not_eligible")]
    assert ledger.show("HH-1")["version"] == 1
    assert outcomes(ledger, assess(), early) == [ACCEPTED, ACCEPTED]
    assert outcomes(ledger, early) == [DUPLICATE]


def test_a_rejected_id_may_be_reused_for_another_command(ledger: Ledger) -> None:
    """Only accepted commands own their id."""
    refused = assess("ZZ-404")
    assert outcomes(ledger, refused) == [rejected("unknown_subject")]
    assert outcomes(ledger, household() | {"id": refused["id"]}) == [ACCEPTED]


def test_repeats_inside_one_batch_are_seen(ledger: Ledger) -> None:
    """In one batch, a repeat of an earlier line is a duplicate or an id_conflict."""
    first = household()
    results = ledger.apply_batch([first, first, first | {"members": 9}, assess()])
    assert [(o.status, o.code) for o in results] == [
        ACCEPTED,
        DUPLICATE,
        rejected("id_conflict"),
        ACCEPTED,
    ]


def test_a_batch_keeps_its_valid_lines_when_others_are_rejected(ledger: Ledger) -> None:
    """A rejected line in a batch does not undo the lines accepted around it."""
    results = ledger.apply_batch([household(), assess("ZZ-404"), assess(), allocate(amount=0)])
    assert [o.status for o in results] == ["accepted", "rejected", "accepted", "rejected"]
    assert ledger.show("HH-1")["version"] == 2


# ------------------------------------------------------------------------ precedence

# (setup, command breaking two rules, first code, the same command mended, second code)
PRECEDENCE = [
    pytest.param(
        [household() | {"id": "same"}],
        assess("ZZ-404") | {"id": "same", "desil": 0},
        "invalid",
        {"desil": 2},
        "id_conflict",
        id="invalid-before-id_conflict",
    ),
    pytest.param(
        [household() | {"id": "same"}],
        assess("ZZ-404") | {"id": "same"},
        "id_conflict",
        {"id": "fresh"},
        "unknown_subject",
        id="id_conflict-before-unknown_subject",
    ),
    pytest.param(
        BASE,
        enrol("HH-1", cohort_ref="CO-9"),
        "unknown_subject",
        {"cohort": "CO-1"},
        "already_registered",
        id="unknown_subject-before-already_registered",
    ),
    pytest.param(
        BASE,
        enrol("VT-1", cohort_ref="HH-1"),
        "already_registered",
        {"ref": "EN-1"},
        "not_applicable",
        id="already_registered-before-not_applicable",
    ),
    pytest.param(
        [*BASE, close()],
        assess("HH-1", on="2025-04-05", eligible=True),
        "not_applicable",
        {"eligible": None, "desil": 2},
        "closed",
        id="not_applicable-before-closed",
    ),
    pytest.param(
        [*BASE, close()],
        follow_up(on="2025-01-01"),
        "closed",
        {"command": "forget", "outcome": None, "reason": "permintaan"},
        "before_registration",
        id="closed-before-before_registration",
    ),
    pytest.param(
        BASE,
        forget(on="2025-01-01"),
        "not_closed",
        {"command": "close", "reason": "moved"},
        "before_registration",
        id="not_closed-before-before_registration",
    ),
    pytest.param(
        [household(), veteran()],
        allocate(on="2025-01-01"),
        "before_registration",
        {"on": "2025-01-20"},
        "not_eligible",
        id="before_registration-before-not_eligible",
    ),
    pytest.param(
        [
            *BASE,
            allocate(),
            allocate("VT-1", reference="A-1", programme="TALI_ASIH"),
            assess("VT-1", on="2025-02-01", eligible=False),
        ],
        allocate("VT-1", reference="A-1", programme="TALI_ASIH"),
        "not_eligible",
        {"ref": "HH-1"},
        "duplicate_reference",
        id="not_eligible-before-duplicate_reference",
    ),
    pytest.param(
        PAID,
        disburse(amount=250_001, reference="A-1"),
        "insufficient_allocation",
        {"amount": 250_000},
        "duplicate_reference",
        id="insufficient_allocation-before-duplicate_reference",
    ),
    pytest.param(
        PAID,
        disburse(amount=250_000, reference="A-1", on="2025-01-01"),
        "before_registration",
        {"on": "2025-01-30"},
        "duplicate_reference",
        id="before_registration-before-duplicate_reference",
    ),
    pytest.param(
        [
            *PAID,
            allocate("VT-1", reference="A-1", programme="TALI_ASIH"),
            disburse("VT-1", reference="D-1", programme="TALI_ASIH"),
            reverse("VT-1"),
            reverse(),
            close(),
            forget(),
        ],
        reverse(on="2025-04-05"),
        "closed",
        {"ref": "VT-1"},
        "already_reversed",
        id="closed-before-already_reversed",
    ),
    pytest.param(
        [*FULL, close("HH-3")],
        enrol("EN-3", household_ref="HH-3", on="2025-04-05"),
        "closed",
        {"household": "HH-1"},
        "cohort_full",
        id="closed-before-cohort_full",
    ),
    pytest.param(
        [*FULL, household("HH-4", on="2025-02-20")],
        enrol("EN-3", household_ref="HH-4", on="2025-02-19"),
        "before_registration",
        {"on": "2025-02-20"},
        "cohort_full",
        id="before_registration-before-cohort_full",
    ),
    pytest.param(
        [*BASE, cohort("CO-2", capacity=1), enrol(cohort_ref="CO-2"), enrol("EN-2")],
        enrol("EN-3", cohort_ref="CO-2"),
        "cohort_full",
        {"cohort": "CO-1"},
        "already_enrolled",
        id="cohort_full-before-already_enrolled",
    ),
    pytest.param(
        [*ENROLLED, household("HH-2")],
        enrol("EN-2", on="2025-03-29"),
        "already_enrolled",
        {"household": "HH-2"},
        "outside_cohort_dates",
        id="already_enrolled-before-outside_cohort_dates",
    ),
    pytest.param(
        [*ENROLLED, household("HH-2"), enrol("EN-2", household_ref="HH-2"), complete()],
        attend(on="2025-05-01"),
        "closed",
        {"ref": "EN-2"},
        "outside_cohort_dates",
        id="closed-before-outside_cohort_dates",
    ),
]


@pytest.mark.parametrize(("setup", "item", "first", "mend", "second"), PRECEDENCE)
def test_the_first_failing_check_in_table_order_gives_the_code(
    ledger: Ledger,
    setup: list[dict[str, Any]],
    item: dict[str, Any],
    first: str,
    mend: dict[str, Any],
    second: str | None,
) -> None:
    """A command that breaks two rules gets the earlier one's code; mended, the later one's."""
    prepared = scenario(setup)
    assert outcomes(ledger, *prepared) == [ACCEPTED] * len(prepared)
    assert outcomes(ledger, item) == [rejected(first)]
    mended = {k: v for k, v in (item | mend).items() if v is not None}
    assert outcomes(ledger, mended) == [ACCEPTED if second is None else rejected(second)]


# ----------------------------------------------------------------- the rules in detail


def test_allocation_follows_the_latest_assessment_in_recorded_order(ledger: Ledger) -> None:
    """The "latest" assessment is the latest recorded, not the latest business date."""
    assert outcomes(
        ledger,
        household(),
        assess(on="2025-02-01", desil=2),
        assess(on="2025-01-15", desil=6),
        allocate(reference="A-1"),
        assess(on="2025-01-14", desil=4),
        allocate(reference="A-2"),
    ) == [ACCEPTED, ACCEPTED, ACCEPTED, rejected("not_eligible"), ACCEPTED, ACCEPTED]


def test_a_veterans_latest_assessment_decides(ledger: Ledger) -> None:
    """A veteran found not eligible after being eligible is refused, and again accepted after."""
    assert outcomes(
        ledger,
        veteran(),
        assess("VT-1", eligible=True),
        assess("VT-1", eligible=False),
        allocate("VT-1", reference="A-1", programme="TALI_ASIH"),
        assess("VT-1", eligible=True),
        allocate("VT-1", reference="A-1", programme="TALI_ASIH"),
    ) == [ACCEPTED, ACCEPTED, ACCEPTED, rejected("not_eligible"), ACCEPTED, ACCEPTED]


def test_a_cohort_needs_no_assessment(ledger: Ledger) -> None:
    """Allocating to a training cohort is never refused for eligibility."""
    assert last(ledger, cohort(), allocate("CO-1", programme="PELATIHAN")) == ACCEPTED


def test_the_desil_limit_is_four_unless_the_programme_is_defined(ledger: Ledger) -> None:
    """With BPNT defined up to desil 5, desil 5 may receive BPNT but not undefined PKH."""
    define = command(
        "define_programme",
        "BPNT",
        "2025-01-01",
        name="Bantuan Pangan Non Tunai",
        recipients=["household"],
        desil_limit=5,
    )
    sekolah = command(
        "define_programme",
        "SEKOLAH_RAKYAT",
        "2025-01-01",
        name="Sekolah Rakyat",
        recipients=["household"],
        desil_limit=2,
    )
    assert outcomes(
        ledger,
        define,
        sekolah,
        household(),
        assess(desil=5),
        allocate(reference="A-1", programme="BPNT"),
        allocate(reference="A-2", programme="PKH"),
        assess(desil=3),
        allocate(reference="A-3", programme="SEKOLAH_RAKYAT"),
        allocate(reference="A-4", programme="PKH"),
    ) == [
        ACCEPTED,
        ACCEPTED,
        ACCEPTED,
        ACCEPTED,
        ACCEPTED,
        rejected("not_eligible"),
        ACCEPTED,
        rejected("not_eligible"),
        ACCEPTED,
    ]


def test_the_default_desil_limit_is_inclusive(ledger: Ledger) -> None:
    """Desil 4 may receive an allocation; desil 5 may not."""
    assert outcomes(
        ledger,
        household(),
        assess(desil=4),
        allocate(reference="A-1"),
        assess(desil=5),
        allocate(reference="A-2"),
    ) == [ACCEPTED, ACCEPTED, ACCEPTED, ACCEPTED, rejected("not_eligible")]


def test_a_disbursement_may_take_exactly_the_outstanding_balance(ledger: Ledger) -> None:
    """Outstanding is allocated minus disbursed per programme; paying it all is allowed."""
    assert outcomes(
        ledger,
        *scenario(BASE),
        allocate(amount=300_000, reference="A-1"),
        allocate(amount=200_000, reference="A-2"),
        allocate(amount=100_000, reference="B-1", programme="BPNT"),
        disburse(amount=500_000, reference="D-1"),
        disburse(amount=1, reference="D-2"),
        disburse(amount=100_000, reference="D-3", programme="BPNT"),
    )[-3:] == [ACCEPTED, rejected("insufficient_allocation"), ACCEPTED]


def test_insufficient_allocation_looks_at_everything_recorded_whatever_its_dates(
    ledger: Ledger,
) -> None:
    """A payment dated before its allocation is allowed once the allocation is recorded."""
    assert (
        last(ledger, *scenario(BASE), allocate(on="2025-03-01"), disburse(on="2025-02-01"))
        == ACCEPTED
    )


def test_a_reversal_restores_the_outstanding_balance(ledger: Ledger) -> None:
    """A reversed payment no longer counts, so the money may be paid again."""
    assert outcomes(
        ledger,
        *scenario(BASE),
        allocate(),
        disburse(reference="D-1"),
        disburse(amount=1, reference="D-2"),
        reverse(reference="D-1"),
        disburse(reference="D-3"),
    )[-4:] == [ACCEPTED, rejected("insufficient_allocation"), ACCEPTED, ACCEPTED]


def test_a_reference_is_used_once_per_subject_in_every_programme(ledger: Ledger) -> None:
    """References are per subject, across programmes, allocations and reversed payments."""
    assert outcomes(
        ledger,
        *scenario(BASE),
        allocate(reference="X-1"),
        allocate(reference="X-1", programme="BPNT"),
        disburse(amount=1, reference="X-2"),
        reverse(reference="X-2"),
        disburse(amount=1, reference="X-2"),
        allocate("VT-1", reference="X-1", programme="TALI_ASIH"),
    )[-5:] == [
        rejected("duplicate_reference"),
        ACCEPTED,
        ACCEPTED,
        rejected("duplicate_reference"),
        ACCEPTED,
    ]


def test_a_closed_case_still_accepts_reverse_and_forget_only(ledger: Ledger) -> None:
    """After close: reverse and forget are accepted, everything else is closed."""
    results = outcomes(
        ledger,
        *scenario(PAID),
        close(),
        assess(on="2025-04-05"),
        allocate(reference="A-9", on="2025-04-05"),
        disburse(amount=1, reference="D-9", on="2025-04-05"),
        follow_up(on="2025-04-05"),
        close(on="2025-04-05"),
        enrol(on="2025-04-05"),
        reverse(on="2025-04-05"),
        forget(on="2025-04-06"),
    )
    assert results[-9:] == [ACCEPTED] + [rejected("closed")] * 6 + [ACCEPTED, ACCEPTED]


def test_a_forgotten_subject_accepts_nothing(ledger: Ledger) -> None:
    """After forget every command on the subject is closed, even reverse and forget."""
    results = outcomes(
        ledger,
        *scenario(PAID),
        close(),
        forget(),
        reverse(on="2025-04-05"),
        forget(on="2025-04-05"),
        follow_up(on="2025-04-05"),
        close(on="2025-04-05"),
        assess(on="2025-04-05"),
    )
    assert results[-5:] == [rejected("closed")] * 5


def test_a_completed_enrolment_accepts_only_follow_up(ledger: Ledger) -> None:
    """Completed: follow_up accepted; attend, complete and withdraw are closed."""
    assert outcomes(
        ledger,
        *scenario(ENROLLED),
        complete(on="2025-03-20"),
        attend(on="2025-03-21"),
        complete(on="2025-03-21"),
        withdraw(on="2025-03-21"),
        follow_up("EN-1", on="2025-05-01"),
    )[-5:] == [ACCEPTED, rejected("closed"), rejected("closed"), rejected("closed"), ACCEPTED]


def test_a_withdrawn_enrolment_accepts_nothing(ledger: Ledger) -> None:
    """Withdrawn: every command on the enrolment is closed."""
    assert (
        outcomes(
            ledger,
            *scenario(ENROLLED),
            withdraw(),
            attend(),
            complete(),
            withdraw(on="2025-03-13"),
            follow_up("EN-1", on="2025-03-13"),
        )[-5:]
        == [ACCEPTED] + [rejected("closed")] * 4
    )


def test_withdrawing_frees_a_seat_but_completing_keeps_it(ledger: Ledger) -> None:
    """Active enrolments are those not withdrawn: completed ones still fill the cohort."""
    assert outcomes(
        ledger,
        *scenario(FULL),
        complete("EN-1", on="2025-03-20"),
        enrol("EN-3", household_ref="HH-3"),
        withdraw("EN-2"),
        enrol("EN-3", household_ref="HH-3"),
        enrol("EN-4", household_ref="HH-2"),
    )[-5:] == [
        ACCEPTED,
        rejected("cohort_full"),
        ACCEPTED,
        ACCEPTED,
        rejected("cohort_full"),
    ]


def test_a_household_may_enrol_again_once_withdrawn(ledger: Ledger) -> None:
    """already_enrolled looks at active enrolments only."""
    assert outcomes(ledger, *scenario(ENROLLED), withdraw(), enrol("EN-2", on="2025-03-12"))[
        -2:
    ] == [
        ACCEPTED,
        ACCEPTED,
    ]


def test_a_household_may_enrol_in_two_cohorts(ledger: Ledger) -> None:
    """already_enrolled is per cohort."""
    assert (
        last(ledger, *scenario(ENROLLED), cohort("CO-2"), enrol("EN-2", cohort_ref="CO-2"))
        == ACCEPTED
    )


def test_cohort_dates_are_inclusive_and_enrolling_early_is_allowed(ledger: Ledger) -> None:
    """Enrolling is allowed up to ``ends`` (any time before ``starts``); attend and complete within the dates."""
    assert (
        outcomes(
            ledger,
            *scenario(BASE, household("HH-2")),
            enrol("EN-1", on="2025-01-06"),
            enrol("EN-2", household_ref="HH-2", on="2025-03-28"),
            attend("EN-1", on="2025-03-03"),
            attend("EN-1", on="2025-03-28"),
            complete("EN-2", on="2025-03-28"),
        )[-5:]
        == [ACCEPTED] * 5
    )


def test_enrolment_commands_follow_the_enrolment_not_the_closed_household(ledger: Ledger) -> None:
    """Closing a household does not close its enrolments; only a new enrol sees the closure."""
    assert outcomes(ledger, *scenario(ENROLLED), close(on="2025-03-01"), attend(), complete())[
        -3:
    ] == [ACCEPTED, ACCEPTED, ACCEPTED]


def test_a_new_ref_is_registered_once_across_every_kind(ledger: Ledger) -> None:
    """One ref names one subject: registering it again as any kind is already_registered."""
    results = outcomes(
        ledger,
        *scenario(ENROLLED),
        household("EN-1"),
        veteran("CO-1"),
        cohort("HH-1"),
        enrol("VT-1", household_ref="HH-1"),
    )
    assert results[-4:] == [rejected("already_registered")] * 4


# --------------------------------------------------------------------------- typed API


def test_the_typed_methods_raise_the_rules_error_classes(ledger: Ledger) -> None:
    """A refusal through the typed API raises the rule's error class, which carries its code."""
    ledger.register_household(
        ref="HH-1",
        on="2025-01-06",
        actor="petugas",
        region="64.08.04.2001",
        members=4,
        family_card="6408040101250001",
        head_nik="6408041203820001",
        head_name="Rahmat Hidayat",
    )
    with pytest.raises(errors.NotEligible) as not_eligible:
        ledger.allocate(
            ref="HH-1",
            on="2025-01-20",
            actor="petugas",
            programme="PKH",
            amount=1,
            period="2025-01",
            reference="A-1",
        )
    assert not_eligible.value.code == "not_eligible"
    assert isinstance(not_eligible.value, ValueError)
    with pytest.raises(errors.UnknownSubject) as unknown:
        ledger.follow_up(ref="HH-9", on="2025-01-20", actor="petugas", outcome="visited")
    assert isinstance(unknown.value, LookupError)
    with pytest.raises(errors.InvalidCommand):
        ledger.assess(ref="HH-1", on="2025-02-30", actor="petugas", desil=2)
    assert ledger.assess(ref="HH-1", on="2025-01-13", actor="petugas", desil=2).accepted


def test_a_refusal_message_holds_no_personal_data(ledger: Ledger) -> None:
    """Messages of rule refusals name refs and values, never the personal data of the subject."""
    results = [
        ledger.execute(item)
        for item in (
            *scenario(BASE),
            household(),
            allocate("VT-1", reference="A-1", on="2025-01-01"),
            forget(),
            enrol(household_ref="VT-1"),
        )
    ]
    messages = " ".join(o.message or "" for o in results if o.rejected)
    assert messages
    for secret in ("6408040101250001", "6408041203820001", "Rahmat", "6408050807450001", "Sudarmo"):
        assert secret not in messages


def test_a_confirmation_changes_no_balance_and_is_no_contact(ledger: Ledger) -> None:
    """confirm marks the payment confirmed; balances and the timeline stay as they were."""
    for item in scenario(PAID):
        ledger.execute(item)
    before = ledger.projections.balances()
    contacts = [t.last_contact_on for t in ledger.projections.continuity()]
    assert ledger.execute(confirm(on="2025-03-01")).accepted
    assert ledger.projections.balances() == before
    assert [t.last_contact_on for t in ledger.projections.continuity()] == contacts
    assert ledger.get("HH-1").payments["D-1"].confirmed_on.isoformat() == "2025-03-01"


def test_the_typed_api_confirms_and_raises_the_rules_error(memory_ledger: Ledger) -> None:
    """Ledger.confirm is a typed method like the others; a refusal raises its error class."""
    for item in scenario(PAID):
        memory_ledger.execute(item)
    with pytest.raises(errors.AmountMismatch, match="500000"):
        memory_ledger.confirm(
            ref="HH-1", on="2025-01-29", actor="a", reference="D-1", amount=1, channel_ref="B-1"
        )
    outcome = memory_ledger.confirm(
        ref="HH-1", on="2025-01-29", actor="a", reference="D-1", amount=500_000, channel_ref="B-1"
    )
    assert outcome.accepted
    with pytest.raises(errors.AlreadyConfirmed):
        memory_ledger.confirm(
            ref="HH-1", on="2025-01-30", actor="a", reference="D-1", amount=500_000, channel_ref="B"
        )


def test_a_snapshot_taken_before_confirmations_existed_still_loads() -> None:
    """A stored payment without ``confirmed_on`` reads as not confirmed."""
    from dinsos_ledger.aggregates.base import Payment
    from dinsos_ledger.codec import converter

    old = {"programme": "PKH", "amount": 5, "on": "2025-01-02", "reversed_on": None}
    assert converter.structure(old, Payment).confirmed_on is None
