"""The ``dinsos-ledger`` command line: the only part of the package that prints or exits.

Exit status: 0 success, 1 the ledger refused something (rejects, failed verification),
2 usage or I/O error. JSON goes to stdout; progress and messages to stderr.
"""

from __future__ import annotations

from dinsos_ledger.cli import (
    audit_findings_verbs,
    audit_verbs,
    demo_verbs,
    follow_verbs,
    format_verbs,
    key_verbs,
    ledger_verbs,
    programme_verbs,
    projection_verbs,
)
from dinsos_ledger.cli.base import main

__all__ = ["main"]

ledger_verbs.register(main)
audit_verbs.register(main)
demo_verbs.register(main)
projection_verbs.register(main)
key_verbs.register(main)
audit_findings_verbs.register(main)
programme_verbs.register(main)
follow_verbs.register(main)
format_verbs.register(main)
