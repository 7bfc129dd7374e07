"""End-to-end tests of the projection verbs: balances, continuity, roll-ups, rebuild, export.

A small command file is written here by hand, and every expected answer below is worked
out by hand from the balance rules and the continuity rules (the working is in the comments). Each test runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.projections.export import COLUMNS

ROOT = Path(__file__).resolve().parents[2]
Run = Callable[..., Result]

PII = {
    "family_card": "6408040101250001",
    "head_nik": "6408041203820001",
    "head_name": "Rahmat Hidayat",
}


def _line(n: int, verb: str, ref: str, on: str, **fields: Any) -> str:
    return json.dumps(
        {"id": f"c{n:02d}", "command": verb, "ref": ref, "on": on, "actor": "petugas", **fields}
    )


#: Five subjects in three kecamatan, one cohort and one enrolment, all accepted.
COMMANDS = [
    _line(1, "register_household", "HH-A", "2025-01-01", region="64.08.04.2001", members=4, **PII),
    _line(2, "assess", "HH-A", "2025-01-01", desil=2),
    _line(3, "register_household", "HH-C", "2025-01-03", region="64.08.04.2002", members=2, **PII),
    _line(4, "register_household", "HH-D", "2025-01-02", region="64.08.02.2003", members=5, **PII),
    _line(
        5,
        "plan_cohort",
        "CO-A",
        "2025-01-02",
        region="64.08.04.2001",
        programme="PELATIHAN",
        capacity=5,
        starts="2025-06-01",
        ends="2025-06-30",
    ),
    _line(
        6,
        "allocate",
        "HH-A",
        "2025-01-05",
        programme="PKH",
        amount=750_000,
        period="2025-01",
        reference="A-1",
    ),
    _line(
        7,
        "register_veteran",
        "VT-A",
        "2025-01-10",
        region="64.08.05.2001",
        nik="6408050807450001",
        name="Sudarmo Wiryo",
    ),
    _line(8, "assess", "VT-A", "2025-01-10", eligible=True),
    _line(
        9,
        "allocate",
        "VT-A",
        "2025-01-15",
        programme="TALI_ASIH",
        amount=225_000,
        period="2025-01",
        reference="A-1",
    ),
    _line(
        10,
        "disburse",
        "VT-A",
        "2025-01-20",
        programme="TALI_ASIH",
        amount=225_000,
        reference="D-1",
        channel="cash",
    ),
    _line(
        11,
        "disburse",
        "HH-A",
        "2025-02-01",
        programme="PKH",
        amount=500_000,
        reference="D-1",
        channel="bank",
    ),
    _line(12, "close", "HH-C", "2025-02-15", reason="moved"),
    _line(13, "reverse", "VT-A", "2025-03-01", reference="D-1", reason="KKS terblokir"),
    _line(14, "follow_up", "HH-A", "2025-04-10", outcome="not_found"),
    _line(
        15,
        "allocate",
        "CO-A",
        "2025-05-01",
        programme="PELATIHAN",
        amount=1_000_000,
        period="2025-05",
        reference="A-1",
    ),
    _line(16, "enrol", "EN-A", "2025-05-20", cohort="CO-A", household="HH-A"),
    _line(17, "attend", "EN-A", "2025-06-02"),
    _line(18, "register_household", "HH-B", "2025-07-01", region="64.08.02.2003", members=3, **PII),
    _line(19, "follow_up", "HH-D", "2025-03-15", outcome="visited"),  # backdated, recorded last
]
#: One event per command, and two for the enrolment (its own and the cohort's seat).
EVENTS = len(COMMANDS) + 1

# Balances (the balance rules) as of 2025-06-30: the cohort's allocation of May 1 counts; VT-A's
# payment was reversed on Mar 1 <= D, so it no longer counts as disbursed.
BALANCES_JUNE = [
    {
        "ref": "CO-A",
        "kind": "cohort",
        "programme": "PELATIHAN",
        "allocated": 1_000_000,
        "disbursed": 0,
        "outstanding": 1_000_000,
    },
    {
        "ref": "HH-A",
        "kind": "household",
        "programme": "PKH",
        "allocated": 750_000,
        "disbursed": 500_000,
        "outstanding": 250_000,
    },
    {
        "ref": "VT-A",
        "kind": "veteran",
        "programme": "TALI_ASIH",
        "allocated": 225_000,
        "disbursed": 0,
        "outstanding": 225_000,
    },
]
# As of 2025-02-15: no cohort row yet (allocated May 1); the reversal (Mar 1) is later than D.
BALANCES_FEBRUARY = [
    {
        "ref": "HH-A",
        "kind": "household",
        "programme": "PKH",
        "allocated": 750_000,
        "disbursed": 500_000,
        "outstanding": 250_000,
    },
    {
        "ref": "VT-A",
        "kind": "veteran",
        "programme": "TALI_ASIH",
        "allocated": 225_000,
        "disbursed": 225_000,
        "outstanding": 0,
    },
]


def timeline(
    ref: str,
    kind: str,
    registered: str,
    end: str,
    total: int,
    covered: int,
    coverage: float,
    gaps: list[tuple[str, str, int]],
    last: str,
    status: str,
) -> dict[str, Any]:
    """A continuity row as the CLI contract prints it."""
    return {
        "ref": ref,
        "kind": kind,
        "window_days": 90 if kind == "household" else 180,
        "registered_on": registered,
        "end_on": end,
        "total_days": total,
        "covered_days": covered,
        "coverage": coverage,
        "longest_gap_days": max((g[2] for g in gaps), default=0),
        "gaps": [{"from": a, "to": b, "days": n} for a, b, n in gaps],
        "last_contact_on": last,
        "status": status,
    }


# Continuity (the continuity rules) as of 2025-06-30; HH-B (registered Jul 1) has no timeline.
CONTINUITY_JUNE = [
    # Jan 1 .. Jun 30 is 181 days. Contacts Jan 1 (register, assess), Feb 1 (payment),
    # May 20 (enrol) and Jun 2 (attend); the not_found follow-up is none. Feb 1 covers up to
    # May 1, May 20 from then on: the gap is May 2 .. May 19, 18 days; 163/181 = 0.90055.
    timeline(
        "HH-A",
        "household",
        "2025-01-01",
        "2025-06-30",
        181,
        163,
        0.9006,
        [("2025-05-02", "2025-05-19", 18)],
        "2025-06-02",
        "covered",
    ),
    # Closed Feb 15: the window is Jan 3 .. Feb 15, 44 days, all covered by the registration.
    timeline(
        "HH-C", "household", "2025-01-03", "2025-02-15", 44, 44, 1.0, [], "2025-01-03", "closed"
    ),
    # Jan 2 covers to Apr 1, the backdated visit of Mar 15 to Jun 12; Jun 13 .. 30 is a gap.
    timeline(
        "HH-D",
        "household",
        "2025-01-02",
        "2025-06-30",
        180,
        162,
        0.9,
        [("2025-06-13", "2025-06-30", 18)],
        "2025-03-15",
        "overdue",
    ),
    # 180-day window from Jan 10 reaches Jul 8. The payment of Jan 20 was reversed Mar 1.
    timeline(
        "VT-A", "veteran", "2025-01-10", "2025-06-30", 172, 172, 1.0, [], "2025-01-10", "covered"
    ),
]
CONTINUITY_FEBRUARY = [
    timeline(
        "HH-A", "household", "2025-01-01", "2025-02-15", 46, 46, 1.0, [], "2025-02-01", "covered"
    ),
    timeline(
        "HH-C", "household", "2025-01-03", "2025-02-15", 44, 44, 1.0, [], "2025-01-03", "closed"
    ),
    # The visit dated Mar 15 is after D: as of Feb 15 the last contact is the registration.
    timeline(
        "HH-D", "household", "2025-01-02", "2025-02-15", 45, 45, 1.0, [], "2025-01-02", "covered"
    ),
    # Reversed Mar 1 > D: the payment of Jan 20 is still a contact.
    timeline(
        "VT-A", "veteran", "2025-01-10", "2025-02-15", 37, 37, 1.0, [], "2025-01-20", "covered"
    ),
]


@pytest.fixture
def run(target: str) -> Run:
    """Run ``dinsos-ledger --db TARGET ARGS…``."""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--db", target, *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def loaded(run: Run, tmp_path: Path) -> Run:
    """``run`` on a ledger holding the hand-made file."""
    path = tmp_path / "commands.jsonl"
    path.write_text("\n".join(COMMANDS) + "\n", encoding="utf-8")
    result = run("import", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == '{"accepted":19,"duplicates":0,"rejected":0}\n'
    return run


def as_json(result: Result) -> Any:
    """The verb's JSON output, after checking it succeeded."""
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_balances_json_is_the_spec_rows_worked_out_by_hand(loaded: Run) -> None:
    """Rows sorted by ref then programme; as of a date reversals count from their own date."""
    assert as_json(loaded("balances", "--as-of", "2025-06-30", "--json")) == BALANCES_JUNE
    assert as_json(loaded("balances", "--as-of", "2025-02-15", "--json")) == BALANCES_FEBRUARY
    assert as_json(loaded("balances", "--json")) == BALANCES_JUNE
    assert as_json(loaded("balances", "--as-of", "2024-12-31", "--json")) == []


