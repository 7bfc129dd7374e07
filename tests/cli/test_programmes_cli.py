"""End-to-end tests of programmes: command files, the ``programmes`` verb, ``show``, ``history``.

A hand-written command file defines BPNT (households up to desil 4, widened to desil 5 on
2025-03-01 after a flood), TALI_ASIH (veterans, no desil rule) and PELATIHAN (cohorts), and
allocates around those dates. Every expected answer is worked out by hand from the rules of
programmes (the working is in the comments). Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dinsos_ledger.cli import main

Run = Callable[..., Result]

PII = {
    "family_card": "6408040101250001",
    "head_nik": "6408041203820001",
    "head_name": "Rahmat Hidayat",
}


def _line(n: int, verb: str, ref: str, on: str, **fields: Any) -> str:
    return json.dumps(
        {"id": f"p{n:02d}", "command": verb, "ref": ref, "on": on, "actor": "operator", **fields}
    )


def _allocate(n: int, ref: str, on: str, programme: str, reference: str) -> str:
    return _line(
        n,
        "allocate",
        ref,
        on,
        programme=programme,
        amount=200_000,
        period=on[:7],
        reference=reference,
    )


COMMANDS = [
    _line(
        1,
        "define_programme",
        "BPNT",
        "2025-01-01",
        name="Bantuan Pangan Non Tunai",
        recipients=["household"],
        desil_limit=4,
    ),
    _line(
        2,
        "define_programme",
        "TALI_ASIH",
        "2025-01-01",
        name="Tali asih veteran",
        recipients=["veteran"],
        desil_limit=None,
    ),
    _line(
        3,
        "define_programme",
        "PELATIHAN",
        "2025-02-01",
        name="Pelatihan usaha (KUBE)",
        recipients=["cohort", "household"],
        desil_limit=3,
    ),
    _line(4, "register_household", "HH-A", "2025-01-02", region="64.08.04.2001", members=4, **PII),
    _line(5, "assess", "HH-A", "2025-01-02", desil=5),
    # Line 6: desil 5 > 4, the limit in force on 2025-02-10 → not_eligible.
    _allocate(6, "HH-A", "2025-02-10", "BPNT", "BPNT/2025-02/HH-A"),
    # Line 7: the flood: BPNT reaches desil 5 from 2025-03-01.
    _line(7, "amend_programme", "BPNT", "2025-03-01", desil_limit=5, note="banjir Sangatta"),
    # Line 8: accepted under the amendment (version 2 of BPNT).
    _allocate(8, "HH-A", "2025-03-05", "BPNT", "BPNT/2025-03/HH-A"),
    # Line 9: backdated before the amendment's on → the definition's limit 4 decides.
    _allocate(9, "HH-A", "2025-02-20", "BPNT", "BPNT/2025-02b/HH-A"),
    # Line 10: PELATIHAN is defined from 2025-02-01: not in force on 2025-01-20.
    _allocate(10, "HH-A", "2025-01-20", "PELATIHAN", "PEL/2025-01/HH-A"),
    # Line 11: a household may receive PELATIHAN, but desil 5 > 3.
    _allocate(11, "HH-A", "2025-02-15", "PELATIHAN", "PEL/2025-02/HH-A"),
    # Line 12: TALI_ASIH does not reach households.
    _allocate(12, "HH-A", "2025-03-05", "TALI_ASIH", "TA/2025-03/HH-A"),
    # Line 13: PKH is not defined: the default rule (desil ≤ 4) refuses desil 5.
    _allocate(13, "HH-A", "2025-03-05", "PKH", "PKH/2025-Q1/HH-A"),
    # Line 14: amending before the definition → before_registration.
    _line(14, "amend_programme", "BPNT", "2024-12-31", desil_limit=3),
    # Line 15: a programme accepts no other command.
    _line(15, "assess", "BPNT", "2025-03-05", desil=2),
    # Line 16: amend_programme of a household.
    _line(16, "amend_programme", "HH-A", "2025-03-05", desil_limit=3),
    # Line 17: BPNT exists.
    _line(
        17,
        "define_programme",
        "BPNT",
        "2025-03-05",
        name="BPNT lagi",
        recipients=["household"],
        desil_limit=4,
    ),
    # Line 18: recipients must be distinct kinds.
    _line(
        18,
        "define_programme",
        "SEKOLAH_RAKYAT",
        "2025-07-14",
        name="Sekolah Rakyat",
        recipients=["household", "household"],
        desil_limit=2,
    ),
    # Line 19: a second amendment of the same date: recorded later, it wins from 2025-06-01.
    _line(19, "amend_programme", "BPNT", "2025-06-01", desil_limit=3),
    _line(20, "amend_programme", "BPNT", "2025-06-01", desil_limit=4),
]

REJECTS = {
    6: "not_eligible",
    9: "not_eligible",
    10: "not_eligible",
    11: "not_eligible",
    12: "not_eligible",
    13: "not_eligible",
    14: "before_registration",
    15: "not_applicable",
    16: "not_applicable",
    17: "already_registered",
    18: "invalid",
}

BPNT_RULES = [
    {"on": "2025-01-01", "desil_limit": 4},
    {"on": "2025-03-01", "desil_limit": 5},
    {"on": "2025-06-01", "desil_limit": 3},
    {"on": "2025-06-01", "desil_limit": 4},
]


@pytest.fixture
def run(target: str) -> Run:
    """Run ``dinsos-ledger --db TARGET ARGS…``."""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--db", target, *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def loaded(run: Run, tmp_path: Path) -> Run:
    """``run`` on a ledger holding the hand-made file (its rejects checked)."""
    path = tmp_path / "programmes.jsonl"
    path.write_text("\n".join(COMMANDS) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    result = run("import", str(path), "--rejects", str(rejects), "--json")
    assert result.exit_code == 1, result.stderr
    accepted = len(COMMANDS) - len(REJECTS)
    assert json.loads(result.stdout) == {
        "accepted": accepted,
        "duplicates": 0,
        "rejected": len(REJECTS),
    }
    found = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert {r["line"]: r["code"] for r in found} == REJECTS
    return run


def as_json(result: Result) -> Any:
    """The verb's JSON output, after checking it succeeded."""
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_programmes_lists_every_programme_by_code_with_its_rules(loaded: Run) -> None:
    """Sorted by code; recipients in kind order; every rule in force order; today's limit."""
    assert as_json(loaded("programmes", "--json")) == [
        {
            "programme": "BPNT",
            "name": "Bantuan Pangan Non Tunai",
            "recipients": ["household"],
            # Two amendments dated 2025-06-01: the one recorded later is in force.
            "desil_limit": 4,
            "defined_on": "2025-01-01",
            "rules": BPNT_RULES,
        },
        {
            "programme": "PELATIHAN",
            "name": "Pelatihan usaha (KUBE)",
            # Sent as ["cohort", "household"]: listed household, veteran, cohort.
            "recipients": ["household", "cohort"],
            "desil_limit": 3,
            "defined_on": "2025-02-01",
            "rules": [{"on": "2025-02-01", "desil_limit": 3}],
        },
        {
            "programme": "TALI_ASIH",
            "name": "Tali asih veteran",
            "recipients": ["veteran"],
            "desil_limit": None,
            "defined_on": "2025-01-01",
            "rules": [{"on": "2025-01-01", "desil_limit": None}],
        },
    ]


