"""The aggregates of the ledger, one module each."""

from dinsos_ledger.aggregates.base import Stamp, Subject
from dinsos_ledger.aggregates.cohort import TrainingCohort
from dinsos_ledger.aggregates.enrolment import Enrolment
from dinsos_ledger.aggregates.household import Household
from dinsos_ledger.aggregates.programme import Programme
from dinsos_ledger.aggregates.veteran import Veteran

__all__ = [
    "Enrolment",
    "Household",
    "Programme",
    "Stamp",
    "Subject",
    "TrainingCohort",
    "Veteran",
]
