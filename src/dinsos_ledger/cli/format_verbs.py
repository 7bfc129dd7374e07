"""The ``schema`` verb: the command format as JSON Schema, for integrators."""

from __future__ import annotations

import json

import click

from dinsos_ledger.commands import json_schema

__all__ = ["register"]


@click.command("schema")
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of one command line.

    A form or script can check a line with it before sending it; the ledger's own rules
    (docs/commands.md) are checked on import. Needs no ledger.
    """
    click.echo(json.dumps(json_schema(), ensure_ascii=False, indent=2))


def register(group: click.Group) -> None:
    """Add this module's verbs to ``group``."""
    group.add_command(schema)
