"""Loading subjects for a batch of commands: in bulk, and from a cache kept between batches.

A batch names its subjects up front, so they are read in one query (their latest snapshots
and the events after them) instead of one query per command. Subjects stay cached between
batches; the cache is valid up to a log position (``head``). Before each batch the cache is
brought level with the store: if another writer recorded events since, exactly the subjects
it touched are evicted (or everything, after a long absence). So the cache never serves a
subject older than the store, and the optimistic-concurrency check at insert time catches
the rest.

The cache is bounded by memory, not by a count of subjects: a subject's state grows with its
history (payments, contacts), so a count either wastes memory on short histories or
overflows it on long ones. Each subject is charged an estimate from its version (measured:
a household of about 20 events holds about 4 KB of Python objects; the estimate charges
1 KiB plus 320 bytes per event, slightly above what was measured). The default budget,
512 MiB of estimated state, holds about 128,000 subjects of 20 events, so the import of a
whole district stays within about 1 GB of memory on a small office machine while keeping
every subject of such a district cached; past the budget the least recently used subjects
are evicted, one dictionary operation each.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Final
from uuid import UUID

from dinsos_ledger.aggregates import Subject

__all__ = ["SubjectCache"]

_RESYNC_LIMIT: Final = 5_000

#: The memory budget of the cache, in bytes of estimated subject state (see above).
DEFAULT_CACHE_BYTES: Final = 512 * 1024 * 1024
_BASE_BYTES: Final = 1_024
_BYTES_PER_EVENT: Final = 320


def estimated_bytes(subject: Subject) -> int:
    """What a cached subject is charged against the budget: grows with its history."""
    return _BASE_BYTES + _BYTES_PER_EVENT * subject.version


class SubjectCache:
    """Subjects kept between batches, valid up to the log position :attr:`head`."""

    def __init__(self, app: Any, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.head: int | None = None
        # Each subject with what it was charged: one dictionary, one hash of its id per use
        # (hashing a UUID runs Python code; an import hashes ids a dozen times a command).
        self._items: OrderedDict[UUID, tuple[Subject, int]] = OrderedDict()
        self.bytes = 0  # the estimated state held now, never above max_bytes after a put

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Forget every cached subject (after a failed batch, or to be safe)."""
        self._items.clear()
        self.bytes = 0
        self.head = None

    def sync(self) -> int:
        """Evict subjects recorded by other writers since :attr:`head`; return the log head."""
        recorder = self.app.recorder
        head: int = recorder.max_notification_id() or 0
        if self.head is None or head < self.head or head - self.head > _RESYNC_LIMIT:
            self.clear()
        elif head > self.head:
            for _, subject_id in recorder.select_originators_after(
                self.head, limit=head - self.head
            ):
                self._evict(subject_id)
        self.head = head
        return head

    def load(self, subject_ids: Iterable[UUID]) -> dict[UUID, Subject | None]:
        """The current state of each subject, ``None`` for those never registered."""
        found: dict[UUID, Subject | None] = {}
        missing: list[UUID] = []
        for sid in dict.fromkeys(subject_ids):
            cached = self._items.get(sid)
            if cached is None:
                missing.append(sid)
            else:
                self._items.move_to_end(sid)
                found[sid] = cached[0]
        if missing:
            found.update(self._read(missing))
        return found

    def _read(self, subject_ids: Sequence[UUID]) -> dict[UUID, Subject | None]:
        mapper = self.app.mapper
        snapshots, events = self.app.recorder.select_events_of(subject_ids)
        built: dict[UUID, Any] = {}
        for stored in snapshots:
            snapshot = mapper.to_domain_event(stored)
            built[snapshot.originator_id] = snapshot.mutate(None)
        for stored in events:
            event = mapper.to_domain_event(stored)
            built[event.originator_id] = event.mutate(built.get(event.originator_id))
        result: dict[UUID, Subject | None] = {}
        for sid in subject_ids:
            subject = built.get(sid)
            result[sid] = subject
            if subject is not None:
                self._put(sid, subject)
        return result

    def _put(self, sid: UUID, subject: Subject) -> None:
        charge = estimated_bytes(subject)
        before = self._items.pop(sid, None)
        self.bytes += charge - (before[1] if before is not None else 0)
        self._items[sid] = (subject, charge)  # the most recently used end
        while self.bytes > self.max_bytes and self._items:
            _, (_, evicted) = self._items.popitem(last=False)
            self.bytes -= evicted

    def _evict(self, sid: UUID) -> None:
        held = self._items.pop(sid, None)
        if held is not None:
            self.bytes -= held[1]

    def committed(
        self, subjects: Iterable[Subject], positions: Sequence[int], head_before: int
    ) -> None:
        """Keep the subjects a batch recorded; advance :attr:`head` if no one else wrote."""
        for subject in subjects:
            self._put(subject.id, subject)
        # Positions right after the old head mean no other writer came in between; otherwise
        # leave the head where it was, so the next sync evicts what was written meanwhile.
        if positions and positions[0] == head_before + 1 and self.head == head_before:
            self.head = positions[-1]
