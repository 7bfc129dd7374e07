"""Tests of the progress display the demo and report verbs draw on stderr."""

from __future__ import annotations

import io

from dinsos_ledger.progress import Progress, progress_enabled


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        """Claim to be a terminal."""
        return True


def test_progress_is_off_when_stderr_is_not_a_terminal() -> None:
    """A pipe or a file gets no progress."""
    assert progress_enabled(stream=io.StringIO()) is False


def test_progress_is_off_with_quiet_even_on_a_terminal() -> None:
    """``--quiet`` wins over a terminal."""
    assert progress_enabled(quiet=True, stream=Terminal()) is False
    assert progress_enabled(stream=Terminal()) is True


def test_a_closed_stream_counts_as_no_terminal() -> None:
    """A closed stderr never raises, it just gets no progress."""
    stream = io.StringIO()
    stream.close()
    assert progress_enabled(stream=stream) is False


def test_bars_are_drawn_on_a_terminal() -> None:
    """Each stage's description and count reach the terminal."""
    out = Terminal()
    with Progress(stream=out) as progress:
        with progress.stage("Importing", total=40) as stage:
            stage.advance(15)
            stage.advance(25)
        with progress.stage("Writing the report"):
            pass
    drawn = out.getvalue()
    assert "Importing" in drawn
    assert "40/40" in drawn
    assert "Writing the report" in drawn


def test_nothing_is_written_when_progress_is_off() -> None:
    """Quiet progress writes nothing but still counts, so callers need no special case."""
    out = Terminal()
    with Progress(quiet=True, stream=out) as progress:
        assert progress.enabled is False
        with progress.stage("Importing", total=10) as stage:
            stage.advance(3)
            stage.update(7)
            assert stage.completed == 7
    assert out.getvalue() == ""


def test_a_stage_left_by_an_error_is_not_marked_done() -> None:
    """A stage that raises keeps the count it reached instead of showing full."""
    out = Terminal()
    try:
        with Progress(stream=out) as progress, progress.stage("Importing", total=10) as stage:
            stage.advance(4)
            raise RuntimeError("disk full")
    except RuntimeError:
        pass
    assert "4/10" in out.getvalue()
    assert "10/10" not in out.getvalue()
