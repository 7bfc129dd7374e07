"""Programmes' eligibility rules as values: the rule in force on a date, what decided an allocation.

A programme's rules are recorded in the ledger (``define_programme``, ``amend_programme``);
each becomes a :class:`RuleChange`. The rule in force on a business date D is that of the
latest change with ``on`` ≤ D, the later recorded among changes of the same date
(:func:`rule_in_force`). Every allocation's event records the rule it was decided by as an
:class:`AllocationRule`, with the desil or the eligibility it saw, so an auditor can tell
afterwards why it was accepted. A programme that was never defined has the default rule
(:meth:`AllocationRule.default`): households up to desil 4, veterans found eligible, cohorts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Final

import attrs

__all__ = [
    "DEFAULT_DESIL_LIMIT",
    "RECIPIENT_KINDS",
    "AllocationRule",
    "RuleChange",
    "in_force_order",
    "rule_in_force",
]

#: The highest desil that may receive an allocation of a programme that is not defined.
DEFAULT_DESIL_LIMIT: Final = 4

#: The kinds a programme may list among its recipients, in the order they are listed.
RECIPIENT_KINDS: Final = ("household", "veteran", "cohort")


@attrs.frozen
class RuleChange:
    """One ``define_programme`` or ``amend_programme``: the desil limit in force from ``on``.

    ``version`` is the programme's event that made the change (1 is its definition), which
    is also its place in recorded order; ``desil_limit`` ``None`` means no desil rule.
    """

    on: date
    desil_limit: int | None
    source: str
    version: int


def rule_in_force(changes: Iterable[RuleChange], day: date) -> RuleChange | None:
    """The change in force on ``day``: the latest with ``on`` ≤ ``day``.

    ``changes`` are in recorded order; among changes of the same ``on`` the one recorded
    later wins. ``None`` when ``day`` is before every change (before the definition).
    """
    found: RuleChange | None = None
    for change in changes:
        if change.on <= day and (found is None or change.on >= found.on):
            found = change
    return found


def in_force_order(changes: Iterable[RuleChange]) -> list[RuleChange]:
    """The changes in the order they come into force: by ``on``, then recorded order."""
    return sorted(changes, key=lambda change: (change.on, change.version))


def _kinds(value: Iterable[str]) -> tuple[str, ...]:
    wanted = set(value)
    return tuple(kind for kind in RECIPIENT_KINDS if kind in wanted)


@attrs.frozen
class AllocationRule:
    """The rule an allocation was decided by, as its ``Allocated`` event records it.

    ``source`` is ``default`` (the programme is not defined), ``define_programme`` or
    ``amend_programme``; ``on`` and ``programme_version`` name that definition or
    amendment (the programme subject's event; both ``None`` for the default rule).
    ``desil_limit`` is the limit in force (``None``: no desil rule) and ``recipients`` the
    kinds the programme reaches. ``desil`` (households) and ``eligible`` (veterans) are
    what the subject's latest assessment said when the allocation was decided.
    """

    source: str
    on: date | None
    programme_version: int | None
    desil_limit: int | None
    recipients: tuple[str, ...] = attrs.field(converter=_kinds)
    desil: int | None = None
    eligible: bool | None = None

    @classmethod
    def default(cls) -> AllocationRule:
        """The rule of a programme that is not defined (households up to desil 4)."""
        return cls("default", None, None, DEFAULT_DESIL_LIMIT, RECIPIENT_KINDS)

    @classmethod
    def of_change(cls, change: RuleChange, recipients: Sequence[str]) -> AllocationRule:
        """The rule a programme's ``change`` sets, for a programme reaching ``recipients``."""
        return cls(change.source, change.on, change.version, change.desil_limit, recipients)

    def in_force_on(self, day: date) -> bool:
        """Whether the rule is in force on ``day`` (the default rule always is)."""
        return self.on is None or self.on <= day

    def describe(self) -> str:
        """The rule in a few words, for messages: ``the rule in force from 2025-01-01``."""
        if self.on is None:
            return "the default rule"
        return f"the rule in force from {self.on.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON-ready data (as ``history`` and ``show`` print it)."""
        return {
            "source": self.source,
            "on": None if self.on is None else self.on.isoformat(),
            "programme_version": self.programme_version,
            "desil_limit": self.desil_limit,
            "recipients": list(self.recipients),
            "desil": self.desil,
            "eligible": self.eligible,
        }
