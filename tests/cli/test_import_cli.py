"""``dinsos-ledger import`` and ``show`` end to end (the command format and the CLI contract), on both backends.

The acceptance fixture ``tests/data/field_office.jsonl`` must give exactly the outcomes of
``field_office.expected.jsonl``, line by line; importing it again records nothing twice;
hostile input is rejected line by line without a traceback; an unusable file stops the
import before anything is recorded; an import that dies half way is completed by running
it again.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.errors import StorageError

from tests.model import Model

ROOT = Path(__file__).resolve().parents[2]

DATA = ROOT / "tests" / "data"
FIXTURE = DATA / "field_office.jsonl"
EXPECTED = [
    json.loads(text)
    for text in (DATA / "field_office.expected.jsonl").read_text().splitlines()
    if text.strip()
]
PII_FIELDS = ("family_card", "head_nik", "head_name", "nik", "name")


def cli(target: str, *args: str | os.PathLike[str]) -> Result:
    """Run ``dinsos-ledger --db TARGET ARGS…`` in-process; fail on a traceback."""
    result = CliRunner().invoke(main, ["--db", target, *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def rejects_of(path: Path) -> list[dict[str, Any]]:
    """The reject lines written to ``path``."""
    return [json.loads(text) for text in path.read_text(encoding="utf-8").splitlines()]


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise ValueError("a key given twice")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def line_id(raw: bytes) -> str | None:
    """The ``id`` a reject of this source line names: its string id, else null.

    A line that is not strict JSON (NaN, a key given twice) has no id anyone can trust.
    """
    try:
        value = json.loads(raw, parse_constant=_no_constant, object_pairs_hook=_strict_object)
    except (ValueError, RecursionError):
        return None
    return value.get("id") if isinstance(value, dict) and isinstance(value.get("id"), str) else None


def source_lines(path: Path) -> dict[int, bytes]:
    """Lines of a file by number, counting from 1 (blank lines included)."""
    return dict(enumerate(path.read_bytes().split(b"\n"), start=1))


def stored_events(target: str) -> list[tuple[str, int, str]]:
    """(originator id, version, topic) of every stored event, in recorded order."""
    with Ledger(target) as ledger:
        return [(row[1], row[2], row[3]) for row in ledger.recorder.iter_rows()]


def fixture_refs() -> list[str]:
    """Every well-formed ref the fixture names."""
    refs = set()
    for raw in source_lines(FIXTURE).values():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if (
            isinstance(value, dict)
            and isinstance(value.get("ref"), str)
            and value["ref"].startswith("KT-")
        ):
            refs.add(value["ref"])
    return sorted(refs)


def shown_states(target: str) -> dict[str, Any]:
    """``show REF --json`` of every fixture ref (``None`` for a ref that is not registered)."""
    states: dict[str, Any] = {}
    for ref in fixture_refs():
        result = cli(target, "show", ref, "--json")
        states[ref] = json.loads(result.stdout) if result.exit_code == 0 else None
    return states


# ------------------------------------------------------------------- the acceptance fixture


def test_the_expected_outcomes_cover_every_non_blank_line() -> None:
    """The expectation names each non-blank line of the fixture once, in order."""
    lines = source_lines(FIXTURE)
    assert [e["line"] for e in EXPECTED] == [n for n, raw in lines.items() if raw.strip()]


def test_the_field_office_file_gives_exactly_the_expected_outcomes(
    target: str, tmp_path: Path
) -> None:
    """Each line is accepted, a duplicate or rejected with the expected code; the counts match."""
    rejects = tmp_path / "rejects.jsonl"
    result = cli(target, "import", FIXTURE, "--rejects", rejects, "--json")
    assert result.exit_code == 1
    counts = {
        k: sum(1 for e in EXPECTED if e["outcome"] == v)
        for k, v in (
            ("accepted", "accepted"),
            ("duplicates", "duplicate"),
            ("rejected", "rejected"),
        )
    }
    assert counts == {"accepted": 60, "duplicates": 1, "rejected": 55}
    assert json.loads(result.stdout) == counts
    lines = source_lines(FIXTURE)
    written = rejects_of(rejects)
    assert [(r["file"], r["line"], r["id"], r["code"]) for r in written] == [
        (str(FIXTURE), e["line"], line_id(lines[e["line"]]), e["code"])
        for e in EXPECTED
        if e["outcome"] == "rejected"
    ]
    for reject in written:
        assert set(reject) == {"file", "line", "id", "code", "message"}
        assert isinstance(reject["message"], str)
        assert reject["message"]
    assert next(r for r in written if r["line"] == 40)["id"] is None


@pytest.mark.parametrize("batch_size", ["1", "7"])
def test_the_outcomes_do_not_depend_on_the_batch_size(
    target: str, tmp_path: Path, batch_size: str
) -> None:
    """Lines are applied in file order whatever the transaction size: the same rejects, counts."""
    rejects = tmp_path / "rejects.jsonl"
    result = cli(
        target, "import", FIXTURE, "--rejects", rejects, "--json", "--batch-size", batch_size
    )
    assert json.loads(result.stdout) == {"accepted": 60, "duplicates": 1, "rejected": 55}
    assert [(r["line"], r["code"]) for r in rejects_of(rejects)] == [
        (e["line"], e["code"]) for e in EXPECTED if e["outcome"] == "rejected"
    ]


def test_reject_messages_never_hold_personal_data(target: str, tmp_path: Path) -> None:
    """No NIK, family-card number or name of the fixture reaches a reject line or stderr."""
    secrets = set()
    for raw in source_lines(FIXTURE).values():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            secrets |= {str(value[f]) for f in PII_FIELDS if f in value}
    assert "640802640285004" in secrets  # the malformed NIK of line 6
    rejects = tmp_path / "rejects.jsonl"
    written = cli(target, "import", FIXTURE, "--rejects", rejects).output + rejects.read_text()
    again = cli(target, "import", FIXTURE)  # rejects on stderr this time
    for secret in secrets:
        assert secret not in written
        assert secret not in again.stderr


def test_importing_the_file_again_records_nothing_twice(target: str, tmp_path: Path) -> None:
    """A second import accepts nothing: what was recorded comes back as duplicates."""
    cli(target, "import", FIXTURE, "--rejects", tmp_path / "first.jsonl")
    before = stored_events(target)
    rejects = tmp_path / "second.jsonl"
    result = cli(target, "import", FIXTURE, "--rejects", rejects, "--json")
    assert result.exit_code == 1
    assert stored_events(target) == before
    counts = json.loads(result.stdout)
    assert counts["accepted"] == 0
    recorded_lines = {e["line"] for e in EXPECTED if e["outcome"] != "rejected"}
    again = {r["line"]: r["code"] for r in rejects_of(rejects)}
    assert not recorded_lines & set(again), "a recorded line was judged again"
    # A rejected line is judged afresh against what is recorded now; the model, run the same
    # way twice, says what that gives (line 21 became a duplicate: line 80 sent it again).
    model = Model()
    text = FIXTURE.read_text(encoding="utf-8")
    model.import_text(text)
    second = model.import_text(text)
    assert counts == {
        "accepted": 0,
        "duplicates": sum(1 for r in second if r["outcome"] == "duplicate"),
        "rejected": sum(1 for r in second if r["outcome"] == "rejected"),
    }
    assert again == {r["line"]: r["code"] for r in second if r["outcome"] == "rejected"}
    assert counts["duplicates"] == len(recorded_lines) + 1


def test_an_import_that_dies_half_way_is_completed_by_running_it_again(
    make_target: Any, tmp_path: Path
) -> None:
    """The first half, then the whole file, leaves the ledger a clean import would."""
    lines = FIXTURE.read_bytes().split(b"\n")
    half = tmp_path / "field_office.jsonl"  # same name: reject lines name the same file
    half.write_bytes(b"\n".join(lines[:57]) + b"\n")
    target = make_target()
    first = json.loads(cli(target, "import", half, "--json").stdout)
    second = json.loads(cli(target, "import", FIXTURE, "--json").stdout)
    assert first["accepted"] + second["accepted"] == 60
    assert second["duplicates"] == first["accepted"] + first["duplicates"]
    clean = str(tmp_path / "clean.sqlite")
    assert json.loads(cli(clean, "import", FIXTURE, "--json").stdout)["accepted"] == 60
    assert shown_states(target) == shown_states(clean)
    assert [topic for _, _, topic in stored_events(target)] == [
        topic for _, _, topic in stored_events(clean)
    ]


def test_a_crash_between_batches_reports_only_what_was_recorded(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails on the third batch: exit 2, rejects only of committed lines; a rerun completes."""
    real = Ledger.apply_prepared
    calls: list[int] = []

    def failing(self: Ledger, commands: Any) -> Any:
        calls.append(len(commands))
        if len(calls) == 3:
            raise StorageError("cannot write to the ledger: the connection was lost")
        return real(self, commands)

    monkeypatch.setattr(Ledger, "apply_prepared", failing)
    rejects = tmp_path / "rejects.jsonl"
    result = cli(target, "import", FIXTURE, "--rejects", rejects, "--batch-size", "20")
    assert result.exit_code == 2
    assert "Error:" in result.stderr
    assert "connection was lost" in result.stderr
    committed = {e["line"] for e in EXPECTED[:40]}
    assert {r["line"] for r in rejects_of(rejects)} <= committed
    assert [r["line"] for r in rejects_of(rejects)] == [
        e["line"] for e in EXPECTED[:40] if e["outcome"] == "rejected"
    ]
    monkeypatch.setattr(Ledger, "apply_prepared", real)
    rerun = json.loads(cli(target, "import", FIXTURE, "--json").stdout)
    assert rerun["accepted"] == sum(1 for e in EXPECTED[40:] if e["outcome"] == "accepted")
    clean = str(tmp_path / "clean.sqlite")
    cli(clean, "import", FIXTURE)
    assert shown_states(target) == shown_states(clean)