def test_programmes_as_of_a_date_lists_only_what_was_in_force_by_then(loaded: Run) -> None:
    """As of 2025-01-31 PELATIHAN is not yet defined and BPNT has only its definition."""
    rows = as_json(loaded("programmes", "--as-of", "2025-01-31", "--json"))
    assert [row["programme"] for row in rows] == ["BPNT", "TALI_ASIH"]
    assert rows[0]["desil_limit"] == 4
    assert rows[0]["rules"] == BPNT_RULES[:1]
    # On the day of the flood amendment the new limit is in force.
    rows = as_json(loaded("programmes", "--as-of", "2025-03-01", "--json"))
    assert rows[0]["desil_limit"] == 5
    assert rows[0]["rules"] == BPNT_RULES[:2]
    # Both same-date amendments are listed; the later recorded one is in force.
    rows = as_json(loaded("programmes", "--as-of", "2025-06-01", "--json"))
    assert (rows[0]["desil_limit"], rows[0]["rules"]) == (4, BPNT_RULES)


def test_programmes_without_json_prints_one_line_per_programme(loaded: Run) -> None:
    """The plain listing names each programme with its limit and rules."""
    result = loaded("programmes")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["BPNT", "PELATIHAN", "TALI_ASIH"]
    assert "2025-03-01 desil ≤ 5" in lines[0]


