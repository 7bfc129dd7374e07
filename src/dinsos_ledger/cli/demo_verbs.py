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
from dinsos_ledger.extras import require_extra
from dinsos_ledger.i18n import LANGUAGES, N_, Messages
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
    require_extra("report")
    from dinsos_ledger.demo import DemoDirectoryError, run_demo

    try:
        with Progress(quiet=state.quiet) as progress:
            result = run_demo(
                directory, households=households, seed=seed, progress=progress, lang=state.lang
            )
    except DemoDirectoryError as e:
        fail(str(e))
        return
    except OSError as e:
        fail(
            state.m("cannot build the demo in {folder}: {reason}").format(
                folder=directory, reason=e.strerror or e
            )
        )
        return
    if as_json:
        echo_json(result.to_json())
    if not state.quiet:
        _summary(result, state.m)
    if not result.rejects_match:
        for mismatch in result.mismatches[:20]:
            click.echo(f"mismatch: {mismatch}", err=True)
        fail("the ledger's rejects differ from the scenario's deliberate mistakes", 1)


def _summary(result: DemoResult, m: Messages) -> None:
    """The human summary on stderr: where everything is, how the import went, what next."""
    c, imported = result.config, result.imported
    expected = len(result.expected.expected_rejects)
    verdict = (
        m("all {n} refused as expected").format(n=m.number(expected))
        if result.rejects_match
        else m("{n} differences from the {expected} expected").format(
            n=m.number(len(result.mismatches)), expected=m.number(expected)
        )
    )
    lines = [
        m(
            "Demo built in {seconds} s: seed {seed}, {households} households, {veterans} "
            "veterans, {cohorts} cohorts, {start} to {end}."
        ).format(
            seconds=m.decimal(result.seconds),
            seed=c.seed,
            households=m.number(c.households),
            veterans=m.number(c.veterans),
            cohorts=m.number(c.cohorts),
            start=m.date(c.start),
            end=m.date(c.end),
        ),
        "  "
        + m("commands  {path}  ({lines} lines)").format(
            path=result.scenario, lines=m.number(result.expected.lines)
        ),
        "  " + m("ledger    {path}").format(path=result.ledger),
        "  " + m("rejects   {path}").format(path=result.rejects),
        "  " + m("report    {path}").format(path=result.report),
        m(
            "Imported: {accepted} accepted, {duplicates} duplicates, {rejected} rejected: "
            "the scenario's deliberate mistakes, {verdict}."
        ).format(
            accepted=m.number(imported.accepted),
            duplicates=m.number(imported.duplicates),
            rejected=m.number(imported.rejected),
            verdict=verdict,
        ),
        *(
            m(
                "Reconciled the {channel} statement: {accepted} accepted, {duplicates} "
                "duplicates, {rejected} rejected."
            ).format(
                channel=m(channel),
                accepted=m.number(report.accepted),
                duplicates=m.number(report.duplicates),
                rejected=m.number(report.rejected),
            )
            for channel, report in result.reconciled.items()
        ),
        m("Next: open {report} in a browser, or ask the ledger, for example:").format(
            report=result.report
        ),
        f"  {_program()} --db {result.ledger} overdue",
        f"  {_program()} --db {result.ledger} findings",
    ]
    click.echo("\n".join(lines), err=True)


# The payment channels, as the demo's summary names them (marked for the catalogue).
_CHANNELS = (N_("bank"), N_("post"))


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
@click.option(
    "--lang",
    "lang",
    type=click.Choice(LANGUAGES, case_sensitive=False),
    default=None,
    help="Language of the report: id (Indonesian, the default) or en "
    "(default: the --lang before the verb, or $DINSOS_LEDGER_LANG).",
)
@pass_state
@handles_errors
def report(state: State, out_dir: Path, as_of: dt.date | None, lang: str | None) -> None:
    """Write an HTML report with charts to OUT_DIR/index.html.

    One self-contained page that opens offline and reads on a phone: headline numbers,
    continuity coverage by kecamatan, the overdue list, timelines of sample households,
    balances and monthly disbursements by programme, and veterans' tali asih. It shows
    case numbers, never personal data. Indonesian by default, English with --lang en.
    """
    require_extra("report")
    from dinsos_ledger.report import write_report

    m = state.m
    with (
        open_ledger(state) as ledger,
        Progress(quiet=state.quiet) as progress,
        progress.stage(m("Writing the report")),
    ):
        try:
            path = write_report(ledger, out_dir, as_of=as_of, lang=lang or state.lang)
        except StorageError:
            raise  # reading the ledger failed: open_ledger reports it
        except OSError as e:
            fail(
                m("cannot write the report to {folder}: {reason}").format(
                    folder=out_dir, reason=e.strerror or e
                )
            )
            return
    if not state.quiet:
        click.echo(m("wrote {path}: open it in a browser").format(path=path), err=True)


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(demo)
    group.add_command(report)
