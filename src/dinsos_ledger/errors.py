"""Errors raised by the ledger, each carrying the error code it stands for.

The codes, in the order the rules are checked, are :data:`CODES`; docs/commands.md lists
them with these classes' docstrings.
"""

from __future__ import annotations

__all__ = [
    "CODES",
    "AlreadyConfirmed",
    "AlreadyEnrolled",
    "AlreadyRegistered",
    "AlreadyReversed",
    "AmountMismatch",
    "BeforeRegistration",
    "Closed",
    "CohortFull",
    "DuplicateReference",
    "IdConflict",
    "InsufficientAllocation",
    "InvalidCommand",
    "LedgerError",
    "NotApplicable",
    "NotClosed",
    "NotEligible",
    "OutsideCohortDates",
    "RuleViolation",
    "StorageError",
    "UnknownReference",
    "UnknownSubject",
    "UnknownVersion",
]


class LedgerError(Exception):
    """Raised when the ledger refuses something; ``code`` is the error code of the reject line."""

    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidCommand(LedgerError, ValueError):
    """Raised when a line is malformed JSON, or a field is missing, unknown or wrong.

    Wrong means of the wrong type, out of format or out of range.
    """

    code = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class IdConflict(LedgerError, ValueError):
    """Raised when a command reuses the id of an accepted command with another body."""

    code = "id_conflict"


class UnknownSubject(LedgerError, LookupError):
    """Raised when a command names a ref that is not registered.

    For ``enrol``: also when its ``cohort`` or ``household`` is not registered.
    """

    code = "unknown_subject"


class UnknownVersion(LedgerError, LookupError):
    """Raised when a subject is asked for as of a version it has not reached."""

    code = "unknown_version"


class RuleViolation(LedgerError, ValueError):
    """Raised when a well-formed command breaks one of the ledger's rules."""


class AlreadyRegistered(RuleViolation):
    """Raised when a register, plan or enrol command names a ref that exists."""

    code = "already_registered"


class NotApplicable(RuleViolation):
    """Raised when a command does not apply to the subject's kind."""

    code = "not_applicable"


class Closed(RuleViolation):
    """Raised when the subject is closed or forgotten, or the enrolment withdrawn or completed.

    For ``enrol`` the household is the subject checked.
    A completed enrolment still accepts ``follow_up``; a closed household or veteran still
    accepts ``reverse``, ``confirm`` and ``forget``; a forgotten one accepts nothing.
    """

    code = "closed"


class NotClosed(RuleViolation):
    """Raised when ``forget`` names a subject that has not been closed (close it first)."""

    code = "not_closed"


class BeforeRegistration(RuleViolation):
    """Raised when a command's business date is before the subject's registration.

    For ``enrol``: before the household's or the cohort's registration.
    """

    code = "before_registration"


class NotEligible(RuleViolation):
    """Raised when an allocation goes to a subject whose latest assessment does not allow it.

    A household's latest assessment is missing or above the programme's desil limit (4
    unless the programme sets its own); a veteran's is missing or not eligible.
    """

    code = "not_eligible"


class InsufficientAllocation(RuleViolation):
    """Raised when a disbursement exceeds the subject's outstanding balance in its programme."""

    code = "insufficient_allocation"


class DuplicateReference(RuleViolation):
    """Raised when an allocation or disbursement reuses a reference of the same subject."""

    code = "duplicate_reference"


class UnknownReference(RuleViolation):
    """Raised when a reversal or confirmation names no disbursement of the subject."""

    code = "unknown_reference"


class AlreadyReversed(RuleViolation):
    """Raised when a reversal or confirmation names a disbursement that is already reversed."""

    code = "already_reversed"


class AlreadyConfirmed(RuleViolation):
    """Raised when a confirmation names a disbursement that is already confirmed."""

    code = "already_confirmed"


class AmountMismatch(RuleViolation):
    """Raised when a confirmation's amount differs from the disbursement's amount."""

    code = "amount_mismatch"


class CohortFull(RuleViolation):
    """Raised when an enrolment would take a cohort past its capacity.

    Withdrawn enrolments do not take a seat.
    """

    code = "cohort_full"


class AlreadyEnrolled(RuleViolation):
    """Raised when a household already has an active enrolment in the cohort."""

    code = "already_enrolled"


class OutsideCohortDates(RuleViolation):
    """Raised when an enrolment, attendance or completion falls outside the cohort's dates.

    An enrolment may come before the cohort starts, not after it ends.
    """

    code = "outside_cohort_dates"


class StorageError(LedgerError, OSError):
    """Raised when the store cannot be opened or written (not a refusal of a command)."""

    code = "storage"


#: Every error code, in the order the rules are checked.
CODES: tuple[str, ...] = (
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
