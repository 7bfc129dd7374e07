"""The questions the projections answer: balances, continuity, and their roll-ups.

:class:`Projections` is what ``ledger.projections`` returns. Every query first catches the
projections up (so an answer is never stale) and then reads inside one transaction, so the
tables it joins are seen at one moment. As-of answers come from the business dates stored
in the tables (the balance rules and the continuity rules), never from a rebuild.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from dinsos_ledger import balances as rule
from dinsos_ledger.findings import END_OF_TIME, Finding, today_in_wita
from dinsos_ledger.projections import audit_views
from dinsos_ledger.projections.builtin import ContactsProjection, MoneyProjection
from dinsos_ledger.projections.engine import (
    DEFAULT_PAGE_SIZE,
    Progress,
    Projection,
    ProjectionEngine,
    Reader,
    RebuildReport,
    SubjectsProjection,
    as_date,
)
from dinsos_ledger.projections.money import BalanceRow, rollup_outstanding_by_kecamatan
from dinsos_ledger.projections.registry import ProjectionPluginError, load, projections_for
from dinsos_ledger.projections.timeline import (
    Timeline,
    compute_timeline,
    overdue_list,
    rollup_by_kecamatan,
)

if TYPE_CHECKING:
    from dinsos_ledger.application import Ledger

__all__ = ["WINDOW_DAYS", "Projections"]

#: The continuity window W of each kind of subject that has a timeline (the subject kinds).
WINDOW_DAYS: Final = {"household": 90, "veteran": 180}

_SUBJECTS = SubjectsProjection.table
_MONEY = MoneyProjection.table
_CONTACTS = ContactsProjection.table


class Projections:
    """The ledger's read models: catch-up, rebuild and the documented queries.

    ``page_size`` is how many events are applied per transaction. Register your own
    :class:`~dinsos_ledger.projections.engine.Projection` subclasses with
    :meth:`register`; they share the tracking, catch-up and rebuild of the built-ins.
    """

    def __init__(self, ledger: Ledger, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.ledger = ledger
        # Built-in projections (findings and reconciliation among them), then the plugins
        # installed or named in the environment: one list, so catch-up, rebuild, follow
        # and verify treat them all alike.
        chosen = projections_for()
        try:
            self.engine = ProjectionEngine(ledger, chosen, page_size=page_size)
        except ProjectionPluginError:
            raise
        except ValueError as e:  # a plugin's name or table taken, or not an identifier
            raise ProjectionPluginError(f"cannot keep the projection plugins: {e}") from e

    # ------------------------------------------------------------ maintenance

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the projections, built-in first."""
        return self.engine.names

    def register(self, projection: Projection) -> None:
        """Add a custom projection; the next catch-up creates its tables and fills them."""
        self.engine.register(projection)

    def register_named(self, spec: str) -> Projection:
        """Add the projection named ``module:Class`` unless that class is registered already.

        Raises :class:`~dinsos_ledger.projections.registry.ProjectionPluginError` when it
        cannot be imported or is not a projection.
        """
        projection = load(spec, origin="--projection")
        for known in self.engine.projections:
            if type(known) is type(projection):
                return known
        try:
            self.engine.register(projection)
        except ValueError as e:
            raise ProjectionPluginError(f"cannot keep projection {spec}: {e}") from e
        return projection

    @property
    def registered(self) -> tuple[Projection, ...]:
        """Every projection of this ledger, in the order applied (subjects first).

        The one list that catch-up, ``rebuild``, ``follow`` and ``verify`` all use:
        built-in projections, installed plugins and those registered since.
        """
        return tuple(self.engine.projections)

    def close(self) -> None:
        """Close the projections' own database connection."""
        self.engine.close()

    def positions(self) -> dict[str, int]:
        """The position of the last event each projection has applied."""
        return self.engine.positions()

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply the events recorded since the last catch-up; return how many were applied."""
        return self.engine.catch_up(progress)

    def rebuild(
        self, names: Iterable[str] | None = None, progress: Progress | None = None
    ) -> RebuildReport:
        """Drop the named projections (default: all) and rebuild them from the first event.

        Raises :class:`~dinsos_ledger.projections.engine.UnknownProjection` for a name
        that is not registered.
        """
        return self.engine.rebuild(names, progress)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Catch up, then run a read-only query (``?`` placeholders) over the projection tables."""
        self.catch_up()
        with self.engine.reading() as reader:
            return reader.all(sql, params)

    # --------------------------------------------------------------- balances

    def balances(self, as_of: dt.date | None = None) -> list[BalanceRow]:
        """Balances per subject and programme (the balance rules), sorted by ref then programme.

        With ``as_of`` D only allocations and disbursements dated on or before D count, and
        a disbursement reversed on or before D does not count as disbursed.
        """
        return [row for row, _ in self._balances_with_region(as_of)]

    def outstanding_by_kecamatan(self, as_of: dt.date | None = None) -> list[dict[str, Any]]:
        """Balances summed per kecamatan and programme, sorted by kecamatan then programme."""
        return rollup_outstanding_by_kecamatan(self._balances_with_region(as_of))

    def _balances_with_region(self, as_of: dt.date | None) -> list[tuple[BalanceRow, str]]:
        self.catch_up()
        day = rule.as_of_parameter(as_of)
        # Grouping over the rows dated on or before D lists exactly the programmes in
        # which at least one allocation or disbursement counts (see dinsos_ledger.balances).
        sql = (
            "SELECT m.ref, m.kind, m.programme, s.region, "
            "CAST(SUM(CASE WHEN m.entry = 'allocation' THEN m.amount ELSE 0 END) AS BIGINT), "
            "CAST(SUM(CASE WHEN m.entry = 'disbursement' "
            f"AND {rule.disbursed_sql('m.on_date', 'm.reversed_on')} "
            "THEN m.amount ELSE 0 END) AS BIGINT) "
            f"FROM {_MONEY} m JOIN {_SUBJECTS} s ON s.ref = m.ref "
            f"WHERE {rule.dated_sql('m.on_date')} "
            "GROUP BY m.ref, m.kind, m.programme, s.region"
        )
        with self.engine.reading() as reader:
            rows = reader.all(sql, (day, day, day))
        found = [
            (
                BalanceRow(
                    ref=ref,
                    kind=kind,
                    programme=programme,
                    allocated=int(allocated),
                    disbursed=int(disbursed),
                    outstanding=int(allocated) - int(disbursed),
                ),
                region,
            )
            for ref, kind, programme, region, allocated, disbursed in rows
        ]
        found.sort(key=lambda item: (item[0].ref, item[0].programme))
        return found

    # ------------------------------------------------- findings, reconciliation

    def findings(self, as_of: dt.date | None = None) -> list[Finding]:
        """The audit findings of the findings rules, sorted by ref, code, then ``on``.

        With ``as_of`` D only events dated on or before D and subjects registered by D
        count; without it every event counts and D is today in WITA (UTC+8).
        """
        self.catch_up()
        until = END_OF_TIME if as_of is None else as_of
        today = today_in_wita() if as_of is None else as_of
        with self.engine.reading() as reader:
            return audit_views.findings(reader, until=until, today=today)

    def reconciliation(self, as_of: dt.date | None = None) -> list[audit_views.ReconciliationRow]:
        """Bank and post disbursements against confirmations (the reconciliation rules).

        Sorted by programme then channel; with ``as_of`` D only payments dated by D and
        not reversed by D count, and confirmations dated by D.
        """
        self.catch_up()
        until = END_OF_TIME if as_of is None else as_of
        with self.engine.reading() as reader:
            return audit_views.reconciliation(reader, until=until)

    def unconfirmed_payments(
        self, as_of: dt.date | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The oldest bank and post payments not confirmed by ``as_of``, oldest first."""
        self.catch_up()
        until = END_OF_TIME if as_of is None else as_of
        with self.engine.reading() as reader:
            return audit_views.oldest_unconfirmed(reader, until=until, limit=limit)

    # ------------------------------------------------------------- continuity

    def continuity(self, as_of: dt.date | None = None) -> list[Timeline]:
        """Timelines of the households and veterans registered by ``as_of`` (default today).

        Sorted by ref. Subjects registered after ``as_of`` have no timeline.
        """
        return [timeline for timeline, _ in self.iter_continuity(as_of)]

    def coverage_by_kecamatan(self, as_of: dt.date | None = None) -> list[dict[str, Any]]:
        """Continuity summed per kecamatan (subjects by status, covered and total days)."""
        return rollup_by_kecamatan(self.iter_continuity(as_of))

    def overdue(self, as_of: dt.date | None = None) -> list[dict[str, Any]]:
        """The overdue households and veterans, longest overdue first (then by ref)."""
        day = dt.date.today() if as_of is None else as_of
        return overdue_list((timeline for timeline, _ in self.iter_continuity(day)), day)

    def iter_continuity(self, as_of: dt.date | None = None) -> Iterator[tuple[Timeline, str]]:
        """Yield ``(timeline, region)`` in ref order, in bounded memory.

        Subjects and contacts are each read by one ordered query and merged, so a
        district's timelines never need one query per subject. The read transaction stays
        open until the iterator is exhausted or closed.
        """
        day = dt.date.today() if as_of is None else as_of
        self.catch_up()
        with self.engine.reading() as reader:
            yield from _timelines(reader, day)


def _timelines(reader: Reader, day: dt.date) -> Iterator[tuple[Timeline, str]]:
    order = ' COLLATE "C"' if reader.dialect == "postgres" else ""
    subjects = reader.stream(
        "SELECT ref, kind, region, registered_on, closed_on "
        f"FROM {_SUBJECTS} WHERE kind IN ('household', 'veteran') AND registered_on <= ? "
        f"ORDER BY ref{order}",
        (day,),
    )
    contacts = reader.stream(
        f"SELECT ref, on_date FROM {_CONTACTS} "
        f"WHERE {rule.dated_sql()} AND NOT {rule.reversed_sql()} "
        f"ORDER BY ref{order}, on_date",
        (day, day),
    )
    pending = next(contacts, None)
    for ref, kind, region, registered_on, closed_on in subjects:
        dates: list[dt.date] = []
        # Both streams are in byte order of ref, which is Python's order for ASCII refs.
        while pending is not None and pending[0] < ref:
            pending = next(contacts, None)
        while pending is not None and pending[0] == ref:
            found = as_date(pending[1])
            assert found is not None
            dates.append(found)
            pending = next(contacts, None)
        registered = as_date(registered_on)
        assert registered is not None
        timeline = compute_timeline(
            ref=ref,
            kind=kind,
            window_days=WINDOW_DAYS[kind],
            registered_on=registered,
            contacts=dates,
            as_of=day,
            closed_on=as_date(closed_on),
        )
        if timeline is not None:
            yield timeline, region
