"""Reading command files (JSON Lines) and applying them in batches.

A line is read as bytes, checked for length and UTF-8, decoded as JSON and handed to
:meth:`~dinsos_ledger.application.Ledger.apply_batch` together with the lines around it.
Rejects of a batch are reported only once the batch is committed, so an import that dies
half way has reported nothing it did not record, and running it again completes it (the
recorded commands come back as duplicates).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs

from dinsos_ledger.application import Ledger, Outcome
from dinsos_ledger.errors import InvalidCommand, LedgerError

__all__ = ["MAX_LINE_BYTES", "ImportReport", "Reject", "import_files", "read_commands"]

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
) -> ImportReport:
    """Apply the commands of ``paths`` in order, ``batch_size`` per transaction.

    ``on_reject`` is called for each refused line once its batch is committed; ``progress``
    with the number of lines handled so far. Files are opened before anything is applied,
    so an unreadable file stops the import before it starts (:class:`OSError`).
    """
    streams = [path.open("rb") for path in paths]
    report = ImportReport()
    try:
        for path, stream in zip(paths, streams, strict=True):
            pending: list[tuple[int, Mapping[str, Any] | LedgerError]] = []
            for item in read_commands(stream):
                pending.append(item)
                if len(pending) >= batch_size:
                    _flush(ledger, str(path), pending, report, on_reject, progress)
                    pending = []
            if pending:
                _flush(ledger, str(path), pending, report, on_reject, progress)
    finally:
        for stream in streams:
            stream.close()
    return report


def _flush(
    ledger: Ledger,
    file: str,
    pending: list[tuple[int, Mapping[str, Any] | LedgerError]],
    report: ImportReport,
    on_reject: Callable[[Reject], None],
    progress: Callable[[int], None] | None,
) -> None:
    outcomes: list[Outcome] = ledger.apply_batch([item for _, item in pending])
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
