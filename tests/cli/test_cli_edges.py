"""The CLI's rough edges, smoothed, and a core install that stays light.

Standard input, retry files, export safety, a readable ``show``, counted nouns, and
kecamatan names instead of codes.

Operator messages are Indonesian by default and English with ``--lang en``; JSON output is
the same in both. Every storage behaviour here runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dinsos_ledger.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "field_office.jsonl"
EXPECTED = [
    json.loads(text)
    for text in (ROOT / "tests" / "data" / "field_office.expected.jsonl").read_text().splitlines()
    if text.strip()
]
REJECTED_LINES = [e["line"] for e in EXPECTED if e["outcome"] == "rejected"]
COUNTS = {
    "accepted": sum(e["outcome"] == "accepted" for e in EXPECTED),
    "duplicates": sum(e["outcome"] == "duplicate" for e in EXPECTED),
    "rejected": len(REJECTED_LINES),
}


def refused_bytes() -> bytes:
    """The fixture's refused lines as they are in the file (split on line feeds only)."""
    lines = [line + b"\n" for line in FIXTURE.read_bytes().split(b"\n")]
    return b"".join(lines[n - 1] for n in REJECTED_LINES)


def cli(target: str, *args: str | os.PathLike[str], stdin: bytes | None = None) -> Result:
    """Run ``dinsos-ledger --db TARGET ARGS…`` in-process; fail on a traceback."""
    result = CliRunner().invoke(main, ["--db", target, *map(str, args)], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def test_import_dash_reads_standard_input_like_a_file(target: str, tmp_path: Path) -> None:
    """``import -`` gives the same counts and reject lines as the file, reported as ``-``."""
    rejects = tmp_path / "rejects.jsonl"
    result = cli(target, "import", "-", "--json", "--rejects", rejects, stdin=FIXTURE.read_bytes())
    assert result.exit_code == 1
    assert json.loads(result.stdout) == COUNTS
    lines = [json.loads(t) for t in rejects.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in lines] == REJECTED_LINES
    assert {r["file"] for r in lines} == {"-"}


def test_standard_input_can_be_named_once_only(target: str) -> None:
    """``import - -`` is a usage error: the second read would find nothing."""
    result = cli(target, "import", "-", "-", stdin=b"")
    assert result.exit_code == 2
    assert "(-)" in result.stderr


def test_the_retry_file_holds_each_refused_line_unchanged(target: str, tmp_path: Path) -> None:
    """--retry-file gets the refused lines byte for byte, in order; fixed, they import."""
    retry = tmp_path / "retry.jsonl"
    result = cli(target, "import", FIXTURE, "--retry-file", retry, "--rejects", tmp_path / "r")
    assert result.exit_code == 1
    assert retry.read_bytes() == refused_bytes()
    # The retry file is itself a command file: importing it again handles every line once
    # more (a line refused before may pass, or match one recorded since).
    again = json.loads(cli(target, "import", retry, "--json").stdout)
    assert sum(again.values()) == len(REJECTED_LINES)
    assert again["rejected"] >= len(REJECTED_LINES) - 2


def test_a_retry_file_from_standard_input_is_the_same(target: str, tmp_path: Path) -> None:
    """Read from standard input, the refused lines are written back just the same."""
    retry = tmp_path / "retry.jsonl"
    cli(target, "-q", "import", "-", "--retry-file", retry, stdin=FIXTURE.read_bytes())
    assert retry.read_bytes() == refused_bytes()


def test_the_summary_counts_in_words_and_says_what_to_do_next(target: str, tmp_path: Path) -> None:
    """Indonesian by default; English with --lang en, where 1 duplicate is not '1 duplicates'."""
    result = cli(target, "import", FIXTURE, "--rejects", tmp_path / "r.jsonl")
    a, d, r = COUNTS["accepted"], COUNTS["duplicates"], COUNTS["rejected"]
    assert f"{a} diterima, {d} duplikat, {r} ditolak" in result.stderr
    assert f"alasannya ada di {tmp_path / 'r.jsonl'}" in result.stderr
    assert "Baris yang diterima sudah tercatat." in result.stderr
    again = cli(target, "--lang", "en", "import", FIXTURE, "--rejects", tmp_path / "r.jsonl")
    assert re.search(r"^0 accepted, \d+ duplicates, \d+ rejected$", again.stderr, re.MULTILINE)
    assert "--retry-file collects them" in again.stderr
    one = tmp_path / "one.jsonl"
    one.write_bytes(FIXTURE.read_bytes().splitlines(keepends=True)[0])
    third = cli(target, "--lang", "en", "import", one)
    assert third.stderr.strip() == "0 accepted, 1 duplicate, 0 rejected"
    assert third.exit_code == 0


def test_export_refuses_to_overwrite_without_force(target: str, tmp_path: Path) -> None:
    """An existing OUT is kept (exit 2, it says how to replace it); --force replaces it."""
    cli(target, "-q", "import", FIXTURE)
    out = tmp_path / "events.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    refused = cli(target, "export", out)
    assert refused.exit_code == 2
    assert "--force" in refused.stderr
    assert out.read_text(encoding="utf-8") == "precious\n"
    forced = cli(target, "export", out, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) > 50


@pytest.mark.parametrize(
    ("name", "first"), [("e.jsonl", b"{"), ("e.CSV", b"position"), ("e.parquet", b"PAR1")]
)
def test_export_takes_its_format_from_the_extension(
    target: str, tmp_path: Path, name: str, first: bytes
) -> None:
    """.jsonl, .csv and .parquet need no --format; the file is of that format."""
    cli(target, "-q", "import", FIXTURE)
    result = cli(target, "export", tmp_path / name)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / name).read_bytes().startswith(first)