def test_continuity_json_is_the_spec_timelines_worked_out_by_hand(loaded: Run) -> None:
    """Timelines sorted by ref, with gaps, coverage to 4 places and status (the continuity rules and the CLI contract)."""
    assert as_json(loaded("continuity", "--as-of", "2025-06-30", "--json")) == CONTINUITY_JUNE
    assert as_json(loaded("continuity", "--as-of", "2025-02-15", "--json")) == CONTINUITY_FEBRUARY
    july = as_json(loaded("continuity", "--as-of", "2025-07-01", "--json"))
    assert [t["ref"] for t in july] == ["HH-A", "HH-B", "HH-C", "HH-D", "VT-A"]


def test_continuity_defaults_to_today(loaded: Run) -> None:
    """Without --as-of, open timelines end today."""
    today = dt.date.today().isoformat()
    rows = as_json(loaded("continuity", "--json"))
    assert {t["ref"]: t["end_on"] for t in rows if t["status"] != "closed"} == {
        "HH-A": today,
        "HH-B": today,
        "HH-D": today,
        "VT-A": today,
    }


def test_the_roll_ups_sum_the_rows_above_per_kecamatan(loaded: Run) -> None:
    """coverage, overdue and outstanding are the sums and lists of the rows worked out above."""
    assert as_json(loaded("coverage", "--as-of", "2025-06-30", "--json")) == [
        {
            "kecamatan": "64.08.02",
            "subjects": 1,
            "covered": 0,
            "overdue": 1,
            "closed": 0,
            "covered_days": 162,
            "total_days": 180,
            "coverage": 0.9,
        },
        # HH-A and HH-C: 163 + 44 of 181 + 44 days.
        {
            "kecamatan": "64.08.04",
            "subjects": 2,
            "covered": 1,
            "overdue": 0,
            "closed": 1,
            "covered_days": 207,
            "total_days": 225,
            "coverage": 0.92,
        },
        {
            "kecamatan": "64.08.05",
            "subjects": 1,
            "covered": 1,
            "overdue": 0,
            "closed": 0,
            "covered_days": 172,
            "total_days": 172,
            "coverage": 1.0,
        },
    ]
    assert as_json(loaded("overdue", "--as-of", "2025-06-30", "--json")) == [
        {"ref": "HH-D", "kind": "household", "last_contact_on": "2025-03-15", "days_overdue": 18}
    ]
    assert as_json(loaded("outstanding", "--as-of", "2025-06-30", "--json")) == [
        {
            "kecamatan": "64.08.04",
            "programme": "PELATIHAN",
            "subjects": 1,
            "allocated": 1_000_000,
            "disbursed": 0,
            "outstanding": 1_000_000,
        },
        {
            "kecamatan": "64.08.04",
            "programme": "PKH",
            "subjects": 1,
            "allocated": 750_000,
            "disbursed": 500_000,
            "outstanding": 250_000,
        },
        {
            "kecamatan": "64.08.05",
            "programme": "TALI_ASIH",
            "subjects": 1,
            "allocated": 225_000,
            "disbursed": 0,
            "outstanding": 225_000,
        },
    ]


