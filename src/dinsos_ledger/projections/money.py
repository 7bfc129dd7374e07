"""Balances per subject and programme (the balance rules), folded from allocations and payments.

Pure functions over value objects: no storage, no events. Amounts are whole rupiah as
``int`` throughout; nothing here ever produces a float.

Reading of "a row is listed when at least one allocation or disbursement counts": *counts*
is the as-of filter of the same paragraph (``on`` <= D; without an as-of date, everything
recorded). Reversal is a separate question, "counts as reversed", that only decides
whether the amount enters ``disbursed``. So a disbursement dated on or before D lists its
programme's row even when it was reversed on or before D; with nothing else in that
programme the row reads allocated 0, disbursed 0, outstanding 0, which shows the auditor
that a payment was made and taken back. A programme whose every allocation and
disbursement is dated after D has no row as of D.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import attrs

from dinsos_ledger import balances as rule
from dinsos_ledger.types import RegionCode

__all__ = [
    "Allocation",
    "BalanceRow",
    "Disbursement",
    "balances_for",
    "rollup_outstanding_by_kecamatan",
]


def _whole_rupiah(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int:
        msg = f"'{attribute.name}' must be whole rupiah as an integer (got {value!r})"
        raise TypeError(msg)


def _amount(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    _whole_rupiah(_, attribute, value)
    if value <= 0:
        msg = f"'{attribute.name}' must be greater than 0 (got {value})"
        raise ValueError(msg)


_date = attrs.validators.instance_of(dt.date)
_text = attrs.validators.instance_of(str)


@attrs.frozen
class Allocation:
    """An amount allocated to a subject in a programme on a business date."""

    on: dt.date = attrs.field(validator=_date)
    programme: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_amount)
    reference: str = attrs.field(validator=_text)


@attrs.frozen
class Disbursement:
    """An amount paid to a subject in a programme; ``reversed_on`` is its reversal's date."""

    on: dt.date = attrs.field(validator=_date)
    programme: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_amount)
    reference: str = attrs.field(validator=_text)
    reversed_on: dt.date | None = attrs.field(
        default=None, validator=attrs.validators.optional(_date)
    )

    def counts_on(self, as_of: dt.date | None) -> bool:
        """Whether this payment is recorded as of ``as_of`` (None: everything recorded)."""
        return rule.dated_by(self.on, as_of)

    def reversed_as_of(self, as_of: dt.date | None) -> bool:
        """Whether the payment counts as reversed as of ``as_of`` (None: reversed at all)."""
        return rule.reversed_by(self.reversed_on, as_of)


@attrs.frozen
class BalanceRow:
    """One subject's balance in one programme, in whole rupiah.

    ``outstanding`` is ``allocated - disbursed`` and may be negative as of a date when a
    payment is dated before its allocation (a finding for the auditor).
    """

    ref: str
    kind: str
    programme: str
    allocated: int = attrs.field(validator=_whole_rupiah)
    disbursed: int = attrs.field(validator=_whole_rupiah)
    outstanding: int = attrs.field(validator=_whole_rupiah)

    def to_json(self) -> dict[str, Any]:
        """Return the row as the ``balances`` verb prints it (the CLI contract)."""
        return {
            "ref": self.ref,
            "kind": self.kind,
            "programme": self.programme,
            "allocated": self.allocated,
            "disbursed": self.disbursed,
            "outstanding": self.outstanding,
        }


def balances_for(
    ref: str,
    kind: str,
    allocations: Iterable[Allocation],
    disbursements: Iterable[Disbursement],
    as_of: dt.date | None = None,
) -> list[BalanceRow]:
    """Return the subject's balance rows, sorted by programme (the balance rules).

    With ``as_of`` D only allocations and disbursements dated on or before D count, and a
    disbursement is left out of ``disbursed`` when reversed on or before D. Without it
    everything recorded counts and any reversal leaves a disbursement out. A programme has
    a row when at least one of its allocations or disbursements counts, reversed or not
    (see the module docstring).
    """
    allocated: dict[str, int] = {}
    disbursed: dict[str, int] = {}
    for allocation in allocations:
        if rule.allocation_counts(allocation.on, as_of):
            allocated[allocation.programme] = (
                allocated.get(allocation.programme, 0) + allocation.amount
            )
            disbursed.setdefault(allocation.programme, 0)
    for disbursement in disbursements:
        if not disbursement.counts_on(as_of):
            continue
        allocated.setdefault(disbursement.programme, 0)
        counts = rule.disbursement_counts(disbursement.on, disbursement.reversed_on, as_of)
        paid = disbursement.amount if counts else 0
        disbursed[disbursement.programme] = disbursed.get(disbursement.programme, 0) + paid
    return [
        BalanceRow(
            ref=ref,
            kind=kind,
            programme=programme,
            allocated=allocated[programme],
            disbursed=disbursed[programme],
            outstanding=allocated[programme] - disbursed[programme],
        )
        for programme in sorted(allocated)
    ]


def rollup_outstanding_by_kecamatan(
    rows_with_region: Iterable[tuple[BalanceRow, str]],
) -> list[dict[str, Any]]:
    """Sum balance rows per kecamatan and programme, sorted by kecamatan then programme.

    Each result is ``{"kecamatan", "programme", "subjects", "allocated", "disbursed",
    "outstanding"}``; ``kecamatan`` is the ``NN.NN.NN`` prefix of the subject's village
    code and ``subjects`` counts the rows summed. All sums are ``int``.
    """
    sums: dict[tuple[str, str], dict[str, int]] = {}
    for row, region in rows_with_region:
        key = (RegionCode(region).kecamatan, row.programme)
        total = sums.setdefault(
            key, {"subjects": 0, "allocated": 0, "disbursed": 0, "outstanding": 0}
        )
        total["subjects"] += 1
        total["allocated"] += row.allocated
        total["disbursed"] += row.disbursed
        total["outstanding"] += row.outstanding
    return [
        {"kecamatan": kecamatan, "programme": programme, **total}
        for (kecamatan, programme), total in sorted(sums.items())
    ]
