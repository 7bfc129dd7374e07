"""The command interchange format: parsing and validation at the edge.

The format is documented in ``docs/commands.md`` and published as JSON Schema by
``dinsos-ledger schema``; both are generated from the tables of this module (:data:`FIELD_DOCS`
and the field types of each command), so they cannot drift from what is checked here.

:func:`parse_command` turns one decoded JSON object into a typed, frozen command or raises
:class:`~dinsos_ledger.errors.InvalidCommand` naming every field that is wrong and what was
expected. Messages never echo personal data (NIK, family-card number, names): for those
fields they say what is wrong with the value's shape, not what it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, Final, NotRequired, TypedDict

import attrs

from dinsos_ledger.errors import InvalidCommand, LedgerError
from dinsos_ledger.types import (
    MAX_AMOUNT,
    PERIOD_RE,
    PROGRAMME_RE,
    REF_RE,
    REFERENCE_RE,
    REGION_RE,
    Channel,
    CloseReason,
    FollowUpOutcome,
    Period,
    Programme,
    Reference,
    RegionCode,
    Rupiah,
)

__all__ = [
    "BODY_DIGEST_PURPOSE",
    "COMMAND_NAMES",
    "FIELD_DOCS",
    "PII_FIELDS",
    "PII_OF_COMMAND",
    "Allocate",
    "AllocateArgs",
    "AmendProgramme",
    "AmendProgrammeArgs",
    "Arguments",
    "Assess",
    "AssessArgs",
    "Attend",
    "AttendArgs",
    "Close",
    "CloseArgs",
    "Command",
    "CommandDefinition",
    "Complete",
    "CompleteArgs",
    "Confirm",
    "ConfirmArgs",
    "DefineProgramme",
    "DefineProgrammeArgs",
    "Disburse",
    "DisburseArgs",
    "Enrol",
    "EnrolArgs",
    "FieldDefinition",
    "FieldType",
    "FollowUp",
    "FollowUpArgs",
    "Forget",
    "ForgetArgs",
    "PlanCohort",
    "PlanCohortArgs",
    "Prepared",
    "RegisterHousehold",
    "RegisterHouseholdArgs",
    "RegisterVeteran",
    "RegisterVeteranArgs",
    "Reverse",
    "ReverseArgs",
    "Withdraw",
    "WithdrawArgs",
    "canonical_body",
    "definitions",
    "field_schema",
    "field_text",
    "json_schema",
    "parse_command",
    "pii_body",
    "prepare",
    "printable_id",
    "public_body",
]

#: Fields that hold personal data: never echoed, never stored in plain text.
PII_FIELDS: Final = frozenset({"family_card", "head_nik", "head_name", "nik", "name"})

_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_DIGITS16_RE: Final = re.compile(r"[0-9]{16}")
_REASON_MAX: Final = 2000
_NAME_MAX: Final = 200
# An offending value is quoted in a message up to this many characters.
_SHOWN_MAX: Final = 60


@attrs.frozen(kw_only=True)
class Command:
    """Fields every command has: idempotency key, subject, business date, actor, note."""

    id: str
    ref: str
    on: date
    actor: str
    note: str | None = None

    COMMAND: ClassVar[str] = ""


@attrs.frozen(kw_only=True)
class RegisterHousehold(Command):
    """Register a new household (keluarga)."""

    COMMAND: ClassVar[str] = "register_household"

    region: RegionCode
    members: int
    family_card: str = attrs.field(repr=False)
    head_nik: str = attrs.field(repr=False)
    head_name: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class RegisterVeteran(Command):
    """Register a new veteran."""

    COMMAND: ClassVar[str] = "register_veteran"

    region: RegionCode
    nik: str = attrs.field(repr=False)
    name: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class PlanCohort(Command):
    """Plan a new training cohort."""

    COMMAND: ClassVar[str] = "plan_cohort"

    region: RegionCode
    programme: Programme
    capacity: int
    starts: date
    ends: date


@attrs.frozen(kw_only=True)
class Assess(Command):
    """Assess a household (``desil``) or a veteran (``eligible``): exactly one is set."""

    COMMAND: ClassVar[str] = "assess"

    desil: int | None = None
    eligible: bool | None = None


@attrs.frozen(kw_only=True)
class Allocate(Command):
    """Allocate money to a household, veteran or cohort."""

    COMMAND: ClassVar[str] = "allocate"

    programme: Programme
    amount: Rupiah
    period: Period
    reference: Reference


@attrs.frozen(kw_only=True)
class Disburse(Command):
    """Pay money to a household, veteran or cohort."""

    COMMAND: ClassVar[str] = "disburse"

    programme: Programme
    amount: Rupiah
    reference: Reference
    channel: Channel


@attrs.frozen(kw_only=True)
class Reverse(Command):
    """Reverse an earlier disbursement."""

    COMMAND: ClassVar[str] = "reverse"

    reference: Reference
    reason: str


@attrs.frozen(kw_only=True)
class Confirm(Command):
    """Record that the payment channel credited an earlier disbursement."""

    COMMAND: ClassVar[str] = "confirm"

    reference: Reference
    amount: Rupiah
    channel_ref: Reference


@attrs.frozen(kw_only=True)
class FollowUp(Command):
    """Follow up a household, veteran or enrolment."""

    COMMAND: ClassVar[str] = "follow_up"

    outcome: FollowUpOutcome


@attrs.frozen(kw_only=True)
class Enrol(Command):
    """Enrol a household in a cohort; ``ref`` is the new enrolment's ref."""

    COMMAND: ClassVar[str] = "enrol"

    cohort: str
    household: str


