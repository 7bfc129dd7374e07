"""``python -m dinsos_ledger.cli``: the same as the ``dinsos-ledger`` command."""

from dinsos_ledger.cli import main

main(prog_name="dinsos-ledger")
