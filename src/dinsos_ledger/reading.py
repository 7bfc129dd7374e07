"""The reader process of a parallel import: ``python -m dinsos_ledger.reading FD``.

Started by :func:`dinsos_ledger.importer.import_files`, never by hand. It reads its
settings (the files, the ledger's idempotency key, the batch size) as a pickle on standard input,
then reads, validates and digests the files and sends each batch through the pipe FD.
"""

from __future__ import annotations

import pickle
import signal
import sys
from multiprocessing.connection import Connection

from dinsos_ledger.importer import run_reader


def main() -> None:
    """Run the reader on the pipe named by the first argument."""
    # Ctrl-C reaches the whole process group: the importer decides, and this process
    # ends at its next send once the importer has closed the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sender = Connection(int(sys.argv[1]), readable=False)
    settings = pickle.load(sys.stdin.buffer)  # noqa: S301 - written by our own parent
    run_reader(
        sender,
        settings["paths"],
        settings["subkey"],
        settings["batch_size"],
        settings.get("legacy_subkey"),
    )


if __name__ == "__main__":
    main()