@attrs.frozen(kw_only=True)
class Attend(Command):
    """Record attendance of an enrolment."""

    COMMAND: ClassVar[str] = "attend"


@attrs.frozen(kw_only=True)
class Complete(Command):
    """Record completion of an enrolment."""

    COMMAND: ClassVar[str] = "complete"


@attrs.frozen(kw_only=True)
class Withdraw(Command):
    """Withdraw an enrolment."""

    COMMAND: ClassVar[str] = "withdraw"

    reason: str


@attrs.frozen(kw_only=True)
class Close(Command):
    """Close a household's or veteran's case."""

    COMMAND: ClassVar[str] = "close"

    reason: CloseReason


@attrs.frozen(kw_only=True)
class Forget(Command):
    """Crypto-shred a closed household's or veteran's personal data."""

    COMMAND: ClassVar[str] = "forget"

    reason: str


@attrs.frozen(kw_only=True)
class DefineProgramme(Command):
    """Define a programme (``ref`` is its code): name, recipients, desil limit from ``on``."""

    COMMAND: ClassVar[str] = "define_programme"

    name: str
    recipients: tuple[str, ...]
    desil_limit: int | None


@attrs.frozen(kw_only=True)
class AmendProgramme(Command):
    """Change a programme's desil limit from ``on`` (``None``: no desil rule)."""

    COMMAND: ClassVar[str] = "amend_programme"

    desil_limit: int | None


# The keyword arguments of each command as Python callers give them (``Ledger.allocate(...)``
# and the other typed methods): plain strings and ints, dates as ``date`` or ISO text, ``id``
# optional (one is made up). ``parse_command`` validates them like a line of a file, and a
# test checks each one names exactly the fields of its command.


class Arguments(TypedDict):
    """The fields every command takes (``id`` optional: a fresh ``api-…`` id is made)."""

    ref: str
    on: date | str
    actor: str
    note: NotRequired[str | None]
    id: NotRequired[str | None]


class RegisterHouseholdArgs(Arguments):
    """Register a household; raises the rule's :class:`LedgerError` when refused."""

    region: str
    members: int
    family_card: str
    head_nik: str
    head_name: str


class RegisterVeteranArgs(Arguments):
    """Register a veteran."""

    region: str
    nik: str
    name: str


class PlanCohortArgs(Arguments):
    """Plan a training cohort."""

    region: str
    programme: str
    capacity: int
    starts: date | str
    ends: date | str


class AssessArgs(Arguments):
    """Assess a household (``desil``) or a veteran (``eligible``)."""

    desil: NotRequired[int | None]
    eligible: NotRequired[bool | None]


class AllocateArgs(Arguments):
    """Allocate money to a household, veteran or cohort."""

    programme: str
    amount: int
    period: str
    reference: str


class DisburseArgs(Arguments):
    """Pay money from the outstanding balance of a programme."""

    programme: str
    amount: int
    reference: str
    channel: str


class ReverseArgs(Arguments):
    """Reverse an earlier disbursement."""

    reference: str
    reason: str


class ConfirmArgs(Arguments):
    """Record that the payment channel credited an earlier disbursement."""

    reference: str
    amount: int
    channel_ref: str