def test_programmes_on_a_ledger_without_programmes_is_an_empty_array(
    run: Run, tmp_path: Path
) -> None:
    """Nothing defined: an empty JSON array, and a message on stderr without --json."""
    path = tmp_path / "one.jsonl"
    path.write_text(COMMANDS[3] + "\n", encoding="utf-8")
    result = run("import", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    assert as_json(run("programmes", "--json")) == []
    plain = run("programmes")
    assert plain.exit_code == 0
    assert "no programmes defined" in plain.stderr


def test_programmes_refuses_a_bad_date(loaded: Run) -> None:
    """--as-of must be a date that exists: a usage error (exit 2), no traceback."""
    result = loaded("programmes", "--as-of", "2025-02-30", "--json")
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.stderr


def test_show_at_the_allocation_version_names_the_rule_that_decided_it(loaded: Run) -> None:
    """The accepted BPNT allocation was decided by the amendment of 2025-03-01 (BPNT v2)."""
    # HH-A: v1 registered, v2 assessed, v3 the allocation of line 8.
    shown = as_json(loaded("show", "HH-A", "--version", "3", "--json"))
    assert shown["allocations"] == [
        {
            "reference": "BPNT/2025-03/HH-A",
            "programme": "BPNT",
            "amount": 200_000,
            "period": "2025-03",
            "on": "2025-03-05",
            "rule": {
                "source": "amend_programme",
                "on": "2025-03-01",
                "programme_version": 2,
                "desil_limit": 5,
                "recipients": ["household"],
                "desil": 5,
                "eligible": None,
            },
        }
    ]
    # The programme at that version is the amendment itself.
    programme = as_json(loaded("show", "BPNT", "--version", "2", "--json"))
    assert programme["kind"] == "programme"
    assert programme["rules"][-1] == {
        "on": "2025-03-01",
        "desil_limit": 5,
        "source": "amend_programme",
        "version": 2,
    }


def test_history_shows_the_rule_on_the_allocation_and_the_programme_changes(loaded: Run) -> None:
    """history of HH-A carries the rule; history of BPNT its definition and amendments."""
    entries = as_json(loaded("history", "HH-A", "--json"))
    allocated = [e for e in entries if e["type"] == "allocated"]
    assert len(allocated) == 1
    assert allocated[0]["rule"]["source"] == "amend_programme"
    assert allocated[0]["rule"]["desil_limit"] == 5
    changes = as_json(loaded("history", "BPNT", "--json"))
    assert [(e["type"], e["on"], e["desil_limit"]) for e in changes] == [
        ("defined", "2025-01-01", 4),
        ("amended", "2025-03-01", 5),
        ("amended", "2025-06-01", 3),
        ("amended", "2025-06-01", 4),
    ]
    assert changes[1]["note"] == "banjir Sangatta"
    assert changes[0]["recipients"] == ["household"]


def test_export_carries_the_programme_rows_and_each_allocations_rule(loaded: Run) -> None:
    """The definition's recipients and limit, and the allocation's rule, as flat columns."""
    result = loaded("export", "--format", "jsonl", "-")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    [defined] = [r for r in rows if r["event"] == "defined" and r["ref"] == "PELATIHAN"]
    assert (defined["kind"], defined["recipients"], defined["desil_limit"]) == (
        "programme",
        "household,cohort",
        3,
    )
    [allocated] = [r for r in rows if r["event"] == "allocated"]
    assert {k: allocated[k] for k in ("rule_source", "rule_on", "rule_version")} == {
        "rule_source": "amend_programme",
        "rule_on": "2025-03-01",
        "rule_version": 2,
    }
    assert (allocated["desil_limit"], allocated["desil"]) == (5, 5)


def test_verify_and_rebuild_agree_with_the_programmes(loaded: Run) -> None:
    """verify passes with programmes recorded; a rebuild changes no answer of programmes."""
    before = as_json(loaded("programmes", "--json"))
    assert loaded("verify").exit_code == 0
    assert loaded("rebuild").exit_code == 0
    assert as_json(loaded("programmes", "--json")) == before
