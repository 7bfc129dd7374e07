"""The command interchange format (the command format): every field rule of ``parse_command``.

A refused command raises :class:`InvalidCommand` whose message names the field and what
was expected, shaped ``'field' must be … (got …)``; for personal data (NIK, family-card
number, names) it says what is wrong with the value's shape and never echoes the value.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger import commands as cmd
from dinsos_ledger.commands import PII_FIELDS, canonical_body, parse_command
from dinsos_ledger.errors import InvalidCommand
from dinsos_ledger.types import (
    Channel,
    CloseReason,
    FollowUpOutcome,
    Period,
    Programme,
    Reference,
    RegionCode,
    Rupiah,
)

COMMON = {"id": "cmd-0001", "ref": "KT-HH-0001", "on": "2025-01-06", "actor": "petugas.sangatta"}

#: One well-formed command of each name, extra fields only (the common ones are added).
EXTRAS: dict[str, dict[str, Any]] = {
    "register_household": {
        "region": "64.08.04.2001",
        "members": 4,
        "family_card": "6408040101250001",
        "head_nik": "6408041203820001",
        "head_name": "Rahmat Hidayat",
    },
    "register_veteran": {"region": "64.08.05.2002", "nik": "6408050807450001", "name": "Sudarmo"},
    "plan_cohort": {
        "region": "64.08.04.2001",
        "programme": "PELATIHAN",
        "capacity": 20,
        "starts": "2025-03-03",
        "ends": "2025-03-28",
    },
    "assess": {"desil": 2},
    "allocate": {"programme": "PKH", "amount": 750_000, "period": "2025-01", "reference": "A-1"},
    "disburse": {"programme": "PKH", "amount": 750_000, "reference": "D-1", "channel": "bank"},
    "reverse": {"reference": "D-1", "reason": "rekening ditutup"},
    "confirm": {"reference": "D-1", "amount": 750_000, "channel_ref": "BRI/2025/01/88121"},
    "follow_up": {"outcome": "visited"},
    "enrol": {"cohort": "KT-CO-0001", "household": "KT-HH-0001"},
    "attend": {},
    "complete": {},
    "withdraw": {"reason": "pindah kerja"},
    "close": {"reason": "graduated"},
    "forget": {"reason": "permintaan penghapusan data"},
    # A programme's ref is its code.
    "define_programme": {
        "ref": "BPNT",
        "name": "Bantuan Pangan Non Tunai",
        "recipients": ["household"],
        "desil_limit": 4,
    },
    "amend_programme": {"ref": "BPNT", "desil_limit": 5},
}

CLASSES: dict[str, type[cmd.Command]] = {
    "register_household": cmd.RegisterHousehold,
    "register_veteran": cmd.RegisterVeteran,
    "plan_cohort": cmd.PlanCohort,
    "assess": cmd.Assess,
    "allocate": cmd.Allocate,
    "disburse": cmd.Disburse,
    "reverse": cmd.Reverse,
    "confirm": cmd.Confirm,
    "follow_up": cmd.FollowUp,
    "enrol": cmd.Enrol,
    "attend": cmd.Attend,
    "complete": cmd.Complete,
    "withdraw": cmd.Withdraw,
    "close": cmd.Close,
    "forget": cmd.Forget,
    "define_programme": cmd.DefineProgramme,
    "amend_programme": cmd.AmendProgramme,
}

#: Personal data of the well-formed commands above: never in a message.
PII_VALUES = (
    "6408040101250001",
    "6408041203820001",
    "Rahmat Hidayat",
    "6408050807450001",
    "Sudarmo",
)


def valid(command: str, /, **changes: Any) -> dict[str, Any]:
    """A well-formed ``command``, with ``changes`` applied (``name`` is a field of some)."""
    return {**COMMON, "command": command, **EXTRAS[command], **changes}


def without(name: str, field: str) -> dict[str, Any]:
    """A well-formed ``name`` command lacking ``field``."""
    data = valid(name)
    del data[field]
    return data


def refused(data: Any) -> InvalidCommand:
    """The error ``parse_command`` raises for ``data`` (fails the test if it does not)."""
    with pytest.raises(InvalidCommand) as info:
        parse_command(data)
    assert info.value.code == "invalid"
    return info.value


def assert_names_field(error: InvalidCommand, field: str) -> None:
    """``error`` is about ``field`` and its message is shaped ``'field' must be … (got …)``."""
    assert error.field == field
    assert f"'{field}' must be" in error.message
    assert "(got " in error.message


# ----------------------------------------------------------------- well-formed commands


def test_the_command_names_are_those_of_the_spec_in_its_order() -> None:
    """COMMAND_NAMES lists the commands of the command format in the table's order."""
    assert tuple(EXTRAS) == cmd.COMMAND_NAMES