class FollowUpArgs(Arguments):
    """Record a follow-up of a household, veteran or enrolment."""

    outcome: str


class EnrolArgs(Arguments):
    """Enrol a household in a cohort under a new enrolment ref."""

    cohort: str
    household: str


class AttendArgs(Arguments):
    """Record attendance of an enrolment."""


class CompleteArgs(Arguments):
    """Record completion of an enrolment."""


class WithdrawArgs(Arguments):
    """Withdraw an enrolment (its cohort seat is freed)."""

    reason: str


class CloseArgs(Arguments):
    """Close a household's or veteran's case."""

    reason: str


class ForgetArgs(Arguments):
    """Crypto-shred a closed subject's personal data."""

    reason: str


class DefineProgrammeArgs(Arguments):
    """Define programme ``ref`` (its code): who it reaches and its desil limit from ``on``.

    ``desil_limit`` ``None`` means no desil rule. Raises the rule's :class:`LedgerError`
    when refused.
    """

    name: str
    recipients: Sequence[str]
    desil_limit: int | None


class AmendProgrammeArgs(Arguments):
    """Change programme ``ref``'s desil limit from ``on`` (``None``: no desil rule)."""

    desil_limit: int | None


# A field parser returns the typed value or raises _Bad with what was expected.
class _Bad(Exception):
    pass


@attrs.frozen
class FieldType:
    """How one field is checked, described and published as JSON Schema.

    ``parse`` returns the typed value or raises; ``schema`` is the field's JSON Schema
    (draft 2020-12) and ``text`` its type and limits in words, for the command reference.
    Calling a field type parses.
    """

    parse: Callable[[Any], Any]
    schema: Mapping[str, Any]
    text: str

    def __call__(self, value: Any) -> Any:
        """Parse ``value``."""
        return self.parse(value)


_Parser = Callable[[Any], Any]


def field_schema(parser: _Parser) -> dict[str, Any]:
    """The JSON Schema of a field's parser (``{}``, anything, for a bare function)."""
    return dict(parser.schema) if isinstance(parser, FieldType) else {}


def field_text(parser: _Parser) -> str:
    """The type and limits of a field's parser in words (its docstring for a bare function)."""
    if isinstance(parser, FieldType):
        return parser.text
    return " ".join((parser.__doc__ or "see the description").split())


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction (a float)"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "…"


