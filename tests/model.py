r"""A plain reference model of the ledger, written from the documented rules alone.

Those are the rules of subjects, commands, balances, continuity and programmes.

The real ledger is event-sourced, encrypted and stored; this model is a handful of
dictionaries and lists, so that it can be read against the documentation line by line and trusted
as the oracle of the stateful tests. It never aims for speed: balances and timelines are
recomputed from scratch, day by day, on every call.

Use::

    model = Model()
    model.execute('{"id": "c1", "command": "register_veteran", ...}')  # ("accepted", None)
    model.balances(as_of=None)
    model.continuity(as_of=date(2025, 3, 1))
    model.show("KT-VT-0001")
    Model().import_text(text)  # one {"line", "outcome", "code"} per non-blank line

How each rule applies, per command (the checks run in this order; the first that fails
gives the code):

``invalid``
    Not a JSON object; a required field missing; a field that the command does not
    carry; a wrong type (``bool`` is not an integer, ``100.0`` is not an integer); a bad
    format or range. ``assess`` carries exactly one of ``desil``/``eligible``.
``id_conflict``
    The ``id`` is that of an accepted command whose body differs. (Same id, identical
    body: a duplicate, reported before any rule.) Once a household or veteran is
    forgotten, its registration's personal data (``family_card``, ``head_nik``,
    ``head_name``; ``nik``, ``name``) is not compared: nothing may confirm it (the audit
    and privacy rules), so the same id with the other fields equal is a duplicate.
``unknown_subject``
    Every command but ``register_household``/``register_veteran``/``plan_cohort``/``enrol``:
    its ``ref`` is not registered. ``enrol``: its ``cohort`` or ``household`` is not
    registered (its own ``ref`` is new).
``already_registered``
    ``register_household``, ``register_veteran``, ``plan_cohort``, ``enrol``,
    ``define_programme``: the ``ref`` exists, whatever its kind.
``not_applicable``
    ``assess`` on a cohort or enrolment, ``desil`` on a veteran, ``eligible`` on a
    household; ``allocate``/``disburse``/``reverse`` on an enrolment; ``follow_up`` on a
    cohort; ``attend``/``complete``/``withdraw`` on anything but an enrolment;
    ``close``/``forget`` on a cohort or enrolment; ``enrol`` whose ``cohort`` is not a
    cohort or whose ``household`` is not a household; ``amend_programme`` on anything but
    a programme, every other command on a programme.
``closed``
    Household or veteran: forgotten → everything; closed → everything but ``reverse``,
    ``confirm`` and ``forget`` (so a second ``close`` is ``closed``). Enrolment: withdrawn → everything;
    completed → everything but ``follow_up``. ``enrol``: its household is closed or
    forgotten. Cohorts are never closed.
``not_closed``
    ``forget`` of a household or veteran that is not closed.
``before_registration``
    ``on`` earlier than the subject's registration date: the ``on`` of its
    ``register_household``/``register_veteran``/``plan_cohort``/``enrol``/
    ``define_programme``. ``enrol``:
    earlier than the household's or the cohort's registration date.
``not_eligible``
    ``allocate`` of a programme that is not defined: to a household whose latest assessment
    (recorded order) is missing or has ``desil`` > 4, or to a veteran whose latest is
    missing or ``eligible: false``; cohorts are never refused. ``allocate`` of a defined
    programme: decided by the rule in force on its ``on`` (the latest definition or
    amendment with ``on`` ≤ D, the later recorded among equal dates); none in force (the
    allocation is dated before the definition), or the subject's kind not among
    ``recipients``, or a household's latest assessment missing or (unless the limit is
    ``null``) above the limit, or a veteran's latest missing or ``eligible: false``.
``insufficient_allocation``
    ``disburse`` of more than allocated − disbursed (not reversed) for that subject and
    programme, over everything recorded so far, whatever the dates.
``duplicate_reference``
    ``allocate``/``disburse`` whose ``reference`` is that of any earlier allocation or
    disbursement of the same subject (any programme, reversed or not).
``unknown_reference``
    ``reverse`` or ``confirm`` whose ``reference`` is not that of a disbursement of that subject (an
    allocation's reference is unknown too).
``already_reversed``
    ``reverse`` or ``confirm`` of a disbursement that has been reversed.
``already_confirmed``
    ``confirm`` of a disbursement that has been confirmed.
``amount_mismatch``
    ``confirm`` whose ``amount`` differs from the disbursement's.
``cohort_full``
    ``enrol`` when the cohort's enrolments that are not withdrawn (completed ones count)
    number its capacity.
``already_enrolled``
    ``enrol`` of a household that has a not-withdrawn (active or completed) enrolment in
    the same cohort.
``outside_cohort_dates``
    ``enrol`` dated after the cohort's ``ends``; ``attend``/``complete`` dated before its
    ``starts`` or after its ``ends``.

Readings of the documentation
--------------------
Where the documentation is silent or could be read two ways, this model chooses as follows.

1. A line is parsed as strict JSON: ``NaN``/``Infinity``, a duplicated key in an object,
   invalid UTF-8, a byte-order mark inside a line, nesting too deep for the parser and
   integers too long for Python's parser are all ``invalid``; a byte-order mark opening
   the file is ignored (RFC 8259 lets parsers ignore it; spreadsheet exports write one).
2. A string containing a NUL character or a lone surrogate (possible through ``\u``
   escapes) is ``invalid``: it cannot be stored as UTF-8 text (nor in PostgreSQL).
3. Lengths are counted in Unicode code points. ``actor`` must be non-empty; a blank actor
   such as ``" "`` is accepted (the documentation only says non-empty).
4. ``reason`` of ``reverse``, ``withdraw`` and ``forget`` is free text of 1–2,000 code
   points (like ``note``, but required, so not empty). ``note`` may be empty; ``null``
   is a wrong type for every field, including ``note``.
5. Digits are ASCII ``0``–``9`` only (``family_card``, ``head_nik``, ``nik``, dates,
   ``region``, ``period``); those identity numbers are strings, never JSON numbers.
6. Dates must exist in the proleptic Gregorian calendar with years 0001–9999;
   ``period`` accepts any four-digit year with month 01–12.
7. ``enrol``'s ``cohort`` and ``household`` must be well-formed refs (else ``invalid``);
   naming a subject of the wrong kind is ``not_applicable``.
8. Duplicate detection compares the whole parsed object (same keys, same values);
   a missing ``note`` and ``"note": ""`` are different bodies, so ``id_conflict``.
9. ``duplicate_reference`` is per subject over allocations and disbursements together,
   in every programme, including reversed disbursements. A ``reverse`` uses no reference.
10. A closed household still has enrolments; commands on those enrolments follow the
    enrolment's own state (only ``enrol`` looks at the household's closure). Contacts
    after the household's ``close`` date do not count (the continuity rules: ``on`` ≤ ``end``).
11. "Active" enrolments are the ones not withdrawn; a completed enrolment is active for
    ``cohort_full`` and ``already_enrolled``.
12. No rule relates a ``reverse``'s date to its disbursement's date, a ``close`` to the
    last contact, or ``enrol`` to the cohort's ``starts`` (enrolling early is allowed).
13. Balances: a row is listed when at least one allocation or disbursement of that
    subject and programme has ``on`` ≤ D (a reversed disbursement still makes the row
    appear, with ``disbursed`` not counting it). Cohorts have balance rows.
14. Continuity: ``coverage`` is ``covered/total`` rounded ROUND_HALF_UP to 4 places and
    returned as the ``float`` that JSON would carry; dates are ISO strings;
    ``last_contact_on`` is the latest counted contact (``null`` when none);
    ``longest_gap_days`` is 0 when there is no gap. Forgotten subjects keep their rows.
15. Blank lines (only spaces, tabs and carriage returns between line feeds) are skipped
    but counted; lines are split at line feeds only.
16. A programme's ``ref`` is its code: ``define_programme`` needs a ``ref`` of the
    programme pattern; ``amend_programme`` accepts a programme code or a case number (so
    naming a household is ``not_applicable``); every other command keeps the case-number
    pattern (so ``TALI_ASIH`` as its ``ref`` is ``invalid``, ``PKH`` is ``not_applicable``
    once PKH is a programme). ``desil_limit`` is required and may be ``null``.
17. ``programmes``: ``desil_limit`` is ``null`` when no rule is in force yet on the day
    asked (a programme defined after today, listed without ``--as-of``).
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

__all__ = [
    "CODES",
    "COMMAND_FIELDS",
    "Model",
    "model_findings",
    "model_reconciliation",
    "parse_line",
    "validate",
]

#: The error codes of the command format, in the order the checks run.
CODES = (
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

COMMON_FIELDS = ("id", "command", "ref", "on", "actor")
OPTIONAL_FIELDS = ("note",)

#: The extra fields each command carries (all required, except assess: one of the two).
COMMAND_FIELDS: dict[str, tuple[str, ...]] = {
    "register_household": ("region", "members", "family_card", "head_nik", "head_name"),
    "register_veteran": ("region", "nik", "name"),
    "plan_cohort": ("region", "programme", "capacity", "starts", "ends"),
    "assess": ("desil", "eligible"),
    "allocate": ("programme", "amount", "period", "reference"),
    "disburse": ("programme", "amount", "reference", "channel"),
    "reverse": ("reference", "reason"),
    "confirm": ("reference", "amount", "channel_ref"),
    "follow_up": ("outcome",),
    "enrol": ("cohort", "household"),
    "attend": (),
    "complete": (),
    "withdraw": ("reason",),
    "close": ("reason",),
    "forget": ("reason",),
    "define_programme": ("name", "recipients", "desil_limit"),
    "amend_programme": ("desil_limit",),
}

CREATING = {
    "register_household": "household",
    "register_veteran": "veteran",
    "plan_cohort": "cohort",
    "enrol": "enrolment",
    "define_programme": "programme",
}

#: The kinds each command applies to (the command format, column "applies to").
APPLIES_TO = {
    "assess": {"household", "veteran"},
    "allocate": {"household", "veteran", "cohort"},
    "disburse": {"household", "veteran", "cohort"},
    "reverse": {"household", "veteran", "cohort"},
    "confirm": {"household", "veteran", "cohort"},
    "follow_up": {"household", "veteran", "enrolment"},
    "attend": {"enrolment"},
    "complete": {"enrolment"},
    "withdraw": {"enrolment"},
    "close": {"household", "veteran"},
    "forget": {"household", "veteran"},
    "amend_programme": {"programme"},
}

WINDOW_DAYS = {"household": 90, "veteran": 180}
DESIL_LIMIT = 4
RECIPIENTS = ("household", "veteran", "cohort")
MAX_AMOUNT = 10**12

CHANNELS = ("bank", "post", "cash", "in_kind")
OUTCOMES = ("visited", "phoned", "referred", "resolved", "not_found")
CLOSE_REASONS = ("graduated", "moved", "deceased", "duplicate", "other")
#: The personal-data fields of the commands that carry any.
PII_OF_REGISTRATION = {
    "register_household": ("family_card", "head_nik", "head_name"),
    "register_veteran": ("nik", "name"),
}

REF_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{1,63}")
REGION_RE = re.compile(r"[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}")
PROGRAMME_RE = re.compile(r"[A-Z][A-Z0-9_]{1,31}")
REFERENCE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
PERIOD_RE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DIGITS16_RE = re.compile(r"[0-9]{16}")
SURROGATE_OR_NUL_RE = re.compile("[\x00\ud800-\udfff]")


class Malformed(ValueError):
    """Raised when a line or a command is ``invalid``; the message says why."""


# --------------------------------------------------------------------------- parsing


def _reject_constant(name: str) -> Any:
    """Refuse ``NaN`` and ``Infinity``, which are not JSON."""
    raise Malformed(f"{name} is not JSON")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build an object, refusing a key given twice."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Malformed(f"key {key!r} appears twice")
        result[key] = value
    return result


def parse_line(line: str | bytes) -> dict[str, Any]:
    """Return the command object on ``line``, or raise :class:`Malformed`."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Malformed(f"not UTF-8: {error}") from None
    try:
        value = json.loads(line, parse_constant=_reject_constant, object_pairs_hook=_unique_pairs)
    except Malformed:
        raise
    except (ValueError, TypeError, RecursionError) as error:
        raise Malformed(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise Malformed(f"a command must be a JSON object (got {type(value).__name__})")
    return value


# ------------------------------------------------------------------------ validation


def _text(cmd: dict[str, Any], name: str, low: int, high: int) -> str:
    """Check that ``cmd[name]`` is a string of ``low``..``high`` code points."""
    value = cmd[name]
    if not isinstance(value, str):
        raise Malformed(f"'{name}' must be a string (got {value!r})")
    if SURROGATE_OR_NUL_RE.search(value):
        raise Malformed(f"'{name}' must not hold NUL or lone surrogates (got {value!r})")
    if not low <= len(value) <= high:
        raise Malformed(f"'{name}' must be {low}–{high} characters (got {len(value)})")
    return value


def _pattern(cmd: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    """Check that ``cmd[name]`` is a string matching ``pattern`` in full."""
    value = cmd[name]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise Malformed(f"'{name}' must match {pattern.pattern} (got {value!r})")
    return value


def _date(cmd: dict[str, Any], name: str) -> date:
    """Check that ``cmd[name]`` is a ``YYYY-MM-DD`` date that exists."""
    value = _pattern(cmd, name, DATE_RE)
    try:
        return date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        raise Malformed(f"'{name}' must be a real date (got {value!r})") from None


def _integer(cmd: dict[str, Any], name: str, low: int, high: int) -> int:
    """Check that ``cmd[name]`` is a JSON integer (not a bool) in ``low``..``high``."""
    value = cmd[name]
    if type(value) is not int:
        raise Malformed(f"'{name}' must be an integer (got {value!r})")
    if not low <= value <= high:
        raise Malformed(f"'{name}' must be between {low} and {high} (got {value})")
    return value


def _choice(cmd: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    """Check that ``cmd[name]`` is one of the strings ``choices``."""
    value = cmd[name]
    if not isinstance(value, str) or value not in choices:
        raise Malformed(f"'{name}' must be one of {', '.join(choices)} (got {value!r})")
    return value


def _check(cmd: dict[str, Any]) -> None:
    """Raise :class:`Malformed` unless ``cmd`` is a well-formed command."""
    if not isinstance(cmd, dict):
        raise Malformed("a command must be an object")
    for key in cmd:
        if not isinstance(key, str):
            raise Malformed(f"field names must be strings (got {key!r})")
    name = cmd.get("command")
    if not isinstance(name, str) or name not in COMMAND_FIELDS:
        raise Malformed(f"'command' must be one of {', '.join(COMMAND_FIELDS)} (got {name!r})")
    extras = COMMAND_FIELDS[name]
    allowed = set(COMMON_FIELDS) | set(OPTIONAL_FIELDS) | set(extras)
    unknown = sorted(set(cmd) - allowed)
    if unknown:
        raise Malformed(f"unknown field(s) {unknown} for {name}")
    required = set(COMMON_FIELDS) | (set() if name == "assess" else set(extras))
    missing = sorted(required - set(cmd))
    if missing:
        raise Malformed(f"missing field(s) {missing} for {name}")

    _text(cmd, "id", 1, 128)
    if name == "define_programme":
        _pattern(cmd, "ref", PROGRAMME_RE)
    elif name == "amend_programme":
        if not isinstance(cmd["ref"], str) or not (
            PROGRAMME_RE.fullmatch(cmd["ref"]) or REF_RE.fullmatch(cmd["ref"])
        ):
            raise Malformed(f"'ref' must be a programme code or a ref (got {cmd['ref']!r})")
    else:
        _pattern(cmd, "ref", REF_RE)
    _date(cmd, "on")
    _text(cmd, "actor", 1, 128)
    if "note" in cmd:
        _text(cmd, "note", 0, 2000)

    if name == "register_household":
        _pattern(cmd, "region", REGION_RE)
        _integer(cmd, "members", 1, 30)
        _pattern(cmd, "family_card", DIGITS16_RE)
        _pattern(cmd, "head_nik", DIGITS16_RE)
        _text(cmd, "head_name", 1, 200)
    elif name == "register_veteran":
        _pattern(cmd, "region", REGION_RE)
        _pattern(cmd, "nik", DIGITS16_RE)
        _text(cmd, "name", 1, 200)
    elif name == "plan_cohort":
        _pattern(cmd, "region", REGION_RE)
        _pattern(cmd, "programme", PROGRAMME_RE)
        _integer(cmd, "capacity", 1, 10_000)
        if _date(cmd, "starts") > _date(cmd, "ends"):
            raise Malformed("'starts' must not be after 'ends'")
    elif name == "assess":
        present = [key for key in ("desil", "eligible") if key in cmd]
        if len(present) != 1:
            raise Malformed("assess must carry exactly one of 'desil' and 'eligible'")
        if "desil" in cmd:
            _integer(cmd, "desil", 1, 10)
        elif not isinstance(cmd["eligible"], bool):
            raise Malformed(f"'eligible' must be true or false (got {cmd['eligible']!r})")
    elif name in ("allocate", "disburse"):
        _pattern(cmd, "programme", PROGRAMME_RE)
        _integer(cmd, "amount", 1, MAX_AMOUNT)
        _pattern(cmd, "reference", REFERENCE_RE)
        if name == "allocate":
            _pattern(cmd, "period", PERIOD_RE)
        else:
            _choice(cmd, "channel", CHANNELS)
    elif name == "reverse":
        _pattern(cmd, "reference", REFERENCE_RE)
        _text(cmd, "reason", 1, 2000)
    elif name == "confirm":
        _pattern(cmd, "reference", REFERENCE_RE)
        _integer(cmd, "amount", 1, MAX_AMOUNT)
        _pattern(cmd, "channel_ref", REFERENCE_RE)
    elif name == "follow_up":
        _choice(cmd, "outcome", OUTCOMES)
    elif name == "enrol":
        _pattern(cmd, "cohort", REF_RE)
        _pattern(cmd, "household", REF_RE)
    elif name == "close":
        _choice(cmd, "reason", CLOSE_REASONS)
    elif name in ("withdraw", "forget"):
        _text(cmd, "reason", 1, 2000)
    elif name in ("define_programme", "amend_programme"):
        limit = cmd["desil_limit"]
        if limit is not None:
            _integer(cmd, "desil_limit", 1, 10)
        if name == "define_programme":
            _text(cmd, "name", 1, 200)
            kinds = cmd["recipients"]
            if (
                not isinstance(kinds, list)
                or not kinds
                or any(not isinstance(k, str) or k not in RECIPIENTS for k in kinds)
                or len(set(kinds)) != len(kinds)
            ):
                raise Malformed(f"'recipients' must be distinct kinds (got {kinds!r})")


def validate(cmd: Any) -> str | None:
    """Return why ``cmd`` is ``invalid``, or ``None`` when it is well formed."""
    try:
        _check(cmd)
    except Malformed as error:
        return str(error)
    return None


# ----------------------------------------------------------------------------- state


@dataclass
class Allocation:
    """One accepted ``allocate``."""

    programme: str
    amount: int
    reference: str
    on: date


@dataclass
class Disbursement:
    """One accepted ``disburse``; ``reversed_on`` is set by its ``reverse``."""

    programme: str
    amount: int
    reference: str
    on: date
    reversed_on: date | None = None
    channel: str = "cash"
    confirmed_on: date | None = None


@dataclass
class Subject:
    """Everything the model keeps about one ref, whatever its kind."""

    ref: str
    kind: str
    registered_on: date
    details: dict[str, Any] = field(default_factory=dict)
    #: Dates of the subject's own contacts except disbursements (the continuity rules).
    contacts: list[date] = field(default_factory=list)
    assessments: list[dict[str, Any]] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    disbursements: list[Disbursement] = field(default_factory=list)
    closed_on: date | None = None
    forgotten: bool = False
    #: Enrolments only: "active", "completed" or "withdrawn".
    status: str = "active"
    #: Households and veterans: ``on`` of every event but register, close, reverse,
    #: confirm and forget (what ``activity_after_close`` looks at, the findings rules).
    activity: list[date] = field(default_factory=list)

    def is_closed(self) -> bool:
        """Tell whether a household or veteran has been closed (or forgotten)."""
        return self.closed_on is not None or self.forgotten


def _covered(day: date, contacts: list[date], window: int) -> bool:
    """Tell whether some contact ``c`` has ``c <= day <= c + window - 1`` (the continuity rules)."""
    return any(c <= day <= c + timedelta(days=window - 1) for c in contacts)


def _day(text: str) -> date:
    """Return the date written ``YYYY-MM-DD`` in ``text``."""
    return date.fromisoformat(text)


class Model:
    """The ledger as plain Python: commands in, outcomes, balances and timelines out."""

    def __init__(self) -> None:
        """Start with an empty ledger."""
        self.subjects: dict[str, Subject] = {}
        self.accepted: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []

    # ----------------------------------------------------------------- commands

    def execute(self, line: str | bytes | dict[str, Any]) -> tuple[str, str | None]:
        """Apply one command and return ``(outcome, code)``.

        ``line`` is a raw JSON line or an already-parsed object. The outcome is
        ``"accepted"``, ``"duplicate"`` (same id and body as an accepted command) or
        ``"rejected"`` with the error code.
        """
        if isinstance(line, dict):
            cmd = line
        else:
            try:
                cmd = parse_line(line)
            except Malformed:
                return ("rejected", "invalid")
        if validate(cmd) is not None:
            return ("rejected", "invalid")
        earlier = self.accepted.get(cmd["id"])
        if earlier is not None:
            if earlier == cmd or self._erased_alike(earlier, cmd):
                return ("duplicate", None)
            return ("rejected", "id_conflict")
        code = self.broken_rule(cmd)
        if code is not None:
            return ("rejected", code)
        self._apply(cmd)
        self.accepted[cmd["id"]] = copy.deepcopy(cmd)
        self.log.append(copy.deepcopy(cmd))
        return ("accepted", None)

    def import_text(self, text: str) -> list[dict[str, Any]]:
        """Execute every non-blank line of a command file; one result per such line."""
        results = []
        for number, raw in enumerate(text.split("\n"), start=1):
            # A byte-order mark opening the file is not content.
            line = raw[1:] if number == 1 and raw.startswith("\ufeff") else raw
            if line.strip(" \t\r") == "":
                continue
            outcome, code = self.execute(line)
            results.append({"line": number, "outcome": outcome, "code": code})
        return results

    def broken_rule(self, cmd: dict[str, Any]) -> str | None:
        """Return the code of the first rule (after ``invalid``) ``cmd`` breaks, if any.

        ``cmd`` must be valid and not a duplicate; ``id_conflict`` is checked by
        :meth:`execute` before this.
        """
        checks = (
            ("unknown_subject", self._unknown_subject),
            ("already_registered", self._already_registered),
            ("not_applicable", self._not_applicable),
            ("closed", self._closed),
            ("not_closed", self._not_closed),
            ("before_registration", self._before_registration),
            ("not_eligible", self._not_eligible),
            ("insufficient_allocation", self._insufficient_allocation),
            ("duplicate_reference", self._duplicate_reference),
            ("unknown_reference", self._unknown_reference),
            ("already_reversed", self._already_reversed),
            ("already_confirmed", self._already_confirmed),
            ("amount_mismatch", self._amount_mismatch),
            ("cohort_full", self._cohort_full),
            ("already_enrolled", self._already_enrolled),
            ("outside_cohort_dates", self._outside_cohort_dates),
        )
        for code, broken in checks:
            if broken(cmd):
                return code
        return None

    # Each predicate below may assume the earlier ones passed: once unknown_subject and
    # already_registered have passed, a non-creating command's ref exists, and an
    # enrol's cohort and household exist while its ref does not.

    def _unknown_subject(self, cmd: dict[str, Any]) -> bool:
        """The ref (or an enrol's cohort/household) is not registered."""
        name = cmd["command"]
        if name == "enrol":
            return cmd["cohort"] not in self.subjects or cmd["household"] not in self.subjects
        if name in CREATING:
            return False
        return cmd["ref"] not in self.subjects

    def _already_registered(self, cmd: dict[str, Any]) -> bool:
        """A register/plan/enrol names a ref that exists."""
        return cmd["command"] in CREATING and cmd["ref"] in self.subjects

    def _not_applicable(self, cmd: dict[str, Any]) -> bool:
        """The command does not apply to the kind of subject it names."""
        name = cmd["command"]
        if name == "enrol":
            return (
                self.subjects[cmd["cohort"]].kind != "cohort"
                or self.subjects[cmd["household"]].kind != "household"
            )
        if name in CREATING:
            return False
        kind = self.subjects[cmd["ref"]].kind
        if kind not in APPLIES_TO[name]:
            return True
        if name == "assess":
            wanted = "desil" if kind == "household" else "eligible"
            return wanted not in cmd
        return False

    def _closed(self, cmd: dict[str, Any]) -> bool:
        """The subject (for enrol: the household) no longer accepts this command."""
        name = cmd["command"]
        if name == "enrol":
            return self.subjects[cmd["household"]].is_closed()
        if name in CREATING:
            return False
        subject = self.subjects[cmd["ref"]]
        if subject.kind in ("household", "veteran"):
            if subject.forgotten:
                return True
            return subject.is_closed() and name not in ("reverse", "confirm", "forget")
        if subject.kind == "enrolment":
            if subject.status == "withdrawn":
                return True
            return subject.status == "completed" and name != "follow_up"
        return False

    def _not_closed(self, cmd: dict[str, Any]) -> bool:
        """``forget`` of a subject that is still open."""
        return cmd["command"] == "forget" and not self.subjects[cmd["ref"]].is_closed()

    def _before_registration(self, cmd: dict[str, Any]) -> bool:
        """``on`` is earlier than the registration date of a subject it acts on."""
        name = cmd["command"]
        on = _day(cmd["on"])
        if name == "enrol":
            household = self.subjects[cmd["household"]]
            cohort = self.subjects[cmd["cohort"]]
            return on < household.registered_on or on < cohort.registered_on
        if name in CREATING:
            return False
        return on < self.subjects[cmd["ref"]].registered_on

    def rule_in_force(self, code: str, day: date) -> tuple[date, int | None] | None:
        """The ``(on, desil_limit)`` of programme ``code`` in force on ``day``, if any.

        The latest definition or amendment with ``on`` ≤ ``day``; among equal dates the
        one recorded later (``rules`` are kept in recorded order).
        """
        found = None
        for on, limit in self.subjects[code].details["rules"]:
            if on <= day and (found is None or on >= found[0]):
                found = (on, limit)
        return found

    def _not_eligible(self, cmd: dict[str, Any]) -> bool:
        """``allocate`` that the programme's rule in force (or the default rule) refuses."""
        if cmd["command"] != "allocate":
            return False
        subject = self.subjects[cmd["ref"]]
        programme = self.subjects.get(cmd["programme"])
        if programme is not None and programme.kind == "programme":
            return self._refused_by_programme(subject, programme, _day(cmd["on"]))
        if subject.kind == "cohort":
            return False
        if not subject.assessments:
            return True
        latest = subject.assessments[-1]
        if subject.kind == "household":
            return latest["desil"] > DESIL_LIMIT
        return latest["eligible"] is False

    def _refused_by_programme(self, subject: Subject, programme: Subject, day: date) -> bool:
        """Whether the defined ``programme``'s rule in force on ``day`` refuses ``subject``."""
        rule = self.rule_in_force(programme.ref, day)
        if rule is None or subject.kind not in programme.details["recipients"]:
            return True
        if subject.kind == "cohort":
            return False
        if not subject.assessments:
            return True
        latest = subject.assessments[-1]
        if subject.kind == "household":
            return rule[1] is not None and latest["desil"] > rule[1]
        return latest["eligible"] is False

    def _insufficient_allocation(self, cmd: dict[str, Any]) -> bool:
        """``disburse`` of more than the outstanding balance in that programme."""
        if cmd["command"] != "disburse":
            return False
        subject = self.subjects[cmd["ref"]]
        allocated, disbursed = self._sums(subject, cmd["programme"], None)
        return cmd["amount"] > allocated - disbursed

    def _duplicate_reference(self, cmd: dict[str, Any]) -> bool:
        """``allocate``/``disburse`` with a reference the subject has used already."""
        if cmd["command"] not in ("allocate", "disburse"):
            return False
        subject = self.subjects[cmd["ref"]]
        used = [a.reference for a in subject.allocations]
        used += [d.reference for d in subject.disbursements]
        return cmd["reference"] in used

    def _unknown_reference(self, cmd: dict[str, Any]) -> bool:
        """``reverse``/``confirm`` of a reference that is none of the subject's disbursements."""
        if cmd["command"] not in ("reverse", "confirm"):
            return False
        return self._disbursement(cmd) is None

    def _already_reversed(self, cmd: dict[str, Any]) -> bool:
        """``reverse``/``confirm`` of a disbursement that has been reversed."""
        if cmd["command"] not in ("reverse", "confirm"):
            return False
        disbursement = self._disbursement(cmd)
        return disbursement is not None and disbursement.reversed_on is not None

    def _already_confirmed(self, cmd: dict[str, Any]) -> bool:
        """``confirm`` of a disbursement that has been confirmed."""
        if cmd["command"] != "confirm":
            return False
        disbursement = self._disbursement(cmd)
        return disbursement is not None and disbursement.confirmed_on is not None

    def _amount_mismatch(self, cmd: dict[str, Any]) -> bool:
        """``confirm`` whose amount is not the disbursement's."""
        if cmd["command"] != "confirm":
            return False
        disbursement = self._disbursement(cmd)
        return disbursement is not None and disbursement.amount != cmd["amount"]

    def _cohort_full(self, cmd: dict[str, Any]) -> bool:
        """``enrol`` into a cohort whose not-withdrawn enrolments fill its capacity."""
        if cmd["command"] != "enrol":
            return False
        cohort = self.subjects[cmd["cohort"]]
        active = [e for e in self._enrolments(cohort=cohort.ref) if e.status != "withdrawn"]
        return len(active) >= cohort.details["capacity"]

    def _already_enrolled(self, cmd: dict[str, Any]) -> bool:
        """``enrol`` of a household with a not-withdrawn enrolment in the same cohort."""
        if cmd["command"] != "enrol":
            return False
        return any(
            e.details["household"] == cmd["household"] and e.status != "withdrawn"
            for e in self._enrolments(cohort=cmd["cohort"])
        )

    def _outside_cohort_dates(self, cmd: dict[str, Any]) -> bool:
        """``enrol`` after the cohort ends, ``attend``/``complete`` outside its dates."""
        name = cmd["command"]
        on = _day(cmd["on"])
        if name == "enrol":
            return on > self.subjects[cmd["cohort"]].details["ends"]
        if name in ("attend", "complete"):
            enrolment = self.subjects[cmd["ref"]]
            cohort = self.subjects[enrolment.details["cohort"]]
            return on < cohort.details["starts"] or on > cohort.details["ends"]
        return False

    # ------------------------------------------------------------------ helpers

    def _disbursement(self, cmd: dict[str, Any]) -> Disbursement | None:
        """Return the subject's disbursement named by ``cmd['reference']``, if any."""
        for disbursement in self.subjects[cmd["ref"]].disbursements:
            if disbursement.reference == cmd["reference"]:
                return disbursement
        return None

    def _enrolments(self, cohort: str | None = None, household: str | None = None) -> list[Subject]:
        """Return the enrolments, optionally of one cohort and/or one household."""
        return [
            s
            for s in self.subjects.values()
            if s.kind == "enrolment"
            and (cohort is None or s.details["cohort"] == cohort)
            and (household is None or s.details["household"] == household)
        ]

    @staticmethod
    def _sums(subject: Subject, programme: str, as_of: date | None) -> tuple[int, int]:
        """Return (allocated, disbursed not reversed) for one programme as of a date."""

        def counts(on: date) -> bool:
            return as_of is None or on <= as_of

        allocated = sum(
            a.amount for a in subject.allocations if a.programme == programme and counts(a.on)
        )
        disbursed = sum(
            d.amount
            for d in subject.disbursements
            if d.programme == programme
            and counts(d.on)
            and not (d.reversed_on is not None and counts(d.reversed_on))
        )
        return allocated, disbursed

    # --------------------------------------------------------------------- apply

    def _apply(self, cmd: dict[str, Any]) -> None:
        """Record the effect of an accepted command."""
        name = cmd["command"]
        on = _day(cmd["on"])
        ref = cmd["ref"]
        if name == "register_household":
            details = {
                k: cmd[k] for k in ("region", "members", "family_card", "head_nik", "head_name")
            }
            self.subjects[ref] = Subject(ref, "household", on, details, contacts=[on])
            return
        if name == "register_veteran":
            details = {k: cmd[k] for k in ("region", "nik", "name")}
            self.subjects[ref] = Subject(ref, "veteran", on, details, contacts=[on])
            return
        if name == "plan_cohort":
            details = {
                "region": cmd["region"],
                "programme": cmd["programme"],
                "capacity": cmd["capacity"],
                "starts": _day(cmd["starts"]),
                "ends": _day(cmd["ends"]),
            }
            self.subjects[ref] = Subject(ref, "cohort", on, details)
            return
        if name == "enrol":
            details = {"cohort": cmd["cohort"], "household": cmd["household"]}
            self.subjects[ref] = Subject(ref, "enrolment", on, details, contacts=[on])
            return
        if name == "define_programme":
            details = {
                "name": cmd["name"],
                "recipients": [k for k in RECIPIENTS if k in cmd["recipients"]],
                "rules": [(on, cmd["desil_limit"])],
            }
            self.subjects[ref] = Subject(ref, "programme", on, details)
            return
        subject = self.subjects[ref]
        if name in ("assess", "allocate", "disburse", "follow_up"):
            subject.activity.append(on)
        if name == "amend_programme":
            subject.details["rules"].append((on, cmd["desil_limit"]))
            return
        if name == "assess":
            subject.assessments.append({k: cmd[k] for k in ("desil", "eligible") if k in cmd})
            subject.contacts.append(on)
        elif name == "allocate":
            subject.allocations.append(
                Allocation(cmd["programme"], cmd["amount"], cmd["reference"], on)
            )
        elif name == "disburse":
            subject.disbursements.append(
                Disbursement(
                    cmd["programme"], cmd["amount"], cmd["reference"], on, channel=cmd["channel"]
                )
            )
        elif name == "reverse":
            disbursement = self._disbursement(cmd)
            assert disbursement is not None
            disbursement.reversed_on = on
        elif name == "confirm":
            # Not a contact (the continuity rules), and no change of balance (the reconciliation rules).
            disbursement = self._disbursement(cmd)
            assert disbursement is not None
            disbursement.confirmed_on = on
        elif name == "follow_up":
            if cmd["outcome"] != "not_found":
                subject.contacts.append(on)
        elif name == "attend":
            subject.contacts.append(on)
        elif name == "complete":
            subject.status = "completed"
            subject.contacts.append(on)
        elif name == "withdraw":
            subject.status = "withdrawn"
        elif name == "close":
            subject.closed_on = on
        elif name == "forget":
            subject.forgotten = True

    def _erased_alike(self, earlier: dict[str, Any], cmd: dict[str, Any]) -> bool:
        """Whether ``cmd`` is the forgotten subject's registration ``earlier`` but for PII.

        The personal data of a forgotten subject can no longer be compared.
        """
        fields = PII_OF_REGISTRATION.get(earlier["command"])
        if fields is None or not self.subjects[earlier["ref"]].forgotten:
            return False

        def public(body: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in body.items() if k not in fields}

        return public(earlier) == public(cmd)

    # ------------------------------------------------------------------ queries

    def show(self, ref: str) -> dict[str, Any] | None:
        """Return the subject's current state as plain data, or ``None`` if unknown."""
        subject = self.subjects.get(ref)
        if subject is None:
            return None
        state: dict[str, Any] = {
            "ref": subject.ref,
            "kind": subject.kind,
            "registered_on": subject.registered_on.isoformat(),
        }
        if subject.kind in ("household", "veteran"):
            pii = (
                ("family_card", "head_nik", "head_name")
                if subject.kind == "household"
                else ("nik", "name")
            )
            state["region"] = subject.details["region"]
            if subject.kind == "household":
                state["members"] = subject.details["members"]
            for key in pii:
                state[key] = None if subject.forgotten else subject.details[key]
            state["closed"] = subject.is_closed()
            state["closed_on"] = (
                None if subject.closed_on is None else subject.closed_on.isoformat()
            )
            state["forgotten"] = subject.forgotten
        elif subject.kind == "cohort":
            state.update(
                region=subject.details["region"],
                programme=subject.details["programme"],
                capacity=subject.details["capacity"],
                starts=subject.details["starts"].isoformat(),
                ends=subject.details["ends"].isoformat(),
                closed=False,
                forgotten=False,
            )
        elif subject.kind == "programme":
            state.update(
                name=subject.details["name"],
                recipients=list(subject.details["recipients"]),
                defined_on=subject.registered_on.isoformat(),
            )
        else:
            state.update(
                cohort=subject.details["cohort"],
                household=subject.details["household"],
                status=subject.status,
                closed=subject.status != "active",
                forgotten=False,
            )
        return state

    def programmes(self, as_of: date | None, today: date) -> list[dict[str, Any]]:
        """Return the programme rules's programme rows, sorted by code."""
        rows = []
        for ref in sorted(self.subjects):
            subject = self.subjects[ref]
            if subject.kind != "programme":
                continue
            if as_of is not None and subject.registered_on > as_of:
                continue
            day = today if as_of is None else as_of
            rule = self.rule_in_force(ref, day)
            # In force order: by on; sorted() is stable, so equal dates keep recorded order.
            rules = sorted(subject.details["rules"], key=lambda r: r[0])
            rows.append(
                {
                    "programme": ref,
                    "name": subject.details["name"],
                    "recipients": list(subject.details["recipients"]),
                    "desil_limit": None if rule is None else rule[1],
                    "defined_on": subject.registered_on.isoformat(),
                    "rules": [
                        {"on": on.isoformat(), "desil_limit": limit}
                        for on, limit in rules
                        if as_of is None or on <= as_of
                    ],
                }
            )
        return rows

    def balances(self, as_of: date | None = None) -> list[dict[str, Any]]:
        """Return the CLI contract's balance rows, sorted by ref then programme."""
        rows = []
        for ref in sorted(self.subjects):
            subject = self.subjects[ref]
            programmes = {
                a.programme for a in subject.allocations if as_of is None or a.on <= as_of
            }
            programmes |= {
                d.programme for d in subject.disbursements if as_of is None or d.on <= as_of
            }
            for programme in sorted(programmes):
                allocated, disbursed = self._sums(subject, programme, as_of)
                rows.append(
                    {
                        "ref": ref,
                        "kind": subject.kind,
                        "programme": programme,
                        "allocated": allocated,
                        "disbursed": disbursed,
                        "outstanding": allocated - disbursed,
                    }
                )
        return rows

    def contacts(self, ref: str, as_of: date) -> list[date]:
        """Return the contact dates of a household or veteran as of ``as_of`` (the continuity rules).

        Not yet cut at the window's end; :meth:`continuity` does that.
        """
        subject = self.subjects[ref]
        found = list(subject.contacts)
        found += [
            d.on for d in subject.disbursements if d.reversed_on is None or d.reversed_on > as_of
        ]
        if subject.kind == "household":
            for enrolment in self._enrolments(household=ref):
                found += enrolment.contacts
        return sorted(found)

    def continuity(self, as_of: date) -> list[dict[str, Any]]:
        """Return the CLI contract's continuity rows as of ``as_of``, computed day by day."""
        rows = []
        for ref in sorted(self.subjects):
            subject = self.subjects[ref]
            if subject.kind not in WINDOW_DAYS or subject.registered_on > as_of:
                continue
            window = WINDOW_DAYS[subject.kind]
            closed = subject.closed_on is not None and subject.closed_on <= as_of
            end = subject.closed_on if closed and subject.closed_on is not None else as_of
            contacts = [c for c in self.contacts(ref, as_of) if c <= end]

            days = []
            day = subject.registered_on
            while day <= end:
                days.append(day)
                day += timedelta(days=1)
            gaps: list[dict[str, Any]] = []
            run: list[date] = []
            for day in [*days, None]:
                if day is not None and not _covered(day, contacts, window):
                    run.append(day)
                    continue
                if run:
                    gaps.append(
                        {"from": run[0].isoformat(), "to": run[-1].isoformat(), "days": len(run)}
                    )
                    run = []
            total = len(days)
            covered_days = sum(1 for day in days if _covered(day, contacts, window))
            # Round the exact fraction half up to 4 places: floor(x * 10^4 + 1/2) / 10^4.
            coverage = Decimal(math.floor(Fraction(covered_days, total) * 10_000 + Fraction(1, 2)))
            coverage = coverage.scaleb(-4)
            if closed:
                status = "closed"
            elif _covered(as_of, contacts, window):
                status = "covered"
            else:
                status = "overdue"
            rows.append(
                {
                    "ref": ref,
                    "kind": subject.kind,
                    "window_days": window,
                    "registered_on": subject.registered_on.isoformat(),
                    "end_on": end.isoformat(),
                    "total_days": total,
                    "covered_days": covered_days,
                    "coverage": float(coverage),
                    "longest_gap_days": max((g["days"] for g in gaps), default=0),
                    "gaps": gaps,
                    "last_contact_on": max(contacts).isoformat() if contacts else None,
                    "status": status,
                }
            )
        return rows


# ------------------------------------------------------ findings, reconciliation (the findings rules and the reconciliation rules)

END_OF_TIME = date(9999, 12, 31)


def model_reconciliation(model: Model, as_of: date | None) -> list[dict[str, Any]]:
    """the reconciliation rules's rows, from the model's disbursements."""
    until = as_of or END_OF_TIME
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for subject in model.subjects.values():
        for d in subject.disbursements:
            if d.channel not in ("bank", "post") or d.on > until:
                continue
            if d.reversed_on is not None and d.reversed_on <= until:
                continue
            row = rows.setdefault(
                (d.programme, d.channel),
                {
                    "programme": d.programme,
                    "channel": d.channel,
                    "disbursed_count": 0,
                    "disbursed": 0,
                    "confirmed_count": 0,
                    "confirmed": 0,
                    "unconfirmed_count": 0,
                    "unconfirmed": 0,
                    "oldest_unconfirmed_on": None,
                },
            )
            row["disbursed_count"] += 1
            row["disbursed"] += d.amount
            if d.confirmed_on is not None and d.confirmed_on <= until:
                row["confirmed_count"] += 1
                row["confirmed"] += d.amount
            else:
                row["unconfirmed_count"] += 1
                row["unconfirmed"] += d.amount
                oldest = row["oldest_unconfirmed_on"]
                if oldest is None or d.on.isoformat() < oldest:
                    row["oldest_unconfirmed_on"] = d.on.isoformat()
    return [rows[key] for key in sorted(rows)]


def model_findings(model: Model, as_of: date | None, today: date) -> list[dict[str, Any]]:
    """the findings rules's findings but ``future_dated`` (the model has no recorded times).

    Each finding as ``{"code", "ref", "kind", "programme", "on", "related"}``, sorted by
    ref, code, on. Computed the slow way: the balance on every day of the range.
    """
    until = as_of or END_OF_TIME
    found: list[dict[str, Any]] = []

    def add(code: str, s: Subject, on: date, programme: str | None = None, related=()) -> None:
        found.append(
            {
                "code": code,
                "ref": s.ref,
                "kind": s.kind,
                "programme": programme,
                "on": on.isoformat(),
                "related": sorted(related),
            }
        )

    order = list(model.subjects)
    for position, ref in enumerate(order):
        s = model.subjects[ref]
        if s.registered_on > until:
            continue
        programmes = {a.programme for a in s.allocations} | {d.programme for d in s.disbursements}
        for programme in sorted(programmes):
            days = sorted(
                {a.on for a in s.allocations if a.programme == programme}
                | {d.on for d in s.disbursements if d.programme == programme}
                | {
                    d.reversed_on
                    for d in s.disbursements
                    if d.programme == programme and d.reversed_on is not None
                }
            )
            for day in days:
                if day > until:
                    break
                allocated, disbursed = Model._sums(s, programme, day)
                if allocated - disbursed < 0:
                    add("negative_balance", s, day, programme)
                    break
        closed = s.closed_on
        if closed is not None and closed <= until and any(closed < d <= until for d in s.activity):
            add("activity_after_close", s, closed)
        if s.kind in ("household", "veteran") and not s.forgotten:
            mine = s.details.get("head_nik") or s.details.get("nik")
            card = s.details.get("family_card")
            same_nik, same_card = [], []
            for other_ref in order[:position]:
                o = model.subjects[other_ref]
                if o.forgotten or o.kind not in ("household", "veteran"):
                    continue
                if o.registered_on > until:
                    continue
                if (o.details.get("head_nik") or o.details.get("nik")) == mine:
                    same_nik.append(o.ref)
                if card is not None and o.details.get("family_card") == card:
                    same_card.append(o.ref)
            if same_nik:
                add("shared_nik", s, s.registered_on, related=same_nik)
            if same_card:
                add("shared_family_card", s, s.registered_on, related=same_card)
        for d in s.disbursements:
            if d.channel not in ("bank", "post") or d.on > until:
                continue
            if d.reversed_on is not None and d.reversed_on <= until:
                continue
            if d.confirmed_on is not None and d.confirmed_on <= until:
                continue
            if (today - d.on).days > 30:
                add("unconfirmed_payment", s, d.on, d.programme)
    return sorted(found, key=lambda f: (f["ref"], f["code"], f["on"]))
