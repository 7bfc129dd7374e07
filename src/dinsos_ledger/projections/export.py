"""The full event log as a flat table: JSON Lines, CSV or Parquet, never personal data.

One row per event, in position order, with the columns of :data:`COLUMNS`. Personal data
fields (:data:`PII_FIELDS`) are never read, so neither the plain text nor the ciphertext
can reach an export. Events are streamed a page at a time: memory stays bounded whatever
the size of the ledger (Parquet is written in record batches).
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal

import attrs

from dinsos_ledger.codec import converter
from dinsos_ledger.commands import PII_FIELDS
from dinsos_ledger.projections.engine import SubjectsProjection, event_kind, event_type

if TYPE_CHECKING:
    from dinsos_ledger.application import Ledger

__all__ = [
    "COLUMNS",
    "FORMATS",
    "FORMULA_STARTS",
    "PII_FIELDS",
    "Column",
    "export_events",
    "export_row",
    "spreadsheet_safe",
]

Format = Literal["jsonl", "csv", "parquet"]

#: The export formats.
FORMATS: Final[tuple[Format, ...]] = ("jsonl", "csv", "parquet")

#: Personal-data fields of events (the subject kinds); never exported, not even sealed.


@attrs.frozen
class Column:
    """One export column: its name, its type and what it holds.

    The type is one of ``text``, ``integer``, ``date``, ``timestamp`` and ``boolean``.
    """

    name: str
    type: str
    doc: str


#: The export's columns, in order (the same in every format).
COLUMNS: Final[tuple[Column, ...]] = (
    Column("position", "integer", "position of the event in the log (1, 2, …), its order"),
    Column("ref", "text", "the subject's case number"),
    Column("kind", "text", "household, veteran, cohort, enrolment or programme"),
    Column("event", "text", "event type: registered, planned, enrolled, assessed, …"),
    Column("on", "date", "business date of the act"),
    Column("recorded", "timestamp", "when the ledger recorded the event (UTC)"),
    Column("actor", "text", "who did it"),
    Column("note", "text", "free-text note of the command"),
    Column("command_id", "text", "id of the command that caused the event"),
    Column("version", "integer", "the event's number within its subject (1 = registration)"),
    Column("programme", "text", "allocated, disbursed: programme code"),
    Column("amount", "integer", "allocated, disbursed, disbursement_confirmed: whole rupiah"),
    Column("period", "text", "allocated: budget month YYYY-MM"),
    Column("reference", "text", "allocated, disbursed, disbursement_*: reference"),
    Column("channel", "text", "disbursed: bank, post, cash or in_kind"),
    Column("reason", "text", "disbursement_reversed, withdrawn, closed, forgotten: reason"),
    Column("outcome", "text", "followed_up: visited, phoned, referred, resolved, not_found"),
    Column("desil", "integer", "assessed (household): desil 1-10; allocated: the desil seen"),
    Column("eligible", "boolean", "assessed (veteran): eligible or not; allocated: as seen"),
    Column("region", "text", "registered, planned: village code NN.NN.NN.NNNN"),
    Column("members", "integer", "registered (household): number of members"),
    Column("cohort", "text", "enrolled: the cohort's ref"),
    Column("household", "text", "enrolled, participant_*: the household's ref"),
    Column("enrolment", "text", "participant_enrolled, participant_withdrawn: enrolment ref"),
    Column("capacity", "integer", "planned (cohort): seats"),
    Column("starts", "date", "planned, enrolled: first day of the cohort"),
    Column("ends", "date", "planned, enrolled: last day of the cohort"),
    Column("channel_ref", "text", "disbursement_confirmed: the payment channel's transaction id"),
    # Programmes, and the rule an allocation was decided by (its event's ``rule``).
    Column("recipients", "text", "defined (programme): kinds it reaches, comma-separated"),
    Column("desil_limit", "integer", "defined, amended; allocated: the deciding limit"),
    Column("rule_source", "text", "allocated: default, define_programme or amend_programme"),
    Column("rule_on", "date", "allocated: the day the deciding rule was in force from"),
    Column("rule_version", "integer", "allocated: the programme's event that set that rule"),
)

_NAMES: Final = tuple(column.name for column in COLUMNS)
_EVENT_FIELDS: Final = tuple(_NAMES[10:])
_PAGE: Final = 2000


def _plain(value: Any) -> Any:
    if value is None or type(value) in (str, int, bool):
        return value
    if isinstance(value, dt.date):  # dates and datetimes keep their type until written
        return value
    if isinstance(value, enum.Enum):
        return value.value
    return converter.unstructure(value)


def export_row(position: int, event: Any, ref: str | None) -> dict[str, Any]:
    """The export row of one decoded event (``ref`` for events that do not carry it).

    Values are Python ``str``, ``int``, ``bool``, ``date``, ``datetime`` or None; the
    personal-data fields of the event are never read.
    """
    state = vars(event)
    row: dict[str, Any] = {
        "position": position,
        "ref": state.get("ref", ref),
        "kind": event_kind(event),
        "event": event_type(event),
        "on": state.get("on"),
        "recorded": state.get("timestamp"),
        "actor": state.get("actor"),
        "note": state.get("note"),
        "command_id": state.get("command_id"),
        "version": state.get("originator_version"),
    }
    for name in _EVENT_FIELDS:
        row[name] = _plain(state.get(name))
    recipients = state.get("recipients")
    if recipients is not None:
        row["recipients"] = ",".join(recipients)
    rule = state.get("rule")
    if rule is not None:
        # The rule the allocation was decided by, flattened: what it saw goes in the
        # assessment's own columns.
        row.update(
            desil_limit=rule.desil_limit,
            rule_source=rule.source,
            rule_on=rule.on,
            rule_version=rule.programme_version,
            desil=rule.desil,
            eligible=rule.eligible,
        )
    return row


def _rows(ledger: Ledger, progress: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    """Every event as an export row, up to the position the projections reached at the start."""
    projections = ledger.projections
    projections.catch_up()
    engine = projections.engine
    stop = engine.positions()[SubjectsProjection.name]
    refs: dict[str, str] = {}
    page: list[tuple[int, Any]] = []
    written = 0

    def flush() -> Iterator[dict[str, Any]]:
        nonlocal written
        wanted = {e.originator_id.hex for _, e in page if "ref" not in vars(e)}
        refs.clear()  # one page's worth at a time: bounded memory
        if wanted:
            with engine.reading() as reader:
                ids = sorted(wanted)
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    refs.update(
                        reader.all(
                            f"SELECT subject_id, ref FROM {SubjectsProjection.table} "
                            f"WHERE subject_id IN ({marks})",
                            chunk,
                        )
                    )
        for position, event in page:
            yield export_row(position, event, refs.get(event.originator_id.hex))
        written += len(page)
        if progress is not None:
            progress(written)

    for position, event in ledger.events(page=_PAGE):
        if position > stop:
            break
        page.append((position, event))
        if len(page) >= _PAGE:
            yield from flush()
            page = []
    if page:
        yield from flush()


def _text(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _write_jsonl(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps({k: _text(v) for k, v in row.items()}, ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _text(value)


#: First characters that make a spreadsheet read a cell as a formula (or, for tab and
#: carriage return, hide one behind them). A text cell starting with one gets a leading
#: single quote, as spreadsheet-safe exporters do (OWASP "CSV injection").
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")

_TEXT_COLUMNS: Final = frozenset(column.name for column in COLUMNS if column.type == "text")


def spreadsheet_safe(value: str) -> str:
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _write_csv(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    # CRLF as RFC 4180 says: the writer then also quotes a cell holding a lone carriage
    # return, which a reader would otherwise take for the end of the row.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_NAMES)
    # Numbers stay numbers (a negative amount is a number, not a formula): only the text
    # columns, which hold what operators typed (actor, note, reasons …), are neutralised.
    text = [name in _TEXT_COLUMNS for name in _NAMES]
    count = 0
    for row in rows:
        writer.writerow(
            [
                spreadsheet_safe(value) if is_text and isinstance(value, str) else value
                for is_text, value in zip(text, (_csv_value(row[n]) for n in _NAMES), strict=True)
            ]
        )
        count += 1
    return count


def parquet_schema() -> Any:
    """The Parquet (Arrow) schema of the export; needs ``pyarrow``."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    types = {
        "text": pa.string(),
        "integer": pa.int64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "boolean": pa.bool_(),
    }
    return pa.schema([pa.field(column.name, types[column.type]) for column in COLUMNS])


