"""End-to-end tests of ``dinsos-ledger demo`` and ``dinsos-ledger report``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.demo import DEMO_FILES, MARKER_FILE, run_demo

from tests.unit.test_report_render import chart_svgs, page_problems

SMALL = ["--households", "20", "--seed", "3"]


def run(*args: str) -> Result:
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """A small demo, built once through the CLI with ``--json``."""
    directory = tmp_path_factory.mktemp("cli") / "demo"
    return directory, run("demo", "--dir", str(directory), *SMALL, "--json")


def test_the_demo_builds_ledger_rejects_and_report_and_says_so(
    built: tuple[Path, Result],
) -> None:
    """Exit 0; the JSON summary names every file, and each of them exists."""
    directory, result = built
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["households"] == 20
    assert summary["seed"] == 3
    assert summary["rejects_match"] is True
    assert summary["rejected"] == summary["expected_rejects"]
    assert summary["accepted"] + summary["duplicates"] + summary["rejected"] == summary["lines"]
    for key, name in (
        ("scenario", "scenario.jsonl"),
        ("ledger", "dinsos-ledger.sqlite"),
        ("rejects", "rejects.jsonl"),
        ("report", "report/index.html"),
    ):
        assert summary[key] == str(directory / name)
        assert (directory / name).is_file()


def test_the_demo_prints_where_everything_is_on_stderr(built: tuple[Path, Result]) -> None:
    """The human summary names the paths and the import counts; stdout holds only JSON."""
    directory, result = built
    summary = json.loads(result.stdout)
    for name in ("scenario.jsonl", "dinsos-ledger.sqlite", "rejects.jsonl", "report/index.html"):
        assert str(directory / name) in result.stderr
    assert f"{summary['rejected']} ditolak" in result.stderr
    assert "ditolak sesuai harapan" in result.stderr
    assert "Selanjutnya: buka" in result.stderr


def test_progress_is_not_drawn_when_stderr_is_not_a_terminal(built: tuple[Path, Result]) -> None:
    """Under a test runner stderr is a pipe: no bars, no control characters."""
    _, result = built
    assert "Importing" not in result.stderr
    assert "Mengimpor" not in result.stderr
    assert "\x1b[" not in result.stderr
    assert "\r" not in result.stderr


def test_the_demo_rejects_file_holds_one_spec_reject_line_per_refused_command(
    built: tuple[Path, Result],
) -> None:
    """Each line is ``{"file", "line", "id", "code", "message"}`` (the CLI contract)."""
    directory, result = built
    lines = (directory / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == json.loads(result.stdout)["rejected"] > 0
    for line in lines:
        reject = json.loads(line)
        assert set(reject) == {"file", "line", "id", "code", "message"}
        assert reject["file"] == str(directory / "scenario.jsonl")


def test_the_demo_report_is_a_valid_page_with_every_chart(built: tuple[Path, Result]) -> None:
    """The report passes the HTML check and has the five charts."""
    directory, _ = built
    page = (directory / "report" / "index.html").read_text(encoding="utf-8")
    assert page_problems(page) == []
    assert len(chart_svgs(page)) == 5


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    """A non-empty folder without the demo's marker is left untouched; exit 2."""
    (tmp_path / "precious.txt").write_text("keep me", encoding="utf-8")
    result = run("demo", "--dir", str(tmp_path), *SMALL)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert "not made by the demo" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]
    assert (tmp_path / "precious.txt").read_text(encoding="utf-8") == "keep me"


def test_the_demo_refuses_a_file_as_its_folder(tmp_path: Path) -> None:
    """``--dir`` naming a file is a usage error."""
    target = tmp_path / "a-file"
    target.write_text("x", encoding="utf-8")
    result = run("demo", "--dir", str(target), *SMALL)
    assert result.exit_code == 2
    assert target.read_text(encoding="utf-8") == "x"


def test_a_new_demo_replaces_its_own_files_and_keeps_anything_else(tmp_path: Path) -> None:
    """Run twice in one folder: the second run succeeds and leaves a stranger's file alone."""
    directory = tmp_path / "demo"
    first = run("demo", "--dir", str(directory), *SMALL, "--json")
    assert first.exit_code == 0, first.stderr
    (directory / "notes.txt").write_text("mine", encoding="utf-8")
    second = run("demo", "--dir", str(directory), *SMALL, "--json")
    assert second.exit_code == 0, second.stderr
    # A fresh ledger, not the old one imported again (that would give only duplicates).
    assert json.loads(second.stdout)["accepted"] == json.loads(first.stdout)["accepted"]
    assert (directory / "notes.txt").read_text(encoding="utf-8") == "mine"
    made = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    assert made - {"notes.txt"} <= set(DEMO_FILES)
    assert MARKER_FILE in made