def test_an_unknown_extension_without_format_is_a_clear_usage_error(
    target: str, tmp_path: Path
) -> None:
    """``export out.xlsx`` exits 2 naming the choices, and writes nothing."""
    result = cli(target, "--lang", "en", "export", tmp_path / "out.xlsx")
    assert result.exit_code == 2
    assert "give --format jsonl, csv or parquet" in result.stderr
    assert not (tmp_path / "out.xlsx").exists()


def test_show_prints_a_readable_view_and_json_as_before(target: str) -> None:
    """No Python reprs or None: labels, spelled-out dates, rupiah, the kecamatan's name."""
    cli(target, "-q", "import", FIXTURE)
    text = cli(target, "show", "KT-HH-0001").stdout
    for python in ("None", "{'", "True", "False"):
        assert python not in text
    assert "nomor kasus" in text
    assert "6\u00a0Januari 2025" in text
    assert "(kec. Sangatta Utara)" in text
    assert "PKH: dialokasikan Rp\u00a01.500.000" in text
    english = cli(target, "--lang", "en", "show", "KT-HH-0001").stdout
    assert "PKH: allocated Rp\u00a01,500,000" in english
    assert "personal data erased  no" in english
    data = json.loads(cli(target, "show", "KT-HH-0001", "--json").stdout)
    assert data["closed_on"] is None
    assert data["balances"]["PKH"]["allocated"] == 1_500_000


def test_tables_name_the_kecamatan_instead_of_its_code(target: str) -> None:
    """coverage, outstanding and overdue print kecamatan names; JSON keeps the codes."""
    cli(target, "-q", "import", FIXTURE)
    for verb in ("coverage", "outstanding"):
        table = cli(target, verb, "--as-of", "2025-12-31").stdout
        assert "Sangatta Utara" in table, verb
        assert "64.08.04" not in table, verb
        rows = json.loads(cli(target, verb, "--as-of", "2025-12-31", "--json").stdout)
        assert "64.08.04" in {row["kecamatan"] for row in rows}, verb
    overdue = cli(target, "overdue", "--as-of", "2025-12-31").stdout
    assert overdue.splitlines()[0].split()[:3] == ["ref", "kind", "kecamatan"]


def _modules_after_balances(tmp_path: Path) -> list[str]:
    """The heavy optional modules loaded by ``import`` then ``balances --json`` on SQLite."""
    db = tmp_path / "light.sqlite"
    script = (
        "import json, sys\n"
        "from dinsos_ledger.cli import main\n"
        "for argv in (['import', sys.argv[2]], ['balances', '--json']):\n"
        "    try:\n"
        "        main(['--db', sys.argv[1], '-q', *argv])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('psycopg', 'psycopg_pool', 'matplotlib', 'numpy', 'pyarrow')\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(db), str(FIXTURE)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DINSOS_LEDGER_DB": ""},
    )
    assert db.exists()
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_a_sqlite_ledger_never_imports_matplotlib_numpy_or_pyarrow(tmp_path: Path) -> None:
    """The report's and Parquet's libraries load only on the verbs that use them."""
    loaded = _modules_after_balances(tmp_path)
    assert not {"matplotlib", "numpy", "pyarrow"} & set(loaded), loaded


def test_a_sqlite_ledger_never_imports_psycopg(tmp_path: Path) -> None:
    """The core install (no postgres extra) is enough for a SQLite ledger."""
    assert _modules_after_balances(tmp_path) == []


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("psycopg", ["--db", "postgresql://nobody@127.0.0.1:1/none", "balances"], "postgres"),
        ("matplotlib", ["report", "OUT"], "report"),
    ],
)
def test_a_missing_extra_names_the_extra_to_install(
    tmp_path: Path, module: str, argv: list[str], extra: str
) -> None:
    """Without psycopg or matplotlib the verb exits 2 saying which extra to install."""
    script = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # as if the extra were not installed\n"
        "from dinsos_ledger.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    args = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    if "--db" not in args:
        args = ["--db", str(tmp_path / "l.sqlite"), *args]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2, done.stderr
    assert f"install dinsos-ledger[{extra}]" in done.stderr
    assert "Traceback" not in done.stderr


def _stderr_on_a_terminal(args: list[str], exits: tuple[int, ...] = (0, 1)) -> str:
    """Run the CLI with stderr on a pseudo-terminal; what it drew there."""
    main_fd, terminal = os.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from dinsos_ledger.cli import main; main()", *args],
            stdout=subprocess.PIPE,
            stderr=terminal,
            check=False,
            timeout=120,
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(main_fd)
    assert done.returncode in exits, drawn
    return drawn.decode("utf-8", errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_long_verbs_show_progress_on_a_terminal_and_not_with_quiet(tmp_path: Path) -> None:
    """import and verify draw their stages on a terminal; --quiet draws nothing."""
    db = str(tmp_path / "tty.sqlite")
    drawn = _stderr_on_a_terminal(["--db", db, "import", str(FIXTURE), "--rejects", "/dev/null"])
    assert "✓ Mengimpor (baris)" in drawn
    assert f"{len(EXPECTED)}/{len(EXPECTED)}" in drawn  # every non-blank line, counted
    assert "✓ Memperbarui proyeksi" in drawn
    # Whatever verify finds, it shows that it is at work.
    assert "Memverifikasi" in _stderr_on_a_terminal(["--db", db, "verify"], exits=(0, 1, 2))
    quiet = _stderr_on_a_terminal(["--db", db, "--quiet", "import", str(FIXTURE)])
    assert quiet == ""
