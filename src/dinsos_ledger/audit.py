"""Audit of a ledger: verification, checkpoints, history, erasure.

- :func:`verify` streams every stored event and every chain link through
  :func:`dinsos_ledger.chain.check_chain` and returns a :class:`VerifyReport` whose
  :class:`AuditFinding` names the first event that was altered, removed or inserted
  directly in the database (its position and, when the row is still there, its subject,
  version and event type). Memory stays constant however long the ledger. Once the
  events hold, :func:`check_snapshots` compares every stored snapshot with its events.
- :func:`make_checkpoint` signs the verified head of the chain with an Ed25519 key; kept
  outside the database, the checkpoint later proves with ``verify(…, checkpoint=…)`` that
  nothing up to it was rewritten or cut off.
- :func:`history` lists a subject's events without personal data; :func:`parse_timestamp`
  reads the ``--known-at`` moment of a point-in-time view.
- :func:`forget_command` builds the ``forget`` command of the ``forget`` verb.

Findings are data: the command line prints them, as text or JSON, and decides the exit
status. Nothing here returns or prints personal data, not even its ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hmac
import json
import os
import re
import sqlite3
import sys
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, ParamSpec, TypeVar, cast

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from eventsourcing.domain import CanMutateProtocol, DomainEventProtocol
from eventsourcing.persistence import PersistenceError
from eventsourcing.utils import resolve_topic

from dinsos_ledger import chain
from dinsos_ledger.aggregates.base import Subject
from dinsos_ledger.application import Ledger
from dinsos_ledger.codec import converter, event_fields
from dinsos_ledger.commands import PII_FIELDS
from dinsos_ledger.errors import LedgerError, StorageError
from dinsos_ledger.projections.verification import ProjectionDifference, check_projections
from dinsos_ledger.storage import LedgerSQLiteRecorder
from dinsos_ledger.types import Sealed

if TYPE_CHECKING:  # psycopg is imported only when a PostgreSQL ledger is opened
    from dinsos_ledger.persistence.postgres import LedgerPostgresRecorder

__all__ = [
    "SIGNING_KEY_ENV",
    "TRUSTED_KEYS_ENV",
    "AuditFinding",
    "ChainBroken",
    "VerifyReport",
    "check_snapshots",
    "count_problem",
    "event_type",
    "forget_command",
    "history",
    "history_entry",
    "ledger_id",
    "load_checkpoint",
    "make_checkpoint",
    "parse_public_key",
    "parse_timestamp",
    "read_trusted_keys",
    "signing_key_path",
    "verify",
    "write_checkpoint_file",
]

#: The environment variable naming the checkpoint signing key file (PEM, PKCS#8 Ed25519).
SIGNING_KEY_ENV: Final = "DINSOS_LEDGER_SIGNING_KEY"
#: The environment variable naming a file of trusted checkpoint public keys.
TRUSTED_KEYS_ENV: Final = "DINSOS_LEDGER_TRUSTED_KEYS"

FindingKind = Literal[
    "altered",
    "removed",
    "inserted",
    "reordered",
    "truncated",
    "checkpoint",
    "snapshot",
    "guard",
    "projection",
    "damaged",
]

_META_TABLE: Final = "dinsos_meta"
_LEDGER_ID: Final = "ledger_id"
_PUBLIC_KEY_BYTES: Final = 32  # an Ed25519 public key
# Envelope fields of every event, shown under their own names in a history entry.
_ENVELOPE: Final = frozenset({"timestamp", "originator_topic", "on", "actor", "command_id", "note"})
_CAMEL_RE: Final = re.compile(r"(?<!^)(?=[A-Z])")
# A stand-in for a stored row that cannot be read (a column changed to a value of the wrong
# type behind the ledger's back). Its empty originator id never occurs in a real row, so its
# link cannot equal a stored one and the walk reports the row as altered (or inserted).
_UNREADABLE_ID: Final = ""


# Failures of the store itself: never mistaken for a tampered row, always a StorageError.
def _store_errors() -> tuple[type[BaseException], ...]:
    """The store's own failures; psycopg's only once it was imported (a PostgreSQL ledger)."""
    psycopg = sys.modules.get("psycopg")
    errors: tuple[type[BaseException], ...] = (PersistenceError, sqlite3.Error, OSError)
    return errors if psycopg is None else (*errors, psycopg.Error)


def _is_postgres(recorder: Any) -> bool:
    return getattr(recorder, "backend", None) == "postgres"


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _reading(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Report a store that cannot be read as a :class:`StorageError` naming the ledger."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except StorageError:
            raise
        except _store_errors() as e:
            ledger = args[0]
            shown = ledger.target.display if isinstance(ledger, Ledger) else "the ledger"
            msg = f"cannot read the ledger at {shown}: {e}"
            raise StorageError(msg) from e

    return wrapper


class ChainBroken(LedgerError, ValueError):
    """Raised when a checkpoint is asked of a ledger whose chain does not verify."""

    code = "chain_broken"

    def __init__(self, message: str, report: VerifyReport) -> None:
        super().__init__(message)
        self.report = report


@attrs.frozen
class AuditFinding:
    """The first problem :func:`verify` found: what, where, and the event when it still exists.

    ``kind`` is one of ``altered``, ``removed``, ``inserted``, ``reordered``, ``truncated``
    (see :func:`dinsos_ledger.chain.check_chain`), ``checkpoint`` (the checkpoint given
    does not belong to this ledger), ``snapshot`` (a stored snapshot differs from the
    state its events give) or ``guard`` (an append-only guard trigger of the events or
    chain table is missing or altered). ``ref``, ``subject_kind``, ``version`` and
    ``event`` describe the stored row at ``position`` as it reads now (for a snapshot: its
    subject and version); they are ``None`` when there is no row there or it cannot be
    decoded.
    """

    kind: FindingKind
    position: int | None
    message: str
    ref: str | None = None
    subject_kind: str | None = None
    version: int | None = None
    event: str | None = None
    projection: ProjectionDifference | None = None

    def to_json(self) -> dict[str, Any]:
        """The finding as a JSON object.

        A ``projection`` finding also has ``projection`` (its name), ``table``, ``row``
        (the row's key, column → value; ``{}`` for the table itself) and ``column`` (the
        first that differs, ``null`` for a missing or extra row).
        """
        found: dict[str, Any] = {
            "kind": self.kind,
            "position": self.position,
            "ref": self.ref,
            "subject_kind": self.subject_kind,
            "version": self.version,
            "event": self.event,
            "message": self.message,
        }
        if self.projection is not None:
            found["projection"] = self.projection.projection
            found["table"] = self.projection.table
            found["row"] = {name: _json_value(v) for name, v in self.projection.key.items()}
            found["column"] = self.projection.column
        return found

    def describe(self) -> str:
        """One line for people: ``altered at position 5 (KT-HH-0001, household, …): …``."""
        if self.projection is not None:
            difference = self.projection
            about = [f"table {difference.table}"]
            if difference.key:
                about.append(difference.key_text())
            if difference.column is not None:
                about.append(f"column {difference.column}")
            return f"projection {difference.projection} ({', '.join(about)}): {self.message}"
        where = self.kind if self.position is None else f"{self.kind} at position {self.position}"
        about = [
            part
            for part in (
                self.ref,
                self.subject_kind,
                None if self.version is None else f"version {self.version}",
                self.event,
            )
            if part is not None
        ]
        if about:
            where += f" ({', '.join(about)})"
        return f"{where}: {self.message}"


@attrs.frozen
class VerifyReport:
    """What :func:`verify` found.

    ``events`` counts the events verified before the first finding (all of them when
    ``ok``); ``head_position`` and ``head_hash`` are those of the last verified event.
    ``ledger`` is the ledger's id (``None`` before its first checkpoint) and ``checkpoint``
    the checkpoint the chain was checked against, if any.
    """

    ok: bool
    events: int
    head_position: int | None
    head_hash: str
    ledger: str | None
    checkpoint: chain.Checkpoint | None = None
    finding: AuditFinding | None = None

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object (the output of ``verify --json``)."""
        return {
            "ok": self.ok,
            "events": self.events,
            "head_position": self.head_position,
            "head_hash": self.head_hash,
            "ledger": self.ledger,
            "checkpoint": None if self.checkpoint is None else attrs.asdict(self.checkpoint),
            "finding": None if self.finding is None else self.finding.to_json(),
        }


