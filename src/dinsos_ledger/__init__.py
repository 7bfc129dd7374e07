"""dinsos-ledger: an event-sourced ledger of social-service delivery for a Dinas Sosial.

Embed it through :class:`Ledger`::

    from dinsos_ledger import Ledger

    with Ledger("dinsos-ledger.sqlite") as ledger:
        outcome = ledger.execute({...})

Every refusal carries the error code (:class:`LedgerError.code`).
"""

from dinsos_ledger.application import Ledger, Outcome
from dinsos_ledger.errors import InvalidCommand, LedgerError, RuleViolation, StorageError

__all__ = ["InvalidCommand", "Ledger", "LedgerError", "Outcome", "RuleViolation", "StorageError"]
__version__ = "0.1.0"
