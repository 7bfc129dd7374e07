"""The as-of money rule is written once: its SQL forms agree with its Python form."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dinsos_ledger import balances as rule
from dinsos_ledger.application import Ledger

DAYS = st.dates(min_value=dt.date(2024, 12, 25), max_value=dt.date(2025, 1, 5))
ENTRY = st.tuples(DAYS, st.none() | DAYS, st.none() | DAYS)


def test_the_rule_reads_as_the_balances_section_says() -> None:
    """On D an allocation of D counts; a payment reversed on D does not, one reversed after does."""
    d = dt.date(2025, 1, 1)
    later = dt.date(2025, 1, 2)
    assert rule.allocation_counts(d, d)
    assert not rule.allocation_counts(later, d)
    assert rule.disbursement_counts(d, None, d)
    assert not rule.disbursement_counts(d, d, d)
    assert rule.disbursement_counts(d, later, d)
    assert not rule.disbursement_counts(d, later, None)
    assert rule.allocation_counts(later, None)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(ENTRY, min_size=1, max_size=20))
def test_the_sql_predicates_agree_with_the_functions_on_both_backends(
    ledger: Ledger, entries: list[tuple[dt.date, dt.date | None, dt.date | None]]
) -> None:
    """For any dates, the database decides 'dated by', 'reversed by' and 'counts' like Python."""
    cast = "" if ledger.projections.engine.dialect == "sqlite" else "CAST(? AS date)"
    value = cast or "?"
    rows = " UNION ALL ".join(
        f"SELECT {i} AS n, {value} AS on_date, {value} AS reversed_on, {value} AS day"
        for i in range(len(entries))
    )
    sql = (
        f"SELECT n, CASE WHEN {rule.dated_sql().replace('?', 'day')} THEN 1 ELSE 0 END, "
        f"CASE WHEN {rule.reversed_sql().replace('?', 'day')} THEN 1 ELSE 0 END, "
        f"CASE WHEN {rule.disbursed_sql().replace('?', 'day')} THEN 1 ELSE 0 END "
        f"FROM ({rows}) t ORDER BY n"
    )
    params = [
        v
        for on, reversed_on, as_of in entries
        for v in (on, reversed_on, rule.as_of_parameter(as_of))
    ]
    with ledger.projections.engine.reading() as reader:
        found = reader.all(sql, params)
    expected = [
        (
            i,
            int(rule.dated_by(on, as_of)),
            int(rule.reversed_by(reversed_on, as_of)),
            int(rule.disbursement_counts(on, reversed_on, as_of)),
        )
        for i, (on, reversed_on, as_of) in enumerate(entries)
    ]
    assert [tuple(int(x) for x in row) for row in found] == expected
