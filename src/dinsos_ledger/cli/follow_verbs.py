"""The ``follow`` verb: keep projections caught up until stopped."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from dinsos_ledger.cli.base import State, echo_json, fail, handles_errors, open_ledger, pass_state
from dinsos_ledger.projections.engine import UnknownProjection
from dinsos_ledger.projections.follow import Follower, Status

__all__ = ["register"]


@click.command("follow")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between polls (SQLite), or the longest wait for a notification (PostgreSQL).",
)
@click.option(
    "--page-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Events applied per transaction (a stop request waits for the page at most).",
)
@click.option(
    "--status-every",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between status lines (how far behind the projections are).",
)
@click.option("--json", "as_json", is_flag=True, help="Print status lines as JSON on stdout.")
@pass_state
@handles_errors
def follow(
    state: State,
    names: tuple[str, ...],
    interval: float,
    page_size: int,
    status_every: float,
    as_json: bool,
) -> None:
    """Keep the named projections (default: all) caught up until SIGTERM or Ctrl-C.

    Each page of events is applied in one transaction with the projections' positions,
    so stopping or killing a follower never applies an event twice or skips one. Several
    followers may run on one ledger: on PostgreSQL one leads each projection (an advisory
    lock) and the others stand by to take over; on SQLite they take turns page by page.
    On PostgreSQL a new event wakes the follower at once; on SQLite it polls every
    --interval seconds. A status line (events behind) goes to stderr every
    --status-every seconds, or to stdout as JSON with --json.
    """
    # Handlers first: a stop requested while the ledger opens is honoured, not fatal.
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _follow(state, names, interval, page_size, status_every, as_json, stopping)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _follow(
    state: State,
    names: tuple[str, ...],
    interval: float,
    page_size: int,
    status_every: float,
    as_json: bool,
    stopping: threading.Event,
) -> None:
    with open_ledger(state) as ledger:
        projections = ledger.projections
        projections.engine.page_size = page_size
        try:
            projections.engine.select(names or None)
        except UnknownProjection as e:
            fail(e.message)

        def report(status: Status) -> None:
            if as_json:
                echo_json(status.to_json())
                sys.stdout.flush()
            elif not state.quiet:
                click.echo(status.describe(), err=True)

        follower = Follower(
            projections,
            names,
            interval=interval,
            report=report,
            report_every=status_every,
            stopping=stopping,
            on_error=lambda e: click.echo(f"follow: {e.message} (trying again)", err=True),
        )
        follower.run()


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(follow)
