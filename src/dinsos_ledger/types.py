"""Value objects of the ledger: frozen, validated on construction, compared by value.

Each wraps one scalar and is stored as that scalar (see :mod:`dinsos_ledger.codec`), so the
stored JSON of an event reads like the command that caused it.
"""

from __future__ import annotations

import enum
import functools
import re
import uuid
from collections.abc import Callable
from typing import Any, Final, NewType

import attrs

__all__ = [
    "MAX_AMOUNT",
    "REF_NAMESPACE",
    "Channel",
    "CloseReason",
    "FollowUpOutcome",
    "Kind",
    "Period",
    "Programme",
    "Reference",
    "RegionCode",
    "Rupiah",
    "Sealed",
    "SubjectRef",
    "subject_id",
]

#: Largest amount one command may carry, in whole rupiah (the command format).
MAX_AMOUNT: Final = 10**12

#: Namespace of the aggregate ids derived from refs. Never change it: stored events name ids.
REF_NAMESPACE: Final = uuid.UUID("6a2f7d0e-2b0c-5c4e-9a51-64a8d1d5f0c3")

SubjectRef = NewType("SubjectRef", str)
"""The department's case number, ``^[A-Z0-9][A-Z0-9-]{1,63}$``; not personal data."""

REF_RE: Final = re.compile(r"[A-Z0-9][A-Z0-9-]{1,63}")
REGION_RE: Final = re.compile(r"[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}")
PROGRAMME_RE: Final = re.compile(r"[A-Z][A-Z0-9_]{1,31}")
REFERENCE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
PERIOD_RE: Final = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


@functools.lru_cache(maxsize=65_536)
def subject_id(ref: str) -> uuid.UUID:
    """Return the aggregate id of the subject with case number ``ref``.

    Derived from the ref alone (never from personal data), so every kind shares one id
    space and a ref is unique across kinds.
    """
    return uuid.uuid5(REF_NAMESPACE, ref)


@enum.unique
class Kind(enum.Enum):
    """The kinds of subject the ledger keeps (the subject kinds)."""

    HOUSEHOLD = "household"
    VETERAN = "veteran"
    COHORT = "cohort"
    ENROLMENT = "enrolment"
    PROGRAMME = "programme"


@enum.unique
class Channel(enum.Enum):
    """How a disbursement reached the beneficiary."""

    BANK = "bank"
    POST = "post"
    CASH = "cash"
    IN_KIND = "in_kind"


@enum.unique
class FollowUpOutcome(enum.Enum):
    """What a follow-up found; ``not_found`` is not a contact."""

    VISITED = "visited"
    PHONED = "phoned"
    REFERRED = "referred"
    RESOLVED = "resolved"
    NOT_FOUND = "not_found"


@enum.unique
class CloseReason(enum.Enum):
    """Why a household or veteran was closed."""

    GRADUATED = "graduated"
    MOVED = "moved"
    DECEASED = "deceased"
    DUPLICATE = "duplicate"
    OTHER = "other"


_Validator = Callable[[Any, "attrs.Attribute[str]", str], None]


def _matches(pattern: re.Pattern[str], what: str) -> _Validator:
    def check(_: object, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            msg = f"'{attribute.name}' must be {what} (got {value!r})"
            raise ValueError(msg)

    return check


@attrs.frozen(order=True)
class RegionCode:
    """A Kemendagri village code ``NN.NN.NN.NNNN``; its first 8 characters name the kecamatan."""

    code: str = attrs.field(validator=_matches(REGION_RE, "a village code NN.NN.NN.NNNN"))

    @property
    def kecamatan(self) -> str:
        """The kecamatan prefix ``NN.NN.NN``."""
        return self.code[:8]

    def __str__(self) -> str:
        return self.code


@attrs.frozen(order=True)
class Programme:
    """A benefit or service programme code such as ``PKH``, ``BPNT`` or ``TALI_ASIH``."""

    code: str = attrs.field(
        validator=_matches(PROGRAMME_RE, "an upper-case programme code like PKH")
    )

    def __str__(self) -> str:
        return self.code


@attrs.frozen(order=True)
class Reference:
    """The department's reference of an allocation or a disbursement (a voucher number)."""

    value: str = attrs.field(
        validator=_matches(REFERENCE_RE, "a reference of letters, digits and ._:/-")
    )

    def __str__(self) -> str:
        return self.value


@attrs.frozen(order=True)
class Period:
    """A budget month ``YYYY-MM``."""

    value: str = attrs.field(validator=_matches(PERIOD_RE, "a month YYYY-MM"))

    def __str__(self) -> str:
        return self.value


def _whole_rupiah(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int:
        msg = f"'{attribute.name}' must be whole rupiah as an integer (got {value!r})"
        raise TypeError(msg)
    if not 0 <= value <= MAX_AMOUNT:
        msg = f"'{attribute.name}' must be between 0 and {MAX_AMOUNT} (got {value})"
        raise ValueError(msg)


@attrs.frozen(order=True)
class Rupiah:
    """An amount of money in whole rupiah. The rupiah has no minor unit in use: never a float."""

    amount: int = attrs.field(validator=_whole_rupiah)

    def __add__(self, other: Rupiah) -> Rupiah:
        return Rupiah(self.amount + other.amount)

    def __int__(self) -> int:
        return self.amount


@attrs.frozen
class Sealed:
    """A personal-data field encrypted with its subject's data key (base64url text).

    It can be stored, copied and compared without the key; only
    :class:`dinsos_ledger.privacy.KeyRing` opens it, and not once the key is shredded.
    """

    token: str = attrs.field(validator=attrs.validators.instance_of(str), repr=False)

    def __repr__(self) -> str:  # never show even the ciphertext in logs
        return "Sealed(…)"