def _storable(value: str) -> None:
    # A NUL or a lone surrogate (possible through \u escapes) cannot be stored as UTF-8 text.
    if "\x00" in value:
        raise _Bad("text without NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad("valid Unicode text (got a lone surrogate)") from None


def _string(lo: int, hi: int) -> FieldType:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad(f"a string (got {_kind(value)})")
        if not lo <= len(value) <= hi:
            raise _Bad(f"{lo}–{hi} characters long (got {len(value)})")
        _storable(value)
        return value

    schema = {"type": "string", "minLength": lo, "maxLength": hi}
    return FieldType(parse, schema, f"string, {lo}–{hi:,} characters")


def _pattern(regex: re.Pattern[str], what: str, make: Callable[[str], Any] = str) -> FieldType:
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            raise _Bad(f"{what} (got {_kind(value)})")
        if regex.fullmatch(value) is None:
            raise _Bad(f"{what} (got {_shown(value)})")
        return make(value)

    # The module's patterns are matched whole (fullmatch); JSON Schema's are searched.
    schema = {"type": "string", "pattern": f"^{regex.pattern}$"}
    return FieldType(parse, schema, f"string matching `^{regex.pattern}$`")


def _parse_digits16(value: Any) -> str:
    # Personal data: say what is wrong with its shape, never what it is.
    if not isinstance(value, str):
        raise _Bad(f"a string of 16 digits (got {_kind(value)})")
    if _DIGITS16_RE.fullmatch(value) is None:
        if not value.isascii() or not value.isdigit():
            raise _Bad(f"16 digits (got {len(value)} characters, not all digits)")
        raise _Bad(f"16 digits (got {len(value)})")
    return value


_digits16: Final = FieldType(
    _parse_digits16, {"type": "string", "pattern": "^[0-9]{16}$"}, "string of 16 digits"
)


def _parse_person_name(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"a string (got {_kind(value)})")
    # The format sets a length only (1–200 characters), as it does for ``actor``.
    if not 1 <= len(value) <= _NAME_MAX:
        raise _Bad(f"1–{_NAME_MAX} characters long (got {len(value)} characters)")
    _storable(value)
    return value


_person_name: Final = FieldType(
    _parse_person_name,
    {"type": "string", "minLength": 1, "maxLength": _NAME_MAX},
    f"string, 1–{_NAME_MAX} characters",
)


def _parse_date(value: Any) -> date:
    if not isinstance(value, str):
        raise _Bad(f"a date YYYY-MM-DD (got {_kind(value)})")
    if _DATE_RE.fullmatch(value) is None:
        raise _Bad(f"a date YYYY-MM-DD (got {_shown(value)})")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Bad(f"a date that exists in the calendar (got {_shown(value)})") from None


_date: Final = FieldType(
    _parse_date,
    {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    "date `YYYY-MM-DD` that exists in the calendar",
)


def _integer(lo: int, hi: int) -> FieldType:
    def parse(value: Any) -> int:
        if type(value) is not int:
            raise _Bad(f"an integer {lo}–{hi} (got {_kind(value)})")
        if not lo <= value <= hi:
            raise _Bad(f"an integer {lo}–{hi} (got {value})")
        return value

    schema = {"type": "integer", "minimum": lo, "maximum": hi}
    return FieldType(parse, schema, f"integer, {lo:,}–{hi:,}")


def _parse_amount(value: Any) -> Rupiah:
    if type(value) is not int:
        raise _Bad(f"whole rupiah as a JSON integer (got {_kind(value)})")
    if not 0 < value <= MAX_AMOUNT:
        shown = value if abs(value) < 10**15 else f"a {len(str(abs(value)))}-digit number"
        raise _Bad(f"an integer from 1 to {MAX_AMOUNT} (got {shown})")
    return Rupiah(value)


_amount: Final = FieldType(
    _parse_amount,
    {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT},
    f"integer, whole rupiah, 1–{MAX_AMOUNT:,} (never a fraction)",
)


def _parse_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"true or false (got {_kind(value)})")
    return value


_boolean: Final = FieldType(_parse_boolean, {"type": "boolean"}, "boolean, `true` or `false`")


def _choice(enum_cls: Any) -> FieldType:
    values = [m.value for m in enum_cls]
    names = ", ".join(values)

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            raise _Bad(f"one of {names} (got {_kind(value)})")
        try:
            return enum_cls(value)
        except ValueError:
            raise _Bad(f"one of {names} (got {_shown(value)})") from None

    text = "one of " + ", ".join(f"`{v}`" for v in values)
    return FieldType(parse, {"type": "string", "enum": values}, text)


_REF = _pattern(REF_RE, "a ref of A-Z, 0-9 and '-' (2–64 characters)")
_REGION = _pattern(REGION_RE, "a village code NN.NN.NN.NNNN", RegionCode)
_PROGRAMME = _pattern(PROGRAMME_RE, "a programme code like PKH ([A-Z][A-Z0-9_]{1,31})", Programme)
_REFERENCE = _pattern(REFERENCE_RE, "a reference of letters, digits and ._:/- (≤128)", Reference)
# The channel's own transaction id has the shape of a reference (the command format).
_CHANNEL_REF = _pattern(
    REFERENCE_RE, "a channel transaction id of letters, digits and ._:/- (≤128)", Reference
)
_PERIOD = _pattern(PERIOD_RE, "a month YYYY-MM", Period)
_TEXT = _string(1, _REASON_MAX)

# -- programmes (the programme rules) --------------------------------------------------------

_RECIPIENT_KINDS: Final = ("household", "veteran", "cohort")


def _parse_recipients(value: Any) -> tuple[str, ...]:
    kinds = ", ".join(_RECIPIENT_KINDS)
    if not isinstance(value, list):
        raise _Bad(f"a non-empty array of kinds among {kinds} (got {_kind(value)})")
    if not value:
        raise _Bad(f"a non-empty array of kinds among {kinds} (got an empty array)")
    for item in value:
        if not isinstance(item, str) or item not in _RECIPIENT_KINDS:
            shown = _shown(item) if isinstance(item, str) else _kind(item)
            raise _Bad(f"an array of kinds among {kinds} (got {shown})")
    if len(set(value)) != len(value):
        raise _Bad(f"an array of distinct kinds (got {_shown(value)})")
    return tuple(value)


_recipients: Final = FieldType(
    _parse_recipients,
    {
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"enum": list(_RECIPIENT_KINDS)},
    },
    "non-empty array of distinct kinds among " + ", ".join(f"`{k}`" for k in _RECIPIENT_KINDS),
)


