"""Payment channels' statements turned into ``confirm`` and ``reverse`` commands.

A statement is a CSV file with a header naming at least the columns
``channel_ref,reference,ref,amount,status,date`` (in any order; other columns are ignored
and never read into a message). Each ``credited`` row becomes a ``confirm`` of the
disbursement ``reference`` of subject ``ref``; each ``returned`` row a ``reverse`` with the
reason ``returned by <channel>``. Both are dated ``date``, done by the ``--actor`` and carry
the command id ``<channel>:<channel_ref>:<status>``, so running a statement again answers
``duplicate`` for every row already recorded and records nothing twice.

A row that cannot become a valid command is a reject with its line number (the header is
line 1; blank lines count), exactly as :func:`~dinsos_ledger.importer.import_files`
reports a line; so is a row the ledger refuses (``unknown_reference``, ``amount_mismatch`` …).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from dinsos_ledger.application import Ledger
from dinsos_ledger.commands import printable_id
from dinsos_ledger.errors import InvalidCommand, LedgerError
from dinsos_ledger.importer import ImportReport, Reject
from dinsos_ledger.types import MAX_AMOUNT, REF_RE, REFERENCE_RE

__all__ = [
    "CHANNELS",
    "COLUMNS",
    "Row",
    "StatementError",
    "load_statement",
    "read_statement",
    "reconcile_statement",
    "statement_commands",
]

#: The channels whose statements can be reconciled.
CHANNELS: Final = ("bank", "post")
#: The columns a statement must have (others are ignored).
COLUMNS: Final = ("channel_ref", "reference", "ref", "amount", "status", "date")
_STATUSES: Final = ("credited", "returned")
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_AMOUNT_RE: Final = re.compile(r"[0-9]{1,13}")
_ID_MAX: Final = 128
_SHOWN_MAX: Final = 40


class StatementError(LedgerError, ValueError):
    """Raised when a statement as a whole cannot be read (no header, missing columns …)."""

    code = "statement"


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_MAX else value[: _SHOWN_MAX - 1] + "…")


def _is_date(value: str) -> bool:
    if _DATE_RE.fullmatch(value) is None:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check(column: str, value: str) -> str | None:
    """What is wrong with ``value`` in ``column``, or None."""
    shown = _shown(value)
    wrong = {
        "channel_ref": (
            REFERENCE_RE.fullmatch(value) is None,
            f"letters, digits and ._:/- (1–128 characters) (got {shown})",
        ),
        "reference": (
            REFERENCE_RE.fullmatch(value) is None,
            f"letters, digits and ._:/- (1–128 characters) (got {shown})",
        ),
        "ref": (
            REF_RE.fullmatch(value) is None,
            f"a ref of A-Z, 0-9 and '-' (2–64 characters) (got {shown})",
        ),
        "amount": (
            _AMOUNT_RE.fullmatch(value) is None or not 0 < int(value) <= MAX_AMOUNT,
            f"whole rupiah, digits only, from 1 to {MAX_AMOUNT} (got {shown})",
        ),
        "status": (value not in _STATUSES, f"credited or returned (got {shown})"),
        "date": (not _is_date(value), f"a date YYYY-MM-DD that exists (got {shown})"),
    }
    bad, expected = wrong[column]
    return expected if bad else None


def _row_command(
    row: Mapping[str, str], channel: str, actor: str
) -> tuple[str | None, dict[str, Any] | InvalidCommand]:
    """The command of one statement row (with the id a reject shows), or why it is invalid."""
    problems: list[str] = []
    values: dict[str, str] = {}
    for column in COLUMNS:
        value = row.get(column)
        if value is None:
            problems.append(f"missing column '{column}'")
            continue
        value = value.strip()
        wrong = _check(column, value)
        if wrong is not None:
            problems.append(f"column '{column}' must be {wrong}")
        values[column] = value
    shown_id = None
    if "channel_ref" in values and values.get("status") in _STATUSES:
        command_id = f"{channel}:{values['channel_ref']}:{values['status']}"
        shown_id = printable_id(command_id)
        if len(command_id) > _ID_MAX:
            problems.append(
                f"column 'channel_ref' must be short enough for the command id "
                f"{channel}:<channel_ref>:<status> of at most {_ID_MAX} characters"
            )
    if problems:
        return shown_id, InvalidCommand("; ".join(problems))
    body: dict[str, Any] = {
        "id": f"{channel}:{values['channel_ref']}:{values['status']}",
        "ref": values["ref"],
        "on": values["date"],
        "actor": actor,
        "reference": values["reference"],
    }
    if values["status"] == "credited":
        body.update(
            command="confirm", amount=int(values["amount"]), channel_ref=values["channel_ref"]
        )
    else:
        body.update(command="reverse", reason=f"returned by {channel}")
    return shown_id, body


def _delimiter(text: str) -> str:
    """The cell separator: ``;`` when the header uses semicolons only, else ``,``.

    A spreadsheet in an Indonesian locale writes ``;``, the comma being its decimal mark.
    """
    header = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if ";" in header and "," not in header else ","


def statement_commands(
    text: str, channel: str, actor: str
) -> Iterator[tuple[int, str | None, dict[str, Any] | InvalidCommand]]:
    """Yield ``(line number, shown id, command or InvalidCommand)`` per non-blank row.

    Raises :class:`StatementError` when the header is missing or lacks a column.
    """
    if channel not in CHANNELS:
        msg = f"'channel' must be one of {', '.join(CHANNELS)} (got {_shown(channel)})"
        raise StatementError(msg)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header: list[str] | None = None
    last = 0
    try:
        for cells in reader:
            first, last = last + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # a blank line (or a row of empty cells) is no row
            if header is None:
                header = [cell.strip().lower() for cell in cells]
                missing = [c for c in COLUMNS if c not in header]
                if missing:
                    msg = (
                        f"the statement's header must name the columns {','.join(COLUMNS)} "
                        f"(missing: {', '.join(missing)})"
                    )
                    raise StatementError(msg)
                continue
            row = {name: cells[i] for i, name in enumerate(header) if i < len(cells)}
            shown_id, command = _row_command(row, channel, actor)
            yield first, shown_id, command
    except csv.Error as e:
        msg = f"line {reader.line_num}: not a readable CSV row ({e})"
        raise StatementError(msg) from None
    if header is None:
        msg = f"the statement has no header (expected {','.join(COLUMNS)})"
        raise StatementError(msg)


def read_statement(path: Path) -> str:
    """The statement's text (UTF-8, a byte-order mark allowed).

    Raises :class:`OSError` or :class:`StatementError`.
    """
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        msg = f"line {line} is not UTF-8 text"
        raise StatementError(msg) from None


Row = tuple[int, str | None, "dict[str, Any] | InvalidCommand"]
"""A statement row as a command: its line number, the id a reject shows, the command."""


def load_statement(path: Path, *, channel: str, actor: str) -> list[Row]:
    """Read the statement at ``path`` into commands, touching no ledger.

    Raises :class:`StatementError` when it cannot be read as a statement (or ``actor`` is
    not a valid actor), :class:`OSError` when the file cannot be read.
    """
    if not actor or len(actor) > _ID_MAX:
        msg = f"'actor' must be 1–{_ID_MAX} characters long (got {len(actor)})"
        raise StatementError(msg)
    return list(statement_commands(read_statement(path), channel, actor))


def reconcile_statement(
    ledger: Ledger,
    path: Path,
    *,
    channel: str,
    actor: str,
    on_reject: Callable[[Reject], None],
    batch_size: int = 500,
    rows: list[Row] | None = None,
) -> ImportReport:
    """Apply the statement at ``path`` as commands, ``batch_size`` per transaction.

    Counts and rejects are those of an import; ``on_reject`` is called once a batch is
    committed. ``rows`` are the statement's rows when :func:`load_statement` has read
    them already. Raises as :func:`load_statement` does (and then applies nothing).
    """
    if rows is None:
        rows = load_statement(path, channel=channel, actor=actor)
    report = ImportReport()
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        outcomes = ledger.apply_batch([command for _, _, command in batch])
        for (line, shown_id, _), outcome in zip(batch, outcomes, strict=True):
            if outcome.status == "accepted":
                report.accepted += 1
            elif outcome.status == "duplicate":
                report.duplicates += 1
            else:
                report.rejected += 1
                on_reject(
                    Reject(
                        str(path),
                        line,
                        outcome.id if outcome.id is not None else shown_id,
                        outcome.code or "invalid",
                        outcome.message or "",
                    )
                )
        report.lines += len(batch)
    return report
