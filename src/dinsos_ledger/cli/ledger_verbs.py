"""The verbs that write and read subjects: ``import`` and ``show``."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from dinsos_ledger.audit import parse_timestamp
from dinsos_ledger.cli.audit_verbs import signing_key, write_checkpoint
from dinsos_ledger.cli.base import State, echo_json, fail, handles_errors, open_ledger, pass_state
from dinsos_ledger.errors import StorageError
from dinsos_ledger.i18n import N_, Messages
from dinsos_ledger.importer import STDIN, ImportReport, Reject, import_files
from dinsos_ledger.progress import Progress
from dinsos_ledger.report.data import kecamatan_name

__all__ = ["register"]


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write rejected lines here as JSON lines (default: stderr as file:line: code: message).",
)
@click.option(
    "--retry-file",
    "retry_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write each refused line here unchanged, to correct and import again. It holds "
    "personal data like the input: keep it as safe, and delete it once imported.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--parallel/--no-parallel",
    default=None,
    help=(
        "Validate the next batch in a second process while this one is applied "
        "[default: for 2 MiB of input or more, on two cores or more; never for - or "
        "with --retry-file]."
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
    retry_path: Path | None,
    as_json: bool,
    batch_size: int,
    parallel: bool | None,
    checkpoint_out: Path | None,
    key_path: Path | None,
) -> None:
    """Apply the commands of FILE… (JSON Lines) in order; - reads standard input.

    Valid lines are recorded even when others are rejected; a line already recorded
    (same id, same body) is skipped as a duplicate, so a file can be imported again safely.
    The command format is in docs/commands.md (or: dinsos-ledger schema). Exit 0 when
    nothing was rejected, 1 when something was. With --checkpoint, the head of the chain is
    then signed and written to a new file (see `checkpoint`).
    """
    m = state.m
    if sum(1 for path in files if str(path) == STDIN) > 1:
        raise click.UsageError(m("standard input (-) can be read only once"))
    if key_path is not None and checkpoint_out is None:
        raise click.UsageError("--key signs a --checkpoint: give one")
    # Known before anything is recorded: a missing key or a taken name is a usage error,
    # not a checkpoint that silently fails after the import.
    signer = signing_key(key_path) if checkpoint_out is not None else None
    if checkpoint_out is not None and checkpoint_out.exists():
        fail(f"{checkpoint_out} exists: a checkpoint is evidence; choose a new name")
    for path in files:
        if str(path) == STDIN:
            continue
        if not path.is_file():
            fail(m("cannot read {file}: no such file").format(file=path))
        try:
            path.open("rb").close()
        except OSError as e:
            fail(m("cannot read {file}: {reason}").format(file=path, reason=e.strerror))
    out = _open_for_append(rejects_path, m("cannot write rejects to {file}: {reason}"))
    retry = _open_for_append(
        retry_path, m("cannot write the retry file {file}: {reason}"), binary=True
    )

    def on_reject(reject: Reject) -> None:
        if out is not None:
            out.write(json.dumps(reject.to_json(), ensure_ascii=False) + "\n")
            out.flush()
        elif not state.quiet:
            click.echo(f"{reject.file}:{reject.line}: {reject.code}: {reject.message}", err=True)

    def on_retry(raw: bytes) -> None:
        assert retry is not None
        retry.write(raw if raw.endswith(b"\n") else raw + b"\n")
        retry.flush()

    with open_ledger(state) as ledger, Progress(quiet=state.quiet) as progress:
        stage = progress.stage(m("Importing (lines)"), total=None)
        try:
            report = import_files(
                ledger,
                list(files),
                on_reject=on_reject,
                progress=stage.advance,
                batch_size=batch_size,
                parallel=parallel,
                on_retry=on_retry if retry is not None else None,
            )
            stage.finish()
            # Balances and timelines are read from the projections: bring them up to date.
            with progress.stage(m("Updating the projections")):
                ledger.projections.catch_up()
        except StorageError:
            raise  # an OSError too, but about the ledger: open_ledger reports it
        except OSError as e:
            fail(m("cannot read input: {reason}").format(reason=e))
        finally:
            for stream in (out, retry):
                if stream is not None:
                    stream.close()
        if checkpoint_out is not None and signer is not None:
            write_checkpoint(state, ledger, checkpoint_out, signer, force=False)
    if report.lines == 0 and not state.quiet:
        click.echo(m("note: the input holds no commands"), err=True)
    if as_json:
        echo_json(report.to_json())
    elif not state.quiet:
        click.echo(_summary(report, m), err=True)
    if report.rejected and not state.quiet and not as_json:
        click.echo(_next_step(rejects_path, retry_path, m), err=True)
    sys.exit(1 if report.rejected else 0)


def _open_for_append(path: Path | None, message: str, *, binary: bool = False) -> Any:
    """``path`` opened to append (as bytes with ``binary``), or None; failing exits 2."""
    if path is None:
        return None
    try:
        return path.open("ab") if binary else path.open("a", encoding="utf-8")
    except OSError as e:
        fail(message.format(file=path, reason=e.strerror))


def _summary(report: ImportReport, m: Messages) -> str:
    """``3 accepted, 1 duplicate, 2 rejected`` in the operator's language."""
    return ", ".join(
        (
            m.plural("{n} accepted", "{n} accepted", report.accepted).format(
                n=m.number(report.accepted)
            ),
            m.plural("{n} duplicate", "{n} duplicates", report.duplicates).format(
                n=m.number(report.duplicates)
            ),
            m.plural("{n} rejected", "{n} rejected", report.rejected).format(
                n=m.number(report.rejected)
            ),
        )
    )


