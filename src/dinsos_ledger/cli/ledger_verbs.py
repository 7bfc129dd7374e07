"""The verbs that write and read subjects: ``import`` and ``show``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import IO

import click

from dinsos_ledger.audit import parse_timestamp
from dinsos_ledger.cli.audit_verbs import signing_key, write_checkpoint
from dinsos_ledger.cli.base import State, echo_json, fail, handles_errors, open_ledger, pass_state
from dinsos_ledger.errors import StorageError
from dinsos_ledger.importer import Reject, import_files

__all__ = ["register"]


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write rejected lines here as JSON lines (default: stderr as file:line: code: message).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--parallel/--no-parallel",
    default=None,
    help=(
        "Validate the next batch in a second process while this one is applied "
        "[default: for 2 MiB of input or more, on two cores or more]."
    ),
)
@click.option(
    "--checkpoint",
    "checkpoint_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Once the import is recorded, write a signed checkpoint of the chain's head here "
    "(a new file; needs --key or $DINSOS_LEDGER_SIGNING_KEY).",
)
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Ed25519 signing key for --checkpoint (PEM, made by checkpoint-key), kept away "
    "from the ledger. Default: $DINSOS_LEDGER_SIGNING_KEY.",
)
@pass_state
@handles_errors
def import_(
    state: State,
    files: tuple[Path, ...],
    rejects_path: Path | None,
    as_json: bool,
    batch_size: int,
    parallel: bool | None,
    checkpoint_out: Path | None,
    key_path: Path | None,
) -> None:
    """Apply the commands of FILE… (JSON Lines) in order.

    Valid lines are recorded even when others are rejected; a line already recorded
    (same id, same body) is skipped as a duplicate, so a file can be imported again safely.
    Exit 0 when nothing was rejected, 1 when something was. With --checkpoint, the head
    of the chain is then signed and written to a new file (see `checkpoint`).
    """
    if key_path is not None and checkpoint_out is None:
        raise click.UsageError("--key signs a --checkpoint: give one")
    # Known before anything is recorded: a missing key or a taken name is a usage error,
    # not a checkpoint that silently fails after the import.
    signer = signing_key(key_path) if checkpoint_out is not None else None
    if checkpoint_out is not None and checkpoint_out.exists():
        fail(f"{checkpoint_out} exists: a checkpoint is evidence; choose a new name")
    for path in files:
        if not path.is_file():
            fail(f"cannot read {path}: no such file")
        try:
            path.open("rb").close()
        except OSError as e:
            fail(f"cannot read {path}: {e.strerror}")
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

    total = sum(path.stat().st_size for path in files)
    with open_ledger(state) as ledger:
        progress = _Progress(total, enabled=not state.quiet and sys.stderr.isatty())
        try:
            report = import_files(
                ledger,
                list(files),
                on_reject=on_reject,
                progress=progress.advance,
                batch_size=batch_size,
                parallel=parallel,
            )
        except StorageError:
            raise  # an OSError too, but about the ledger: open_ledger reports it as it is
        except OSError as e:
            fail(f"cannot read input: {e}")
        finally:
            progress.done()
            if out is not None:
                out.close()
        # Balances and timelines are read from the projections: bring them up to date now.
        ledger.projections.catch_up()
        if checkpoint_out is not None and signer is not None:
            write_checkpoint(state, ledger, checkpoint_out, signer, force=False)
    if report.lines == 0 and not state.quiet:
        click.echo("note: the input holds no commands", err=True)
    if as_json:
        echo_json(report.to_json())
    elif not state.quiet:
        click.echo(
            f"{report.accepted} accepted, {report.duplicates} duplicates, "
            f"{report.rejected} rejected",
            err=True,
        )
    sys.exit(1 if report.rejected else 0)


class _Progress:
    """Lines handled so far on stderr, only when it is a terminal."""

    def __init__(self, total_bytes: int, *, enabled: bool) -> None:
        self.enabled = enabled
        self.lines = 0
        self.total_bytes = total_bytes

    def advance(self, lines: int) -> None:
        self.lines += lines
        if self.enabled:
            click.echo(f"\rimported {self.lines} lines", err=True, nl=False)

    def done(self) -> None:
        if self.enabled and self.lines:
            click.echo("", err=True)


def _timestamp_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> datetime | None:
    """Parse ``--known-at`` (ISO 8601; without an offset it is UTC)."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None


@click.command("show")
@click.argument("ref")
@click.option("--version", "version", type=click.IntRange(1), help="As after its N-th event.")
@click.option(
    "--known-at",
    "known_at",
    metavar="TIMESTAMP",
    callback=_timestamp_option,
    help="As recorded at this ISO 8601 moment (no offset: UTC).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
@pass_state
@handles_errors
def show(
    state: State, ref: str, version: int | None, known_at: datetime | None, as_json: bool
) -> None:
    """Show the current state of the subject REF (personal data opened while its key exists).

    --version N shows it after its N-th event; --known-at TIMESTAMP as the ledger had
    recorded it at that moment (a timestamp without an offset is UTC).
    """
    if version is not None and known_at is not None:
        raise click.UsageError("give --version or --known-at, not both")
    with open_ledger(state) as ledger:
        data = ledger.show(ref, version=version, known_at=known_at)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key:>16}: {value}")


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(import_)
    group.add_command(show)
