"""The programme: a benefit's eligibility rules over time, recorded as events.

A programme is a subject keyed by its code (``PKH``, ``BPNT``, ``TALI_ASIH`` …). Its
definition names it, lists the kinds of subject it reaches and sets a desil limit from its
``on``; each amendment sets a new limit from its own ``on``. An allocation of the programme
is decided by the rule in force on the allocation's business date (see
:mod:`dinsos_ledger.aggregates.rules`). A programme is never closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from dinsos_ledger.aggregates.base import Stamp, Subject
from dinsos_ledger.aggregates.rules import (
    RECIPIENT_KINDS,
    AllocationRule,
    RuleChange,
    in_force_order,
    rule_in_force,
)
from dinsos_ledger.errors import BeforeRegistration
from dinsos_ledger.types import Kind

__all__ = ["Programme"]


class Programme(Subject):
    """A programme's name, recipients and desil limits over time.

    ``changes`` holds its definition and amendments in recorded order (version order);
    ``recipients`` the kinds it reaches, in the order household, veteran, cohort.
    """

    kind: ClassVar[Kind] = Kind.PROGRAMME
    # Stored events and snapshots are a format: a change of shape raises these and adds an
    # upcast_vN_vN+1 (see Account.Allocated).
    class_version = 1

    if TYPE_CHECKING:
        name: str
        recipients: tuple[str, ...]
        changes: list[RuleChange]

    class Defined(Subject.Created):
        """The programme was defined: its name, recipients and desil limit from ``on``."""

        class_version = 1

        name: str
        recipients: tuple[str, ...]
        desil_limit: int | None

        def apply(self, aggregate: Any) -> None:
            """Set the programme's name, recipients and first rule."""
            Subject.Created.apply(self, aggregate)
            aggregate.name = self.name
            aggregate.recipients = tuple(self.recipients)
            aggregate.changes = [
                RuleChange(self.on, self.desil_limit, "define_programme", self.originator_version)
            ]

    class Amended(Subject.Event):
        """The programme's desil limit was changed from ``on``."""

        class_version = 1

        desil_limit: int | None

        def apply(self, aggregate: Any) -> None:
            """Add the rule change (kept in recorded order)."""
            aggregate.changes.append(
                RuleChange(self.on, self.desil_limit, "amend_programme", self.originator_version)
            )

    @classmethod
    def define(
        cls,
        stamp: Stamp,
        *,
        id: UUID,  # noqa: A002 -- eventsourcing's name for the aggregate id
        code: str,
        name: str,
        recipients: Sequence[str],
        desil_limit: int | None,
    ) -> Programme:
        """Define programme ``code`` (its aggregate id is derived from the code)."""
        wanted = set(recipients)
        programme: Programme = cls._create(
            cls.Defined,
            id=id,
            ref=code,
            name=name,
            recipients=tuple(kind for kind in RECIPIENT_KINDS if kind in wanted),
            desil_limit=desil_limit,
            **cls.stamp_kwargs(stamp),
        )
        return programme

    def check_not_before_registration(self, on: date) -> None:
        """Raise :class:`BeforeRegistration` when ``on`` precedes the definition."""
        if on < self.registered_on:
            msg = (
                f"'on' must not be before programme {self.ref}'s definition on "
                f"{self.registered_on.isoformat()} (got {on.isoformat()})"
            )
            raise BeforeRegistration(msg)

    def amend(self, stamp: Stamp, desil_limit: int | None) -> None:
        """Set a new desil limit, in force from the amendment's ``on``."""
        self.check_not_before_registration(stamp.on)
        self.trigger_event(self.Amended, desil_limit=desil_limit, **self.stamp_kwargs(stamp))

    @property
    def defined_on(self) -> date:
        """The business date of the definition (the first rule's ``on``)."""
        return self.registered_on

    def rule_on(self, day: date) -> AllocationRule:
        """The rule deciding an allocation dated ``day``.

        Before the definition that is the definition's rule, which is not yet in force
        (:meth:`AllocationRule.in_force_on` is False), so the allocation is refused.
        """
        change = rule_in_force(self.changes, day) or self.changes[0]
        return AllocationRule.of_change(change, self.recipients)

    def rules(self, as_of: date | None = None) -> list[RuleChange]:
        """The rule changes in force order, only those from ``as_of`` or before if given."""
        ordered = in_force_order(self.changes)
        return ordered if as_of is None else [c for c in ordered if c.on <= as_of]

    def summary(self, as_of: date | None, today: date) -> dict[str, Any] | None:
        """The programme as ``programmes --json`` lists it, ``None`` if defined after ``as_of``.

        ``desil_limit`` is the limit in force on ``as_of`` (default ``today``); with
        ``as_of`` only the rules in force from that date or earlier are listed.
        """
        if as_of is not None and self.defined_on > as_of:
            return None
        day = today if as_of is None else as_of
        current = rule_in_force(self.changes, day)
        return {
            "programme": self.ref,
            "name": self.name,
            "recipients": list(self.recipients),
            "desil_limit": None if current is None else current.desil_limit,
            "defined_on": self.defined_on.isoformat(),
            "rules": [
                {"on": c.on.isoformat(), "desil_limit": c.desil_limit} for c in self.rules(as_of)
            ],
        }

    def view(self) -> dict[str, Any]:
        """The programme's name, recipients and rules (with the events that set them)."""
        data = super().view()
        data.update(
            name=self.name,
            recipients=list(self.recipients),
            defined_on=self.defined_on.isoformat(),
            rules=[
                {
                    "on": c.on.isoformat(),
                    "desil_limit": c.desil_limit,
                    "source": c.source,
                    "version": c.version,
                }
                for c in self.rules()
            ],
        )
        return data
