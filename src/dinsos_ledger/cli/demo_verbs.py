"""The verbs that show the ledger to people: ``demo`` and ``report``."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
from dinsos_ledger.progress import Progress

if TYPE_CHECKING:  # the demo and the report load matplotlib: imported where used
    from dinsos_ledger.demo import DemoResult

__all__ = ["register"]


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default="demo",  # dinsos_ledger.demo.DEFAULT_DIR, not imported here (it loads matplotlib)
    show_default=True,
    help="Folder to build the demo in: created, or a previous demo's folder (its files are "
    "replaced). Any other non-empty folder is refused.",
)
@click.option(
    "--households",
    type=click.IntRange(0, 200_000),
    default=None,
    help="Number of households (default 600, with 40 veterans and 12 cohorts; veterans and "
    "cohorts keep that proportion).",
)
@click.option(
    "--seed", type=int, default=None, help="Seed of the scenario generator (default 2025)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@pass_state
@handles_errors
def demo(
    state: State, directory: Path, households: int | None, seed: int | None, as_json: bool
) -> None:
    """Build a realistic Kutai Timur ledger in a fresh local SQLite file and write the report.

    Generates the scenario's command file (2025-01-01 to today), imports it into
    DIR/dinsos-ledger.sqlite (refused lines to DIR/rejects.jsonl), builds the projections
    and writes DIR/report/index.html. The same seed, size and day give the same commands.
    The scenario holds some deliberate field-office mistakes; exit 0 when the ledger
    refused exactly those, 1 when it did not. The --db option is not used: the demo's
    ledger is always in DIR.
    """
    from dinsos_ledger.demo import DemoDirectoryError, run_demo

    try:
        with Progress(quiet=state.quiet) as progress:
            result = run_demo(directory, households=households, seed=seed, progress=progress)
    except DemoDirectoryError as e:
        fail(str(e))
        return
    except OSError as e:
        fail(f"cannot build the demo in {directory}: {e.strerror or e}")
        return
    if as_json:
        echo_json(result.to_json())
    if not state.quiet:
        _summary(result)
    if not result.rejects_match:
        for mismatch in result.mismatches[:20]:
            click.echo(f"mismatch: {mismatch}", err=True)
        fail("the ledger's rejects differ from the scenario's deliberate mistakes", 1)


def _summary(result: DemoResult) -> None:
    """The human summary on stderr: where everything is, and how the import went."""
    c, imported = result.config, result.imported
    expected = len(result.expected.expected_rejects)
    verdict = (
        f"all {expected} refused as expected"
        if result.rejects_match
        else f"{len(result.mismatches)} differences from the {expected} expected"
    )
    lines = [
        (
            f"Demo built in {result.seconds:.1f} s: seed {c.seed}, {c.households} households, "
            f"{c.veterans} veterans, {c.cohorts} cohorts, {c.start} to {c.end}."
        ),
        f"  commands  {result.scenario}  ({result.expected.lines:,} lines)",
        f"  ledger    {result.ledger}",
        f"  rejects   {result.rejects}",
        f"  report    {result.report}",
        (
            f"Imported {imported.accepted:,} accepted, {imported.duplicates:,} duplicates, "
            f"{imported.rejected:,} rejected: the scenario's deliberate mistakes, {verdict}."
        ),
        *(
            f"Reconciled the {channel} statement: {report.accepted:,} accepted, "
            f"{report.duplicates:,} duplicates, {report.rejected:,} rejected."
            for channel, report in result.reconciled.items()
        ),
        f"Open {result.report} in a browser, or ask the ledger, for example:",
        f"  {_program()} --db {result.ledger} overdue",
        f"  {_program()} --db {result.ledger} findings",
    ]
    click.echo("\n".join(lines), err=True)


def _program() -> str:
    """The command as it was typed (``.venv/bin/dinsos-ledger`` under ``make demo``)."""
    typed = Path(sys.argv[0]) if sys.argv else None
    return str(typed) if typed is not None and typed.name == "dinsos-ledger" else "dinsos-ledger"


@click.command("report")
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--as-of",
    "as_of",
    metavar="DATE",
    callback=parse_day,
    help="Report as of this business date, YYYY-MM-DD (default today).",
)
@pass_state
@handles_errors
def report(state: State, out_dir: Path, as_of: dt.date | None) -> None:
    """Write an HTML report with charts to OUT_DIR/index.html.

    One self-contained page that opens offline and reads on a phone: headline numbers,
    continuity coverage by kecamatan, the overdue list, timelines of sample households,
    balances and monthly disbursements by programme, and veterans' tali asih. It shows
    case numbers, never personal data.
    """
    from dinsos_ledger.report import write_report

    with (
        open_ledger(state) as ledger,
        Progress(quiet=state.quiet) as progress,
        progress.stage("Writing the report"),
    ):
        try:
            path = write_report(ledger, out_dir, as_of=as_of)
        except StorageError:
            raise  # reading the ledger failed: open_ledger reports it
        except OSError as e:
            fail(f"cannot write the report to {out_dir}: {e.strerror or e}")
            return
    if not state.quiet:
        click.echo(f"wrote {path}", err=True)


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(demo)
    group.add_command(report)