def test_without_json_the_verbs_print_aligned_tables(loaded: Run) -> None:
    """A readable table on stdout: a header, then one line per row, numbers right-aligned."""
    result = loaded("balances", "--as-of", "2025-02-15")
    assert result.exit_code == 0
    assert result.stdout == (
        "ref   kind       programme  allocated  disbursed  outstanding\n"
        "HH-A  household  PKH          750,000    500,000      250,000\n"
        "VT-A  veteran    TALI_ASIH    225,000    225,000            0\n"
    )
    result = loaded("overdue", "--as-of", "2025-06-30")
    assert result.stdout == (
        "ref   kind       kecamatan    last contact  days overdue\n"
        "HH-D  household  Muara Wahau  2025-03-15              18\n"
    )
    lines = loaded("continuity", "--as-of", "2025-06-30").stdout.splitlines()
    assert lines[0].split() == [
        "ref",
        "kind",
        "registered",
        "end",
        "covered",
        "days",
        "coverage",
        "longest",
        "gap",
        "last",
        "contact",
        "status",
    ]
    assert lines[1].split() == [
        "HH-A",
        "household",
        "2025-01-01",
        "2025-06-30",
        "163",
        "181",
        "90.06%",
        "18",
        "2025-06-02",
        "covered",
    ]
    assert len(lines) == 5
    assert len(loaded("coverage", "--as-of", "2025-06-30").stdout.splitlines()) == 4
    assert len(loaded("outstanding").stdout.splitlines()) == 4