@pytest.mark.parametrize("name", list(EXTRAS))
def test_a_well_formed_command_parses_into_its_class(name: str) -> None:
    """Each command name gives an instance of its own class with the common fields typed."""
    parsed = parse_command(valid(name))
    assert type(parsed) is CLASSES[name]
    assert parsed.id == "cmd-0001"
    assert parsed.ref == valid(name)["ref"]
    assert parsed.on == date(2025, 1, 6)
    assert parsed.actor == "petugas.sangatta"
    assert parsed.note is None


@pytest.mark.parametrize("name", list(EXTRAS))
def test_every_command_class_carries_its_command_name(name: str) -> None:
    """``COMMAND`` is the command name, on the class and on a parsed command (never a field)."""
    parsed = parse_command(valid(name))
    assert name == CLASSES[name].COMMAND
    assert name == parsed.COMMAND


def test_values_are_typed_as_value_objects_and_enums() -> None:
    """Money, codes, references, months, dates and choices come back as their types."""
    allocation = parse_command(valid("allocate"))
    assert isinstance(allocation, cmd.Allocate)
    assert allocation.programme == Programme("PKH")
    assert allocation.amount == Rupiah(750_000)
    assert allocation.period == Period("2025-01")
    assert allocation.reference == Reference("A-1")
    payment = parse_command(valid("disburse", channel="in_kind"))
    assert isinstance(payment, cmd.Disburse)
    assert payment.channel is Channel.IN_KIND
    cohort = parse_command(valid("plan_cohort"))
    assert isinstance(cohort, cmd.PlanCohort)
    assert cohort.region == RegionCode("64.08.04.2001")
    assert (cohort.starts, cohort.ends) == (date(2025, 3, 3), date(2025, 3, 28))
    follow_up = parse_command(valid("follow_up", outcome="not_found"))
    assert isinstance(follow_up, cmd.FollowUp)
    assert follow_up.outcome is FollowUpOutcome.NOT_FOUND
    close = parse_command(valid("close", reason="deceased"))
    assert isinstance(close, cmd.Close)
    assert close.reason is CloseReason.DECEASED


def test_a_note_is_optional_and_may_be_empty() -> None:
    """``note`` may be left out, be empty or hold up to 2,000 characters."""
    assert parse_command(valid("attend", note="")).note == ""
    assert parse_command(valid("attend", note="x" * 2000)).note == "x" * 2000
    assert_names_field(refused(valid("attend", note="x" * 2001)), "note")


def test_assess_carries_desil_for_a_household_or_eligible_for_a_veteran() -> None:
    """Either field alone is well formed; the kind of subject is checked later."""
    household = parse_command(valid("assess"))
    assert isinstance(household, cmd.Assess)
    assert (household.desil, household.eligible) == (2, None)
    veteran = parse_command({**COMMON, "command": "assess", "eligible": False})
    assert isinstance(veteran, cmd.Assess)
    assert (veteran.desil, veteran.eligible) == (None, False)


def test_the_repr_of_a_registration_holds_no_personal_data() -> None:
    """A registration can be logged: its repr shows no NIK, family-card number or name."""
    shown = repr(parse_command(valid("register_household"))) + repr(
        parse_command(valid("register_veteran"))
    )
    for value in PII_VALUES:
        assert value not in shown


# ------------------------------------------------------------------- envelope and shape


@pytest.mark.parametrize("data", [[1, 2], "assess", 42, None, True])
def test_a_value_that_is_not_an_object_is_invalid(data: Any) -> None:
    """A command must be a JSON object."""
    assert "must be a JSON object" in refused(data).message


def test_a_command_without_a_name_is_invalid() -> None:
    """``command`` is required."""
    error = refused(without("attend", "command"))
    assert error.field == "command"
    assert "missing field 'command'" in error.message


@pytest.mark.parametrize("name", ["pay", "Assess", "", 7, None])
def test_an_unknown_command_name_is_invalid(name: Any) -> None:
    """``command`` must be one of the fourteen names, which the message lists."""
    error = refused(valid("attend", command=name))
    assert error.field == "command"
    assert "'command' must be one of register_household" in error.message