def _write_parquet(rows: Iterator[dict[str, Any]], path: Path, batch: int = 10_000) -> int:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    schema = parquet_schema()
    count = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        chunk: list[dict[str, Any]] = []

        def write() -> None:
            arrays = [
                pa.array([row[field.name] for row in chunk], type=field.type) for field in schema
            ]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))

        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                write()
                count += len(chunk)
                chunk = []
        if chunk:
            write()
            count += len(chunk)
    return count


def export_events(
    ledger: Ledger,
    out: str | os.PathLike[str] | IO[str],
    fmt: Format,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the event log to ``out`` in format ``fmt``; return the number of rows.

    ``out`` is a path, or for ``jsonl`` and ``csv`` also an open text stream. A path is
    written through a temporary file beside it and renamed at the end, so a failed export
    never leaves a half-written file under that name. ``parquet`` needs ``pyarrow``.
    """
    if fmt not in FORMATS:
        msg = f"'format' must be one of {', '.join(FORMATS)} (got {fmt!r})"
        raise ValueError(msg)
    if fmt == "parquet":
        import pyarrow  # type: ignore[import-untyped,unused-ignore]  # noqa: F401 - fail early when missing
    rows = _rows(ledger, progress)
    if not isinstance(out, str | os.PathLike):
        if fmt == "parquet":
            msg = "a Parquet export needs a file path, not a stream"
            raise ValueError(msg)
        return _write_jsonl(rows, out) if fmt == "jsonl" else _write_csv(rows, out)
    path = Path(out)
    partial = path.with_name(path.name + ".partial")
    try:
        if fmt == "parquet":
            count = _write_parquet(rows, partial)
        else:
            with partial.open("w", encoding="utf-8", newline="") as handle:
                count = _write_jsonl(rows, handle) if fmt == "jsonl" else _write_csv(rows, handle)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def column_names() -> Sequence[str]:
    """The names of the export's columns, in order."""
    return _NAMES