def test_an_empty_ledger_answers_empty_arrays(run: Run, target: str) -> None:
    """No subjects: [] as JSON, and without --json nothing on stdout, a note on stderr."""
    Ledger(target).disconnect()
    for verb in ("balances", "continuity", "coverage", "overdue", "outstanding"):
        assert as_json(run(verb, "--json")) == [], verb
        result = run(verb)
        assert (result.exit_code, result.stdout) == (0, ""), verb
        assert result.stderr.startswith("tidak ada "), verb
        english = run("--lang", "en", verb)
        assert english.stderr.startswith("no "), verb


@pytest.mark.parametrize("day", ["2025-2-3", "yesterday", "2025-02-03T00:00"])
def test_an_invalid_as_of_is_a_usage_error(run: Run, day: str) -> None:
    """Anything not shaped YYYY-MM-DD exits 2 and says what was expected (id, or en)."""
    for verb in ("balances", "continuity", "coverage", "overdue", "outstanding"):
        result = run(verb, "--as-of", day, "--json")
        assert result.exit_code == 2, verb
        assert result.stdout == ""
        assert f"harus berupa tanggal YYYY-MM-DD (diberikan '{day}')" in result.stderr
        english = run("--lang", "en", verb, "--as-of", day, "--json")
        assert f"must be a date YYYY-MM-DD (got '{day}')" in english.stderr