def _parse_desil_limit(value: Any) -> int | None:
    # null is a value here, not a missing field: the programme has no desil rule.
    if value is None:
        return None
    if type(value) is not int:
        raise _Bad(f"an integer 1–10 or null (got {_kind(value)})")
    if not 1 <= value <= 10:  # noqa: PLR2004 -- the desil scale of the command format
        raise _Bad(f"an integer 1–10 or null (got {value})")
    return value


_desil_limit: Final = FieldType(
    _parse_desil_limit,
    {"type": ["integer", "null"], "minimum": 1, "maximum": 10},
    "integer, 1–10, or `null`",
)

_PROGRAMME_CODE = _pattern(PROGRAMME_RE, "a programme code like PKH ([A-Z][A-Z0-9_]{1,31})")


def _parse_programme_ref(value: Any) -> str:
    # amend_programme names a subject that should be a programme: a programme code, or a
    # case number (a subject of another kind, which is then not_applicable).
    if isinstance(value, str) and (
        PROGRAMME_RE.fullmatch(value) is not None or REF_RE.fullmatch(value) is not None
    ):
        return value
    raise _Bad(
        "a programme code like PKH ([A-Z][A-Z0-9_]{1,31}) "
        f"(got {_shown(value) if isinstance(value, str) else _kind(value)})"
    )


_programme_ref: Final = FieldType(
    _parse_programme_ref,
    {
        "type": "string",
        "anyOf": [
            {"pattern": f"^{PROGRAMME_RE.pattern}$"},
            {"pattern": f"^{REF_RE.pattern}$"},
        ],
    },
    f"string matching `^{PROGRAMME_RE.pattern}$` (a programme code)",
)

_PROGRAMME_SPECS: Final[dict[str, tuple[type[Command], dict[str, _Parser], dict[str, _Parser]]]] = {
    "define_programme": (
        DefineProgramme,
        {
            "ref": _PROGRAMME_CODE,
            "name": _string(1, _NAME_MAX),
            "recipients": _recipients,
            "desil_limit": _desil_limit,
        },
        {},
    ),
    "amend_programme": (AmendProgramme, {"ref": _programme_ref, "desil_limit": _desil_limit}, {}),
}

_COMMON: Final[dict[str, _Parser]] = {
    "id": _string(1, 128),
    "command": _string(1, 64),
    "ref": _REF,
    "on": _date,
    "actor": _string(1, 128),
}

# name -> (class, required extra fields, optional extra fields)
_SPECS: Final[dict[str, tuple[type[Command], dict[str, _Parser], dict[str, _Parser]]]] = {
    "register_household": (
        RegisterHousehold,
        {
            "region": _REGION,
            "members": _integer(1, 30),
            "family_card": _digits16,
            "head_nik": _digits16,
            "head_name": _person_name,
        },
        {},
    ),
    "register_veteran": (
        RegisterVeteran,
        {"region": _REGION, "nik": _digits16, "name": _person_name},
        {},
    ),
    "plan_cohort": (
        PlanCohort,
        {
            "region": _REGION,
            "programme": _PROGRAMME,
            "capacity": _integer(1, 10_000),
            "starts": _date,
            "ends": _date,
        },
        {},
    ),
    "assess": (Assess, {}, {"desil": _integer(1, 10), "eligible": _boolean}),
    "allocate": (
        Allocate,
        {"programme": _PROGRAMME, "amount": _amount, "period": _PERIOD, "reference": _REFERENCE},
        {},
    ),
    "disburse": (
        Disburse,
        {
            "programme": _PROGRAMME,
            "amount": _amount,
            "reference": _REFERENCE,
            "channel": _choice(Channel),
        },
        {},
    ),
    "reverse": (Reverse, {"reference": _REFERENCE, "reason": _TEXT}, {}),
    "confirm": (
        Confirm,
        {"reference": _REFERENCE, "amount": _amount, "channel_ref": _CHANNEL_REF},
        {},
    ),
    "follow_up": (FollowUp, {"outcome": _choice(FollowUpOutcome)}, {}),
    "enrol": (Enrol, {"cohort": _REF, "household": _REF}, {}),
    "attend": (Attend, {}, {}),
    "complete": (Complete, {}, {}),
    "withdraw": (Withdraw, {"reason": _TEXT}, {}),
    "close": (Close, {"reason": _choice(CloseReason)}, {}),
    "forget": (Forget, {"reason": _TEXT}, {}),
    **_PROGRAMME_SPECS,
}

