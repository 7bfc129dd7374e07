"""The verbs of findings and reconciliation: ``findings``, ``reconcile``, ``reconciliation``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import IO

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
from dinsos_ledger.importer import Reject
from dinsos_ledger.reconcile import CHANNELS, StatementError, load_statement, reconcile_statement

__all__ = ["register"]

_AS_OF_HELP = "Answer as of this business date, YYYY-MM-DD."


@click.command("findings")
@click.option("--as-of", "as_of", metavar="DATE", callback=parse_day, help=_AS_OF_HELP)
@click.option("--strict", is_flag=True, help="Exit 1 when there is any finding.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@pass_state
@handles_errors
def findings(state: State, as_of: dt.date | None, strict: bool, as_json: bool) -> None:
    """Audit findings, sorted by ref, code, then date.

    negative_balance, activity_after_close, future_dated, shared_nik,
    shared_family_card and unconfirmed_payment (see the auditors' guide). With --as-of
    only events dated on or before DATE and subjects registered by DATE count; without
    it every event counts and "today" is today in WITA (UTC+8). Findings never block an
    import; --strict exits 1 when there is any.
    """
    with open_ledger(state) as ledger:
        found = ledger.projections.findings(as_of)
    if as_json:
        echo_json([f.to_json() for f in found])
    elif not found:
        if not state.quiet:
            click.echo("no findings", err=True)
    else:
        for f in found:
            programme = f" {f.programme}" if f.programme else ""
            click.echo(f"{f.ref}: {f.code}{programme} {f.on.isoformat()}: {f.message}")
    sys.exit(1 if strict and found else 0)


@click.command("reconciliation")
@click.option("--as-of", "as_of", metavar="DATE", callback=parse_day, help=_AS_OF_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@pass_state
@handles_errors
def reconciliation(state: State, as_of: dt.date | None, as_json: bool) -> None:
    """Bank and post disbursements against the channels' confirmations.

    One row per programme and channel: disbursed (not reversed), confirmed and
    unconfirmed counts and rupiah, and the oldest unconfirmed payment's date. With
    --as-of only payments and confirmations dated on or before DATE count.
    """
    with open_ledger(state) as ledger:
        rows = ledger.projections.reconciliation(as_of)
    if as_json:
        echo_json([row.to_json() for row in rows])
        return
    if not rows:
        if not state.quiet:
            click.echo("no bank or post disbursements", err=True)
        return
    headers = ("programme", "channel", "disbursed", "confirmed", "unconfirmed", "oldest")
    cells = [list(headers)] + [
        [
            r.programme,
            r.channel,
            f"{r.disbursed_count} / {r.disbursed:,}",
            f"{r.confirmed_count} / {r.confirmed:,}",
            f"{r.unconfirmed_count} / {r.unconfirmed:,}",
            "" if r.oldest_unconfirmed_on is None else r.oldest_unconfirmed_on.isoformat(),
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    for line in cells:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


@click.command("reconcile")
@click.argument("statement", type=click.Path(path_type=Path))
@click.option(
    "--channel", required=True, type=click.Choice(CHANNELS), help="Who sent the statement."
)
@click.option("--actor", required=True, help="Who reconciles (recorded on every command).")
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write rejected rows here as JSON lines (default: stderr as file:line: code: message).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@pass_state
@handles_errors
def reconcile(
    state: State,
    statement: Path,
    channel: str,
    actor: str,
    rejects_path: Path | None,
    as_json: bool,
) -> None:
    """Apply a payment channel's STATEMENT (CSV) as confirm and reverse commands.

    Columns channel_ref,reference,ref,amount,status,date (others are ignored): a
    credited row confirms the disbursement, a returned row reverses it ("returned by
    CHANNEL"). Command ids are CHANNEL:channel_ref:status, so a statement can be run
    again safely. Rejected rows are reported with their line numbers, as import does.
    Exit 0 when nothing was rejected, 1 when something was.
    """
    if not statement.is_file():
        fail(f"cannot read {statement}: no such file")
    # Read the whole statement first: one that is not a statement creates no ledger.
    try:
        rows = load_statement(statement, channel=channel, actor=actor)
    except StatementError as e:
        fail(f"{statement}: {e.message}")
    except OSError as e:
        fail(f"cannot read {statement}: {e.strerror}")
    out: IO[str] | None = None
    if rejects_path is not None:
        try:
            out = rejects_path.open("a", encoding="utf-8")
        except OSError as e:
            fail(f"cannot write rejects to {rejects_path}: {e.strerror}")

    def on_reject(reject: Reject) -> None:
        if out is not None:
            out.write(json.dumps(reject.to_json(), ensure_ascii=False) + "\n")
            out.flush()
        elif not state.quiet:
            click.echo(f"{reject.file}:{reject.line}: {reject.code}: {reject.message}", err=True)

    try:
        with open_ledger(state) as ledger:
            report = reconcile_statement(
                ledger, statement, channel=channel, actor=actor, on_reject=on_reject, rows=rows
            )
            ledger.projections.catch_up()
    finally:
        if out is not None:
            out.close()
    if report.lines == 0 and not state.quiet:
        click.echo("note: the statement holds no rows", err=True)
    if as_json:
        echo_json(report.to_json())
    elif not state.quiet:
        click.echo(
            f"{report.accepted} accepted, {report.duplicates} duplicates, "
            f"{report.rejected} rejected",
            err=True,
        )
    sys.exit(1 if report.rejected else 0)


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(findings)
    group.add_command(reconcile)
    group.add_command(reconciliation)