def test_the_same_seed_gives_the_same_commands_and_another_seed_others(
    tmp_path: Path, built: tuple[Path, Result]
) -> None:
    """The scenario is deterministic per seed (and end date, today for both runs)."""
    directory, _ = built
    same = run("demo", "--dir", str(tmp_path / "same"), *SMALL)
    other = run("demo", "--dir", str(tmp_path / "other"), "--households", "20", "--seed", "4")
    assert same.exit_code == 0
    assert other.exit_code == 0
    original = (directory / "scenario.jsonl").read_bytes()
    assert (tmp_path / "same" / "scenario.jsonl").read_bytes() == original
    assert (tmp_path / "other" / "scenario.jsonl").read_bytes() != original


def test_the_report_verb_writes_the_page_of_any_ledger_as_of_a_date(
    built: tuple[Path, Result], tmp_path: Path
) -> None:
    """``report OUT_DIR --as-of`` reads the ledger named by ``--db`` and says where it wrote."""
    directory, _ = built
    out = tmp_path / "out"
    result = run(
        "--db", str(directory / "dinsos-ledger.sqlite"), "report", str(out), "--as-of", "2025-06-30"
    )
    assert result.exit_code == 0, result.stderr
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "per 30\u00a0Juni 2025" in page
    assert '<html lang="id">' in page
    assert page_problems(page) == []
    assert result.stderr.strip() == f"laporan ditulis ke {out / 'index.html'}: buka di peramban"
    assert result.stdout == ""


def test_the_report_verb_writes_english_with_lang_en(
    built: tuple[Path, Result], tmp_path: Path
) -> None:
    """``report OUT_DIR --lang en`` writes the English page and says so in English."""
    directory, _ = built
    out = tmp_path / "en"
    db = str(directory / "dinsos-ledger.sqlite")
    result = run("--db", db, "--lang", "en", "report", str(out), "--as-of", "2025-06-30")
    assert result.exit_code == 0, result.stderr
    page = (out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page
    assert "as of 30\u00a0June 2025" in page
    assert result.stderr.strip() == f"wrote {out / 'index.html'}: open it in a browser"
    again = run("--db", db, "report", str(out), "--lang", "en", "--as-of", "2025-06-30")
    assert again.exit_code == 0, again.stderr
    assert (out / "index.html").read_text(encoding="utf-8") == page


def test_the_report_verb_is_silent_with_quiet(built: tuple[Path, Result], tmp_path: Path) -> None:
    """``--quiet``: nothing on stderr, the page still written."""
    directory, _ = built
    result = run(
        "--db", str(directory / "dinsos-ledger.sqlite"), "--quiet", "report", str(tmp_path / "q")
    )
    assert result.exit_code == 0
    assert result.stderr == ""
    assert (tmp_path / "q" / "index.html").is_file()


@pytest.mark.parametrize("day", ["2025-13-01", "yesterday", "2025-1-1", "20250101"])
def test_the_report_verb_refuses_a_bad_as_of_date(tmp_path: Path, day: str) -> None:
    """A date that is not ``YYYY-MM-DD`` is a usage error (exit 2), and nothing is written."""
    result = run(
        "--db", str(tmp_path / "l.sqlite"), "report", str(tmp_path / "out"), "--as-of", day
    )
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_report_of_an_empty_ledger_is_still_a_page(tmp_path: Path) -> None:
    """A new ledger reports zeros and says there is nothing yet."""
    Ledger(str(tmp_path / "empty.sqlite")).disconnect()
    result = run("--db", str(tmp_path / "empty.sqlite"), "report", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert page_problems(page) == []
    assert "Belum ada keluarga" in page


def test_the_report_verb_says_when_it_cannot_write(tmp_path: Path) -> None:
    """OUT_DIR under a file: exit 2 with ``Error: tidak dapat menulis laporan …`` (or English)."""
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    Ledger(str(tmp_path / "l.sqlite")).disconnect()
    result = run("--db", str(tmp_path / "l.sqlite"), "report", str(blocker / "out"))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: tidak dapat menulis laporan ke")
    english = run("--db", str(tmp_path / "l.sqlite"), "--lang", "en", "report", str(blocker / "o"))
    assert english.stderr.startswith("Error: cannot write the report")


def test_the_demo_reconciles_statements_and_leaves_findings_to_audit(tmp_path: Path) -> None:
    """Statements are reconciled with exactly their planted mistakes; findings are not empty."""
    result = run_demo(tmp_path / "demo", households=60, end=dt.date(2026, 6, 30))
    assert result.rejects_match, result.mismatches
    bank = result.reconciled["bank"]
    assert bank.accepted > 0
    assert bank.accepted == result.statements["bank"].accepted
    header = (tmp_path / "demo" / "statement-bank.csv").read_text().splitlines()[0]
    assert header.startswith("channel_ref,reference,ref,amount,status,date")
    with Ledger(str(result.ledger)) as ledger:
        codes = {f.code for f in ledger.projections.findings(dt.date(2026, 6, 30))}
        assert {"shared_nik", "shared_family_card", "negative_balance"} <= codes
        assert {"activity_after_close", "unconfirmed_payment"} <= codes
        rows = ledger.projections.reconciliation(dt.date(2026, 6, 30))
        assert sum(r.confirmed_count for r in rows) > sum(r.unconfirmed_count for r in rows)
