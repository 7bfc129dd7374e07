"""The ``programmes`` verb: the programmes and their eligibility rules over time."""

from __future__ import annotations

import datetime as dt

import click

from dinsos_ledger.cli.base import (
    State,
    echo_json,
    handles_errors,
    open_ledger,
    parse_day,
    pass_state,
)
from dinsos_ledger.projections.programmes import programmes as list_programmes

__all__ = ["register"]


def _limit(value: int | None) -> str:
    return "-" if value is None else f"≤ {value}"


@click.command("programmes")
@click.option(
    "--as-of",
    "as_of",
    metavar="DATE",
    callback=parse_day,
    help="Answer as of this business date, YYYY-MM-DD.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the programmes as JSON.")
@pass_state
@handles_errors
def programmes(state: State, as_of: dt.date | None, as_json: bool) -> None:
    """The programmes sorted by code, with their eligibility rules over time.

    desil_limit is the limit in force today (or on DATE); rules lists every definition and
    amendment in the order they come into force (with --as-of only those from DATE or
    earlier; a programme defined after DATE is not listed). A programme that is not
    defined keeps the default rule: households up to desil 4, veterans found eligible.
    """
    with open_ledger(state) as ledger:
        rows = list_programmes(ledger, as_of)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        if not state.quiet:
            click.echo("no programmes defined", err=True)
        return
    for row in rows:
        rules = ", ".join(f"{r['on']} desil {_limit(r['desil_limit'])}" for r in row["rules"])
        click.echo(
            f"{row['programme']}  {row['name']}  [{', '.join(row['recipients'])}]  "
            f"desil {_limit(row['desil_limit'])}  ({rules})"
        )


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(programmes)
