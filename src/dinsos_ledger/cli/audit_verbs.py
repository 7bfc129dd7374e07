"""The auditors' verbs: ``verify``, ``checkpoint``, ``checkpoint-key``, ``history``, ``forget``."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dinsos_ledger import audit
from dinsos_ledger.application import Ledger
from dinsos_ledger.chain import (
    CheckpointError,
    generate_signing_key,
    load_signing_key,
    public_key_text,
)
from dinsos_ledger.cli.base import State, echo_json, fail, handles_errors, open_ledger, pass_state
from dinsos_ledger.cli.stores import store_problem
from dinsos_ledger.privacy import KeyFileError
from dinsos_ledger.progress import Progress
from dinsos_ledger.storage import parse_target

__all__ = ["register", "signing_key", "write_checkpoint"]


def _read_checkpoint_file(path: Path) -> dict[str, Any]:
    """The decoded checkpoint file; unreadable or not JSON exits 2 (a usage problem)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        fail(f"cannot read checkpoint {path}: {reason}")
    try:
        data = json.loads(text)
    except ValueError:
        fail(
            f"{path} is not a checkpoint: it is not JSON "
            "(write one with `dinsos-ledger checkpoint`)"
        )
    if not isinstance(data, dict):
        fail(f"{path} is not a checkpoint: it is not a JSON object")
    return data


