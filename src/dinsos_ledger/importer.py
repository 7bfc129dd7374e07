"""Reading command files (JSON Lines) and applying them in batches.

A line is read as bytes, checked for length and UTF-8, decoded as JSON and handed to
:meth:`~dinsos_ledger.application.Ledger.apply_batch` together with the lines around it.
Rejects of a batch are reported only once the batch is committed, so an import that dies
half way has reported nothing it did not record, and running it again completes it (the
recorded commands come back as duplicates).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs

from dinsos_ledger.application import Ledger, Outcome
from dinsos_ledger.commands import Prepared, prepare
from dinsos_ledger.errors import InvalidCommand, LedgerError
from dinsos_ledger.privacy import keyed_digest

__all__ = [
    "MAX_LINE_BYTES",
    "PARALLEL_MIN_BYTES",
    "ImportReport",
    "Reject",
    "import_files",
    "read_commands",
]

#: The longest line read as a command; longer lines are rejected without being decoded.
MAX_LINE_BYTES: Final = 1_048_576
_MAX_DEPTH_MESSAGE: Final = "nested too deeply"
# A repeated key is quoted in the reject up to this many characters.
_SHOWN_KEY_MAX: Final = 40


@attrs.frozen
class Reject:
    """One refused line: where it was, its id (if it had one), the code and the reason."""

    file: str
    line: int
    id: str | None
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """The reject line of SPEC section 6."""
        return {
            "file": self.file,
            "line": self.line,
            "id": self.id,
            "code": self.code,
            "message": self.message,
        }


@attrs.define
class ImportReport:
    """Counts of an import: accepted now, duplicates skipped, rejected."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    lines: int = 0

    def to_json(self) -> dict[str, int]:
        """The ``--json`` summary of SPEC section 6."""
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            shown = key if len(key) <= _SHOWN_KEY_MAX else key[: _SHOWN_KEY_MAX - 3] + "…"
            msg = f"the key '{shown}' appears twice in one object"
            raise ValueError(msg)
        seen.add(key)
    raise AssertionError("unreachable")  # pragma: no cover


def _reject_constant(name: str) -> None:
    msg = f"'{name}' is not a JSON number"
    raise ValueError(msg)


# One decoder for every line (json.loads with options builds a new one per call).
_DECODER: Final = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys
)