@pytest.mark.parametrize("day", ["2025-02-30", "2025-13-01", "2025-04-31"])
def test_an_as_of_that_does_not_exist_says_so(run: Run, day: str) -> None:
    """A well-shaped date the calendar lacks exits 2 saying that date does not exist."""
    result = run("balances", "--as-of", day, "--json")
    assert result.exit_code == 2
    assert f"tanggal {day} tidak ada di kalender" in result.stderr
    english = run("--lang", "en", "balances", "--as-of", day)
    assert f"{day} does not exist in the calendar" in english.stderr


@pytest.mark.usefixtures("loaded")
def test_import_brings_the_projections_up_to_date(target: str) -> None:
    """After import every projection has applied every event (no query needed)."""
    with Ledger(target) as ledger:
        positions = ledger.projections.engine.positions()
        assert set(positions) >= {"subjects", "money", "contacts", "reconciliation", "findings"}
        assert set(positions.values()) == {EVENTS}


def test_rebuild_drops_and_rebuilds_and_says_what_it_did(loaded: Run) -> None:
    """rebuild (all, or named) prints what it rebuilt; the answers do not change."""
    result = loaded("rebuild")
    assert (result.exit_code, result.stdout) == (
        0,
        f"subjects, money, contacts, reconciliation, findings dibangun ulang dari {EVENTS} peristiwa\n",
    )
    english = loaded("--lang", "en", "rebuild")
    assert english.stdout == (
        f"rebuilt subjects, money, contacts, reconciliation, findings from {EVENTS} events\n"
    )
    assert as_json(loaded("rebuild", "money", "contacts", "--json")) == {
        "rebuilt": ["money", "contacts"],
        "events": EVENTS,
    }
    assert as_json(loaded("balances", "--as-of", "2025-06-30", "--json")) == BALANCES_JUNE
    assert as_json(loaded("continuity", "--as-of", "2025-06-30", "--json")) == CONTINUITY_JUNE


def test_rebuild_in_small_pages_gives_the_same_answers(loaded: Run) -> None:
    """--page-size changes how often a rebuild commits, not what it builds; 0 is refused."""
    result = loaded("--lang", "en", "rebuild", "--page-size", "7")
    assert (result.exit_code, result.stdout) == (
        0,
        f"rebuilt subjects, money, contacts, reconciliation, findings from {EVENTS} events\n",
    )
    assert as_json(loaded("balances", "--as-of", "2025-06-30", "--json")) == BALANCES_JUNE
    assert as_json(loaded("continuity", "--as-of", "2025-06-30", "--json")) == CONTINUITY_JUNE
    refused = loaded("rebuild", "--page-size", "0")
    assert refused.exit_code == 2
    assert "--page-size" in refused.stderr


def test_rebuild_of_an_unknown_projection_is_a_usage_error(loaded: Run) -> None:
    """An unknown name exits 2, names the known ones and rebuilds nothing."""
    result = loaded("rebuild", "money", "timelines")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: projection must be one of subjects, money, contacts, reconciliation, findings "
        "(got 'timelines')\n"
    )


# ------------------------------------------------------------------------------ export