# ------------------------------------------------------------------ verification


@_reading
def verify(
    ledger: Ledger, *, checkpoint: chain.Checkpoint | None = None, projections: bool = True
) -> VerifyReport:
    """Recompute the integrity chain over every stored event of ``ledger``.

    Rows and links are streamed page by page, so memory stays constant. Only the events
    stored when the call starts are checked: writers may go on recording meanwhile
    without a race making an intact tail look tampered with.

    With a ``checkpoint`` (read with :func:`load_checkpoint`), the chain must also still
    pass through its signed head: a chain cut short or rewritten consistently since then
    is found. A checkpoint of another ledger is a ``checkpoint`` finding, reported after
    any finding of the chain itself. Once the chain holds, the append-only guard triggers
    must be in place and unaltered (a ``guard`` finding otherwise). Then every stored
    snapshot is compared with the state its subject's events give (:func:`check_snapshots`),
    because the ledger loads subjects from their snapshots; then every stored projection
    row with the one the events give (a ``projection`` finding, see
    :func:`dinsos_ledger.projections.verification.check_projections`), because balances,
    timelines and reports print what the projections hold. ``projections=False`` leaves
    that last step out (it costs about a ``rebuild``), for measuring the chain walk alone.
    """
    recorder = ledger.recorder
    damaged = _damaged_file(ledger)
    if damaged is not None:
        return VerifyReport(
            ok=False,
            events=0,
            head_position=None,
            head_hash=chain.GENESIS.hex(),
            ledger=None,
            checkpoint=checkpoint,
            finding=damaged,
        )
    identity = ledger_id(ledger)
    stray = _stray_position(recorder)
    if stray is not None:
        return VerifyReport(
            ok=False,
            events=0,
            head_position=None,
            head_hash=chain.GENESIS.hex(),
            ledger=identity,
            checkpoint=checkpoint,
            finding=_locate(ledger, stray),
        )
    head = max(_position(recorder, "row", "last") or 0, _position(recorder, "link", "last") or 0)
    foreign = checkpoint is not None and checkpoint.ledger != identity
    result = chain.check_chain(
        _rows(recorder, head),
        _links(recorder, head),
        checkpoint=None if foreign else checkpoint,
    )
    finding: AuditFinding | None = None
    guards = recorder.guard_problems() if result.first_finding is None else []
    if result.first_finding is not None:
        finding = _locate(ledger, result.first_finding)
    elif guards:
        finding = AuditFinding(kind="guard", position=None, message="; ".join(guards))
    elif foreign:
        assert checkpoint is not None
        theirs = checkpoint.ledger
        ours = "has no id yet" if identity is None else f"is {identity}"
        finding = AuditFinding(
            kind="checkpoint",
            position=None,
            message=f"the checkpoint is of ledger {theirs}, but this ledger {ours}",
        )
    else:
        finding = check_snapshots(ledger) or (_projection_finding(ledger) if projections else None)
    return VerifyReport(
        ok=finding is None,
        events=result.events,
        head_position=result.head_position,
        head_hash=result.head_hash.hex(),
        ledger=identity,
        checkpoint=checkpoint,
        finding=finding,
    )


