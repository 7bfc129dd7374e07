"""The verbs that read the projections: balances, continuity, roll-ups, rebuild and export."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from dinsos_ledger.cli.base import (
    State,
    echo_json,
    fail,
    handles_errors,
    open_ledger,
    parse_day,
    pass_state,
)
from dinsos_ledger.errors import StorageError
from dinsos_ledger.extras import MissingExtra, require_extra
from dinsos_ledger.i18n import N_
from dinsos_ledger.progress import Progress
from dinsos_ledger.projections.engine import DEFAULT_PAGE_SIZE, UnknownProjection
from dinsos_ledger.projections.export import FORMATS, export_events
from dinsos_ledger.projections.timeline import overdue_list
from dinsos_ledger.report.data import kecamatan_name

__all__ = ["register"]

F = TypeVar("F", bound=Callable[..., Any])


def _query_options(what: str) -> Callable[[F], F]:
    """``--as-of`` and ``--json``, shared by the reading verbs."""

    def decorate(func: F) -> F:
        func = click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")(func)
        return click.option(
            "--as-of",
            "as_of",
            metavar="DATE",
            callback=parse_day,
            help="Answer as of this business date, YYYY-MM-DD.",
        )(func)

    return decorate


def _money(amount: int) -> str:
    return f"{amount:,}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int]) -> None:
    """Print rows as aligned columns on stdout; ``right`` are the right-aligned columns."""
    cells = [[str(h) for h in headers]] + [
        ["" if value is None else str(value) for value in row] for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    for line in cells:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        click.echo("  ".join(parts).rstrip())


def _none_found(state: State, what: str) -> None:
    """Say on stderr that there is nothing to list, and what would make something appear."""
    if not state.quiet:
        click.echo(state.m(what), err=True)


@click.command("balances")
@_query_options("the balances")
@pass_state
@handles_errors
def balances(state: State, as_of: dt.date | None, as_json: bool) -> None:
    """Balances per subject and programme, sorted by ref then programme.

    allocated is the sum of the allocations, disbursed the sum of the disbursements not
    reversed, outstanding their difference. With --as-of only entries dated on or before
    DATE count, and a disbursement counts as reversed when reversed on or before DATE.
    """
    with open_ledger(state) as ledger:
        rows = ledger.projections.balances(as_of)
    if as_json:
        echo_json([row.to_json() for row in rows])
        return
    if not rows:
        _none_found(
            state, N_("no balances: nothing allocated or paid by that date (import commands first)")
        )
        return
    _table(
        ("ref", "kind", "programme", "allocated", "disbursed", "outstanding"),
        [
            (
                r.ref,
                r.kind,
                r.programme,
                _money(r.allocated),
                _money(r.disbursed),
                _money(r.outstanding),
            )
            for r in rows
        ],
        right=(3, 4, 5),
    )


@click.command("continuity")
@_query_options("the timelines")
@pass_state
@handles_errors
def continuity(state: State, as_of: dt.date | None, as_json: bool) -> None:
    """Service-continuity timelines of households and veterans, sorted by ref.

    A contact covers its day and the next days of the window (90 days for households,
    180 for veterans). The timeline runs from registration to DATE (default today), or
    to the close date when closed by then; gaps are the uncovered runs of days.
    """
    with open_ledger(state) as ledger:
        timelines = ledger.projections.continuity(as_of)
    if as_json:
        echo_json([t.to_json() for t in timelines])
        return
    if not timelines:
        _none_found(state, N_("no timelines: no household or veteran registered by that date"))
        return
    _table(
        (
            "ref",
            "kind",
            "registered",
            "end",
            "covered",
            "days",
            "coverage",
            "longest gap",
            "last contact",
            "status",
        ),
        [
            (
                t.ref,
                t.kind,
                t.registered_on,
                t.end_on,
                t.covered_days,
                t.total_days,
                f"{t.coverage:.2%}",
                t.longest_gap_days,
                t.last_contact_on,
                t.status,
            )
            for t in timelines
        ],
        right=(4, 5, 6, 7),
    )


@click.command("coverage")
@_query_options("the coverage")
@pass_state
@handles_errors
def coverage(state: State, as_of: dt.date | None, as_json: bool) -> None:
    """Continuity by kecamatan: subjects by status, covered and total days, coverage."""
    with open_ledger(state) as ledger:
        rows = ledger.projections.coverage_by_kecamatan(as_of)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        _none_found(state, N_("no timelines: no household or veteran registered by that date"))
        return
    _table(
        (
            "kecamatan",
            "subjects",
            "covered",
            "overdue",
            "closed",
            "covered days",
            "days",
            "coverage",
        ),
        [
            (
                kecamatan_name(r["kecamatan"]),
                r["subjects"],
                r["covered"],
                r["overdue"],
                r["closed"],
                _money(r["covered_days"]),
                _money(r["total_days"]),
                f"{r['coverage']:.2%}",
            )
            for r in rows
        ],
        right=(1, 2, 3, 4, 5, 6, 7),
    )


@click.command("overdue")
@_query_options("the overdue list")
@pass_state
@handles_errors
def overdue(state: State, as_of: dt.date | None, as_json: bool) -> None:
    """Households and veterans whose last contact's window has run out, longest first.

    days_overdue counts the uncovered days up to DATE (default today).
    """
    day = dt.date.today() if as_of is None else as_of
    with open_ledger(state) as ledger:
        pairs = list(ledger.projections.iter_continuity(day))
    rows = overdue_list((timeline for timeline, _ in pairs), day)
    if as_json:
        echo_json(rows)
        return
    regions = {timeline.ref: region for timeline, region in pairs}
    if not rows:
        _none_found(state, N_("no overdue subjects: every household and veteran is covered"))
        return
    _table(
        ("ref", "kind", "kecamatan", "last contact", "days overdue"),
        [
            (
                r["ref"],
                r["kind"],
                kecamatan_name(regions[r["ref"]]),
                r["last_contact_on"],
                r["days_overdue"],
            )
            for r in rows
        ],
        right=(4,),
    )


@click.command("outstanding")
@_query_options("the sums")
@pass_state
@handles_errors
def outstanding(state: State, as_of: dt.date | None, as_json: bool) -> None:
    """Balances summed by kecamatan and programme (subjects counted, rupiah summed)."""
    with open_ledger(state) as ledger:
        rows = ledger.projections.outstanding_by_kecamatan(as_of)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        _none_found(
            state, N_("no balances: nothing allocated or paid by that date (import commands first)")
        )
        return
    _table(
        ("kecamatan", "programme", "subjects", "allocated", "disbursed", "outstanding"),
        [
            (
                kecamatan_name(r["kecamatan"]),
                r["programme"],
                r["subjects"],
                _money(r["allocated"]),
                _money(r["disbursed"]),
                _money(r["outstanding"]),
            )
            for r in rows
        ],
        right=(2, 3, 4, 5),
    )


@click.command("rebuild")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--json", "as_json", is_flag=True, help="Print what was rebuilt as JSON.")
@click.option(
    "--page-size",
    type=click.IntRange(min=1),
    default=DEFAULT_PAGE_SIZE,
    show_default=True,
    help="Events applied per transaction (an interrupted rebuild keeps whole pages).",
)
@pass_state
@handles_errors
def rebuild(state: State, names: tuple[str, ...], as_json: bool, page_size: int) -> None:
    """Drop the named projections (default: all) and rebuild them from the first event.

    The built-in projections are subjects, money and contacts; installed plugins and those
    named with --projection are rebuilt the same way. The result equals the incrementally
    maintained one.
    """
    with open_ledger(state) as ledger:
        projections = ledger.projections
        projections.engine.page_size = page_size
        try:
            projections.engine.select(names or None)
        except UnknownProjection as e:
            fail(e.message)
        total = projections.engine.head()
        with (
            Progress(quiet=state.quiet) as bars,
            bars.stage(state.m("Rebuilding"), total=total) as stage,
        ):
            report = projections.rebuild(names or None, lambda done, _: stage.update(done))
    if as_json:
        echo_json({"rebuilt": list(report.names), "events": report.events})
        return
    click.echo(
        state.m("rebuilt {names} from {events} events").format(
            names=", ".join(report.names), events=state.m.number(report.events)
        )
    )


#: The format an OUT file's extension implies.
_EXTENSIONS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@click.command("export")
@click.argument("out", metavar="OUT")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="jsonl (one JSON object a line), csv (with a header) or parquet "
    "[default: from OUT's extension, .jsonl, .csv or .parquet].",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@pass_state
@handles_errors
def export(state: State, out: str, fmt: str | None, force: bool) -> None:
    """Write the full event log to OUT, one row per event, without personal data.

    Columns: position, ref, kind, event, on, recorded, actor, note, command_id, version
    and the event's non-personal fields (programme, amount, period, reference, channel,
    reason, outcome, desil, eligible, region, members, cohort, household, enrolment,
    capacity, starts, ends). OUT may be - (stdout) for jsonl and csv. An existing OUT is
    kept unless --force is given.
    """
    m = state.m
    if fmt is None:
        fmt = _EXTENSIONS.get(Path(out).suffix.lower()) if out != "-" else None
        if fmt is None:
            raise click.UsageError(
                m(
                    "cannot tell the format of {out}: give --format jsonl, csv or parquet, "
                    "or end the file name in .jsonl, .csv or .parquet"
                ).format(out=out)
            )
    if out == "-" and fmt == "parquet":
        fail(m("a Parquet export needs a file: give a path, not -"))
    if out != "-" and Path(out).exists() and not force:
        fail(
            m("{out} exists already: give another file name, or --force to replace it").format(
                out=out
            )
        )
    if fmt == "parquet":
        require_extra("parquet")
    with open_ledger(state) as ledger:
        total = ledger.projections.engine.head()
        try:
            with (
                Progress(quiet=state.quiet) as bars,
                bars.stage(m("Exporting"), total=total) as stage,
            ):
                target: Any = sys.stdout if out == "-" else Path(out)
                count = export_events(
                    ledger,
                    target,
                    fmt,  # type: ignore[arg-type]
                    progress=stage.update,
                )
        except ImportError:
            fail(MissingExtra("parquet").message)
            return
        except StorageError:
            raise  # reading the ledger failed: open_ledger reports it
        except OSError as e:
            fail(m("cannot write {out}: {reason}").format(out=out, reason=e.strerror or e))
            return
    if out != "-" and not state.quiet:
        click.echo(
            m.plural("exported {n} event to {out}", "exported {n} events to {out}", count).format(
                n=m.number(count), out=out
            ),
            err=True,
        )


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    for command in (balances, continuity, coverage, overdue, outstanding, rebuild, export):
        group.add_command(command)