@pytest.mark.parametrize(
    ("name", "field"),
    [(name, field) for name in EXTRAS for field in (*COMMON, *EXTRAS[name])],
)
def test_every_field_but_note_is_required(name: str, field: str) -> None:
    """Leaving out any field of a command (other than ``note``) names that field."""
    if name == "assess" and field == "desil":
        error = refused(without(name, field))
        assert "exactly one of 'desil'" in error.message
        return
    error = refused(without(name, field))
    assert error.field == field
    assert f"missing field '{field}'" in error.message


@pytest.mark.parametrize("name", list(EXTRAS))
def test_an_unknown_field_is_invalid(name: str) -> None:
    """A field the command does not carry is refused by name."""
    error = refused(valid(name, petugas_lapangan="Rudi"))
    assert error.field == "petugas_lapangan"
    assert "unknown field 'petugas_lapangan'" in error.message
    assert "Rudi" not in error.message


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("register_veteran", "family_card"),
        ("register_household", "nik"),
        ("attend", "reason"),
        ("assess", "amount"),
        ("allocate", "channel"),
        ("disburse", "period"),
    ],
)
def test_a_field_of_another_command_is_unknown(name: str, field: str) -> None:
    """Fields are per command: one that belongs to another command is still unknown."""
    value = EXTRAS["register_household"].get(field, "x")
    error = refused(valid(name, **{field: value}))
    assert f"unknown field '{field}'" in error.message


def test_every_wrong_field_is_listed_and_the_first_is_named() -> None:
    """The message lists each problem; ``field`` is the first field found wrong."""
    error = refused(valid("allocate", on="2025-02-30", amount=1.5, period="2025-13"))
    assert error.field == "on"
    for field in ("on", "amount", "period"):
        assert f"'{field}' must be" in error.message


# ---------------------------------------------------------------------------- strings


@pytest.mark.parametrize(("field", "limit"), [("id", 128), ("actor", 128)])
def test_id_and_actor_are_one_to_128_characters(field: str, limit: int) -> None:
    """``id`` and ``actor`` are non-empty strings of at most 128 characters."""
    assert getattr(parse_command(valid("attend", **{field: "x"})), field) == "x"
    assert getattr(parse_command(valid("attend", **{field: "é" * limit})), field) == "é" * limit
    for bad in ("", "x" * (limit + 1)):
        assert_names_field(refused(valid("attend", **{field: bad})), field)


@pytest.mark.parametrize("field", ["id", "actor", "note"])
@pytest.mark.parametrize("bad", [1, 1.5, True, None, ["x"], {"x": 1}])
def test_text_fields_must_be_strings(field: str, bad: Any) -> None:
    """``id``, ``actor`` and ``note`` refuse numbers, booleans, null, arrays and objects."""
    error = refused(valid("attend", **{field: bad}))
    assert_names_field(error, field)
    assert "a string" in error.message


@pytest.mark.parametrize("name", ["reverse", "withdraw", "forget"])
def test_a_free_text_reason_is_one_to_2000_characters(name: str) -> None:
    """The ``reason`` of reverse, withdraw and forget is required text of 1–2,000 characters."""
    assert parse_command(valid(name, reason="x" * 2000)).reason == "x" * 2000  # type: ignore[attr-defined]
    for bad in ("", "x" * 2001, 3):
        assert_names_field(refused(valid(name, reason=bad)), "reason")


@pytest.mark.parametrize("field", ["id", "actor", "note", "reason"])
@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b", "\udfff"])
def test_text_that_cannot_be_stored_as_utf8_is_invalid(field: str, bad: str) -> None:
    """A NUL or a lone surrogate (both reachable through JSON escapes) cannot be stored: invalid."""
    error = refused(valid("withdraw", **{field: bad}))
    assert error.field == field
    json.dumps(error.message, ensure_ascii=False).encode("utf-8")  # the message itself is storable


# ------------------------------------------------------------------------ refs, dates


@pytest.mark.parametrize("ref", ["KT", "K1", "0-", "A" * 64, "KT-HH-0001", "9-9-9"])
def test_a_well_formed_ref_is_accepted(ref: str) -> None:
    """A ref is ``^[A-Z0-9][A-Z0-9-]{1,63}$``: 2–64 characters."""
    assert parse_command(valid("attend", ref=ref)).ref == ref