@_reading
def count_problem(ledger: Ledger) -> str | None:
    """A quick look for rows removed or added behind the ledger's back, before a verb reads.

    The ledger writes one chain link per event in the same transaction, so the two tables
    always hold as many rows, up to the same last position. Counting them costs one pass
    inside the database (no row reaches Python); it catches an event deleted, or inserted,
    by hand, which :func:`verify` then locates. None when they agree.
    """
    recorder = ledger.recorder
    if _is_postgres(recorder):
        from psycopg.sql import SQL  # a SQLite ledger need not have psycopg

        recorder = cast("LedgerPostgresRecorder", recorder)

        query = SQL(
            "SELECT (SELECT COUNT(*) FROM {0}) AS events, (SELECT COUNT(*) FROM {1}) AS links"
        ).format(recorder.events_table, recorder.chain_table)
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(query)
            found = curs.fetchone()
            events, links = (0, 0) if found is None else (found["events"], found["links"])
    else:
        assert isinstance(recorder, LedgerSQLiteRecorder)
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT (SELECT COUNT(*) FROM {recorder.events_table_name}), "
                "(SELECT COUNT(*) FROM dinsos_chain)"
            )
            events, links = c.fetchone()
    if events == links:
        return None
    what = "removed" if events < links else "inserted"
    return (
        f"the ledger at {ledger.target.display} holds {events} events but {links} chain "
        f"links: events were {what} outside the ledger; run `dinsos-ledger verify` to "
        "locate the first"
    )


