"""The reader process of a parallel import: ``python -I -c … dinsos_ledger.reading FD``.

Started by :func:`dinsos_ledger.importer.import_files`, never by hand, in Python's isolated
mode and with an environment that holds no key. It reads its settings (the files, the
ledger's idempotency key and, for a ledger upgraded from before it, the subkey of its older
digests, both in base64, and the batch size) as one JSON object on standard input, then
reads, decodes and digests the files and sends each batch through the pipe FD as
length-prefixed JSON (:func:`dinsos_ledger.importer.write_frame`). Nothing it sends is
unpickled, and the importer validates every command again before it is recorded.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys

from dinsos_ledger.importer import run_reader


def main(fd: int | None = None) -> None:
    """Run the reader on the pipe ``fd`` (default: the first argument)."""
    # Ctrl-C reaches the whole process group: the importer decides, and this process
    # ends at its next send once the importer has closed the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(int(sys.argv[1]) if fd is None else fd, "wb")
    settings = json.loads(sys.stdin.buffer.read())
    subkey = base64.b64decode(settings["subkey"], validate=True)
    legacy = settings.get("legacy_subkey")
    run_reader(
        out,
        settings["paths"],
        subkey,
        int(settings["batch_size"]),
        None if legacy is None else base64.b64decode(legacy, validate=True),
    )


if __name__ == "__main__":
    main()