# ------------------------------------------------------------------------- exit status


def _household(n: int) -> str:
    return json.dumps(
        {
            "id": f"h-{n}",
            "command": "register_household",
            "ref": f"HH-{n}",
            "on": "2025-01-06",
            "actor": "petugas",
            "region": "64.08.04.2001",
            "members": 4,
            "family_card": f"{6408040101250000 + n}",
            "head_nik": f"{6408041203820000 + n}",
            "head_name": "Rahmat",
        }
    )


def test_a_clean_import_exits_0_and_so_does_its_repetition(target: str, tmp_path: Path) -> None:
    """Nothing rejected: exit 0, the counts on stdout as JSON, nothing else on stdout."""
    path = tmp_path / "clean.jsonl"
    path.write_text("\n".join(_household(n) for n in range(3)) + "\n\n")
    first = cli(target, "import", path, "--json")
    assert (first.exit_code, first.stdout) == (0, '{"accepted":3,"duplicates":0,"rejected":0}\n')
    again = cli(target, "import", path, "--json")
    assert (again.exit_code, json.loads(again.stdout)) == (
        0,
        {"accepted": 0, "duplicates": 3, "rejected": 0},
    )


def test_several_files_are_applied_in_order(target: str, tmp_path: Path) -> None:
    """A command may rely on one recorded from an earlier file; each reject names its file."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(_household(1) + "\n")
    second.write_text(
        json.dumps(
            {
                "id": "x-1",
                "command": "assess",
                "ref": "HH-1",
                "on": "2025-01-07",
                "actor": "p",
                "desil": 3,
            }
        )
        + "\n"
        + json.dumps(
            {
                "id": "x-2",
                "command": "assess",
                "ref": "HH-9",
                "on": "2025-01-07",
                "actor": "p",
                "desil": 3,
            }
        )
        + "\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    result = cli(target, "import", first, second, "--rejects", rejects, "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (
        1,
        {"accepted": 2, "duplicates": 0, "rejected": 1},
    )
    assert [(r["file"], r["line"], r["id"], r["code"]) for r in rejects_of(rejects)] == [
        (str(second), 2, "x-2", "unknown_subject")
    ]


@pytest.mark.parametrize("content", [b"", b"\n\n  \n\t\r\n"])
def test_an_empty_file_imports_nothing_and_exits_0(
    target: str, tmp_path: Path, content: bytes
) -> None:
    """A file with no commands is not an error: exit 0, all counts 0, a note on stderr."""
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    result = cli(target, "import", path, "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (
        0,
        {"accepted": 0, "duplicates": 0, "rejected": 0},
    )
    assert "masukan tidak berisi perintah" in result.stderr


def test_a_missing_file_exits_2_before_anything_is_imported(target: str, tmp_path: Path) -> None:
    """A file that does not exist: exit 2, a clear message, and not even the good file is imported."""
    good, missing = tmp_path / "good.jsonl", tmp_path / "missing.jsonl"
    good.write_text(_household(1) + "\n")
    result = cli(target, "import", good, missing, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert str(missing) in result.stderr
    assert stored_events(target) == []


def test_an_unreadable_file_exits_2_before_anything_is_imported(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that cannot be opened: exit 2 with the reason, nothing imported."""
    good, locked = tmp_path / "good.jsonl", tmp_path / "locked.jsonl"
    good.write_text(_household(1) + "\n")
    locked.write_text(_household(2) + "\n")
    real_open = pathlib.Path.open

    def guarded_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        # Root can read a file of mode 000, so refuse it the way the kernel would.
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", guarded_open)
    result = cli(target, "import", good, locked)
    assert result.exit_code == 2
    assert "Error: " in result.stderr
    assert str(locked) in result.stderr
    assert "Permission denied" in result.stderr
    monkeypatch.setattr(pathlib.Path, "open", real_open)
    assert stored_events(target) == []