#: The command names, in the order of the command reference.
COMMAND_NAMES: Final = tuple(_SPECS)

_Plan = tuple[tuple[tuple[str, _Parser], ...], tuple[tuple[str, _Parser], ...], frozenset[str]]


def _plan(spec: tuple[type[Command], dict[str, _Parser], dict[str, _Parser]] | None) -> _Plan:
    # Worked out once per command name: which fields are required, which optional, and
    # which keys are known (so anything else is an unknown field).
    required = {k: v for k, v in _COMMON.items() if k != "command"}
    optional: dict[str, _Parser] = {"note": _string(0, 2000)}
    if spec is not None:
        required.update(spec[1])
        optional.update(spec[2])
    known = frozenset({"command", *required, *optional})
    return tuple(required.items()), tuple(optional.items()), known


_PLANS: Final[dict[str | None, _Plan]] = {
    None: _plan(None),
    **{name: _plan(spec) for name, spec in _SPECS.items()},
}


def parse_command(data: Any) -> Command:
    """Validate one decoded JSON value as a command and return it typed.

    Raises :class:`InvalidCommand` whose message lists each wrong field as
    ``'field' must be … (got …)``; ``field`` is the first one.
    """
    if not isinstance(data, Mapping):
        msg = f"a command must be a JSON object (got {_kind(data)})"
        raise InvalidCommand(msg)
    problems: list[tuple[str, str]] = []
    name = data.get("command")
    spec = _SPECS.get(name) if isinstance(name, str) else None
    if "command" not in data:
        problems.append(("command", "missing field 'command'"))
    elif spec is None:
        what = _shown(name) if isinstance(name, str) else _kind(name)
        problems.append(("command", f"'command' must be one of {', '.join(_SPECS)} (got {what})"))
    required, optional, known = _PLANS[name if spec is not None else None]
    values: dict[str, Any] = {}
    for field, parser in required:
        if field not in data:
            problems.append((field, f"missing field '{field}'"))
            continue
        try:
            values[field] = parser(data[field])
        except _Bad as bad:
            problems.append((field, f"'{field}' must be {bad}"))
    for field, parser in optional:
        if field in data:
            try:
                values[field] = parser(data[field])
            except _Bad as bad:
                problems.append((field, f"'{field}' must be {bad}"))
    if spec is not None and len(data) > len(values) + 1:
        unknown = sorted(key for key in data if key not in known)
        problems.extend((field, _unknown_field(field)) for field in unknown)
    if spec is not None and not problems:
        problems.extend(_cross_field_problems(spec[0].COMMAND, data, values))
    if problems:
        message = "; ".join(text for _, text in problems)
        raise InvalidCommand(message, field=problems[0][0])
    assert spec is not None
    return spec[0](**values)


_FIELD_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _unknown_field(key: str) -> str:
    # A key can carry personal data (a NIK sent as a field name): echo only names shaped
    # like field names.
    if _FIELD_NAME_RE.fullmatch(key):
        return f"unknown field '{key}'"
    return f"unknown field (a name of {len(key)} characters that is not a field name)"


def _cross_field_problems(
    name: str, data: Mapping[str, Any], values: Mapping[str, Any]
) -> list[tuple[str, str]]:
    if name == "assess" and ("desil" in data) == ("eligible" in data):
        return [("desil", "assess must carry exactly one of 'desil' (household) or 'eligible'")]
    if name == "plan_cohort" and values["starts"] > values["ends"]:
        return [
            (
                "ends",
                (
                    f"'ends' must not be before 'starts' {values['starts'].isoformat()} "
                    f"(got {values['ends'].isoformat()})"
                ),
            )
        ]
    return []


#: The purpose of the keyed digest of command bodies (see :func:`privacy.pii_digest`).
BODY_DIGEST_PURPOSE: Final = "command-body"
# A reject line repeats a command's id only when it is at most this long.
_SHOWN_ID_MAX: Final = 1000

Prepared = tuple[str | None, "Command | LedgerError", str]
"""A validated line: the id a reject may show, the typed command (or why it was refused)
and the keyed digest of its canonical body ("" when refused)."""