def exported(run: Run, tmp_path: Path, fmt: str) -> list[dict[str, Any]]:
    """Export in ``fmt`` and read the rows back as JSON-like dicts (dates as ISO text)."""
    out = tmp_path / f"events.{fmt}"
    result = run("export", "--format", fmt, str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    if fmt == "jsonl":
        return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    if fmt == "csv":
        with out.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    import pyarrow.parquet as pq

    return pq.read_table(out).to_pylist()


def test_export_writes_one_row_per_event_with_the_documented_columns(
    loaded: Run, tmp_path: Path
) -> None:
    """JSON Lines, CSV and Parquet hold the same rows, in position order, columns in order."""
    names = [column.name for column in COLUMNS]
    rows = exported(loaded, tmp_path, "jsonl")
    assert [r["position"] for r in rows] == list(range(1, EVENTS + 1))
    assert all(list(r) == names for r in rows)
    reversal = dict(next(r for r in rows if r["event"] == "disbursement_reversed"))
    recorded = reversal.pop("recorded")
    assert dt.datetime.fromisoformat(recorded).utcoffset() == dt.timedelta(0)
    assert isinstance(reversal.pop("position"), int)
    assert reversal == {name: None for name in names if name not in ("recorded", "position")} | {
        "ref": "VT-A",
        "kind": "veteran",
        "event": "disbursement_reversed",
        "on": "2025-03-01",
        "actor": "petugas",
        "command_id": "c13",
        "version": 5,
        "reference": "D-1",
        "reason": "KKS terblokir",
    }
    # The cohort's seat is its own event; the enrolment's events name the enrolment.
    assert [r["event"] for r in rows if r["ref"] == "CO-A"] == [
        "planned",
        "allocated",
        "participant_enrolled",
    ]
    assert [(r["event"], r["household"]) for r in rows if r["ref"] == "EN-A"] == [
        ("enrolled", "HH-A"),
        ("attended", None),
    ]

    as_csv = exported(loaded, tmp_path, "csv")
    assert list(as_csv[0]) == names
    assert [r["event"] for r in as_csv] == [r["event"] for r in rows]
    assert (
        next(r for r in as_csv if r["event"] == "assessed" and r["ref"] == "VT-A")["eligible"]
        == "true"
    )
    assert next(r for r in as_csv if r["event"] == "disbursement_reversed")["amount"] == ""

    as_parquet = exported(loaded, tmp_path, "parquet")
    assert len(as_parquet) == EVENTS
    for row, pq_row in zip(rows, as_parquet, strict=True):
        assert pq_row["position"] == row["position"]
        assert pq_row["on"] == dt.date.fromisoformat(row["on"])
        assert pq_row["amount"] == row["amount"]
        assert pq_row["ref"] == row["ref"]


def test_export_never_holds_personal_data_not_even_sealed(
    loaded: Run, target: str, tmp_path: Path
) -> None:
    """Neither the NIKs, card numbers and names nor their stored ciphertexts are exported."""
    with Ledger(target) as ledger:
        sealed = [
            getattr(event, field).token
            for _, event in ledger.events()
            for field in ("family_card", "head_nik", "head_name", "nik", "name")
            if hasattr(event, field)
        ]
    assert len(sealed) == 4 * 3 + 2
    secrets = [*PII.values(), "6408050807450001", "Sudarmo Wiryo", *sealed]
    for fmt in ("jsonl", "csv", "parquet"):
        text = repr(exported(loaded, tmp_path, fmt))
        leaked = [s for s in secrets if s in text]
        assert not leaked, fmt


def test_export_to_stdout_and_its_usage_errors(loaded: Run, tmp_path: Path) -> None:
    """``-`` streams JSON Lines or CSV; a bad format, Parquet to stdout or a bad path exit 2."""
    result = loaded("export", "--format", "csv", "-")
    assert result.exit_code == 0
    assert len(list(csv.DictReader(io.StringIO(result.stdout)))) == EVENTS
    bad = loaded("export", "--format", "xlsx", str(tmp_path / "x"))
    assert bad.exit_code == 2
    assert "'xlsx' is not one of 'jsonl', 'csv', 'parquet'" in bad.stderr
    assert loaded("export", "--format", "parquet", "-").exit_code == 2
    nowhere = loaded("export", "--format", "jsonl", str(tmp_path / "missing" / "events.jsonl"))
    assert nowhere.exit_code == 2
    assert nowhere.stderr.startswith("Error: tidak dapat menulis ")
    assert not (tmp_path / "missing").exists()


def test_the_analysts_guide_documents_every_export_column() -> None:
    """docs/analysts.md has a table row for each export column, in the export's order."""
    guide = (ROOT / "docs" / "analysts.md").read_text(encoding="utf-8")
    documented = re.findall(
        r"^\| `([a-z_]+)` \| (integer|text|date|timestamp|boolean) \|", guide, re.MULTILINE
    )
    assert documented == [(column.name, column.type) for column in COLUMNS]