def test_a_directory_given_as_a_file_exits_2(target: str, tmp_path: Path) -> None:
    """FILE must be a file."""
    result = cli(target, "import", tmp_path)
    assert result.exit_code == 2
    assert "Error: " in result.stderr


def test_an_unwritable_rejects_file_exits_2_before_anything_is_imported(
    target: str, tmp_path: Path
) -> None:
    """``--rejects`` that cannot be written stops the import before it starts."""
    good = tmp_path / "good.jsonl"
    good.write_text(_household(1) + "\n")
    result = cli(target, "import", good, "--rejects", tmp_path / "no" / "such" / "dir.jsonl")
    assert result.exit_code == 2
    assert "Error: " in result.stderr
    assert stored_events(target) == []


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        ("postgresql:///dinsos", "must be postgresql://user"),
        ("{tmp}/no/such/dir/ledger.sqlite", "cannot open the ledger"),
    ],
)
def test_an_unusable_target_exits_2_with_a_message(tmp_path: Path, db: str, expected: str) -> None:
    """A malformed URL or a SQLite file that cannot be created: exit 2, ``Error: …``, no traceback."""
    good = tmp_path / "good.jsonl"
    good.write_text(_household(1) + "\n")
    result = cli(db.format(tmp=tmp_path), "import", good, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert expected in result.stderr


def test_the_master_key_comes_from_beside_the_file_or_from_the_environment(
    backend: str, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite keeps its key in TARGET.key (mode 0600); PostgreSQL refuses to start without one."""
    good = tmp_path / "good.jsonl"
    good.write_text(_household(1) + "\n")
    if backend == "sqlite":
        assert cli(target, "import", good).exit_code == 0
        assert Path(target + ".key").stat().st_mode & 0o777 == 0o600
        return
    monkeypatch.delenv("DINSOS_LEDGER_KEY")
    result = cli(target, "import", good)
    assert result.exit_code == 2
    assert "DINSOS_LEDGER_KEY" in result.stderr


def test_import_without_a_file_is_a_usage_error(target: str) -> None:
    """FILE… is required: exit 2."""
    assert cli(target, "import").exit_code == 2


# ------------------------------------------------------------------------------ bad input

_BAD_LINES: list[tuple[bytes, str]] = [
    (
        b'{"id": "t-1", "command": "register_household", "ref": "HH-2", "on": "2025-01-0',
        "truncated JSON",
    ),
    (
        b'{"id": "t-2", "command": "assess", "ref": "HH-1", "on": "2025-01-07", "actor": "p", "desil": "2"}',
        "desil as a string",
    ),
    (
        b'{"id": "t-3", "command": "assess", "ref": "HH-1", "on": "2025-01-07", "actor": ["p"], "desil": 2}',
        "actor as an array",
    ),
    (
        b'{"id": "t-4", "command": "allocate", "ref": "HH-1", "on": "2025-01-08", "actor": "p", "programme": "PKH", "amount": 750000.0, "period": "2025-01", "reference": "A-1"}',
        "a float for money",
    ),
    (
        b'{"id": "t-5", "command": "allocate", "ref": "HH-1", "on": "2025-01-08", "actor": "p", "programme": "PKH", "amount": 7.5e5, "period": "2025-01", "reference": "A-1"}',
        "an exponent for money",
    ),
    (
        b'{"id": "t-6", "command": "allocate", "ref": "HH-1", "on": "2025-01-08", "actor": "p", "programme": "PKH", "amount": NaN, "period": "2025-01", "reference": "A-1"}',
        "NaN for money",
    ),
    (
        b'{"id": "t-7", "command": "allocate", "ref": "HH-1", "on": "2025-01-08", "actor": "p", "programme": "PKH", "amount": 1'
        + b"0" * 5000
        + b', "period": "2025-01", "reference": "A-1"}',
        "a 5001-digit amount",
    ),
    (
        b'{"id": "t-8", "command": "assess", "ref": "HH-1", "on": "2025-01-07", "actor": "p", "desil": 2, "petugas": "Rudi"}',
        "an unknown field",
    ),
    (
        b'{"id": "t-9", "command": "assess", "ref": "HH-1", "on": "2025-02-30", "actor": "p", "desil": 2}',
        "an impossible date",
    ),
    (
        b'{"id": "t-10", "command": "assess", "ref": "HH-1", "on": "2025-01-07", "actor": "p\xff\xfe", "desil": 2}',
        "bytes that are not UTF-8",
    ),
    (
        b'{"id": "t-11", "command": "assess", "ref": "HH-1", "on": "2025-01-07", "actor": "p", "desil": 2, "note": "'
        + b"x" * (1 << 20)
        + b'"}',
        "a line over 1 MiB",
    ),
    (
        b'{"id": "t-12", "command": "assess", "ref": "HH-1", "on": "2025-01-07", "actor": "p\\ud800", "desil": 2}',
        "a lone surrogate",
    ),
    (
        b'{"id": "t-13\\u0000", "command": "assess", "ref": "HH-1", "on": "2025-01-07", "actor": "p", "desil": 2}',
        "a NUL in the id",
    ),
    (
        b'{"id": "t-14", "command": "assess", "ref": "HH-1", "on": "2025-01-07", "actor": "p", "desil": 2, "desil": 9}',
        "a key given twice",
    ),
    (b"[" * 100_000 + b"]" * 100_000, "nesting 100000 deep"),
    (b'"register_household"', "a JSON string"),
    (b"\x00\x01\x02 binary garbage \x7f", "binary garbage"),
    (
        b'{"command": "assess", "ref": "HH-1", "on": "2025-01-07", "actor": "p", "desil": 2}',
        "no id",
    ),
]


def test_every_bad_line_is_rejected_as_invalid_and_the_good_ones_are_kept(
    target: str, tmp_path: Path
) -> None:
    """Hostile lines are each rejected ``invalid`` at their line; the valid lines around them are recorded."""
    good_first = _household(1).encode()
    good_last = json.dumps(
        {
            "id": "ok-2",
            "command": "assess",
            "ref": "HH-1",
            "on": "2025-01-07",
            "actor": "p",
            "desil": 2,
        }
    ).encode()
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(
        b"\n".join([good_first, *(raw for raw, _ in _BAD_LINES), b"", good_last]) + b"\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    result = cli(target, "import", path, "--rejects", rejects, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": len(_BAD_LINES),
    }
    written = rejects_of(rejects)
    assert [(r["line"], r["code"]) for r in written] == [
        (n, "invalid") for n in range(2, len(_BAD_LINES) + 2)
    ]
    for reject, (raw, why) in zip(written, _BAD_LINES, strict=True):
        assert reject["file"] == str(path), why
        assert reject["message"], why
        assert len(reject["message"]) < 1000, why
        if why not in (
            "truncated JSON",
            "bytes that are not UTF-8",
            "a line over 1 MiB",
            "a NUL in the id",
        ):
            assert reject["id"] == line_id(raw), why
    assert rejects.read_bytes().decode("utf-8")  # the rejects file itself is valid UTF-8
    shown = json.loads(cli(target, "show", "HH-1", "--json").stdout)
    assert (shown["version"], shown["desil"]) == (2, 2)


def test_a_byte_order_mark_and_windows_line_ends_are_not_content(
    target: str, tmp_path: Path
) -> None:
    """A file saved by a spreadsheet (BOM, CRLF) imports like a plain one (docs/spec-readings.md)."""
    path = tmp_path / "excel.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + b"\r\n".join(_household(n).encode() for n in range(3)) + b"\r\n"
    )
    result = cli(target, "import", path, "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (
        0,
        {"accepted": 3, "duplicates": 0, "rejected": 0},
    )


def test_bad_lines_on_stderr_read_file_line_code_message(target: str, tmp_path: Path) -> None:
    """Without ``--rejects``, each reject is one ``file:line: code: message`` line on stderr."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(_household(1).encode() + b"\n\n" + _BAD_LINES[0][0] + b"\n")
    result = cli(target, "import", path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"{path}:3: invalid: " in result.stderr


# ------------------------------------------------------------------------------------ show


def test_show_prints_a_household_as_json(target: str) -> None:
    """``show REF --json``: ref, kind, version, region and the opened personal data."""
    cli(target, "import", FIXTURE)
    shown = json.loads(cli(target, "show", "KT-HH-0001", "--json").stdout)
    lines = source_lines(FIXTURE)
    accepted = [json.loads(lines[e["line"]]) for e in EXPECTED if e["outcome"] == "accepted"]
    own = [c for c in accepted if c["ref"] == "KT-HH-0001"]
    registration = own[0]
    assert registration["command"] == "register_household"
    assert shown["ref"] == "KT-HH-0001"
    assert shown["kind"] == "household"
    assert shown["version"] == len(own)
    assert shown["region"] == registration["region"]
    for field in ("family_card", "head_nik", "head_name"):
        assert shown[field] == registration[field]


def test_show_prints_null_personal_data_for_a_forgotten_veteran(target: str) -> None:
    """A forgotten subject shows its PII fields as null, in its latest and its first version."""
    cli(target, "import", FIXTURE)
    for extra in ((), ("--version", "1")):
        shown = json.loads(cli(target, "show", "KT-VT-0002", "--json", *extra).stdout)
        assert (shown["ref"], shown["kind"], shown["region"]) == (
            "KT-VT-0002",
            "veteran",
            "64.08.01.2004",
        )
        assert (shown["nik"], shown["name"]) == (None, None)
    assert (
        json.loads(cli(target, "show", "KT-VT-0002", "--json", "--version", "1").stdout)["version"]
        == 1
    )


def test_show_as_recorded_at_a_moment(target: str, tmp_path: Path) -> None:
    """``--known-at`` gives the state the ledger had recorded at that moment."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(_household(1) + "\n")
    second.write_text(
        json.dumps(
            {
                "id": "x-1",
                "command": "assess",
                "ref": "HH-1",
                "on": "2025-01-07",
                "actor": "p",
                "desil": 3,
            }
        )
        + "\n"
    )
    before = datetime.now(UTC)
    time.sleep(0.05)
    cli(target, "import", first)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    cli(target, "import", second)
    shown = json.loads(
        cli(target, "show", "HH-1", "--json", "--known-at", between.isoformat()).stdout
    )
    assert (shown["version"], shown["desil"]) == (1, None)
    assert json.loads(cli(target, "show", "HH-1", "--json").stdout)["version"] == 2
    early = cli(target, "show", "HH-1", "--json", "--known-at", before.isoformat())
    assert early.exit_code == 1
    assert "Error: " in early.stderr


def test_show_of_an_unknown_ref_exits_1_with_a_message(target: str) -> None:
    """A ref that is not registered: exit 1, ``Error: …`` naming it, nothing on stdout."""
    Ledger(target).disconnect()
    result = cli(target, "show", "KT-HH-9999", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "KT-HH-9999" in result.stderr


# ------------------------------------------------------------------------- real process


def test_the_installed_command_reports_through_exit_status_stdout_and_stderr(
    tmp_path: Path,
) -> None:
    """As a process: JSON alone on stdout, messages on stderr, exit 1 for rejects and 2 for I/O."""
    program = shutil.which("dinsos-ledger", path=str(Path(sys.executable).parent)) or shutil.which(
        "dinsos-ledger"
    )
    assert program is not None
    db = str(tmp_path / "ledger.sqlite")
    env = {k: v for k, v in os.environ.items() if k != "DINSOS_LEDGER_DB"}
    done = subprocess.run(
        [program, "--db", db, "import", str(FIXTURE), "--json"],
        capture_output=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"accepted": 60, "duplicates": 1, "rejected": 55}
    assert b"Traceback" not in done.stderr
    assert f"{FIXTURE}:5: invalid: ".encode() in done.stderr
    missing = subprocess.run(
        [program, "--db", db, "import", str(tmp_path / "nope.jsonl")],
        capture_output=True,
        env=env,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stdout == b""
    assert missing.stderr.startswith(b"Error: ")
    assert b"Traceback" not in missing.stderr