def _damaged_file(ledger: Ledger) -> AuditFinding | None:
    """SQLite's own check of the file's structure, as a ``damaged`` finding when it fails.

    A page overwritten on disk may lie where no event is read (an index, a free page) and
    still break the next write; the chain walk would not see it. PostgreSQL checks its
    pages itself.
    """
    recorder = ledger.recorder
    if not isinstance(recorder, LedgerSQLiteRecorder):
        return None
    try:
        with recorder.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA quick_check(5)")
            problems = [str(row[0]) for row in c.fetchall()]
    except (PersistenceError, sqlite3.Error) as e:
        problems = [str(e)]
    if problems == ["ok"]:
        return None
    return AuditFinding(
        kind="damaged",
        position=None,
        message=(
            f"the SQLite file is damaged ({'; '.join(problems)[:300]}): "
            "restore it from a backup and verify again"
        ),
    )


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _projection_finding(ledger: Ledger) -> AuditFinding | None:
    """The first stored projection row that differs from its recomputation, as a finding."""
    difference = check_projections(ledger)
    if difference is None:
        return None
    return AuditFinding(
        kind="projection",
        position=None,
        message=difference.message,
        ref=difference.ref,
        projection=difference,
    )


def _stray_position(recorder: Any) -> chain.Finding | None:
    """A row or link below position 1, where the ledger never writes, as a finding.

    The recorders stream from position 1 up, but the repository reads a subject's events
    whatever their position: a row put at position 0 or below would change a subject's
    state unseen by the chain. (SQLite rowids and PostgreSQL ids can both be set so.)
    """
    row = _position(recorder, "row", "first")
    link = _position(recorder, "link", "first")
    if row is not None and row < 1 and (link is None or row <= link):
        message = (
            f"event at position {row} is below the first position (1): "
            "it was inserted or moved outside the ledger"
        )
        return chain.Finding(kind="inserted", position=row, message=message)
    if link is not None and link < 1:
        message = (
            f"link at position {link} is below the first position (1): "
            "it was inserted outside the ledger"
        )
        return chain.Finding(kind="inserted", position=link, message=message)
    return None


def _position(
    recorder: Any,
    what: Literal["row", "link"],
    which: Literal["first", "last", "next"],
    after: int = 0,
) -> int | None:
    """A position in the events (``row``) or chain (``link``) table; None when there is none.

    ``which`` is the ``first`` or ``last`` position, or the ``next`` one after ``after``.
    Reads no column but the position (the recorder of each backend owns the SQL).
    """
    position: int | None = recorder.select_position(what, which, after)
    return position


def _readable_row(row: Any) -> chain.Row:
    """``row`` if every column has the type of a stored event, else an unmatchable stand-in.

    SQLite keeps any value in any column, so a row edited by hand may hold a version that
    is text or a topic that is a BLOB; :func:`chain.link` would raise on it, and the
    verification must report the row instead of stopping with a traceback.
    """
    position, originator_id, version, topic, state = row
    if (
        isinstance(originator_id, str)
        and type(version) is int
        and 0 <= version < 2**64
        and isinstance(topic, str)
        and isinstance(state, bytes)
    ):
        try:
            topic.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return (position, originator_id, version, topic, state)
    return (position, _UNREADABLE_ID, 0, "", b"")


def _rows(recorder: Any, head: int) -> Iterator[chain.Row]:
    """Stream the stored events up to position ``head``, standing in for unreadable rows."""
    after = 0
    while True:
        try:
            for row in recorder.iter_rows(after=after):
                if row[0] > head:
                    return
                after = row[0]
                yield _readable_row(row)
            return
        except (TypeError, ValueError, UnicodeDecodeError):
            # The recorder could not convert the next row (an originator id that is no
            # uuid, a state that is text): stand in for it and go on after it.
            bad = _position(recorder, "row", "next", after)
            if bad is None or bad > head:
                return
            yield (bad, _UNREADABLE_ID, 0, "", b"")
            after = bad


