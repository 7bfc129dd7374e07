"""Hostile command lines: every one is a reject with a code, never a traceback or a record.

Lines come from ``tests/strategies.py``'s ``hostile_lines()`` (random JSON, wrong types,
huge and fractional amounts, deep nesting, raw control characters, truncation, invalid
UTF-8) and from a few hand-made monsters (megabyte lines, a million-digit amount, nesting
a hundred thousand deep). They are mixed with valid lines, which must still be recorded
with the right line numbers, through the importer and through the command line, on both
backends.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.importer import MAX_LINE_BYTES, Reject, import_files

from tests.model import Model
from tests.reliability import harness
from tests.strategies import hostile_lines

_serial = itertools.count(1)

# Examples per run: the hostile lines are cheap, but every example is an import into a
# real database. The slow variant draws many more.
QUICK = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
THOROUGH = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _valid_line(ref: str, n: int) -> bytes:
    """A registration that must be accepted (a ref and id new to the ledger)."""
    command = {
        "id": f"ok-{n}",
        "command": "register_veteran",
        "ref": ref,
        "on": "2025-01-06",
        "actor": "petugas.01",
        "region": "64.08.04.2001",
        "nik": "6408041203820001",
        "name": "Sudarmo",
    }
    return json.dumps(command).encode()


def _as_bytes(line: str | bytes) -> bytes:
    return line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")


def _file_of(tmp: Path, hostile: list[str | bytes]) -> tuple[Path, dict[str, str], set[int]]:
    """Hostile lines, each followed by a valid one.

    Returns the file, ``{id: ref}`` of the valid lines, and the numbers of the hostile ones.
    """
    n = next(_serial)
    path = tmp / f"hostile-{n}.jsonl"
    valid: dict[str, str] = {}
    bad: set[int] = set()
    lines = []
    for i, line in enumerate(hostile):
        lines.append(_as_bytes(line))
        bad.add(len(lines))
        ref = f"KT-VT-{n:05d}-{i:03d}"
        lines.append(_valid_line(ref, n * 1000 + i))
        valid[f"ok-{n * 1000 + i}"] = ref
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, valid, bad


def _check_import(ledger: Ledger, path: Path, valid: dict[str, str], bad: set[int]) -> None:
    before_ids = set(harness.command_ids(ledger))
    before_events = harness.event_count(ledger)
    rejects: list[Reject] = []
    report = import_files(ledger, [path], on_reject=rejects.append)
    assert {r.line for r in rejects} == bad
    assert {r.code for r in rejects} <= {"invalid"}, [(r.line, r.code, r.message) for r in rejects]
    for r in rejects:
        assert r.message
        assert "Traceback" not in r.message
        assert r.id is None or isinstance(r.id, str)
        json.dumps(r.to_json(), ensure_ascii=False).encode("utf-8")  # writable as a reject line
    assert report.accepted == len(valid)
    after_ids = set(harness.command_ids(ledger))
    assert after_ids - before_ids == set(valid)
    # Each valid line records exactly its registration; the hostile ones nothing at all.
    assert harness.event_count(ledger) == before_events + len(valid)
    for ref in valid.values():
        assert ledger.show(ref)["name"] == "Sudarmo"


def test_the_model_rejects_every_hostile_line_as_invalid() -> None:
    """The strategy is what it claims: the documented model refuses each line as invalid."""

    @settings(max_examples=200, deadline=None)
    @given(hostile_lines())
    def check(line: str | bytes) -> None:
        assert Model().execute(line) == ("rejected", "invalid")

    check()


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(QUICK, id="quick"),
        pytest.param(THOROUGH, id="thorough", marks=pytest.mark.slow),
    ],
)
def test_hostile_lines_through_the_importer_are_invalid_and_record_nothing(
    ledger: Ledger, tmp_path: Path, variant: settings
) -> None:
    """Each hostile line is one `invalid` reject; the valid lines around it are recorded."""

    @variant
    @given(st.lists(hostile_lines(), min_size=1, max_size=8))
    def check(hostile: list[str | bytes]) -> None:
        path, valid, bad = _file_of(tmp_path, hostile)
        _check_import(ledger, path, valid, bad)

    check()


def _monsters() -> Iterator[tuple[str, bytes]]:
    """Hand-made lines at and past the limits, each with why it must be refused."""
    base = _valid_line("KT-VT-MONSTER", 0)
    command = json.loads(base)
    yield "a line one byte over the limit", b"{" + b" " * MAX_LINE_BYTES + b"}"
    yield "a line of ten megabytes", b'{"id": "' + b"x" * (10 * MAX_LINE_BYTES) + b'"}'
    big_note = dict(command, note="n" * (MAX_LINE_BYTES - 400))
    yield "a note of a megabyte, inside the line limit", json.dumps(big_note).encode()
    allocation = {
        "id": "m",
        "command": "allocate",
        "ref": "KT-VT-1",
        "on": "2025-01-06",
        "actor": "a",
        "programme": "PKH",
        "period": "2025-01",
        "reference": "R",
    }
    yield (
        "an amount of a million digits",
        (json.dumps(allocation)[:-1].encode() + b', "amount": ' + b"9" * 1_000_000 + b"}"),
    )
    yield "an amount of 2**63", json.dumps(dict(allocation, amount=2**63)).encode()
    yield "an amount of 10**12 + 1", json.dumps(dict(allocation, amount=10**12 + 1)).encode()
    yield "an amount of 1e6", json.dumps(allocation)[:-1].encode() + b', "amount": 1e6}'
    yield "nesting a hundred thousand deep", b"[" * 100_000 + b"]" * 100_000
    yield "an object nested a hundred thousand deep", b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    yield "a megabyte of invalid UTF-8", b"\xff" * (MAX_LINE_BYTES - 10)
    yield "a NUL byte in a ref", base.replace(b"KT-VT-MONSTER", b"KT-VT-\x00")
    yield "a lone surrogate escape in a name", base.replace(b"Sudarmo", b"Sud\\ud800armo")
    yield "a NUL escape in an id", base.replace(b'"ok-0"', b'"ok-\\u0000"')
    yield "the valid line with a field twice", base[:-1] + b', "ref": "KT-VT-OTHER"}'


_MONSTERS = list(_monsters())


@pytest.mark.parametrize("line", [pytest.param(line, id=why) for why, line in _MONSTERS])
def test_monster_lines_are_invalid_and_the_next_line_is_still_read(
    ledger: Ledger, tmp_path: Path, line: bytes
) -> None:
    """Lines at and past every limit are refused; the line after is recorded, numbered right."""
    path, valid, bad = _file_of(tmp_path, [line])
    _check_import(ledger, path, valid, bad)


def _cli_run(target: str, path: Path, rejects: Path) -> Any:
    return CliRunner().invoke(
        main, ["--db", target, "import", str(path), "--json", "--rejects", str(rejects)]
    )


def test_hostile_lines_through_the_command_line_exit_1_with_reject_lines(
    target: str, tmp_path: Path
) -> None:
    """The import verb reports every hostile line in --rejects and exits 1, never crashing."""

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(hostile_lines(), min_size=1, max_size=10))
    def check(hostile: list[str | bytes]) -> None:
        path, valid, bad = _file_of(tmp_path, hostile)
        rejects = tmp_path / f"{path.stem}.rejects.jsonl"
        result = _cli_run(target, path, rejects)
        assert result.exit_code == 1, (result.output, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        assert json.loads(result.stdout.strip().splitlines()[-1]) == {
            "accepted": len(valid),
            "duplicates": 0,
            "rejected": len(bad),
        }
        written = harness.read_rejects(rejects)
        assert [(r["line"], r["code"]) for r in written] == [(n, "invalid") for n in sorted(bad)]
        assert all(set(r) == {"file", "line", "id", "code", "message"} for r in written)

    check()


def test_a_file_of_monsters_through_a_child_process_gives_rejects_and_no_traceback(
    target: str, tmp_path: Path
) -> None:
    """The real executable, the monster lines in one file: exit 1, rejects, valid lines kept."""
    path, valid, bad = _file_of(tmp_path, [line for _, line in _MONSTERS])
    rejects = tmp_path / "monsters.rejects.jsonl"
    run = harness.cli(target, "import", str(path), "--json", "--rejects", str(rejects))
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert json.loads(run.stdout) == {"accepted": len(valid), "duplicates": 0, "rejected": len(bad)}
    assert {(r["line"], r["code"]) for r in harness.read_rejects(rejects)} == {
        (n, "invalid") for n in bad
    }
    with Ledger(target) as ledger:
        assert len(harness.command_ids(ledger)) == len(valid)
