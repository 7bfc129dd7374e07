"""Reading command files (JSON Lines) and applying them in batches.

A line is read as bytes, checked for length and UTF-8, decoded as JSON and handed to
:meth:`~dinsos_ledger.application.Ledger.apply_batch` together with the lines around it.
Rejects of a batch are reported only once the batch is committed, so an import that dies
half way has reported nothing it did not record, and running it again completes it (the
recorded commands come back as duplicates).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs

from dinsos_ledger.application import Ledger, Outcome
from dinsos_ledger.commands import Prepared, parse_command, prepare, printable_id
from dinsos_ledger.errors import InvalidCommand, LedgerError
from dinsos_ledger.privacy import keyed_digest

__all__ = [
    "MAX_LINE_BYTES",
    "PARALLEL_MIN_BYTES",
    "STDIN",
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
        """The reject line of the CLI contract."""
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
    refused_lines: list[int] = attrs.field(factory=list, repr=False)
    """Line numbers refused in the batch just applied (cleared after each batch)."""

    def to_json(self) -> dict[str, int]:
        """The ``--json`` summary of the CLI contract."""
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
    stream: BinaryIO, keep: dict[int, bytes] | None = None
) -> Iterator[tuple[int, Mapping[str, Any] | LedgerError]]:
    """Yield ``(line number, command or InvalidCommand)`` for each non-blank line.

    With ``keep``, each yielded line's bytes (as read, line end included) are stored there
    under its number first, for a caller that writes refused lines back out unchanged.
    """
    for number, raw in _lines(stream):
        if raw is None:
            yield number, InvalidCommand(f"line is longer than {MAX_LINE_BYTES} bytes")
            continue
        if keep is not None and raw.strip(b" \t\r\n"):
            keep[number] = raw
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
    on_retry: Callable[[bytes], None] | None = None,
) -> ImportReport:
    """Apply the commands of ``paths`` in order, ``batch_size`` per transaction.

    A path ``-`` is standard input. ``on_reject`` is called for each refused line once its
    batch is committed, and then ``on_retry`` (if given) with the line's bytes as read (a
    line over :data:`MAX_LINE_BYTES` is not kept, so it is not handed over); ``progress``
    with the number of lines handled so far. Files are opened before anything is applied,
    so an unreadable file stops the import before it starts (:class:`OSError`).

    With ``parallel`` (by default: files of at least :data:`PARALLEL_MIN_BYTES` on a
    machine with more than one core) a second process reads, validates and digests the
    next batch while this one applies the current one; the outcome is the same line for
    line, only sooner. Standard input and ``on_retry`` are read in this process.
    """
    streams = [_open_input(path) for path in paths]
    report = ImportReport()
    raw: dict[int, bytes] | None = {} if on_retry is not None else None
    try:
        if any(str(path) == STDIN for path in paths) or raw is not None:
            parallel = False
        if parallel is None:
            size = sum(os.fstat(stream.fileno()).st_size for stream in streams)
            parallel = size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
        batches = (
            _read_elsewhere(ledger, paths, batch_size)
            if parallel
            else _read_here(ledger, streams, batch_size, raw)
        )
        for index, pending in batches:
            _flush(ledger, str(paths[index]), pending, report, on_reject, progress)
            if raw is not None and on_retry is not None:
                for line in report.refused_lines:
                    kept = raw.get(line)
                    if kept is not None:
                        on_retry(kept)
                raw.clear()
            report.refused_lines.clear()
    finally:
        for stream in streams:
            if stream is not sys.stdin.buffer:
                stream.close()
    return report


#: The path that means standard input.
STDIN: Final = "-"


def _open_input(path: Path) -> BinaryIO:
    if str(path) == STDIN:
        return sys.stdin.buffer
    return path.open("rb")


#: Below this many bytes of input an import validates in its own process: starting the
#: second one costs about half a second.
PARALLEL_MIN_BYTES: Final = 2 * 1024 * 1024

_Batch = list[tuple[int, Prepared]]


def _prepared_batches(
    streams: Sequence[BinaryIO],
    digest: Callable[[bytes], str],
    batch_size: int,
    legacy: Callable[[bytes], str] | None = None,
    raw: dict[int, bytes] | None = None,
) -> Iterator[tuple[int, _Batch]]:
    """``(file index, [(line number, prepared command)])`` per batch, in order.

    With ``raw``, the bytes of each line of the batch are kept there by line number.
    """
    for index, stream in enumerate(streams):
        pending: _Batch = []
        for number, item in read_commands(stream, raw):
            pending.append((number, prepare(item, digest, legacy)))
            if len(pending) >= batch_size:
                yield index, pending
                pending = []
        if pending:
            yield index, pending


def _read_here(
    ledger: Ledger,
    streams: Sequence[BinaryIO],
    batch_size: int,
    raw: dict[int, bytes] | None = None,
) -> Iterator[tuple[int, _Batch]]:
    digest, legacy = ledger.body_digests()
    return _prepared_batches(streams, digest, batch_size, legacy, raw)


#: Environment variables the reader process keeps: enough to run Python and decode file
#: names, nothing that names or holds a key (DINSOS_LEDGER_KEY and its kin stay here).
_READER_ENV: Final = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")

# The reader's start-up code: isolated mode (-I) leaves the working directory, PYTHONPATH
# and the user's site-packages off sys.path, so a json.py lying in the folder of an import
# is never run; the folder holding this package is appended (after the standard library)
# for an installation that Python does not find on its own.
_READER_CODE: Final = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from dinsos_ledger.reading import main; main(int(sys.argv[2]))"
)

# A frame on the reader's pipe: 4 bytes of big-endian length, then UTF-8 JSON.
_FRAME_HEADER: Final = 4
_FRAME_MAX: Final = 1 << 30
# A line of a batch: [line, shown id, command or null, digest, error or null]; an error:
# [code, message, field].
_LINE_ITEMS: Final = 5
_ERROR_ITEMS: Final = 3


def write_frame(out: BinaryIO, message: Mapping[str, Any]) -> None:
    """Send one message of the reader's protocol: a length-prefixed JSON object."""
    body = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    out.write(len(body).to_bytes(_FRAME_HEADER, "big") + body)
    out.flush()


