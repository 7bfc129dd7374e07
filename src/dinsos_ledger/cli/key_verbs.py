"""The key verb: ``rotate-key``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from dinsos_ledger.cli.base import State, echo_json, fail, handles_errors, open_ledger, pass_state
from dinsos_ledger.privacy import (
    KeyConfigError,
    KeyFileError,
    MasterKey,
    load_master_key_file,
    master_key_from_env,
)
from dinsos_ledger.rotation import NEW_KEY_ENV, rotate_master_key

__all__ = ["register"]


def _new_key(path: Path | None) -> MasterKey:
    """The new master key from ``--new-key FILE`` or ``$DINSOS_LEDGER_NEW_KEY``."""
    if path is not None:
        try:
            return load_master_key_file(path, create=False)
        except KeyFileError as e:
            fail(f"--new-key: {e.message}")
    value = os.environ.get(NEW_KEY_ENV)
    if not value:
        fail(
            f"give the new master key: --new-key FILE (base64 of 32 bytes, mode 0600) or "
            f"{NEW_KEY_ENV}; make one with: openssl rand -base64 32 > new.key && chmod 600 new.key"
        )
    try:
        return master_key_from_env(value)
    except KeyConfigError as e:
        fail(e.message.replace("'DINSOS_LEDGER_KEY'", f"'{NEW_KEY_ENV}'"))


@click.command("rotate-key")
@click.option(
    "--new-key",
    "new_key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"File holding the new master key (base64 of 32 bytes, mode 0600); "
    f"default ${NEW_KEY_ENV}.",
)
@click.option("--actor", help="Who rotates the key (default: the login name).")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_state
@handles_errors
def rotate_key(state: State, new_key_path: Path | None, actor: str | None, as_json: bool) -> None:
    """Re-wrap every data key and the ledger's own keys under a new master key.

    All or nothing, in one transaction; no event is rewritten. Afterwards the new key
    opens everything and the old one is refused like any other wrong key. On SQLite the
    key file beside the ledger is replaced once the database has committed, and the old
    one is kept as TARGET.key.retired-<check value>: move it to where the backups made
    with it are kept. On PostgreSQL, set DINSOS_LEDGER_KEY to the new key everywhere.
    """
    new = _new_key(new_key_path)
    with open_ledger(state) as ledger:
        report = rotate_master_key(ledger, new, actor=actor)
    if as_json:
        echo_json(report.to_json())
    if not state.quiet:
        click.echo(
            f"rotated: {report.data_keys} data keys re-wrapped; key check value "
            f"{report.old_check[:16]}… → {report.new_check[:16]}…",
            err=True,
        )
        if report.retired_key is not None:
            click.echo(
                f"the old key is kept in {report.retired_key}: move it to where the backups "
                "made with it are kept (they open only with it), and delete it here",
                err=True,
            )
        elif ledger.target.is_postgres:
            click.echo(
                "set DINSOS_LEDGER_KEY to the new key wherever this ledger is opened; "
                "keep the old key as long as backups made with it are kept",
                err=True,
            )
    sys.exit(0)


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(rotate_key)
