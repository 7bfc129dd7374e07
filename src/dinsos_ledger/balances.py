"""The as-of money rule of balances, written once: which entries count as of a date D.

For each subject and programme, ``allocated`` is the sum of its allocations, ``disbursed``
the sum of its disbursements that are not reversed, and ``outstanding`` their difference.
As of a date D:

- an **allocation counts** when its ``on`` ≤ D;
- a **disbursement counts** when its ``on`` ≤ D and it is not reversed by a reversal
  whose ``on`` ≤ D;
- a balance row is **listed** when at least one of its allocations or disbursements is
  dated on or before D (a disbursement reversed by D still lists its row).

Without an as-of date everything recorded counts and any reversal reverses. The same rule
decides whether a disbursement is still a contact of a continuity timeline.

Every place that sums money uses the functions below: the pure ones in Python (the
aggregates' balances, the report's monthly sums, :func:`dinsos_ledger.projections.money.
balances_for`), and :func:`disbursed_sql` / :func:`dated_sql` where the projection tables
are summed in SQL. A property test runs the SQL on both backends against the functions.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

__all__ = [
    "END_OF_TIME",
    "allocation_counts",
    "as_of_parameter",
    "dated_by",
    "dated_sql",
    "disbursed_sql",
    "disbursement_counts",
    "reversed_by",
    "reversed_sql",
]

#: Stands for "no as-of date" in SQL parameters: later than every business date accepted.
END_OF_TIME: Final = dt.date(9999, 12, 31)


def dated_by(on: dt.date, as_of: dt.date | None) -> bool:
    """Whether an entry dated ``on`` is on or before ``as_of`` (None: everything recorded)."""
    return as_of is None or on <= as_of


def reversed_by(reversed_on: dt.date | None, as_of: dt.date | None) -> bool:
    """Whether a disbursement reversed on ``reversed_on`` (None: never) counts as reversed."""
    return reversed_on is not None and (as_of is None or reversed_on <= as_of)


def allocation_counts(on: dt.date, as_of: dt.date | None) -> bool:
    """Whether an allocation dated ``on`` enters ``allocated`` as of ``as_of``."""
    return dated_by(on, as_of)


def disbursement_counts(on: dt.date, reversed_on: dt.date | None, as_of: dt.date | None) -> bool:
    """Whether a disbursement dated ``on`` (reversed on ``reversed_on``) enters ``disbursed``."""
    return dated_by(on, as_of) and not reversed_by(reversed_on, as_of)


# The SQL forms take the as-of date as a parameter (END_OF_TIME for "no as-of date"), one
# ``?`` per occurrence, and the column names of the table they are used on.


def dated_sql(on: str = "on_date") -> str:
    """SQL of :func:`dated_by` over column ``on``: one ``?``, the as-of date."""
    return f"{on} <= ?"


def reversed_sql(reversed_on: str = "reversed_on") -> str:
    """SQL of :func:`reversed_by` over column ``reversed_on``: one ``?``, the as-of date."""
    return f"({reversed_on} IS NOT NULL AND {reversed_on} <= ?)"


def disbursed_sql(on: str = "on_date", reversed_on: str = "reversed_on") -> str:
    """SQL of :func:`disbursement_counts`: two ``?``, the as-of date twice."""
    return f"({dated_sql(on)} AND NOT {reversed_sql(reversed_on)})"


def as_of_parameter(as_of: dt.date | None) -> dt.date:
    """The parameter the SQL forms take for ``as_of`` (None: everything recorded)."""
    return END_OF_TIME if as_of is None else as_of
