"""The command interchange format (SPEC section 3): parsing and validation at the edge.

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
    """Record that the payment channel credited an earlier disbursement (SPEC section 9)."""

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


_Parser = Callable[[Any], Any]


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


def _string(lo: int, hi: int) -> _Parser:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad(f"a string (got {_kind(value)})")
        if not lo <= len(value) <= hi:
            raise _Bad(f"{lo}–{hi} characters long (got {len(value)})")
        _storable(value)
        return value

    return parse


def _pattern(regex: re.Pattern[str], what: str, make: Callable[[str], Any] = str) -> _Parser:
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            raise _Bad(f"{what} (got {_kind(value)})")
        if regex.fullmatch(value) is None:
            raise _Bad(f"{what} (got {_shown(value)})")
        return make(value)

    return parse


def _digits16(value: Any) -> str:
    # Personal data: say what is wrong with its shape, never what it is.
    if not isinstance(value, str):
        raise _Bad(f"a string of 16 digits (got {_kind(value)})")
    if _DIGITS16_RE.fullmatch(value) is None:
        if not value.isascii() or not value.isdigit():
            raise _Bad(f"16 digits (got {len(value)} characters, not all digits)")
        raise _Bad(f"16 digits (got {len(value)})")
    return value


def _person_name(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"a string (got {_kind(value)})")
    # SPEC section 3 sets a length only (1–200 characters), as it does for ``actor``.
    if not 1 <= len(value) <= _NAME_MAX:
        raise _Bad(f"1–{_NAME_MAX} characters long (got {len(value)} characters)")
    _storable(value)
    return value


def _date(value: Any) -> date:
    if not isinstance(value, str):
        raise _Bad(f"a date YYYY-MM-DD (got {_kind(value)})")
    if _DATE_RE.fullmatch(value) is None:
        raise _Bad(f"a date YYYY-MM-DD (got {_shown(value)})")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Bad(f"a date that exists in the calendar (got {_shown(value)})") from None


def _integer(lo: int, hi: int) -> _Parser:
    def parse(value: Any) -> int:
        if type(value) is not int:
            raise _Bad(f"an integer {lo}–{hi} (got {_kind(value)})")
        if not lo <= value <= hi:
            raise _Bad(f"an integer {lo}–{hi} (got {value})")
        return value

    return parse


def _amount(value: Any) -> Rupiah:
    if type(value) is not int:
        raise _Bad(f"whole rupiah as a JSON integer (got {_kind(value)})")
    if not 0 < value <= MAX_AMOUNT:
        shown = value if abs(value) < 10**15 else f"a {len(str(abs(value)))}-digit number"
        raise _Bad(f"an integer from 1 to {MAX_AMOUNT} (got {shown})")
    return Rupiah(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"true or false (got {_kind(value)})")
    return value


def _choice(enum_cls: Any) -> _Parser:
    names = ", ".join(m.value for m in enum_cls)

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            raise _Bad(f"one of {names} (got {_kind(value)})")
        try:
            return enum_cls(value)
        except ValueError:
            raise _Bad(f"one of {names} (got {_shown(value)})") from None

    return parse


_REF = _pattern(REF_RE, "a ref of A-Z, 0-9 and '-' (2–64 characters)")
_REGION = _pattern(REGION_RE, "a village code NN.NN.NN.NNNN", RegionCode)
_PROGRAMME = _pattern(PROGRAMME_RE, "a programme code like PKH ([A-Z][A-Z0-9_]{1,31})", Programme)
_REFERENCE = _pattern(REFERENCE_RE, "a reference of letters, digits and ._:/- (≤128)", Reference)
# The channel's own transaction id has the shape of a reference (SPEC section 3).
_CHANNEL_REF = _pattern(
    REFERENCE_RE, "a channel transaction id of letters, digits and ._:/- (≤128)", Reference
)
_PERIOD = _pattern(PERIOD_RE, "a month YYYY-MM", Period)
_TEXT = _string(1, _REASON_MAX)

# -- programmes (SPEC section 10) ------------------------------------------------------------

_RECIPIENT_KINDS: Final = ("household", "veteran", "cohort")


def _recipients(value: Any) -> tuple[str, ...]:
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


def _desil_limit(value: Any) -> int | None:
    # null is a value here, not a missing field: the programme has no desil rule.
    if value is None:
        return None
    if type(value) is not int:
        raise _Bad(f"an integer 1–10 or null (got {_kind(value)})")
    if not 1 <= value <= 10:  # noqa: PLR2004 -- the desil scale of SPEC section 3
        raise _Bad(f"an integer 1–10 or null (got {value})")
    return value


_PROGRAMME_CODE = _pattern(PROGRAMME_RE, "a programme code like PKH ([A-Z][A-Z0-9_]{1,31})")


def _programme_ref(value: Any) -> str:
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

#: The command names of SPEC section 3, in its order.
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