def prepare(
    raw: Mapping[str, Any] | LedgerError,
    digest: Callable[[bytes], str],
    legacy: Callable[[bytes], str] | None = None,
) -> Prepared:
    """Validate one decoded line and digest its body; never raises for bad input.

    ``digest`` keys the body without its personal data (:func:`public_body`): the personal
    data of a command is compared under the subject's own data key by the ledger (see
    :func:`pii_body`), so that once the subject is forgotten nothing can confirm it. With
    ``legacy`` (a ledger holding digests of whole bodies, from before that design) the
    digest is followed by ``|`` and the whole body's legacy digest.
    """
    if isinstance(raw, LedgerError):
        return (None, raw, "")
    shown_id = printable_id(raw.get("id") if isinstance(raw, Mapping) else None)
    try:
        command = parse_command(raw)
    except InvalidCommand as e:
        return (shown_id, e, "")
    digested = digest(canonical_body(public_body(raw)))
    if legacy is not None:
        digested += "|" + legacy(canonical_body(raw))
    return (shown_id, command, digested)


#: The personal-data fields of each command that carries any (``define_programme`` has a
#: ``name`` too, the programme's: that is not personal data).
PII_OF_COMMAND: Final[Mapping[str, tuple[str, ...]]] = {
    "register_household": ("family_card", "head_nik", "head_name"),
    "register_veteran": ("nik", "name"),
}