@pytest.mark.parametrize(
    "ref", ["K", "A" * 65, "kt-hh-0001", "-KT", "KT_HH", "KT HH", "KT-HH-0001\n", "ＫＴ-1", 1]
)
@pytest.mark.parametrize("field", ["ref", "cohort", "household"])
def test_a_malformed_ref_is_invalid(field: str, ref: Any) -> None:
    """``ref`` and the refs an enrolment names must match the ref pattern."""
    assert_names_field(refused(valid("enrol", **{field: ref})), field)


@pytest.mark.parametrize("on", ["2024-02-29", "0001-01-01", "9999-12-31", "2025-12-31"])
def test_a_calendar_date_is_accepted(on: str) -> None:
    """``on`` is any date that exists, written ``YYYY-MM-DD``."""
    assert parse_command(valid("attend", on=on)).on == date.fromisoformat(on)


@pytest.mark.parametrize(
    "on",
    [
        "2025-02-29",
        "2025-02-30",
        "2025-13-01",
        "2025-00-10",
        "2025-04-31",
        "0000-01-01",
        "2025-1-5",
        "20250105",
        "2025-01-05T00:00:00",
        "2025-01-05 ",
        "٢٠٢٥-٠١-٠٥",
        "",
        20250105,
        None,
    ],
)
@pytest.mark.parametrize("field", ["on", "starts", "ends"])
def test_an_impossible_or_malformed_date_is_invalid(field: str, on: Any) -> None:
    """Dates must be ``YYYY-MM-DD`` in ASCII digits and exist in the calendar."""
    assert_names_field(refused(valid("plan_cohort", **{field: on})), field)


def test_a_cohort_ends_on_or_after_it_starts() -> None:
    """``starts`` ≤ ``ends``: a one-day cohort is fine, one ending before it starts is not."""
    parse_command(valid("plan_cohort", starts="2025-03-01", ends="2025-03-01"))
    error = refused(valid("plan_cohort", starts="2025-03-02", ends="2025-03-01"))
    assert error.field == "ends"
    assert "'ends' must not be before 'starts'" in error.message


# ------------------------------------------------------------- codes and choices


@pytest.mark.parametrize("region", ["64.08.04.2001", "11.01.01.2001"])
def test_a_village_code_is_accepted(region: str) -> None:
    """``region`` is a Kemendagri village code ``NN.NN.NN.NNNN``."""
    assert parse_command(valid("register_veteran", region=region)).region == RegionCode(region)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "region",
    ["64.08.04.201", "64-08-04-2001", "6408042001", "64.08.04.2001.1", "٦٤.٠٨.٠٤.٢٠٠١", 64.08, ""],
)
def test_a_malformed_village_code_is_invalid(region: Any) -> None:
    """A region of another shape, or written in non-ASCII digits, is refused."""
    assert_names_field(refused(valid("register_veteran", region=region)), "region")


@pytest.mark.parametrize("programme", ["PKH", "BPNT", "TALI_ASIH", "P1", "A" + "B" * 31])
def test_a_programme_code_is_accepted(programme: str) -> None:
    """``programme`` matches ``^[A-Z][A-Z0-9_]{1,31}$``."""
    assert parse_command(valid("allocate", programme=programme)).programme == Programme(programme)  # type: ignore[attr-defined]


@pytest.mark.parametrize("programme", ["P", "pkh", "1PKH", "_PKH", "PKH-2", "A" * 33, 1])
def test_a_malformed_programme_code_is_invalid(programme: Any) -> None:
    """Lower case, a leading digit or underscore, a hyphen or 33 characters are refused."""
    assert_names_field(refused(valid("allocate", programme=programme)), "programme")


@pytest.mark.parametrize("reference", ["A", "SP2D/2025/01/0001", "a.b_c:d/e-f", "x" * 128])
def test_a_reference_is_accepted(reference: str) -> None:
    """``reference`` matches ``^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$``."""
    parsed = parse_command(valid("disburse", reference=reference))
    assert parsed.reference == Reference(reference)  # type: ignore[attr-defined]


@pytest.mark.parametrize("reference", ["", "A 1", ".A", "/A", "_A", "x" * 129, "Ä", "A#1", 1])
@pytest.mark.parametrize("name", ["allocate", "disburse", "reverse"])
def test_a_malformed_reference_is_invalid(name: str, reference: Any) -> None:
    """Spaces, a leading punctuation mark, other marks, 129 characters or non-ASCII are refused."""
    assert_names_field(refused(valid(name, reference=reference)), "reference")