def _links(recorder: Any, head: int) -> Iterator[tuple[int, bytes]]:
    """Stream the stored links up to position ``head``; an unreadable hash matches nothing."""
    after = 0
    while True:
        try:
            for position, digest in recorder.iter_links(after=after):
                if position > head:
                    return
                after = position
                yield position, digest
            return
        except (TypeError, ValueError):
            bad = _position(recorder, "link", "next", after)
            if bad is None or bad > head:
                return
            yield bad, b""
            after = bad


def _locate(ledger: Ledger, finding: chain.Finding) -> AuditFinding:
    """Add to a chain finding the subject, version and event type of the row at its position."""
    ref = subject_kind = event = None
    version: int | None = None
    position = finding.position
    row = None
    if position is not None and finding.kind not in {"removed", "truncated"}:
        try:
            row = next(iter(ledger.recorder.iter_rows(after=position - 1, page=1)), None)
        except (TypeError, ValueError, UnicodeDecodeError):
            row = None
    if row is not None and row[0] == position:
        _, originator_id, stored_version, topic, _ = row
        version = stored_version if type(stored_version) is int else None
        event = _topic_event_type(topic)
        ref, subject_kind = _subject_of(ledger, originator_id)
    return AuditFinding(
        kind=finding.kind,
        position=position,
        message=finding.message,
        ref=ref,
        subject_kind=subject_kind,
        version=version,
        event=event,
    )


def _topic_event_type(topic: object) -> str | None:
    if not isinstance(topic, str):
        return None
    try:
        cls = resolve_topic(topic)
    except Exception:  # noqa: BLE001 - a topic altered into nonsense names no event type
        return None
    return event_type(cls) if isinstance(cls, type) else None


def _subject_of(ledger: Ledger, originator_id: str) -> tuple[str | None, str | None]:
    """The ref and kind of a subject, read from its first event; Nones when unreadable."""
    try:
        first = next(iter(ledger.app.events.get(uuid.UUID(originator_id), lte=1)), None)
        if not isinstance(first, Subject.Created):
            return None, None
        owner = resolve_topic(first.originator_topic)
        return str(first.ref), str(owner.kind.value)
    except Exception:  # noqa: BLE001 - a tampered store may fail in any way; the finding stands
        return None, None


# ------------------------------------------------------------------ snapshots


def _snapshot_keys(ledger: Ledger, page: int = 500) -> Iterator[tuple[Any, Any]]:
    """Stream ``(originator_id, version)`` of every stored snapshot, in that order."""
    store = ledger.app.snapshots
    if store is None:
        return
    recorder: Any = store.recorder
    postgres = _is_postgres(ledger.recorder)
    last: tuple[Any, Any] | None = None
    while True:
        if postgres:
            from psycopg.sql import SQL, Identifier

            table = SQL("{0}.{1}").format(
                Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
            )
            where = (
                SQL("")
                if last is None
                else SQL("WHERE (originator_id, originator_version) > (%s, %s) ")
            )
            query = SQL(
                "SELECT originator_id, originator_version FROM {0} {1}"
                "ORDER BY originator_id, originator_version LIMIT %s"
            ).format(table, where)
            with recorder.datastore.transaction(commit=False) as curs:
                curs.execute(query, (*(last or ()), page))
                rows = [(row["originator_id"], row["originator_version"]) for row in curs]
        else:
            after = "" if last is None else "WHERE (originator_id, originator_version) > (?, ?) "
            table_name = recorder.events_table_name
            sql = (
                f"SELECT originator_id, originator_version FROM {table_name} "
                f"{after}ORDER BY originator_id, originator_version LIMIT ?"
            )
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(sql, (*(last or ()), page))
                rows = [(row[0], row[1]) for row in c.fetchall()]
        if not rows:
            return
        yield from rows
        last = rows[-1]


def _mutate(event: DomainEventProtocol[Any], aggregate: Any) -> Any:
    # Every stored event and snapshot of a subject (Aggregate.Event, Aggregate.Created,
    # Snapshot) can mutate one; the event store's type promises only the base protocol.
    return cast("CanMutateProtocol[Any]", event).mutate(aggregate)


def _state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