def _decode(raw: bytes) -> Mapping[str, Any] | LedgerError:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return InvalidCommand(f"line is not valid UTF-8 (bad byte at offset {e.start})")
    if text.startswith("\ufeff"):  # json.loads's own message, which the decoder lacks
        return InvalidCommand("malformed JSON: Unexpected UTF-8 BOM (decode using utf-8-sig)")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        return InvalidCommand(f"malformed JSON: {e.msg} (column {e.colno})")
    except RecursionError:
        return InvalidCommand(f"malformed JSON: {_MAX_DEPTH_MESSAGE}")
    except ValueError as e:  # huge integers, NaN and Infinity, a key given twice
        return InvalidCommand(f"malformed JSON: {e}")
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else type(value).__name__
        return InvalidCommand(f"a command must be a JSON object (got {kind})")
    return value


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(line number, bytes)``; ``None`` for a line over :data:`MAX_LINE_BYTES`."""
    number = 0
    while True:
        chunk = stream.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            # Skip the rest of the over-long line without holding it in memory.
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(MAX_LINE_BYTES)
            yield number, None
            continue
        yield number, chunk


def read_commands(
    stream: BinaryIO,
) -> Iterator[tuple[int, Mapping[str, Any] | LedgerError]]:
    """Yield ``(line number, command or InvalidCommand)`` for each non-blank line."""
    for number, raw in _lines(stream):
        if raw is None:
            yield number, InvalidCommand(f"line is longer than {MAX_LINE_BYTES} bytes")
            continue
        # A byte-order mark from spreadsheet exports is not content.
        line = raw[3:] if number == 1 and raw.startswith(b"\xef\xbb\xbf") else raw
        if not line.strip(b" \t\r\n"):
            continue  # blank: spaces, tabs and line ends only
        yield number, _decode(line.rstrip(b"\r\n"))


def import_files(
    ledger: Ledger,
    paths: Sequence[Path],
    *,
    on_reject: Callable[[Reject], None],
    progress: Callable[[int], None] | None = None,
    batch_size: int = 500,
    parallel: bool | None = None,
) -> ImportReport:
    """Apply the commands of ``paths`` in order, ``batch_size`` per transaction.

    ``on_reject`` is called for each refused line once its batch is committed; ``progress``
    with the number of lines handled so far. Files are opened before anything is applied,
    so an unreadable file stops the import before it starts (:class:`OSError`).

    With ``parallel`` (by default: files of at least :data:`PARALLEL_MIN_BYTES` on a
    machine with more than one core) a second process reads, validates and digests the
    next batch while this one applies the current one; the outcome is the same line for
    line, only sooner.
    """
    streams = [path.open("rb") for path in paths]
    report = ImportReport()
    try:
        if parallel is None:
            size = sum(os.fstat(stream.fileno()).st_size for stream in streams)
            parallel = size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
        batches = (
            _read_elsewhere(ledger, paths, batch_size)
            if parallel
            else _read_here(ledger, streams, batch_size)
        )
        for index, pending in batches:
            _flush(ledger, str(paths[index]), pending, report, on_reject, progress)
    finally:
        for stream in streams:
            stream.close()
    return report


#: Below this many bytes of input an import validates in its own process: starting the
#: second one costs about half a second.
PARALLEL_MIN_BYTES: Final = 2 * 1024 * 1024

_Batch = list[tuple[int, Prepared]]


def _prepared_batches(
    streams: Sequence[BinaryIO],
    digest: Callable[[bytes], str],
    batch_size: int,
    legacy: Callable[[bytes], str] | None = None,
) -> Iterator[tuple[int, _Batch]]:
    """``(file index, [(line number, prepared command)])`` per batch, in order."""
    for index, stream in enumerate(streams):
        pending: _Batch = []
        for number, item in read_commands(stream):
            pending.append((number, prepare(item, digest, legacy)))
            if len(pending) >= batch_size:
                yield index, pending
                pending = []
        if pending:
            yield index, pending


def _read_here(
    ledger: Ledger, streams: Sequence[BinaryIO], batch_size: int
) -> Iterator[tuple[int, _Batch]]:
    digest, legacy = ledger.body_digests()
    return _prepared_batches(streams, digest, batch_size, legacy)


def _read_elsewhere(
    ledger: Ledger, paths: Sequence[Path], batch_size: int
) -> Iterator[tuple[int, _Batch]]:
    """The batches as prepared by a second process, one batch ahead of this one.

    The reader is ``python -m dinsos_ledger.reading`` (a fresh interpreter: nothing of
    this process, its threads or its main module is copied). It gets the ledger's
    idempotency key (and, for a ledger upgraded from before it, the subkey of its older
    digests), never the master key nor any data key, on its standard input, and sends
    batches through a pipe that holds about one, so it waits while the ledger applies and
    memory stays bounded. It ends when the files do, or at its next send once this process
    has closed the pipe or died.
    """
    read_end, write_end = os.pipe()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        reader = subprocess.Popen(  # noqa: S603 - this interpreter, this package's module
            [sys.executable, "-m", "dinsos_ledger.reading", str(write_end)],
            stdin=subprocess.PIPE,
            pass_fds=(write_end,),
            env=env,
        )
    finally:
        os.close(write_end)
    receiver = Connection(read_end, writable=False)
    try:
        assert reader.stdin is not None
        # A reader that died at start-up shows as the end of the pipe, below.
        with contextlib.suppress(BrokenPipeError), reader.stdin as config:
            config.write(
                pickle.dumps(
                    {
                        "paths": [str(path) for path in paths],
                        "subkey": ledger.secrets.digest_subkey,
                        "legacy_subkey": ledger.secrets.legacy_subkey,
                        "batch_size": batch_size,
                    }
                )
            )
        while True:
            try:
                message = receiver.recv()
            except EOFError:
                code = reader.wait()
                msg = f"the reader process stopped unexpectedly (exit code {code})"
                raise RuntimeError(msg) from None
            if message[0] == "done":
                return
            if message[0] == "error":
                raise message[1]
            yield message[1], message[2]
    finally:
        receiver.close()
        try:
            reader.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - it ends when the pipe closes
            reader.kill()
            reader.wait()


def run_reader(
    sender: Connection,
    paths: Sequence[str],
    subkey: bytes,
    batch_size: int,
    legacy_subkey: bytes | None = None,
) -> None:
    """The work of the reader process: read, validate, digest, send each batch."""
    try:
        with contextlib.ExitStack() as files:
            streams = [files.enter_context(Path(path).open("rb")) for path in paths]
            digest = functools.partial(keyed_digest, subkey)
            legacy = (
                None if legacy_subkey is None else functools.partial(keyed_digest, legacy_subkey)
            )
            for index, pending in _prepared_batches(streams, digest, batch_size, legacy):
                sender.send(("batch", index, pending))
        sender.send(("done",))
    except (BrokenPipeError, ConnectionResetError):
        return  # the importer has gone: nothing is waiting for these batches
    except Exception as e:  # noqa: BLE001 - handed to the importer, which raises it
        with contextlib.suppress(OSError):
            try:
                sender.send(("error", e))
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                sender.send(("error", RuntimeError(f"{type(e).__name__}: {e}")))
    finally:
        sender.close()


def _flush(
    ledger: Ledger,
    file: str,
    pending: _Batch,
    report: ImportReport,
    on_reject: Callable[[Reject], None],
    progress: Callable[[int], None] | None,
) -> None:
    outcomes: list[Outcome] = ledger.apply_prepared([item for _, item in pending])
    for (number, _), outcome in zip(pending, outcomes, strict=True):
        if outcome.status == "accepted":
            report.accepted += 1
        elif outcome.status == "duplicate":
            report.duplicates += 1
        else:
            report.rejected += 1
            on_reject(
                Reject(file, number, outcome.id, outcome.code or "invalid", outcome.message or "")
            )
    report.lines += len(pending)
    if progress is not None:
        progress(len(pending))