@pytest.mark.parametrize("period", ["2025-01", "2025-12", "0000-01"])
def test_a_budget_month_is_accepted(period: str) -> None:
    """``period`` is ``YYYY-MM`` with a month 01–12."""
    assert parse_command(valid("allocate", period=period)).period == Period(period)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "period", ["2025-13", "2025-00", "2025-1", "25-01", "2025-01-01", "٢٠٢٥-01", 202501]
)
def test_a_malformed_budget_month_is_invalid(period: Any) -> None:
    """Months outside 01–12, other shapes and non-ASCII digits are refused."""
    assert_names_field(refused(valid("allocate", period=period)), "period")


@pytest.mark.parametrize(
    ("name", "field", "values"),
    [
        ("disburse", "channel", ("bank", "post", "cash", "in_kind")),
        ("follow_up", "outcome", ("visited", "phoned", "referred", "resolved", "not_found")),
        ("close", "reason", ("graduated", "moved", "deceased", "duplicate", "other")),
    ],
)
def test_choices_accept_exactly_their_values(
    name: str, field: str, values: tuple[str, ...]
) -> None:
    """channel, outcome and the close reason accept their listed values and nothing else."""
    for value in values:
        assert getattr(parse_command(valid(name, **{field: value})), field).value == value
    for bad in ("BANK", "meninggal", "", None, 1):
        error = refused(valid(name, **{field: bad}))
        assert_names_field(error, field)
        assert ", ".join(values) in error.message


# -------------------------------------------------------------------------- integers


@pytest.mark.parametrize(
    ("name", "field", "low", "high"),
    [
        ("register_household", "members", 1, 30),
        ("plan_cohort", "capacity", 1, 10_000),
        ("assess", "desil", 1, 10),
    ],
)
def test_bounded_integers_are_checked_inclusively(
    name: str, field: str, low: int, high: int
) -> None:
    """Members are 1–30, capacity 1–10,000, desil 1–10; the limits themselves are accepted."""
    for good in (low, high):
        assert getattr(parse_command(valid(name, **{field: good})), field) == good
    for bad in (low - 1, high + 1, -1, float(low), True, str(low), None):
        error = refused(valid(name, **{field: bad}))
        assert_names_field(error, field)
        assert f"{low}–{high}" in error.message


@pytest.mark.parametrize("name", ["allocate", "disburse"])
def test_an_amount_is_whole_rupiah_from_1_to_10_to_the_12(name: str) -> None:
    """Amounts are JSON integers > 0 and ≤ 10^12; the limits are accepted."""
    for good in (1, 10**12):
        assert parse_command(valid(name, amount=good)).amount == Rupiah(good)  # type: ignore[attr-defined]
    for bad in (0, -1, -750_000, 10**12 + 1, 10**40):
        error = refused(valid(name, amount=bad))
        assert_names_field(error, "amount")
        assert "1 to 1000000000000" in error.message


@pytest.mark.parametrize("amount", [750_000.0, 750_000.5, 1e6, True, False, "750000", None, [1]])
@pytest.mark.parametrize("name", ["allocate", "disburse"])
def test_money_is_never_a_float_a_bool_or_a_string(name: str, amount: Any) -> None:
    """A float (even a whole one), a bool or a string is not an amount."""
    error = refused(valid(name, amount=amount))
    assert_names_field(error, "amount")
    assert "whole rupiah as a JSON integer" in error.message


@pytest.mark.parametrize("eligible", [1, 0, "true", None])
def test_eligible_is_a_boolean(eligible: Any) -> None:
    """``eligible`` must be true or false; 1 and "true" are not booleans."""
    error = refused({**COMMON, "command": "assess", "eligible": eligible})
    assert_names_field(error, "eligible")


def test_assess_with_both_desil_and_eligible_is_invalid() -> None:
    """``assess`` carries exactly one of ``desil`` or ``eligible``."""
    error = refused(valid("assess", eligible=True))
    assert "exactly one of 'desil'" in error.message


# ------------------------------------------------------------------------ personal data


