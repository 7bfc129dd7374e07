"""The parallel import's reader process runs nothing from the working directory and holds no key.

Each test starts the real reader (``parallel=True``) the way ``import`` does, from a folder
an attacker prepared, and looks at what the reader could see and what the importer accepts
from it.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dinsos_ledger import importer
from dinsos_ledger.application import Ledger
from dinsos_ledger.commands import prepare
from dinsos_ledger.importer import import_files, read_frame
from dinsos_ledger.privacy import keyed_digest

from tests.strategies import commands, hostile_lines

ROOT = Path(__file__).resolve().parents[2]
FIELD_OFFICE = ROOT / "tests" / "data" / "field_office.jsonl"


def _hostile_folder(folder: Path, marker: Path) -> None:
    """Modules a careless operator might have next to their command files."""
    payload = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')\n"
    for name in ("json.py", "signal.py", "base64.py", "sitecustomize.py", "usercustomize.py"):
        (folder / name).write_text(payload, encoding="utf-8")


def test_a_json_py_in_the_working_directory_is_never_run(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started from a folder holding json.py (and PYTHONPATH pointing there), the reader ignores it."""
    folder = tmp_path / "field-office"
    folder.mkdir()
    marker = tmp_path / "hostile-code-ran"
    _hostile_folder(folder, marker)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("PYTHONSTARTUP", str(folder / "json.py"))
    report = import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None, parallel=True)
    assert report.accepted == 60
    assert not marker.exists()


def _spy(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An interpreter wrapper that records the reader's environment and settings, then runs it."""
    env_dump, stdin_dump = tmp_path / "reader.env", tmp_path / "reader.stdin"
    wrapper = tmp_path / "python-spy"
    wrapper.write_text(
        f"#!/bin/sh\nenv > '{env_dump}'\ntee '{stdin_dump}' | '{sys.executable}' \"$@\"\n",
        encoding="utf-8",
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, env_dump, stdin_dump


@pytest.mark.skipif(os.name != "posix", reason="the spy is a shell script")
def test_the_reader_gets_no_master_key_in_its_environment_or_its_settings(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither DINSOS_LEDGER_KEY nor the master key reach the reader; it runs in isolated mode."""
    secret = ledger.master_key.to_base64()
    monkeypatch.setenv("DINSOS_LEDGER_KEY", secret)
    monkeypatch.setenv("DINSOS_LEDGER_NEW_KEY", secret)
    monkeypatch.setenv("DINSOS_LEDGER_SIGNING_KEY", str(tmp_path / "signing.pem"))
    wrapper, env_dump, stdin_dump = _spy(tmp_path)
    started: list[list[str]] = []
    real_popen = importer.subprocess.Popen

    def popen(args: list[str], **kwargs: object) -> object:
        started.append(list(args))
        return real_popen(args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(importer.sys, "executable", str(wrapper))
    monkeypatch.setattr(importer.subprocess, "Popen", popen)
    report = import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None, parallel=True)
    assert report.accepted == 60
    environment = env_dump.read_text(encoding="utf-8")
    assert "DINSOS_LEDGER" not in environment
    assert secret not in environment
    settings = stdin_dump.read_text(encoding="utf-8")
    assert secret not in settings
    assert set(json.loads(settings)) == {"paths", "subkey", "legacy_subkey", "batch_size"}
    assert started[0][1] == "-I"


def test_nothing_the_reader_sends_is_unpickled(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parallel import works with pickle switched off in the importing process."""

    def refuse(*_: object, **__: object) -> object:
        msg = "the importer must not unpickle what the reader sends"
        raise AssertionError(msg)

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    report = import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None, parallel=True)
    assert (report.accepted, report.rejected) == (60, 55)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))


def test_a_pickled_frame_is_refused_without_being_run(tmp_path: Path) -> None:
    """A frame holding a pickle that would run a command is an error, and the command never runs."""
    marker = tmp_path / "pickle-ran"
    body = pickle.dumps(_RunsCode(marker))
    frame = io.BytesIO(len(body).to_bytes(4, "big") + body)
    with pytest.raises(RuntimeError, match="not a JSON object"):
        read_frame(frame)
    assert not marker.exists()


def test_a_forged_command_from_the_reader_is_validated_again() -> None:
    """A line the reader calls valid is parsed again here: an invalid command is rejected."""
    forged = {
        "id": "x1",
        "command": "allocate",
        "ref": "KT-HH-0001",
        "on": "2025-01-02",
        "actor": "a",
        "programme": "PKH",
        "amount": 1.5,
        "period": "2025-01",
        "reference": "R-1",
    }
    number, (shown, command, digest) = importer._received_line([7, "x1", forged, "d", None])
    assert (number, shown, digest) == (7, "x1", "")
    assert getattr(command, "code", None) == "invalid"
    assert "amount" in str(command)


Lines = list[tuple[int, Any]]


def _through_the_pipe(raw: bytes) -> tuple[Lines, Lines]:
    """Each line of ``raw`` as the importer receives it from the reader, and as read here."""
    subkey = bytes(range(32))
    pipe = io.BytesIO()

    class _Kept(io.BytesIO):
        def close(self) -> None:  # run_reader closes its end: keep what it wrote
            pipe.write(self.getvalue())

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "lines.jsonl"
        source.write_bytes(raw)
        importer.run_reader(_Kept(), [str(source)], subkey, 3)
    pipe.seek(0)
    received: Lines = []
    while (message := read_frame(pipe)) is not None and message["type"] == "batch":
        received.extend(importer._received_line(entry) for entry in message["lines"])
    digest = functools.partial(keyed_digest, subkey)
    here = [(n, prepare(item, digest)) for n, item in importer.read_commands(io.BytesIO(raw))]
    return received, here


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.one_of(commands().map(json.dumps), hostile_lines()), min_size=1, max_size=8)
)
def test_a_line_received_from_the_reader_is_the_line_read_here(lines: list[str | bytes]) -> None:
    """Valid or hostile, every line gets the same id, command (or refusal) and digest as in-process."""
    raw = (
        b"\n".join(
            line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
            for line in lines
        )
        + b"\n"
    )
    received, here = _through_the_pipe(raw)
    assert received  # every drawn line reaches the ledger (none is blank)
    assert [number for number, _ in received] == [number for number, _ in here]
    for (_, (shown, command, digest)), (_, (shown_here, command_here, digest_here)) in zip(
        received, here, strict=True
    ):
        assert (shown, digest) == (shown_here, digest_here)
        if isinstance(command, Exception) or isinstance(command_here, Exception):
            assert str(command) == str(command_here)
            assert getattr(command, "code", None) == getattr(command_here, "code", None)
        else:
            assert command == command_here