@_reading
def check_snapshots(ledger: Ledger) -> AuditFinding | None:
    """The first stored snapshot that differs from the state its subject's events give.

    Snapshots are not chained (they are derived data), yet the ledger loads a subject from
    its latest snapshot: a snapshot edited in the database would change what ``show`` and
    the rules see. Each subject is replayed once, snapshot by snapshot, so the cost is one
    pass over the events of the subjects that have snapshots.
    """
    subject: uuid.UUID | None = None
    replayed: Any = None
    replayed_version = 0
    for originator_id, version in _snapshot_keys(ledger):
        shown_version = version if type(version) is int else None
        try:
            sid = (
                originator_id if isinstance(originator_id, uuid.UUID) else uuid.UUID(originator_id)
            )
            if sid != subject:
                subject, replayed, replayed_version = sid, None, 0
            for event in ledger.app.events.get(sid, gt=replayed_version, lte=version):
                replayed = _mutate(event, replayed)
            replayed_version = version
            assert ledger.app.snapshots is not None
            stored = next(iter(ledger.app.snapshots.get(sid, gt=version - 1, lte=version)))
            taken = _mutate(stored, None)
            same = replayed is not None and _state(taken) == _state(replayed)
        except _store_errors():
            raise
        except Exception:  # noqa: BLE001 - an edited snapshot may fail to decode in any way
            same = False
        if not same:
            shown_id = (
                originator_id.hex if isinstance(originator_id, uuid.UUID) else str(originator_id)
            )
            ref, subject_kind = _subject_of(ledger, shown_id)
            return AuditFinding(
                kind="snapshot",
                position=None,
                message=(
                    f"snapshot at version {version} does not match the state its events give: "
                    "it was altered outside the ledger"
                ),
                ref=ref,
                subject_kind=subject_kind,
                version=shown_version,
            )
    return None


# ------------------------------------------------------------------ ledger identity


def _meta_table(recorder: LedgerPostgresRecorder) -> Any:
    from psycopg.sql import SQL, Identifier

    return SQL("{0}.{1}").format(Identifier(recorder.datastore.schema), Identifier(_META_TABLE))


@_reading
def ledger_id(ledger: Ledger, *, create: bool = False) -> str | None:
    """The ledger's stable id, a random UUID kept in the ``dinsos_meta`` table.

    It is created (together with the table) when ``create`` is true and there is none yet;
    concurrent creators agree on the first one stored. It travels with copies and backups of
    the database, and a checkpoint names it so it is never checked against another ledger.
    """
    recorder = ledger.recorder
    fresh = str(uuid.uuid4())
    if _is_postgres(recorder):
        from psycopg.sql import SQL

        recorder = cast("LedgerPostgresRecorder", recorder)
        table = _meta_table(recorder)
        with recorder.datastore.transaction(commit=create) as curs:
            if create:
                curs.execute(
                    SQL(
                        "CREATE TABLE IF NOT EXISTS {0} "
                        "(name text PRIMARY KEY, value text NOT NULL)"
                    ).format(table)
                )
                curs.execute(
                    SQL(
                        "INSERT INTO {0} (name, value) VALUES (%s, %s) "
                        "ON CONFLICT (name) DO NOTHING"
                    ).format(table),
                    (_LEDGER_ID, fresh),
                )
            else:
                name = f'"{recorder.datastore.schema}"."{_META_TABLE}"'
                curs.execute("SELECT to_regclass(%s) AS t", (name,))
                found = curs.fetchone()
                if found is None or found["t"] is None:
                    return None
            curs.execute(SQL("SELECT value FROM {0} WHERE name = %s").format(table), (_LEDGER_ID,))
            row = curs.fetchone()
            return None if row is None else str(row["value"])
    assert isinstance(recorder, LedgerSQLiteRecorder)
    with recorder.datastore.transaction(commit=create) as c:
        if create:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {_META_TABLE} "
                "(name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
            )
            c.execute(
                f"INSERT INTO {_META_TABLE} (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (_LEDGER_ID, fresh),
            )
        else:
            c.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_META_TABLE,)
            )
            if c.fetchone() is None:
                return None
        c.execute(f"SELECT value FROM {_META_TABLE} WHERE name = ?", (_LEDGER_ID,))
        row = c.fetchone()
        return None if row is None else str(row[0])


# ------------------------------------------------------------------ checkpoints


