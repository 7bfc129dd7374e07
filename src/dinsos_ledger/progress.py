"""Progress bars on stderr for the long-running verbs, drawn as one redrawn line per stage.

Progress is for a person watching a terminal. It is shown only when stderr is a terminal
and ``--quiet`` was not given, so a verb whose stderr goes to a file, a pipe or a test
prints no progress at all (and its stdout, which may carry JSON, is never touched).

A verb opens one :class:`Progress` and runs each of its stages in a :meth:`Progress.stage`::

    with Progress(quiet=state.quiet) as progress:
        with progress.stage("Importing", total=lines) as stage:
            import_files(ledger, paths, on_reject=..., progress=stage.advance)

When progress is off, every method is a cheap no-op, so callers never test for it. The bar
is drawn with a carriage return and plain characters (no terminal library): one stage runs
at a time, so a line per stage is all it needs.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self, TextIO

__all__ = ["Progress", "Stage", "progress_enabled"]

_BAR_WIDTH = 28
# Redraw at most this often (seconds): a terminal is slow next to an import of 10k lines/s.
_REDRAW_EVERY = 0.1


def progress_enabled(*, quiet: bool = False, stream: TextIO | None = None) -> bool:
    """Whether progress should be drawn: not ``quiet`` and ``stream`` (stderr) is a terminal."""
    if quiet:
        return False
    out = sys.stderr if stream is None else stream
    isatty = getattr(out, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


class Stage:
    """One bar of a :class:`Progress`: a description, an optional total and a count.

    Feed it with :meth:`advance` (an increment, as :func:`~dinsos_ledger.importer.import_files`
    reports) or :meth:`update` (a running total, as the scenario generator reports). Without a
    total the bar shows the count only.
    """

    def __init__(self, out: TextIO | None, description: str, total: int | None) -> None:
        self._out = out
        self._description = description
        self._total = total
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._open = out is not None
        self.completed = 0
        """How much has been done so far (kept even when nothing is drawn)."""
        self._draw(force=True)

    def advance(self, amount: int = 1) -> None:
        """Count ``amount`` more units done."""
        self.update(self.completed + amount)

    def update(self, completed: int, total: int | None = None) -> None:
        """Set the number of units done so far (and the total, once it is known)."""
        self.completed = completed
        if total is not None:
            self._total = total
        self._draw()

    def finish(self) -> None:
        """Mark the stage done: the bar shows full, whatever the total was."""
        if self._total is None or self.completed > self._total:
            self._total = max(self.completed, 1)
        self.completed = self._total
        self.close(mark="✓")

    def close(self, mark: str = "…") -> None:
        """End the stage's line where it is (the count it reached stays on screen)."""
        if self._out is not None and self._open:
            self._draw(force=True, mark=mark)
            self._out.write("\n")
            self._out.flush()
            self._open = False

    def _draw(self, *, force: bool = False, mark: str = "…") -> None:
        if self._out is None or not self._open:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < _REDRAW_EVERY:
            return
        self._drawn_at = now
        elapsed = int(now - self._started)
        clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        if self._total:
            filled = min(_BAR_WIDTH, _BAR_WIDTH * self.completed // self._total)
            bar = "━" * filled + "╺" + " " * (_BAR_WIDTH - filled)
            count = f"{self.completed}/{self._total}"
        else:
            bar, count = "", str(self.completed)
        self._out.write(f"\r{mark} {self._description:<24} {bar[:_BAR_WIDTH]} {count} {clock}")
        self._out.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.close()


class Progress:
    """The progress display of one verb: a line per stage on stderr, or nothing.

    ``quiet`` turns it off (the CLI's ``--quiet``); so does a ``stream`` (default stderr)
    that is not a terminal. Use it as a context manager; the lines stay on screen.
    """

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        out = sys.stderr if stream is None else stream
        self.enabled = progress_enabled(quiet=quiet, stream=out)
        """Whether anything is drawn."""
        self._out: TextIO | None = out if self.enabled else None
        self._current: Stage | None = None

    def stage(self, description: str, total: int | None = None) -> Stage:
        """Start a new bar; use it as a context manager so it is finished on success."""
        if self._current is not None:
            self._current.close()
        self._current = Stage(self._out, description, total)
        return self._current

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._current is not None:
            self._current.close()
