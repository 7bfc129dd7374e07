"""Keep projections caught up continuously, as a long-running process (``dinsos-ledger follow``).

A :class:`Follower` applies new events a page at a time through
:meth:`~dinsos_ledger.projections.engine.ProjectionEngine.step`, so each page commits
together with its tracking positions (exactly once, however the process ends), and checks
between pages whether it was asked to stop.

- **Waking.** On PostgreSQL it waits on ``LISTEN`` for the notification eventsourcing's
  PostgreSQL recorder sends in every insert transaction (on the channel named by the
  recorder's ``channel_name``), falling back to a poll every ``interval`` seconds; on
  SQLite it polls every ``interval`` seconds.
- **One leader per projection.** On PostgreSQL a follower works only while it holds a
  session advisory lock (``pg_try_advisory_lock``) for each projection it follows; others
  stand by and try again every ``interval``. When the leader's session ends (it stopped,
  crashed or was killed) PostgreSQL releases its locks and a standby takes over. On
  SQLite every page transaction begins ``IMMEDIATE`` (the database's write lock) and first
  moves the tracking positions with a compare-and-set, so of two followers only one
  applies a page; the other finds the positions moved and reads them again.
- **Lag.** :class:`Status` says how many events the followed projections are behind; the
  CLI prints it periodically.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from dinsos_ledger.errors import StorageError

if TYPE_CHECKING:
    from dinsos_ledger.projections.views import Projections

__all__ = ["Follower", "Status", "lock_key"]

# The longest pause between attempts after storage errors, in seconds.
_MAX_PAUSE = 30.0


@attrs.frozen
class Status:
    """Where a follower stands: its projections' positions against the log's head."""

    names: tuple[str, ...]
    position: int
    head: int
    applied: int
    leading: bool

    @property
    def behind(self) -> int:
        """Events recorded but not yet applied to every followed projection."""
        return max(self.head - self.position, 0)

    def to_json(self) -> dict[str, Any]:
        """The status as one JSON object (``follow --json`` prints one per line)."""
        return {
            "projections": list(self.names),
            "position": self.position,
            "head": self.head,
            "behind": self.behind,
            "applied": self.applied,
            "leading": self.leading,
        }

    def describe(self) -> str:
        """One line for the terminal."""
        role = "" if self.leading else " (standing by: another follower leads)"
        return (
            f"follow: {', '.join(self.names)} at {self.position} of {self.head}, "
            f"{self.behind} behind, {self.applied} applied{role}"
        )


def lock_key(schema: str, name: str) -> int:
    """The advisory-lock key of projection ``name`` in ``schema`` (a signed 64-bit int)."""
    digest = hashlib.sha256(f"dinsos-ledger follow {schema} {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Follower:
    """Applies new events to ``names`` (all projections when empty) until :meth:`stop`.

    ``interval`` is the poll period in seconds (SQLite; on PostgreSQL the longest wait
    for a notification); ``report`` is called with a :class:`Status` about every
    ``report_every`` seconds and when the follower stops. ``stopping``, when given, is the
    event that :meth:`stop` sets (a signal handler may set it before the follower exists).
    With ``on_error``, a storage error while applying a page is reported to it and the
    follower tries again after a growing pause, up to ``max_failures`` times in a row;
    without it the error ends :meth:`run`.
    """

    def __init__(
        self,
        projections: Projections,
        names: Iterable[str] = (),
        *,
        interval: float = 1.0,
        report: Callable[[Status], None] | None = None,
        report_every: float = 10.0,
        stopping: threading.Event | None = None,
        on_error: Callable[[StorageError], None] | None = None,
        max_failures: int = 20,
    ) -> None:
        self.projections = projections
        self.engine = projections.engine
        wanted = list(names) or None
        self.selected = self.engine.with_dependencies(wanted)
        self.names = tuple(p.name for p in self.engine.select(wanted))
        self.interval = interval
        self.report = report
        self.report_every = report_every
        self.applied = 0
        self._stop = stopping or threading.Event()
        self.on_error = on_error
        self.max_failures = max_failures
        self._session: Any = None
        self._leading = self.engine.dialect == "sqlite"

    def stop(self) -> None:
        """Ask the follower to stop after the page it is applying (safe in a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def status(self) -> Status:
        """Where the followed projections stand now."""
        positions = self.engine.positions()
        position = min(positions[p.name] for p in self.selected)
        return Status(self.names, position, self.engine.head(), self.applied, self._leading)

    def run(self) -> Status:
        """Follow until stopped; return the last status."""
        last_report = -self.report_every
        failures = 0
        try:
            while not self.stopping:
                try:
                    leading = self._lead()
                    if self.report is not None and (
                        time.monotonic() - last_report >= self.report_every
                    ):
                        last_report = time.monotonic()
                        self.report(self.status())
                    if not leading:
                        self._wait(self.interval)
                        continue
                    step = self.engine.step([p.name for p in self.selected])
                except StorageError as e:
                    # The database went away for a moment (a restart, a cut connection): a
                    # page in flight rolled back; give up the lead and try again later.
                    failures += 1
                    if self.on_error is None or failures > self.max_failures:
                        raise
                    self.on_error(e)
                    self._close_session()
                    self._wait(min(self.interval * 2**failures, _MAX_PAUSE))
                    continue
                failures = 0
                self.applied += step.applied
                if step.applied or step.conflict:
                    continue  # more may be waiting: no pause between pages
                self._wait(self.interval)
            final = self.status()
        finally:
            self._close_session()
        if self.report is not None:
            self.report(final)
        return final

    # ------------------------------------------------------------ PostgreSQL

    def _lead(self) -> bool:
        """Hold the advisory lock of every followed projection (PostgreSQL), or try again."""
        if self.engine.dialect == "sqlite" or self._leading:
            return True
        import psycopg

        session = self._open_session()
        keys = [lock_key(self.engine.connection.schema, p.name) for p in self.selected]
        taken: list[int] = []
        try:
            for key in keys:
                row = session.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if not row[0]:
                    break
                taken.append(key)
            if len(taken) == len(keys):
                self._leading = True
                return True
            for key in taken:  # all or none: two followers never split a set
                session.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.Error as e:
            self._close_session()
            raise StorageError(f"cannot take the lead of the projections: {e}") from e
        return False

    def _open_session(self) -> Any:
        if self._session is None or self._session.closed:
            self._leading = False
            self._session = self.engine.connection.connect_postgres()
            channel = getattr(self.engine.ledger.recorder, "channel_name", None)
            if channel:
                from psycopg.sql import SQL, Identifier

                self._session.execute(SQL("LISTEN {0}").format(Identifier(channel)))
        return self._session

    def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; on PostgreSQL wake early when an insert notifies."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # Short slices, so a stop request is seen promptly.
            slice_ = min(left, 0.2)
            if self._session is None:
                self._stop.wait(slice_)
                continue
            try:
                for _ in self._session.notifies(timeout=slice_, stop_after=1):
                    return
            except Exception as e:
                import psycopg

                if not isinstance(e, psycopg.Error):
                    raise
                # The session died: its locks are gone; take the lead again if free.
                self._close_session()
                return

    def _close_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self.engine.dialect == "postgres":
            self._leading = False