def signing_key_path(key: str | os.PathLike[str] | None = None) -> Path | None:
    """Where the signing key is: ``key`` (``--key``), else ``$DINSOS_LEDGER_SIGNING_KEY``.

    None when neither is given.
    There is deliberately no default beside the ledger: whoever can rewrite the database
    could then re-sign it, and a checkpoint would prove nothing (see docs/threat-model.md).
    """
    if key is not None:
        return Path(key)
    configured = os.environ.get(SIGNING_KEY_ENV)
    return Path(configured) if configured else None


@_reading
def make_checkpoint(
    ledger: Ledger, private_key: Ed25519PrivateKey, *, now: dt.datetime | None = None
) -> tuple[VerifyReport, dict[str, str | int]]:
    """Verify ``ledger`` and return the report with its signed head (JSON-ready).

    The ledger gets its id on first use (see :func:`ledger_id`). Raises
    :class:`ChainBroken` rather than vouch for a chain that does not verify.
    """
    identity = ledger_id(ledger, create=True)
    assert identity is not None
    report = verify(ledger)
    if not report.ok:
        assert report.finding is not None
        msg = f"the chain does not verify, so it is not checkpointed: {report.finding.describe()}"
        raise ChainBroken(msg, report)
    head = chain.ChainReport(
        ok=True,
        events=report.events,
        head_position=report.head_position,
        head_hash=bytes.fromhex(report.head_hash),
        first_finding=None,
    )
    signed = chain.sign_checkpoint(chain.Checkpoint.of(head, identity, now=now), private_key)
    return report, signed


def parse_public_key(text: str) -> bytes:
    """Return the 32 raw bytes of an Ed25519 public key given as base64 or PEM.

    The base64 form is that of a checkpoint's ``public_key``; the PEM form is a
    ``PUBLIC KEY`` block. Raises :class:`ValueError` otherwise.
    """
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            key = None
        if not isinstance(key, Ed25519PublicKey):
            msg = "'public key' must be an Ed25519 public key in PEM (got another kind of PEM)"
            raise ValueError(msg)
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _PUBLIC_KEY_BYTES:
        msg = f"'public key' must be base64 of {_PUBLIC_KEY_BYTES} bytes (got {stripped[:60]!r})"
        raise ValueError(msg)
    return raw


def read_trusted_keys(text: str, *, source: str = "trusted keys") -> frozenset[bytes]:
    """The Ed25519 public keys listed in a trusted-keys file (``$DINSOS_LEDGER_TRUSTED_KEYS``).

    One key per line, base64 as in a checkpoint's ``public_key``, optionally followed by
    spaces and a comment (who holds it); blank lines and lines starting with ``#`` are
    ignored. Raises :class:`ValueError` naming the line of anything else.
    """
    keys: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            keys.add(parse_public_key(stripped.split()[0]))
        except ValueError as e:
            msg = f"{source}, line {number}: {e}"
            raise ValueError(msg) from None
    return frozenset(keys)


def load_checkpoint(
    data: Mapping[str, object],
    public_key: bytes | None = None,
    trusted: Collection[bytes] = (),
) -> chain.Checkpoint:
    """Return the checkpoint in ``data`` (a decoded checkpoint file) once it can be trusted.

    Its signature must hold, and its key must be pinned: equal to ``public_key`` (32 raw
    bytes, see :func:`parse_public_key`) when given, else one of ``trusted`` (see
    :func:`read_trusted_keys`). A checkpoint signed by a key nobody pinned proves only that
    someone signed it, which whoever rewrote the database can do too, so it is refused.
    Raises :class:`~dinsos_ledger.chain.CheckpointError` otherwise.
    """
    checkpoint = chain.read_checkpoint(data, expected_public_key=public_key)
    if public_key is None:
        signer = str(data["public_key"])
        raw = base64.b64decode(signer)
        if not trusted:
            msg = (
                f"checkpoint is signed by {signer}, which is not pinned: give --public-key "
                f"KEY or list the key in the file named by ${TRUSTED_KEYS_ENV} "
                "(a checkpoint signed by an unknown key proves nothing)"
            )
            raise chain.CheckpointError(msg)
        if not any(hmac.compare_digest(raw, key) for key in trusted):
            msg = (
                f"checkpoint is signed by {signer}, which is not among the trusted keys "
                f"of ${TRUSTED_KEYS_ENV}"
            )
            raise chain.CheckpointError(msg)
    return checkpoint