def _next_step(rejects: Path | None, retry: Path | None, m: Messages) -> str:
    """What the operator does about refused lines."""
    where = (
        m("the reasons are in {file}").format(file=rejects)
        if rejects is not None
        else m("the reasons are above")
    )
    fix = (
        m("correct the lines in {file} and import it again").format(file=retry)
        if retry is not None
        else m("correct the refused lines and import them again (--retry-file collects them)")
    )
    return m("Next: {where}; {fix}. Accepted lines are recorded already.").format(
        where=where, fix=fix
    )


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
    click.echo("\n".join(show_lines(data, state.m)))


# Labels of the fields ``show`` prints; a field not listed is shown by its name.
_LABELS = {
    "ref": N_("case number"),
    "kind": N_("kind"),
    "version": N_("version (events)"),
    "registered_on": N_("registered"),
    "region": N_("village"),
    "closed_on": N_("closed"),
    "close_reason": N_("reason closed"),
    "forgotten": N_("personal data erased"),
    "members": N_("members"),
    "desil": N_("desil"),
    "eligible": N_("eligible"),
    "family_card": N_("family card (KK)"),
    "head_nik": N_("NIK of the head"),
    "head_name": N_("head of household"),
    "nik": N_("NIK"),
    "name": N_("name"),
    "programme": N_("programme"),
    "capacity": N_("capacity"),
    "starts": N_("starts"),
    "ends": N_("ends"),
    "active_enrolments": N_("active enrolments"),
    "cohort": N_("cohort"),
    "household": N_("household"),
    "status": N_("status"),
    "attended": N_("attendances"),
    "balances": N_("balances"),
    "allocations": N_("allocations"),
    "reference": N_("reference"),
    "amount": N_("amount"),
    "period": N_("period"),
    "on": N_("date"),
    "rule": N_("rule"),
    "source": N_("source"),
    "programme_version": N_("programme version"),
    "desil_limit": N_("desil limit"),
    "recipients": N_("recipients"),
}
_MONEY = frozenset({"amount", "allocated", "disbursed", "outstanding", "confirmed"})
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _value(key: str, value: Any, m: Messages) -> str:
    """One value for people: dates spelled out, money in rupiah, yes/no, a dash for none."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return m("yes") if value else m("no")
    if key in ("kind", "status", "close_reason", "recipients", "source") and isinstance(value, str):
        return m(value)
    if isinstance(value, int) and key in _MONEY:
        return m.rupiah(value)
    if isinstance(value, int):
        return m.number(value)
    if isinstance(value, str) and _DAY_RE.fullmatch(value):
        try:
            return m.date(dt.date.fromisoformat(value))
        except ValueError:
            return value
    if key == "region" and isinstance(value, str):
        name = kecamatan_name(value)
        return value if name == value else f"{value} (kec. {name})"
    if isinstance(value, list):
        return ", ".join(_value(key, item, m) for item in value) or "—"
    return str(value)


def _label(key: str, m: Messages) -> str:
    return m(_LABELS[key]) if key in _LABELS else m(key.replace("_", " "))


def _inline(key: str, value: Any, m: Messages) -> str:
    """A value on one line; an object as ``label value · label value``."""
    if isinstance(value, Mapping):
        inner = " · ".join(f"{_label(k, m)} {_inline(k, v, m)}" for k, v in value.items())
        return f"({inner})"
    if isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
        return "; ".join(_inline(key, item, m) for item in value)
    return _value(key, value, m)


def show_lines(data: Mapping[str, Any], m: Messages) -> list[str]:
    """A subject as aligned ``label  value`` lines; objects and lists of them indent below."""
    labels = {key: _label(key, m) for key in data}
    width = max((len(label) for label in labels.values()), default=0)
    lines = []
    for key, value in data.items():
        label = labels[key].ljust(width)
        if isinstance(value, Mapping):
            lines.append(f"{label}  {'—' if not value else ''}".rstrip())
            lines.extend(
                f"  {name}: {_inline(name, inner, m).strip('()')}" for name, inner in value.items()
            )
        elif isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
            lines.append(label.rstrip())
            lines.extend(f"  - {_inline(key, item, m)[1:-1]}" for item in value)
        else:
            lines.append(f"{label}  {_value(key, value, m)}")
    return lines


# Marked for the catalogue: the words ``show`` prints inside the balances.
_WORDS = (
    *(N_("allocated"), N_("disbursed"), N_("outstanding"), N_("yes"), N_("no")),
    *(N_("household"), N_("veteran"), N_("cohort"), N_("enrolment")),
    *(N_("active"), N_("completed"), N_("withdrawn")),
    *(N_("graduated"), N_("moved"), N_("deceased"), N_("duplicate"), N_("other")),
    *(N_("default"), N_("define_programme"), N_("amend_programme")),
)


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(import_)
    group.add_command(show)