def _pinned_key(public_key: str) -> bytes:
    """The raw bytes of ``--public-key`` (base64, PEM text or a PEM file); bad is exit 2."""
    text = public_key
    if not public_key.strip().startswith("-----") and Path(public_key).is_file():
        try:
            text = Path(public_key).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise click.BadParameter(
                f"cannot read {public_key}: {reason}", param_hint="--public-key"
            ) from None
    try:
        return audit.parse_public_key(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--public-key") from None


def _trusted_keys() -> frozenset[bytes]:
    """The keys of the file named by $DINSOS_LEDGER_TRUSTED_KEYS (none when unset)."""
    name = os.environ.get(audit.TRUSTED_KEYS_ENV)
    if not name:
        return frozenset()
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        fail(f"cannot read the trusted keys file {name} (${audit.TRUSTED_KEYS_ENV}): {reason}")
    try:
        return audit.read_trusted_keys(text, source=f"trusted keys file {name}")
    except ValueError as e:
        fail(str(e))


@click.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also prove that the log still extends this signed checkpoint.",
)
@click.option(
    "--public-key",
    "public_key",
    metavar="KEY",
    help="The Ed25519 key that must have signed the checkpoint (base64, as printed by "
    "checkpoint-key, or a PEM file). Default: the keys listed in the file named by "
    "$DINSOS_LEDGER_TRUSTED_KEYS.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
@handles_errors
def verify(
    state: State, checkpoint_path: Path | None, public_key: str | None, as_json: bool
) -> None:
    """Check the integrity chain over every stored event, and every stored projection.

    Prints `ok: N events` and exits 0, or names the first event that was altered,
    removed or inserted directly in the database, or the first projection row that
    differs from the one the events give, and exits 1. With --checkpoint the log must
    still extend that signed head (nothing rewritten or cut off since); its signer must
    be pinned with --public-key or listed in $DINSOS_LEDGER_TRUSTED_KEYS.
    """
    if public_key is not None and checkpoint_path is None:
        raise click.UsageError("--public-key pins the signer of a --checkpoint: give one")
    data = _read_checkpoint_file(checkpoint_path) if checkpoint_path is not None else None
    pinned = _pinned_key(public_key) if public_key is not None else None
    trusted = _trusted_keys() if data is not None and pinned is None else frozenset()
    checkpoint = None
    if data is not None:
        try:
            checkpoint = audit.load_checkpoint(data, pinned, trusted)
        except CheckpointError as e:
            _refuse_checkpoint(str(checkpoint_path), e.message, as_json=as_json)
    problem = store_problem(parse_target(state.db))
    if problem is not None:
        # Not a ledger store at all: a finding of its own, in the format asked for.
        _refuse(audit.AuditFinding(kind="damaged", position=None, message=problem), as_json)
    # The chain is checked in one pass with no count to report: the stage shows that it runs
    # and how long it took.
    with (
        open_ledger(state) as ledger,
        Progress(quiet=state.quiet) as progress,
        progress.stage(state.m("Verifying")),
    ):
        report = audit.verify(ledger, checkpoint=checkpoint)
    if as_json:
        echo_json(report.to_json())
        sys.exit(0 if report.ok else 1)
    if report.finding is not None:
        click.echo(report.finding.describe())
        fail(f"verification failed: {report.events} events verified before the first finding", 1)
    click.echo(f"ok: {report.events} events")
    if checkpoint is not None and not state.quiet:
        click.echo(
            f"the log extends checkpoint {checkpoint_path} "
            f"(position {checkpoint.position}, {checkpoint.events} events, "
            f"signed {checkpoint.created_at})",
            err=True,
        )


def _refuse_checkpoint(path: str, message: str, *, as_json: bool) -> None:
    """A checkpoint whose signature or key does not hold fails the verification (exit 1)."""
    finding = audit.AuditFinding(kind="checkpoint", position=None, message=message)
    _refuse(finding, as_json, f"checkpoint {path} cannot be trusted")


def _refuse(
    finding: audit.AuditFinding, as_json: bool, summary: str = "verification failed"
) -> NoReturn:
    """Report a finding made before any event was read, and exit 1."""
    if as_json:
        echo_json(
            {
                "ok": False,
                "events": 0,
                "head_position": None,
                "head_hash": None,
                "ledger": None,
                "checkpoint": None,
                "finding": finding.to_json(),
            }
        )
        sys.exit(1)
    click.echo(finding.describe())
    fail(summary, 1)


def signing_key(key_path: Path | None) -> Ed25519PrivateKey:
    """The signing key of ``--key`` or $DINSOS_LEDGER_SIGNING_KEY; none given is exit 2."""
    path = audit.signing_key_path(key_path)
    if path is None:
        raise click.UsageError(
            f"a checkpoint needs a signing key kept away from the ledger: give --key FILE "
            f"or set {audit.SIGNING_KEY_ENV} (make one with `dinsos-ledger checkpoint-key FILE`)"
        )
    try:
        return load_signing_key(path)
    except KeyFileError as e:
        fail(f"{e.message} (make one with `dinsos-ledger checkpoint-key FILE`)")


def write_checkpoint(
    state: State, ledger: Ledger, out: Path, private_key: Ed25519PrivateKey, *, force: bool
) -> None:
    """Verify ``ledger``, sign its head and write it to ``out`` (`-`: stdout)."""
    report, signed = audit.make_checkpoint(ledger, private_key)
    if str(out) == "-":
        click.echo(json.dumps(signed, indent=2, sort_keys=True))
    else:
        try:
            audit.write_checkpoint_file(out, signed, replace=force)
        except FileExistsError:
            fail(f"{out} exists: a checkpoint is evidence; choose a new name or give --force")
        except OSError as e:
            fail(f"cannot write {out}: {e.strerror}")
    if not state.quiet:
        click.echo(
            f"checkpoint: {report.events} events, head at position {signed['position']}, "
            f"ledger {signed['ledger']}, signed by {signed['public_key']}",
            err=True,
        )


@click.command("checkpoint")
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Ed25519 signing key (PEM, made by checkpoint-key), kept away from the ledger. "
    "Default: $DINSOS_LEDGER_SIGNING_KEY; one of them is required.",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@pass_state
@handles_errors
def checkpoint(state: State, out: Path, key_path: Path | None, force: bool) -> None:
    """Write the signed head of the integrity chain to OUT (`-` for stdout).

    The chain is verified first; a chain that does not verify is not checkpointed
    (exit 1). Keep checkpoints, and the public key they name, outside the database:
    `verify --checkpoint OUT --public-key KEY` then proves that nothing up to this head
    was changed.
    """
    if audit.signing_key_path(key_path) is None:
        signing_key(key_path)  # the usage error, before anything is opened
    with open_ledger(state) as ledger:
        # The ledger first: a mistyped --db is named as such, whatever the key file.
        write_checkpoint(state, ledger, out, signing_key(key_path), force=force)


@click.command("checkpoint-key")
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@pass_state
def checkpoint_key(state: State, out: Path) -> None:
    """Make a new checkpoint signing key in OUT (mode 0600) and print its public key.

    Keep OUT away from the ledger's server and its backups (whoever holds it can sign
    checkpoints); give the printed public key to the auditors, who pin it with
    `verify --public-key` or list it in $DINSOS_LEDGER_TRUSTED_KEYS. OUT is never replaced.
    """
    try:
        key = generate_signing_key(out)
    except FileExistsError:
        fail(f"{out} exists: a signing key is never replaced; choose a new name")
    except OSError as e:
        fail(f"cannot write {out}: {e.strerror}")
    click.echo(public_key_text(key))
    if not state.quiet:
        click.echo(
            f"signing key written to {out} (keep it away from the ledger); "
            "its public key is above: pin it with `verify --public-key` or list it in "
            f"${audit.TRUSTED_KEYS_ENV}",
            err=True,
        )


@click.command("history")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the events as a JSON array.")
@pass_state
@handles_errors
def history(state: State, ref: str, as_json: bool) -> None:
    """List every event of the subject REF in order, without personal data."""
    with open_ledger(state) as ledger:
        entries = audit.history(ledger, ref)
    if as_json:
        echo_json(entries)
        return
    for entry in entries:
        fields = " ".join(
            f"{name}={value}"
            for name, value in entry.items()
            if name not in ("version", "type", "on", "recorded", "actor", "command_id", "note")
        )
        line = (
            f"v{entry['version']:<4} {entry['on']}  {entry['type']:<22} by {entry['actor']}  "
            f"[{entry['command_id']}]  recorded {entry['recorded']}"
        )
        if fields:
            line += f"  {fields}"
        if entry["note"] is not None:
            line += f"  note={json.dumps(entry['note'], ensure_ascii=False)}"
        click.echo(line)


@click.command("forget")
@click.argument("ref")
@click.option("--actor", required=True, help="Who orders the erasure.")
@click.option("--reason", required=True, help="Why (e.g. the erasure request's number).")
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Business date YYYY-MM-DD (default: today).",
)
@click.option("--id", "command_id", help="Command id (default: forget-REF-<random hex>).")
@click.option("--note", help="Optional note.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_state
@handles_errors
def forget(
    state: State,
    ref: str,
    actor: str,
    reason: str,
    on: dt.datetime | None,
    command_id: str | None,
    note: str | None,
    as_json: bool,
) -> None:
    """Crypto-shred the personal data of the closed subject REF (the `forget` command).

    Its data key is destroyed and a `forgotten` event recorded; its personal data then
    reads null everywhere, while balances, timelines and `verify` are unchanged.
    Exit 1 with the rule's code when the ledger refuses (e.g. not_closed).
    """
    command = audit.forget_command(
        ref,
        actor=actor,
        reason=reason,
        on=on.date() if on is not None else None,
        command_id=command_id,
        note=note,
    )
    with open_ledger(state) as ledger:
        outcome = ledger.execute(command)
    if as_json:
        echo_json(
            {
                "status": outcome.status,
                "id": outcome.id,
                "code": outcome.code,
                "message": outcome.message,
            }
        )
        sys.exit(1 if outcome.rejected else 0)
    if outcome.rejected:
        fail(f"{outcome.code}: {outcome.message}", 1)
    if not state.quiet:
        what = "forgotten" if outcome.accepted else "already recorded (duplicate)"
        click.echo(f"{what}: {ref} (command {outcome.id})", err=True)


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(verify)
    group.add_command(checkpoint)
    group.add_command(checkpoint_key)
    group.add_command(history)
    group.add_command(forget)