# ------------------------------------------------------------------ point in time, history


def parse_timestamp(text: str) -> dt.datetime:
    """Return the ISO 8601 timestamp ``text`` as an aware datetime in UTC.

    A timestamp without an offset is taken as UTC (recorded timestamps are UTC). A bare
    date is refused: it does not say which moment of the day is meant.
    """
    value = text.strip()
    shown = value[:80]
    if "T" not in value.upper() and " " not in value:
        msg = (
            f"'timestamp' must be an ISO 8601 date and time such as 2025-03-01T12:00:00+08:00 "
            f"(got {shown!r}, a date without a time)"
        )
        raise ValueError(msg)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        msg = (
            "'timestamp' must be an ISO 8601 date and time such as 2025-03-01T12:00:00Z "
            f"(got {shown!r})"
        )
        raise ValueError(msg) from None
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def event_type(cls: type[Any]) -> str:
    """The snake_case type of an event class, e.g. ``disbursement_reversed``."""
    return _CAMEL_RE.sub("_", cls.__name__).lower()


def _personal(name: str, tp: Any) -> bool:
    return name in PII_FIELDS or tp is Sealed


def history_entry(event: Any) -> dict[str, Any]:
    """One event as a JSON-ready history entry, without personal data (see :func:`history`)."""
    cls = type(event)
    values = vars(event)
    entry: dict[str, Any] = {
        "version": event.originator_version,
        "type": event_type(cls),
        "on": converter.unstructure(values["on"]),
        "recorded": event.timestamp.astimezone(dt.UTC).isoformat(),
        "actor": values["actor"],
        "command_id": values["command_id"],
        "note": values.get("note"),
    }
    for name, tp in event_fields(cls):
        if name in _ENVELOPE or name in entry or _personal(name, tp):
            continue
        entry[name] = converter.unstructure(values[name])
    return entry


@_reading
def history(ledger: Ledger, ref: str) -> list[dict[str, Any]]:
    """Every event of subject ``ref`` in order, JSON-ready, without personal data.

    Each entry has ``version``, ``type`` (snake_case, e.g. ``disbursement_reversed``), the
    business date ``on``, the ``recorded`` timestamp (UTC), ``actor``, ``command_id``,
    ``note`` and then the event's other fields except personal data, which is left out
    altogether (not even its ciphertext appears). Raises
    :class:`~dinsos_ledger.errors.UnknownSubject` for an unknown ref, and
    :class:`~dinsos_ledger.errors.StorageError` when the versions have a gap (an event
    removed behind the ledger's back).
    """
    entries = []
    for expected, event in enumerate(ledger.events_of(ref), start=1):
        if event.originator_version != expected:
            # A gap the replay of `show` would refuse too: never list a history with a hole.
            msg = (
                f"the events of {ref} skip from version {expected - 1} to "
                f"{event.originator_version}: an event was removed outside the ledger; "
                "run `dinsos-ledger verify` to locate it"
            )
            raise StorageError(msg)
        entries.append(history_entry(event))
    return entries


# ------------------------------------------------------------------ erasure


def forget_command(
    ref: str,
    *,
    actor: str,
    reason: str,
    on: dt.date | None = None,
    command_id: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """The ``forget`` command (the command format) of the ``forget`` verb, ready for execution.

    ``on`` defaults to today's date on this machine's clock and ``command_id`` to
    ``forget-<REF>-<random hex>``, so each run is a new command unless an id is given.
    """
    command: dict[str, Any] = {
        "id": command_id if command_id is not None else f"forget-{ref}-{uuid.uuid4().hex}",
        "command": "forget",
        "ref": ref,
        "on": (on or dt.date.today()).isoformat(),
        "actor": actor,
        "reason": reason,
    }
    if note is not None:
        command["note"] = note
    return command


def write_checkpoint_file(path: Path, signed: Mapping[str, object], *, replace: bool) -> None:
    """Write a signed checkpoint as indented JSON; an existing file is kept unless ``replace``."""
    text = json.dumps(dict(signed), indent=2, sort_keys=True) + "\n"
    with path.open("w" if replace else "x", encoding="utf-8") as out:
        out.write(text)
