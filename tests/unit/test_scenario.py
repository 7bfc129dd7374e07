"""Tests of the scenario generator, checked against an independent model of the command format."""

from __future__ import annotations

import datetime
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest

from dinsos_ledger.scenario import (
    DISTRICT,
    KECAMATAN,
    Amounts,
    ScenarioConfig,
    ScenarioSummary,
    generate,
    write_scenario,
)

# -- an independent checker: folds the file the way the command format says the ledger does ------

REF = re.compile(r"[A-Z0-9][A-Z0-9-]{1,63}")
REGION = re.compile(r"\d{2}\.\d{2}\.\d{2}\.\d{4}")
PROGRAMME = re.compile(r"[A-Z][A-Z0-9_]{1,31}")
REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
DIGITS16 = re.compile(r"\d{16}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

EXTRA: dict[str, set[str]] = {
    "register_household": {"region", "members", "family_card", "head_nik", "head_name"},
    "register_veteran": {"region", "nik", "name"},
    "plan_cohort": {"region", "programme", "capacity", "starts", "ends"},
    "assess": set(),
    "allocate": {"programme", "amount", "period", "reference"},
    "disburse": {"programme", "amount", "reference", "channel"},
    "reverse": {"reference", "reason"},
    "follow_up": {"outcome"},
    "enrol": {"cohort", "household"},
    "attend": set(),
    "complete": set(),
    "withdraw": {"reason"},
    "close": {"reason"},
    "forget": {"reason"},
    "define_programme": {"name", "recipients", "desil_limit"},
    "amend_programme": {"desil_limit"},
}
APPLIES: dict[str, set[str]] = {
    "assess": {"household", "veteran"},
    "allocate": {"household", "veteran", "cohort"},
    "disburse": {"household", "veteran", "cohort"},
    "reverse": {"household", "veteran", "cohort"},
    "follow_up": {"household", "veteran", "enrolment"},
    "attend": {"enrolment"},
    "complete": {"enrolment"},
    "withdraw": {"enrolment"},
    "close": {"household", "veteran"},
    "forget": {"household", "veteran"},
    "amend_programme": {"programme"},
}


def parse_date(value: Any) -> datetime.date | None:
    """The date of a ``YYYY-MM-DD`` string, or None when it is not one."""
    if not isinstance(value, str) or not DATE.fullmatch(value):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def is_int(value: Any, low: int, high: int) -> bool:
    """Whether ``value`` is a JSON integer (not a bool or float) in ``low..high``."""
    return type(value) is int and low <= value <= high


def text(value: Any, high: int) -> bool:
    """Whether ``value`` is a string of 1..``high`` characters."""
    return isinstance(value, str) and 1 <= len(value) <= high


def well_formed(c: Any) -> bool:
    """The ``invalid`` rule: shape, types, formats and ranges."""
    if not isinstance(c, dict) or c.get("command") not in EXTRA:
        return False
    name = c["command"]
    allowed = {"id", "command", "ref", "on", "actor", "note"} | EXTRA[name]
    if name == "assess":
        allowed |= {"desil", "eligible"}
    if set(c) - allowed or not ({"id", "ref", "on", "actor"} | EXTRA[name]) <= set(c):
        return False
    checks = [
        text(c["id"], 128),
        isinstance(c["ref"], str)
        and (REF if name not in EXTRA_PROGRAMME else PROGRAMME).fullmatch(c["ref"]) is not None,
        parse_date(c["on"]) is not None,
        text(c["actor"], 128),
        "note" not in c or (isinstance(c["note"], str) and len(c["note"]) <= 2000),
    ]
    if "region" in c:
        checks.append(isinstance(c["region"], str) and REGION.fullmatch(c["region"]) is not None)
    checks.extend(
        isinstance(c[key], str) and DIGITS16.fullmatch(c[key]) is not None
        for key in ("family_card", "head_nik", "nik")
        if key in c
    )
    checks.extend(
        text(c[key], 2000 if key == "reason" else 200)
        for key in ("head_name", "name", "reason")
        if key in c
    )
    if "members" in c:
        checks.append(is_int(c["members"], 1, 30))
    if "programme" in c:
        checks.append(isinstance(c["programme"], str) and PROGRAMME.fullmatch(c["programme"]))
    if "amount" in c:
        checks.append(is_int(c["amount"], 1, 10**12))
    if "period" in c:
        checks.append(isinstance(c["period"], str) and PERIOD.fullmatch(c["period"]))
    if "reference" in c:
        checks.append(isinstance(c["reference"], str) and REFERENCE.fullmatch(c["reference"]))
    if "channel" in c:
        checks.append(c["channel"] in {"bank", "post", "cash", "in_kind"})
    if "outcome" in c:
        checks.append(c["outcome"] in {"visited", "phoned", "referred", "resolved", "not_found"})
    if name == "close":
        checks.append(c["reason"] in {"graduated", "moved", "deceased", "duplicate", "other"})
    if name == "plan_cohort":
        starts, ends = parse_date(c["starts"]), parse_date(c["ends"])
        checks += [is_int(c["capacity"], 1, 10_000), starts is not None, ends is not None]
        checks.append(starts is not None and ends is not None and starts <= ends)
    if name == "assess":
        if ("desil" in c) == ("eligible" in c):
            return False
        checks.append(is_int(c["desil"], 1, 10) if "desil" in c else type(c["eligible"]) is bool)
    if name == "enrol":
        checks.append(isinstance(c["cohort"], str) and isinstance(c["household"], str))
    if name in EXTRA_PROGRAMME:
        checks.append(c["desil_limit"] is None or is_int(c["desil_limit"], 1, 10))
    if name == "define_programme":
        kinds = c["recipients"]
        checks.append(
            isinstance(kinds, list)
            and bool(kinds)
            and len(set(kinds)) == len(kinds)
            and set(kinds) <= {"household", "veteran", "cohort"}
        )
    return all(checks)


#: The programme commands (the scenario only sends well-formed programme codes as their ref).
EXTRA_PROGRAMME = ("define_programme", "amend_programme")


@attrs.define
class Subject:
    """What the model remembers of one subject."""

    kind: str
    registered: datetime.date
    closed: bool = False
    forgotten: bool = False
    state: str = "active"  # enrolments: active, withdrawn, completed
    assessment: Any = None
    references: set[str] = attrs.Factory(set)
    disbursements: dict[str, tuple[str, int]] = attrs.Factory(dict)
    reversed: set[str] = attrs.Factory(set)
    balance: Counter[str] = attrs.Factory(Counter)
    capacity: int = 0
    starts: datetime.date | None = None
    ends: datetime.date | None = None
    active: set[str] = attrs.Factory(set)  # cohorts: households with an active enrolment
    cohort: str = ""
    household: str = ""
    recipients: tuple[str, ...] = ()
    rules: list[tuple[datetime.date, int | None]] = attrs.Factory(list)  # programmes


class Model:
    """Applies commands in file order and says what code each line gets."""

    def __init__(self) -> None:
        self.subjects: dict[str, Subject] = {}
        self.bodies: dict[str, dict[str, Any]] = {}

    def check(self, raw: str) -> str | None:
        """The code of the line, ``"duplicate"``, or None when it is accepted and applied."""
        try:
            c = json.loads(raw)
        except ValueError:
            return "invalid"
        if not well_formed(c):
            return "invalid"
        if c["id"] in self.bodies:
            return "duplicate" if self.bodies[c["id"]] == c else "id_conflict"
        code = self.rule(c)
        if code is None:
            self.apply(c)
            self.bodies[c["id"]] = c
        return code

    def rule(self, c: dict[str, Any]) -> str | None:
        """The first rule of the rules table (after ``invalid`` and ``id_conflict``) that fails."""
        name, on, s = c["command"], parse_date(c["on"]), self.subjects.get(c["ref"])
        assert on is not None
        if name == "enrol":
            cohort, household = self.subjects.get(c["cohort"]), self.subjects.get(c["household"])
            if cohort is None or household is None:
                return "unknown_subject"
            if s is not None:
                return "already_registered"
            if cohort.kind != "cohort" or household.kind != "household":
                return "not_applicable"
            if household.closed or household.forgotten:
                return "closed"
            if on < household.registered or on < cohort.registered:
                return "before_registration"
            if len(cohort.active) >= cohort.capacity:
                return "cohort_full"
            if c["household"] in cohort.active:
                return "already_enrolled"
            assert cohort.ends is not None
            return "outside_cohort_dates" if on > cohort.ends else None
        if name in ("register_household", "register_veteran", "plan_cohort", "define_programme"):
            return "already_registered" if s is not None else None
        if s is None:
            return "unknown_subject"
        if s.kind not in APPLIES[name]:
            return "not_applicable"
        if name == "assess" and ("desil" in c) != (s.kind == "household"):
            return "not_applicable"
        if s.forgotten or (s.closed and name not in ("reverse", "forget")):
            return "closed"
        if (
            s.kind == "enrolment"
            and s.state != "active"
            and not (s.state == "completed" and name == "follow_up")
        ):
            return "closed"
        if name == "forget" and not s.closed:
            return "not_closed"
        if on < s.registered:
            return "before_registration"
        if name == "allocate" and not self.eligible(s, c["programme"], on):
            return "not_eligible"
        if name == "disburse" and c["amount"] > s.balance[c["programme"]]:
            return "insufficient_allocation"
        if name in ("allocate", "disburse") and c["reference"] in s.references:
            return "duplicate_reference"
        if name == "reverse":
            if c["reference"] not in s.disbursements:
                return "unknown_reference"
            if c["reference"] in s.reversed:
                return "already_reversed"
        if name in ("attend", "complete"):
            cohort = self.subjects[s.cohort]
            assert cohort.starts is not None
            assert cohort.ends is not None
            if not cohort.starts <= on <= cohort.ends:
                return "outside_cohort_dates"
        return None

    def eligible(self, s: Subject, code: str, on: datetime.date) -> bool:
        """Whether the programme's rule in force on ``on`` (or the default rule) admits ``s``."""
        programme = self.subjects.get(code)
        limit: int | None = 4
        if programme is not None and programme.kind == "programme":
            in_force = [rule for rule in programme.rules if rule[0] <= on]
            if not in_force or s.kind not in programme.recipients:
                return False
            # The latest by date; among equal dates the later recorded (max keeps the first).
            limit = max(reversed(in_force), key=lambda rule: rule[0])[1]
        if s.kind == "cohort":
            return True
        a = s.assessment
        if s.kind == "household":
            return a is not None and (limit is None or a <= limit)
        return a is True

    def apply(self, c: dict[str, Any]) -> None:
        """Record an accepted command in the model."""
        name, ref, on = c["command"], c["ref"], parse_date(c["on"])
        assert on is not None
        if name.startswith("register_"):
            self.subjects[ref] = Subject(name.removeprefix("register_"), on)
        elif name == "plan_cohort":
            self.subjects[ref] = Subject(
                "cohort",
                on,
                capacity=c["capacity"],
                starts=parse_date(c["starts"]),
                ends=parse_date(c["ends"]),
            )
        elif name == "define_programme":
            self.subjects[ref] = Subject(
                "programme", on, recipients=tuple(c["recipients"]), rules=[(on, c["desil_limit"])]
            )
        elif name == "amend_programme":
            self.subjects[ref].rules.append((on, c["desil_limit"]))
        elif name == "enrol":
            self.subjects[ref] = Subject(
                "enrolment", on, cohort=c["cohort"], household=c["household"]
            )
            self.subjects[c["cohort"]].active.add(c["household"])
        s = self.subjects[ref]
        if name == "assess":
            s.assessment = c.get("desil", c.get("eligible"))
        elif name == "allocate":
            s.references.add(c["reference"])
            s.balance[c["programme"]] += c["amount"]
        elif name == "disburse":
            s.references.add(c["reference"])
            s.disbursements[c["reference"]] = (c["programme"], c["amount"])
            s.balance[c["programme"]] -= c["amount"]
        elif name == "reverse":
            programme, amount = s.disbursements[c["reference"]]
            s.reversed.add(c["reference"])
            s.balance[programme] += amount
        elif name in ("withdraw", "complete"):
            s.state = "withdrawn" if name == "withdraw" else "completed"
            if name == "withdraw":
                self.subjects[s.cohort].active.discard(s.household)
        elif name == "close":
            s.closed = True
        elif name == "forget":
            s.forgotten = True
        assert all(v >= 0 for v in s.balance.values()), f"{ref} balance below zero"


def fold(lines: list[str]) -> tuple[dict[int, str], list[int], Model]:
    """Run the model over a file: the reject codes by line, the duplicate lines, the model."""
    model = Model()
    rejects: dict[int, str] = {}
    duplicates: list[int] = []
    for number, raw in enumerate(lines, 1):
        code = model.check(raw)
        if code == "duplicate":
            duplicates.append(number)
        elif code is not None:
            rejects[number] = code
    return rejects, duplicates, model


def run(config: ScenarioConfig) -> tuple[str, ScenarioSummary]:
    """Generate a scenario into memory."""
    out = io.StringIO()
    summary = generate(config, out)
    return out.getvalue(), summary


@pytest.fixture(scope="module")
def default() -> tuple[str, ScenarioSummary]:
    """The default scenario, generated once for the module."""
    return run(ScenarioConfig())


# -- tests -----------------------------------------------------------------------------------


def test_the_same_config_gives_identical_bytes(default: tuple[str, ScenarioSummary]) -> None:
    """Generating the same config twice writes byte-identical files and equal summaries."""
    again = run(ScenarioConfig())
    assert again[0] == default[0]
    assert again[1] == default[1]


def test_a_different_seed_gives_a_different_file(default: tuple[str, ScenarioSummary]) -> None:
    """Another seed gives another file."""
    assert run(ScenarioConfig(seed=2026))[0] != default[0]


def test_every_line_is_json_except_intended_truncations(
    default: tuple[str, ScenarioSummary],
) -> None:
    """Every line parses as a JSON object except truncations, which are listed as invalid."""
    text, summary = default
    invalid = {r.line for r in summary.expected_rejects if r.code == "invalid"}
    broken = []
    for number, raw in enumerate(text.splitlines(), 1):
        try:
            assert isinstance(json.loads(raw), dict)
        except ValueError:
            broken.append(number)
    assert broken
    assert set(broken) <= invalid


def test_the_model_rejects_exactly_the_expected_lines(
    default: tuple[str, ScenarioSummary],
) -> None:
    """Folding the file by the documented rules rejects exactly the listed lines with the listed codes."""
    text, summary = default
    rejects, duplicates, _ = fold(text.splitlines())
    assert rejects == {r.line: r.code for r in summary.expected_rejects}
    assert duplicates == list(summary.expected_duplicates)


def test_the_expected_lines_really_are_mistakes(default: tuple[str, ScenarioSummary]) -> None:
    """Without its listed mistakes and duplicates the file imports with no reject at all."""
    text, summary = default
    skip = {r.line for r in summary.expected_rejects} | set(summary.expected_duplicates)
    kept = [raw for n, raw in enumerate(text.splitlines(), 1) if n not in skip]
    rejects, duplicates, _ = fold(kept)
    assert rejects == {}
    assert duplicates == []


def test_the_default_scenario_makes_every_kind_of_mistake(
    default: tuple[str, ScenarioSummary],
) -> None:
    """The default scenario holds every mistake the brief names, and re-sent duplicates."""
    _, summary = default
    assert set(summary.rejects_by_code) == {
        "invalid",
        "id_conflict",
        "unknown_subject",
        "closed",
        "before_registration",
        "not_eligible",
        "insufficient_allocation",
        "duplicate_reference",
        "cohort_full",
    }
    assert summary.expected_duplicates
    assert 0.01 < len(summary.expected_rejects) / summary.lines < 0.06


def test_the_summary_counts_what_was_written(default: tuple[str, ScenarioSummary]) -> None:
    """Lines, accepted commands by name, rejects and duplicates add up to the file."""
    text, summary = default
    lines = text.splitlines()
    assert summary.lines == len(lines)
    assert sum(summary.commands.values()) == summary.accepted
    assert sorted(r.line for r in summary.expected_rejects) == [
        r.line for r in summary.expected_rejects
    ]
    assert summary.commands["register_household"] == 600
    assert summary.commands["plan_cohort"] == 12
    assert summary.commands["forget"] == 4
    _, _, model = fold(lines)
    kinds = Counter(s.kind for s in model.subjects.values())
    assert kinds["veteran"] >= 40


def test_accepted_lines_are_in_business_date_order_within_the_range(
    default: tuple[str, ScenarioSummary],
) -> None:
    """Lines that must be accepted have non-decreasing dates between start and end."""
    text, summary = default
    skip = {r.line for r in summary.expected_rejects}
    dates = [json.loads(raw)["on"] for n, raw in enumerate(text.splitlines(), 1) if n not in skip]
    assert dates == sorted(dates)
    assert dates[0] >= "2025-01-01"
    assert dates[-1] <= "2026-10-31"


def test_nothing_is_sent_to_a_subject_after_it_is_forgotten(
    default: tuple[str, ScenarioSummary],
) -> None:
    """After a forget line no line names that subject, mistakes included."""
    forgotten: set[str] = set()
    for raw in default[0].splitlines():
        try:
            command = json.loads(raw)
        except ValueError:
            continue
        assert command["ref"] not in forgotten
        assert command.get("household") not in forgotten
        if command["command"] == "forget":
            forgotten.add(command["ref"])
    assert len(forgotten) == 4


def test_region_codes_are_kutai_timur_villages(default: tuple[str, ScenarioSummary]) -> None:
    """Every region is 64.08.KK.NNNN with kecamatan 01-18, desa 2NNN or the two kelurahan."""
    kelurahan = {"64.08.04.1010", "64.08.12.1002"}
    regions = set(re.findall(r'"region":"([^"]*)"', default[0]))
    assert regions
    for region in regions:
        assert re.fullmatch(r"64\.08\.(0[1-9]|1[0-8])\.(2\d{3}|1\d{3})", region), region
        assert region[9] == "2" or region in kelurahan


def test_the_kecamatan_table_matches_the_domain_facts() -> None:
    """The table has the 18 kecamatan, codes 01-18, 141 villages with 2 kelurahan."""
    assert [k.code for k in KECAMATAN] == [f"{n:02d}" for n in range(1, 19)]
    codes = [code for k in KECAMATAN for code in k.village_codes()]
    assert len(codes) == len(set(codes)) == 141
    assert sum(code[9] == "1" for code in codes) == 2


def test_nik_and_family_card_numbers_are_well_formed(
    default: tuple[str, ScenarioSummary],
) -> None:
    """NIKs are 16 digits, 6408KK, a real birth date after DD-40, serial from 0001."""
    text, summary = default
    skip = {r.line for r in summary.expected_rejects} | set(summary.expected_duplicates)
    niks, cards = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        if number in skip:
            continue
        command = json.loads(raw)
        niks += [command[k] for k in ("head_nik", "nik") if k in command]
        cards += [command["family_card"]] if "family_card" in command else []
    assert (
        len(niks) == summary.commands["register_household"] + summary.commands["register_veteran"]
    )
    for nik in niks:
        assert re.fullmatch(r"6408(0[1-9]|1[0-8])\d{10}", nik), nik
        day, month, year = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
        day = day - 40 if day > 40 else day
        assert born_on(1900 + year, month, day) or born_on(2000 + year, month, day), nik
        assert nik[12:] != "0000"
    for card in cards:
        assert re.fullmatch(r"6408(0[1-9]|1[0-8])\d{10}", card), card
        datetime.datetime.strptime(card[6:12], "%d%m%y")  # noqa: DTZ007 - a calendar date only


def born_on(year: int, month: int, day: int) -> bool:
    """Whether year-month-day is a real date."""
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def test_counts_scale_with_households() -> None:
    """Four times the households gives four times the registrations and more lines."""
    small = run(ScenarioConfig(households=100, veterans=5, cohorts=2))[1]
    large = run(ScenarioConfig(households=400, veterans=5, cohorts=2))[1]
    assert small.commands["register_household"] == 100
    assert large.commands["register_household"] == 400
    assert 3 * small.lines < large.lines < 5 * small.lines


def test_a_zero_mistake_rate_writes_a_clean_file() -> None:
    """With mistake_rate 0 nothing is rejected and nothing is re-sent."""
    text, summary = run(ScenarioConfig(households=200, mistake_rate=0.0))
    assert summary.expected_rejects == ()
    assert summary.expected_duplicates == ()
    assert fold(text.splitlines())[:2] == ({}, [])


def test_a_short_range_and_a_high_mistake_rate_still_check_out() -> None:
    """A three-month range with many mistakes still folds to exactly the expected codes."""
    config = ScenarioConfig(
        seed=7,
        households=150,
        veterans=8,
        cohorts=3,
        mistake_rate=0.2,
        start=datetime.date(2025, 9, 15),
        end=datetime.date(2025, 12, 10),
    )
    text, summary = run(config)
    rejects, duplicates, _ = fold(text.splitlines())
    assert rejects == {r.line: r.code for r in summary.expected_rejects}
    assert duplicates == list(summary.expected_duplicates)


def test_amounts_come_from_the_configuration() -> None:
    """Changing the BPNT amount changes what is allocated."""
    config = ScenarioConfig(households=50, amounts=Amounts(bpnt_monthly=250_000))
    text, _ = run(config)
    amounts = set(re.findall(r'"programme":"BPNT","amount":(\d+),"period"', text))
    assert amounts == {"250000"}


def test_write_scenario_writes_the_same_bytes_as_generate(tmp_path: Path) -> None:
    """write_scenario writes exactly what generate writes, and returns the same summary."""
    config = ScenarioConfig(households=60, veterans=4, cohorts=2)
    summary = write_scenario(config, tmp_path / "commands.jsonl")
    assert (tmp_path / "commands.jsonl").read_bytes() == run(config)[0].encode()
    assert summary == run(config)[1]


def test_progress_is_reported_up_to_the_last_line() -> None:
    """The progress callback ends with the number of lines written."""
    seen: list[int] = []
    summary = generate(ScenarioConfig(households=50), io.StringIO(), seen.append)
    assert seen[-1] == summary.lines


def test_invalid_configs_are_refused() -> None:
    """An end before the start, a negative count or a rate above 1 is refused."""
    with pytest.raises(ValueError, match="'end' must not be before"):
        ScenarioConfig(start=datetime.date(2025, 2, 1), end=datetime.date(2025, 1, 1))
    with pytest.raises(ValueError, match="'households' must be"):
        ScenarioConfig(households=-1)
    with pytest.raises(ValueError, match="'mistake_rate' must be"):
        ScenarioConfig(mistake_rate=1.5)
    with pytest.raises(ValueError, match="'bpnt_monthly' must be"):
        Amounts(bpnt_monthly=0)


def test_the_district_preset_is_district_sized() -> None:
    """The benchmark preset has as many households as Kutai Timur has families."""
    assert DISTRICT.households == 120_000
    assert DISTRICT.seed == ScenarioConfig().seed


def test_the_programmes_are_defined_first_and_bpnt_is_widened_once(
    default: tuple[str, ScenarioSummary],
) -> None:
    """Programmes open the file; one amendment widens BPNT to desil 5, and it is used."""
    text, summary = default
    first = [json.loads(raw) for raw in text.splitlines()[:4]]
    assert [(c["command"], c["ref"]) for c in first] == [
        ("define_programme", "PKH"),
        ("define_programme", "BPNT"),
        ("define_programme", "TALI_ASIH"),
        ("define_programme", "PELATIHAN"),
    ]
    assert summary.commands["define_programme"] == 5  # and SEKOLAH_RAKYAT in July 2025
    assert summary.commands["amend_programme"] == 1
    model = Model()
    desil_five = []
    for raw in text.splitlines():
        if model.check(raw) is None:
            c = json.loads(raw)
            if (
                c["command"] == "allocate"
                and c["programme"] == "BPNT"
                and model.subjects[c["ref"]].assessment == 5
            ):
                desil_five.append(c["on"])
    assert model.subjects["BPNT"].rules == [
        (datetime.date(2025, 1, 1), 4),
        (datetime.date(2025, 6, 1), 5),
    ]
    # Desil-5 households receive BPNT after the widening, and never before it.
    assert desil_five
    assert min(desil_five) >= "2025-06-01"