def read_frame(source: BinaryIO) -> dict[str, Any] | None:
    """Receive one message (None at the end of the pipe); anything malformed is an error.

    JSON, never pickle: the reader is a second process, and what it sends is data to
    check, not code to run in the process that holds the master key.
    """
    header = source.read(_FRAME_HEADER)
    if not header:
        return None
    size = int.from_bytes(header, "big")
    body = source.read(size) if len(header) == _FRAME_HEADER and size <= _FRAME_MAX else b""
    if len(body) != size or size == 0:
        msg = "the reader process sent a truncated or oversized message"
        raise RuntimeError(msg)
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict):
        msg = "the reader process sent a message that is not a JSON object"
        raise RuntimeError(msg)
    return message


def _received_line(entry: Any) -> tuple[int, Prepared]:
    """One line of a received batch, validated again here: the reader vouches for nothing.

    ``[line, shown id, command object or null, digest, error or null]``; an error is
    ``[code, message, field]``. The command is parsed again in this process, so what is
    recorded is only ever what this process validated.
    """
    if not (isinstance(entry, list) and len(entry) == _LINE_ITEMS and type(entry[0]) is int):
        msg = "the reader process sent a malformed line"
        raise RuntimeError(msg)
    number, shown, raw, digest, error = entry
    if error is not None or not isinstance(raw, dict):
        if not (isinstance(error, list) and len(error) == _ERROR_ITEMS):
            error = ["invalid", "the line could not be read", None]
        field = error[2] if isinstance(error[2], str) else None
        return number, (printable_id(shown), InvalidCommand(str(error[1]), field=field), "")
    shown_id = printable_id(raw.get("id"))
    try:
        command = parse_command(raw)
    except InvalidCommand as e:
        return number, (shown_id, e, "")
    return number, (shown_id, command, str(digest))