def public_body(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """The command without its personal-data fields (the whole command when it has none)."""
    name = raw.get("command")
    fields = PII_OF_COMMAND.get(name) if isinstance(name, str) else None
    if not fields:
        return raw
    return {key: value for key, value in raw.items() if key not in fields}


def pii_body(command: Command) -> bytes | None:
    """The canonical form of a command's personal data, or None when it carries none."""
    fields = PII_OF_COMMAND.get(command.COMMAND)
    if not fields:
        return None
    return canonical_body({field: getattr(command, field) for field in fields})


def printable_id(value: Any) -> str | None:
    """The line's id as a reject may show it: only a string that can be written back out."""
    if not isinstance(value, str) or "\x00" in value or len(value) > _SHOWN_ID_MAX:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


# One encoder for every body: building one per call cost as much as the encoding.
_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_body(data: Mapping[str, Any]) -> bytes:
    """The command's body in one canonical form: two bodies are identical when these are."""
    return _CANONICAL.encode(data).encode()


# -- the format as data: the command reference and the JSON Schema are made from this -------

#: What each field means, for the command reference; a ``command.field`` key overrides the
#: plain ``field`` one for that command. Types and limits come from the parsers themselves.
FIELD_DOCS: Final[dict[str, str]] = {
    "id": (
        "Unique per command: the idempotency key. The same `id` with the same body again is "
        "a duplicate (skipped); with another body it is refused (`id_conflict`)."
    ),
    "command": "The command's name.",
    "ref": "The subject the command acts on: the department's case number (not personal data).",
    "on": "Business date: the day the act took place (not the day it is recorded).",
    "actor": "Who did it, e.g. the officer's user name.",
    "note": "Free text (optional). Do not put personal data here.",
    "region": "Kemendagri village code `NN.NN.NN.NNNN` (Kutai Timur villages start `64.08.`).",
    "members": "Number of people in the household.",
    "family_card": "Family-card number (No. KK). Personal data: stored encrypted, never echoed.",
    "head_nik": "NIK of the head of household. Personal data: stored encrypted, never echoed.",
    "head_name": "Name of the head of household. Personal data: stored encrypted.",
    "nik": "The veteran's NIK. Personal data: stored encrypted, never echoed.",
    "name": "A name.",
    "register_veteran.name": "The veteran's name. Personal data: stored encrypted.",
    "define_programme.name": "The programme's name as staff know it (not personal data).",
    "programme": "Programme code, e.g. `PKH`, `BPNT`, `TALI_ASIH`, `PELATIHAN`.",
    "capacity": "The most active (not withdrawn) enrolments the cohort takes.",
    "starts": "First day of the cohort.",
    "ends": "Last day of the cohort, not before `starts`.",
    "desil": "Welfare decile of a household (1 = poorest); households are assessed with this.",
    "eligible": "Whether a veteran is eligible; veterans are assessed with this.",
    "amount": "The amount in whole rupiah (a JSON integer, never a fraction).",
    "period": "The month the allocation is for, `YYYY-MM`.",
    "reference": (
        "Your reference for this allocation or disbursement; unique per subject "
        "(`duplicate_reference`)."
    ),
    "reverse.reference": "The reference of an earlier disbursement of this subject.",
    "confirm.reference": "The reference of an earlier disbursement of this subject.",
    "channel": "How the money went: bank transfer, post office, cash, or in kind.",
    "channel_ref": "The payment channel's own transaction id for this payment.",
    "reason": "Why, in free text. Do not put personal data here.",
    "close.reason": "Why the case is closed.",
    "outcome": "What the follow-up found; `not_found` does not count as a contact.",
    "cohort": "The ref of the cohort the household joins.",
    "household": "The ref of the household that joins.",
    "recipients": "The kinds of subject the programme pays.",
    "desil_limit": "The highest desil the programme allocates to, or `null` for no desil rule.",
}

#: Rules between a command's fields that no single field states (for the reference).
CROSS_FIELD_RULES: Final[dict[str, str]] = {
    "assess": (
        "Exactly one of `desil` (household) or `eligible` (veteran); none or both is "
        "`invalid`, the wrong one for the subject's kind is `not_applicable`."
    ),
    "plan_cohort": "`ends` must not be before `starts` (`invalid`).",
}

# What JSON Schema can state of the cross-field rules (dates cannot be compared in it).
_CROSS_FIELD_SCHEMA: Final[dict[str, dict[str, Any]]] = {
    "assess": {"oneOf": [{"required": ["desil"]}, {"required": ["eligible"]}]},
}


@attrs.frozen
class FieldDefinition:
    """One field of one command: its name, whether it is required, its type and meaning."""

    name: str
    required: bool
    type: _Parser
    description: str

    @property
    def schema(self) -> dict[str, Any]:
        """The field's JSON Schema, with its description."""
        return {**field_schema(self.type), "description": self.description}

    @property
    def text(self) -> str:
        """The field's type and limits in words."""
        return field_text(self.type)


@attrs.frozen
class CommandDefinition:
    """One command of the format: name, class, summary, fields (common ones first), rule."""

    name: str
    cls: type[Command]
    fields: tuple[FieldDefinition, ...]
    rule: str | None

    @property
    def summary(self) -> str:
        """The first line of the command class's docstring."""
        return (self.cls.__doc__ or "").strip().splitlines()[0]


def _describe(command: str, field: str) -> str:
    return FIELD_DOCS.get(f"{command}.{field}") or FIELD_DOCS.get(field) or ""


def definitions() -> tuple[CommandDefinition, ...]:
    """Every command of the format in order, read from the tables the parser uses."""
    result = []
    for name, (cls, _, _) in _SPECS.items():
        required, optional, _known = _PLANS[name]
        fields = [FieldDefinition("command", True, _COMMON["command"], _describe(name, "command"))]
        fields += [FieldDefinition(f, True, t, _describe(name, f)) for f, t in required]
        fields += [FieldDefinition(f, False, t, _describe(name, f)) for f, t in optional]
        result.append(CommandDefinition(name, cls, tuple(fields), CROSS_FIELD_RULES.get(name)))
    return tuple(result)


#: The ``$id`` of the published schema (a name, not a place to fetch it from).
SCHEMA_ID: Final = "urn:dinsos-ledger:command"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one command line: a ``oneOf`` keyed by ``command``.

    It checks each field's type, format and limits and rejects unknown fields, so a form
    can refuse a line before sending it; the ledger's own rules (the subject exists, the
    balance suffices, ...) and what JSON Schema cannot say (``ends`` not before ``starts``,
    a date that exists, ``1.0`` versus ``1``) are checked on import.
    """
    variants = []
    for definition in definitions():
        properties: dict[str, Any] = {}
        for field in definition.fields:
            properties[field.name] = field.schema
        properties["command"] = {"const": definition.name, "description": definition.summary}
        variant: dict[str, Any] = {
            "title": definition.name,
            "type": "object",
            "properties": properties,
            "required": [f.name for f in definition.fields if f.required],
            "additionalProperties": False,
        }
        variant.update(_CROSS_FIELD_SCHEMA.get(definition.name, {}))
        variants.append(variant)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "dinsos-ledger command",
        "description": (
            "One line of a dinsos-ledger command file (JSON Lines, UTF-8). "
            "See docs/commands.md for the rules the ledger checks on import."
        ),
        "type": "object",
        "required": ["command"],
        "properties": {"command": {"enum": list(_SPECS)}},
        "oneOf": variants,
    }