@pytest.mark.parametrize("field", ["family_card", "head_nik"])
def test_household_identity_numbers_are_16_ascii_digits(field: str) -> None:
    """family_card and head_nik are strings of exactly 16 ASCII digits."""
    for bad in (
        "640804010125000",
        "64080401012500011",
        "640804010125000X",
        "６４０８０４０１０１２５０００１",
        6408040101250001,
        None,
    ):
        error = refused(valid("register_household", **{field: bad}))
        assert error.field == field
        assert f"'{field}' must be" in error.message
        assert "16 digits" in error.message


def test_a_veteran_nik_is_16_ascii_digits() -> None:
    """A veteran's nik is a string of exactly 16 ASCII digits."""
    for bad in ("640805080745000", "6408 0508 0745 0001", 6408050807450001):
        error = refused(valid("register_veteran", nik=bad))
        assert error.field == "nik"
        assert "16 digits" in error.message


@pytest.mark.parametrize(
    ("name", "field"), [("register_household", "head_name"), ("register_veteran", "name")]
)
def test_a_person_name_is_one_to_200_characters(name: str, field: str) -> None:
    """head_name and name are 1–200 characters and nothing more is asked: one space will do."""
    # the command format sets only a length, as it does for ``actor`` (docs/spec-readings.md).
    for good in ("Ñ" * 200, "A", " "):
        assert getattr(parse_command(valid(name, **{field: good})), field) == good
    for bad in ("", "Ñ" * 201, 7, None):
        error = refused(valid(name, **{field: bad}))
        assert error.field == field
        assert f"'{field}' must be" in error.message


@pytest.mark.parametrize(
    ("name", "field", "bad", "secret"),
    [
        ("register_household", "family_card", "640804010125000", "640804010125000"),
        ("register_household", "family_card", 6408040101250001, "6408040101250001"),
        ("register_household", "head_nik", "6408041203820001 ", "6408041203820001"),
        ("register_household", "head_nik", "64080412O3820001", "64080412O3820001"),
        ("register_household", "head_name", "Rahmat Hidayat " * 20, "Rahmat"),
        ("register_household", "head_name", ["Rahmat", "Hidayat"], "Rahmat"),
        ("register_veteran", "nik", "640805080745000123", "640805080745000123"),
        ("register_veteran", "nik", 6408050807450001, "6408050807450001"),
        ("register_veteran", "name", "Sudarmo Wiryo " * 20, "Sudarmo"),
        ("register_veteran", "name", {"first": "Sudarmo"}, "Sudarmo"),
    ],
)
def test_a_message_never_echoes_personal_data(name: str, field: str, bad: Any, secret: str) -> None:
    """A malformed NIK, family-card number or name is described, never repeated."""
    error = refused(valid(name, **{field: bad}))
    assert error.field == field
    assert f"'{field}' must be" in error.message
    assert secret not in error.message
    assert "6408" not in error.message
    assert secret not in repr(error)


@given(
    nik=st.text(alphabet="0123456789", min_size=5, max_size=40).filter(lambda s: len(s) != 16),
    name=st.text(min_size=201, max_size=260).filter(lambda s: s.strip() != ""),
)
def test_no_malformed_personal_data_reaches_a_message(nik: str, name: str) -> None:
    """Whatever shape personal data has, the message and repr of the error never hold it."""
    for data in (
        valid("register_veteran", nik=nik, name=name),
        valid("register_household", head_nik=nik, family_card=nik, head_name=name),
    ):
        error = refused(data)
        for value in (nik, name):
            assert value not in error.message
            assert value not in repr(error)


def test_the_personal_data_fields_are_those_of_the_spec() -> None:
    """PII_FIELDS names exactly the personal data of the subject kinds."""
    assert frozenset({"family_card", "head_nik", "head_name", "nik", "name"}) == PII_FIELDS


# --------------------------------------------------------------------- canonical bodies


def test_a_body_is_the_same_whatever_the_order_of_its_fields() -> None:
    """Two bodies with the same fields and values are identical, in any key order."""
    data = valid("allocate")
    assert canonical_body(data) == canonical_body(dict(reversed(list(data.items()))))


@pytest.mark.parametrize(
    "change",
    [{"note": ""}, {"amount": 750_001}, {"actor": "petugas.bengalon"}, {"on": "2025-01-07"}],
)
def test_a_body_with_another_field_or_value_differs(change: dict[str, Any]) -> None:
    """Adding a note, even an empty one, or changing any value gives another body."""
    assert canonical_body(valid("allocate")) != canonical_body(valid("allocate", **change))