def _read_elsewhere(
    ledger: Ledger, paths: Sequence[Path], batch_size: int
) -> Iterator[tuple[int, _Batch]]:
    """The batches as prepared by a second process, one batch ahead of this one.

    The reader is ``python -I … dinsos_ledger.reading`` (a fresh interpreter in isolated
    mode: nothing of this process, its threads, its main module or its working directory's
    modules is loaded). Its environment holds no key; the only secrets it needs, the
    ledger's idempotency key (and, for a ledger upgraded from before it, the subkey of its
    older digests), come on its standard input as JSON; never the master key nor any data
    key. It sends batches through a pipe that holds about one, as JSON frames
    (:func:`read_frame`), so it waits while the ledger applies and
    memory stays bounded. It ends when the files do, or at its next send once this process
    has closed the pipe or died.
    """
    read_end, write_end = os.pipe()
    env = {name: os.environ[name] for name in _READER_ENV if name in os.environ}
    package_root = str(Path(__file__).resolve().parent.parent)
    try:
        reader = subprocess.Popen(  # noqa: S603 - this interpreter, this package's module
            [sys.executable, "-I", "-c", _READER_CODE, package_root, str(write_end)],
            stdin=subprocess.PIPE,
            pass_fds=(write_end,),
            env=env,
        )
    finally:
        os.close(write_end)
    receiver = os.fdopen(read_end, "rb")
    try:
        assert reader.stdin is not None
        # A reader that died at start-up shows as the end of the pipe, below.
        with contextlib.suppress(BrokenPipeError), reader.stdin as config:
            legacy = ledger.secrets.legacy_subkey
            settings = {
                "paths": [str(Path(path).resolve()) for path in paths],
                "subkey": base64.b64encode(ledger.secrets.digest_subkey).decode("ascii"),
                "legacy_subkey": None if legacy is None else base64.b64encode(legacy).decode(),
                "batch_size": batch_size,
            }
            config.write(json.dumps(settings).encode("utf-8"))
        while True:
            message = read_frame(receiver)
            if message is None:
                code = reader.wait()
                msg = f"the reader process stopped unexpectedly (exit code {code})"
                raise RuntimeError(msg)
            kind = message.get("type")
            if kind == "done":
                return
            if kind == "error":
                _raise_reader_error(message)
            lines = message.get("lines")
            index = message.get("file")
            if kind != "batch" or type(index) is not int or not isinstance(lines, list):
                msg = f"the reader process sent an unknown message ({str(kind)[:40]!r})"
                raise RuntimeError(msg)
            yield index, [_received_line(entry) for entry in lines]
    finally:
        receiver.close()
        try:
            reader.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - it ends when the pipe closes
            reader.kill()
            reader.wait()


def _raise_reader_error(message: Mapping[str, Any]) -> None:
    """Raise here what stopped the reader: an OSError as such (an unreadable file)."""
    errno, strerror, filename = message.get("errno"), message.get("strerror"), message.get("file")
    if type(errno) is int and isinstance(strerror, str):
        raise OSError(errno, strerror, filename if isinstance(filename, str) else None)
    msg = f"the reader process failed: {str(message.get('message'))[:500]}"
    raise RuntimeError(msg)


def _sent_line(
    number: int,
    raw: Mapping[str, Any] | LedgerError,
    digest: Callable[[bytes], str],
    legacy: Callable[[bytes], str] | None,
) -> list[Any]:
    shown_id, command, body_digest = prepare(raw, digest, legacy)
    if isinstance(command, LedgerError):
        field = getattr(command, "field", None)
        return [number, shown_id, None, "", [command.code, command.message, field]]
    assert not isinstance(raw, LedgerError)
    return [number, shown_id, dict(raw), body_digest, None]


def run_reader(
    out: BinaryIO,
    paths: Sequence[str],
    subkey: bytes,
    batch_size: int,
    legacy_subkey: bytes | None = None,
) -> None:
    """The work of the reader process: read, decode and digest, send each batch as JSON."""
    try:
        with contextlib.ExitStack() as files:
            streams = [files.enter_context(Path(path).open("rb")) for path in paths]
            digest = functools.partial(keyed_digest, subkey)
            legacy = (
                None if legacy_subkey is None else functools.partial(keyed_digest, legacy_subkey)
            )
            for index, stream in enumerate(streams):
                pending: list[list[Any]] = []
                for number, item in read_commands(stream):
                    pending.append(_sent_line(number, item, digest, legacy))
                    if len(pending) >= batch_size:
                        write_frame(out, {"type": "batch", "file": index, "lines": pending})
                        pending = []
                if pending:
                    write_frame(out, {"type": "batch", "file": index, "lines": pending})
        write_frame(out, {"type": "done"})
    except (BrokenPipeError, ConnectionResetError):
        return  # the importer has gone: nothing is waiting for these batches
    except OSError as e:
        with contextlib.suppress(OSError):
            write_frame(
                out,
                {"type": "error", "errno": e.errno, "strerror": e.strerror, "file": e.filename},
            )
    except Exception as e:  # noqa: BLE001 - handed to the importer, which raises it
        with contextlib.suppress(OSError):
            write_frame(out, {"type": "error", "message": f"{type(e).__name__}: {e}"})
    finally:
        with contextlib.suppress(OSError):
            out.close()


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
            report.refused_lines.append(number)
            on_reject(
                Reject(file, number, outcome.id, outcome.code or "invalid", outcome.message or "")
            )
    report.lines += len(pending)
    if progress is not None:
        progress(len(pending))
