"""What both recorders share: the rows they hand to the chain, the version check, the guards.

No database driver is imported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

from dinsos_ledger import chain

__all__ = [
    "GUARDED_OPERATIONS",
    "GUARDS_VERSION",
    "GUARD_PREFIX",
    "INDEX_TABLE",
    "STORAGE_TABLE",
    "StoredRow",
    "as_stored_id",
    "check_version",
    "links_for",
    "stored_blob",
    "stored_event",
    "stored_value",
]

#: One stored event row as the integrity chain reads it: ``(position, originator_id,
#: version, topic, state)``, each column's value exactly as stored (see :func:`stored_value`).
StoredRow = tuple[int, Any, Any, Any, Any]

#: The keyed index: ``(subject_id, field, mac)``, one row per indexed field of a subject (a
#: MAC of its NIK or family-card number, never the value), deleted with its data key.
INDEX_TABLE: Final = "dinsos_index"
#: The ledger's table of storage facts (for now: the version of the guard triggers installed).
STORAGE_TABLE: Final = "dinsos_storage"
#: The version of the append-only guard triggers; a row ``('guards', GUARDS_VERSION)`` in
#: :data:`STORAGE_TABLE` says the ledger has had them installed.
GUARDS_VERSION: Final = "1"
#: Every guard trigger's name starts with this.
GUARD_PREFIX: Final = "dinsos_guard_"
#: What the guards refuse on the events and chain tables.
GUARDED_OPERATIONS: Final = ("UPDATE", "DELETE", "TRUNCATE")


def as_stored_id(originator_id: UUID | str) -> str:
    """The originator id as the ledger writes it into SQLite and hashes it: 32 lower-case hex."""
    return originator_id.hex if isinstance(originator_id, UUID) else UUID(originator_id).hex


def stored_value(value: Any) -> Any:
    """A column's value as stored, for the chain: no re-formatting, no conversion.

    A ``uuid`` column (PostgreSQL) is its 16 bytes, given as their 32 lower-case hex digits
    (what the ledger hashed when it wrote the row); a BLOB handed over as a memoryview is
    its bytes. Anything else is returned as is, so a value written in another spelling or
    of another type than the ledger writes no longer matches its link.
    """
    if isinstance(value, UUID):
        return value.hex
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def stored_blob(value: Any) -> bytes:
    """Stored bytes as bytes; any other value (edited into the database) as its text.

    ``bytes(50_000_000)`` would allocate 50 MB of zeros: a tampered column must not be able
    to exhaust memory, only to fail verification.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return repr(value).encode()


def check_version(subject_id: UUID, expected: int, stored: int | None) -> None:
    """Raise IntegrityError when a subject a batch read (and did not write) has changed since.

    ``insert_events(..., expect=[(subject id, version)])`` names those subjects: a command
    that rests on another subject's state (``enrol`` reads whether the household is open)
    is then recorded only if that state is still the one it was judged against.
    """
    if (stored or 0) != expected:
        msg = f"subject {subject_id.hex} is at version {stored}, not {expected} as read"
        raise IntegrityError(msg)


def links_for(
    head: bytes, positions: Sequence[int], stored_events: Sequence[StoredEvent]
) -> list[tuple[int, bytes]]:
    """The chain links of new events at ``positions``, chained from the link ``head``.

    Each link covers the row exactly as the recorder writes it: the originator id as 32
    lower-case hex digits (SQLite's TEXT; PostgreSQL's uuid bytes in hex), the version,
    the topic and the state.
    """
    links = []
    link = chain.link_unchecked  # positions from the database, parts just encoded
    for position, s in zip(positions, stored_events, strict=True):
        state = s.state if type(s.state) is bytes else bytes(s.state)
        head = link(
            head, position, as_stored_id(s.originator_id), s.originator_version, s.topic, state
        )
        links.append((position, head))
    return links


def stored_event(row: Sequence[Any]) -> StoredEvent:
    """A :class:`StoredEvent` of ``(originator_id, version, topic, state)`` as read back."""
    return StoredEvent(
        originator_id=UUID(str(row[0])) if not isinstance(row[0], UUID) else row[0],
        originator_version=row[1],
        topic=row[2],
        state=bytes(row[3]),
    )
