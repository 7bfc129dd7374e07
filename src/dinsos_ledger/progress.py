"""Progress bars on stderr for the long-running verbs, drawn with ``rich.progress``.

Progress is for a person watching a terminal. It is shown only when stderr is a terminal
and ``--quiet`` was not given, so a verb whose stderr goes to a file, a pipe or a test
prints no progress at all (and its stdout, which may carry JSON, is never touched).

A verb opens one :class:`Progress` and runs each of its stages in a :meth:`Progress.stage`::

    with Progress(quiet=state.quiet) as progress:
        with progress.stage("Importing", total=lines) as stage:
            import_files(ledger, paths, on_reject=..., progress=stage.advance)

When progress is off, every method is a cheap no-op, so callers never test for it.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Self, TextIO

if TYPE_CHECKING:  # rich is imported only when bars are drawn: most runs draw none
    import rich.progress

__all__ = ["Progress", "Stage", "progress_enabled"]


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
    total the bar shows a spinner and the count.
    """

    def __init__(
        self, bars: rich.progress.Progress | None, description: str, total: int | None
    ) -> None:
        self._bars = bars
        self._total = total
        self.completed = 0
        """How much has been done so far (kept even when nothing is drawn)."""
        self._task = None if bars is None else bars.add_task(description, total=total, start=True)

    def advance(self, amount: int = 1) -> None:
        """Count ``amount`` more units done."""
        self.update(self.completed + amount)

    def update(self, completed: int, total: int | None = None) -> None:
        """Set the number of units done so far (and the total, once it is known)."""
        self.completed = completed
        if total is not None:
            self._total = total
        if self._bars is not None and self._task is not None:
            self._bars.update(self._task, completed=completed, total=self._total)

    def finish(self) -> None:
        """Mark the stage done: the bar shows full, whatever the total was."""
        if self._bars is not None and self._task is not None:
            total = self._total if self._total is not None else max(self.completed, 1)
            self._bars.update(self._task, total=total, completed=total)
            self._bars.stop_task(self._task)

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


class Progress:
    """The progress display of one verb: a stack of stages on stderr, or nothing.

    ``quiet`` turns it off (the CLI's ``--quiet``); so does a ``stream`` (default stderr)
    that is not a terminal. Use it as a context manager; bars stay on screen when it ends.
    """

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        out = sys.stderr if stream is None else stream
        self.enabled = progress_enabled(quiet=quiet, stream=out)
        """Whether anything is drawn."""
        self._bars: rich.progress.Progress | None = None
        if self.enabled:
            import rich.console
            import rich.progress

            self._bars = rich.progress.Progress(
                rich.progress.SpinnerColumn(finished_text="[green]✓[/]"),
                rich.progress.TextColumn("{task.description:<24}"),
                rich.progress.BarColumn(),
                rich.progress.MofNCompleteColumn(),
                rich.progress.TimeElapsedColumn(),
                console=rich.console.Console(file=out),
                transient=False,
            )

    def stage(self, description: str, total: int | None = None) -> Stage:
        """Start a new bar; use it as a context manager so it is finished on success."""
        return Stage(self._bars, description, total)

    def __enter__(self) -> Self:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
