"""``reconcile``, ``reconciliation`` and ``findings`` end to end, on both backends.

A statement's rows become ``confirm`` and ``reverse`` commands with deterministic ids:
rejects carry the row's line number as ``import`` reports them, and running the same
statement again records nothing twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dinsos_ledger.application import Ledger

from tests.cli.test_import_cli import cli, rejects_of

HEADER = "channel_ref,reference,ref,amount,status,date,nama_penerima\n"


def _cmd(n: str, verb: str, ref: str, on: str, **fields: Any) -> dict[str, Any]:
    return {"id": n, "command": verb, "ref": ref, "on": on, "actor": "petugas", **fields}


def setup_commands() -> list[dict[str, Any]]:
    """Two households, each allocated 750,000 and paid twice 300,000 (bank)."""
    out: list[dict[str, Any]] = []
    for i, ref in enumerate(("HH-1", "HH-2"), start=1):
        out += [
            _cmd(
                f"{ref}-r",
                "register_household",
                ref,
                "2025-01-02",
                region="64.08.04.2001",
                members=4,
                family_card=f"640804010125000{i}",
                head_nik=f"640804120382000{i}",
                head_name="Rahmat",
            ),
            _cmd(f"{ref}-a", "assess", ref, "2025-01-02", desil=2),
            _cmd(
                f"{ref}-al",
                "allocate",
                ref,
                "2025-01-05",
                programme="PKH",
                amount=750_000,
                period="2025-01",
                reference="A-1",
            ),
        ]
        for n in (1, 2):
            out.append(
                _cmd(
                    f"{ref}-d{n}",
                    "disburse",
                    ref,
                    "2025-01-10",
                    programme="PKH",
                    amount=300_000,
                    reference=f"D-{n}",
                    channel="bank",
                )
            )
    return out


def loaded(tmp_path: Path, target: str) -> None:
    """Import the setup commands into ``target``."""
    path = tmp_path / "setup.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in setup_commands()), encoding="utf-8")
    assert cli(target, "import", path).exit_code == 0


def statement(tmp_path: Path, body: str, name: str = "bri.csv") -> Path:
    """A statement file with the header and ``body``."""
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


GOOD = (
    "BRI-001,D-1,HH-1,300000,credited,2025-01-12,Rahmat\n"
    "BRI-002,D-2,HH-1,300000,returned,2025-01-20,Rahmat\n"
    "\n"
    "BRI-003,D-9,HH-2,300000,credited,2025-01-12,Siti\n"
    "BRI-004,D-1,HH-2,3.000.000,credited,2025-01-12,Siti\n"
    "BRI-005,D-2,HH-2,250000,credited,2025-01-13,Siti\n"
    "BRI-006,D-1,HH-2\n"
)


def test_a_statement_confirms_reverses_and_rejects_with_line_numbers(
    tmp_path: Path, target: str
) -> None:
    """Credited rows confirm, returned rows reverse; rejects are import's reject lines."""
    loaded(tmp_path, target)
    path = statement(tmp_path, GOOD)
    out = tmp_path / "rejects.jsonl"
    result = cli(
        target,
        "reconcile",
        path,
        "--channel",
        "bank",
        "--actor",
        "rekon",
        "--rejects",
        out,
        "--json",
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"accepted": 2, "duplicates": 0, "rejected": 4}
    rejects = rejects_of(out)
    assert [(r["file"], r["line"], r["id"], r["code"]) for r in rejects] == [
        (str(path), 5, "bank:BRI-003:credited", "unknown_reference"),
        (str(path), 6, "bank:BRI-004:credited", "invalid"),
        (str(path), 7, "bank:BRI-005:credited", "amount_mismatch"),
        (str(path), 8, None, "invalid"),
    ]
    assert "column 'amount'" in rejects[1]["message"]
    assert rejects[3]["message"] == (
        "missing column 'amount'; missing column 'status'; missing column 'date'"
    )
    assert "Rahmat" not in out.read_text()
    assert "Siti" not in out.read_text()
    with Ledger(target) as ledger:
        hh1 = ledger.get("HH-1")
        assert hh1.payments["D-1"].confirmed_on.isoformat() == "2025-01-12"
        assert hh1.payments["D-2"].reversed_on.isoformat() == "2025-01-20"
        events = ledger.events_of("HH-1")
        assert events[-1].reason == "returned by bank"
        assert events[-1].command_id == "bank:BRI-002:returned"
        assert events[-1].actor == "rekon"


def test_running_the_same_statement_again_records_nothing_twice(
    tmp_path: Path, target: str
) -> None:
    """The second run answers duplicate for every recorded row and rejects the same rows."""
    loaded(tmp_path, target)
    path = statement(tmp_path, GOOD)
    args = ("reconcile", path, "--channel", "bank", "--actor", "rekon", "--json")
    cli(target, *args)
    with Ledger(target) as ledger:
        head = ledger.projections.engine.head()
    again = cli(target, *args)
    assert again.exit_code == 1
    assert json.loads(again.stdout) == {"accepted": 0, "duplicates": 2, "rejected": 4}
    with Ledger(target) as ledger:
        assert ledger.projections.engine.head() == head


def test_reconciliation_and_findings_verbs_print_json(tmp_path: Path, target: str) -> None:
    """reconciliation counts the confirmation; findings lists what is left unconfirmed."""
    loaded(tmp_path, target)
    cli(target, "reconcile", statement(tmp_path, GOOD), "--channel", "bank", "--actor", "rekon")
    rows = json.loads(cli(target, "reconciliation", "--json").stdout)
    assert rows == [
        {
            "programme": "PKH",
            "channel": "bank",
            "disbursed_count": 3,
            "disbursed": 900_000,
            "confirmed_count": 1,
            "confirmed": 300_000,
            "unconfirmed_count": 2,
            "unconfirmed": 600_000,
            "oldest_unconfirmed_on": "2025-01-10",
        }
    ]
    early = json.loads(cli(target, "reconciliation", "--as-of", "2025-01-11", "--json").stdout)
    assert early[0]["confirmed_count"] == 0
    found = cli(target, "findings", "--as-of", "2025-03-01", "--json")
    assert found.exit_code == 0
    assert [(f["ref"], f["code"], f["on"]) for f in json.loads(found.stdout)] == [
        ("HH-2", "unconfirmed_payment", "2025-01-10"),
        ("HH-2", "unconfirmed_payment", "2025-01-10"),
    ]
    assert json.loads(found.stdout)[0]["programme"] == "PKH"
    assert json.loads(found.stdout)[0]["related"] == []
    strict = cli(target, "findings", "--as-of", "2025-03-01", "--strict", "--json")
    assert strict.exit_code == 1
    assert cli(target, "findings", "--as-of", "2025-02-01", "--strict").exit_code == 0


def test_a_statement_without_its_columns_is_refused_and_creates_no_ledger(
    tmp_path: Path,
) -> None:
    """Exit 2 naming the missing columns; nothing is created."""
    target = str(tmp_path / "new.sqlite")
    path = tmp_path / "bad.csv"
    path.write_text("channel_ref,reference,ref,amount\nB-1,D-1,HH-1,1\n", encoding="utf-8")
    result = cli(target, "reconcile", path, "--channel", "post", "--actor", "rekon")
    assert result.exit_code == 2
    assert "missing: status, date" in result.stderr
    assert not Path(target).exists()


def test_reconcile_creates_a_ledger_like_import(tmp_path: Path) -> None:
    """On a fresh target every row is unknown_subject, and the ledger now exists."""
    target = str(tmp_path / "new.sqlite")
    result = cli(
        target, "reconcile", statement(tmp_path, GOOD), "--channel", "post", "--actor", "r"
    )
    assert result.exit_code == 1
    assert Path(target).exists()
    assert "unknown_subject" in result.stderr


def test_reconcile_of_a_missing_file_or_channel_is_a_usage_error(tmp_path: Path) -> None:
    """Exit 2 for a statement that is not there or a channel that is not bank or post."""
    target = str(tmp_path / "l.sqlite")
    missing = cli(target, "reconcile", tmp_path / "nope.csv", "--channel", "bank", "--actor", "a")
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr
    path = statement(tmp_path, GOOD)
    assert cli(target, "reconcile", path, "--channel", "cash", "--actor", "a").exit_code == 2


_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["BRI-1", "BRI-2", "POS-3", "bad ref"]),
        st.sampled_from(["D-1", "D-2", "D-3"]),
        st.sampled_from(["HH-1", "HH-2", "HH-9"]),
        st.sampled_from(["300000", "250000", "x"]),
        st.sampled_from(["credited", "returned", "lost"]),
        st.sampled_from(["2025-01-12", "2025-02-30", "2024-12-01"]),
    ),
    max_size=12,
)


def test_a_statement_applied_twice_changes_nothing(tmp_path: Path) -> None:
    """Whatever the rows, the second run accepts nothing and the log does not grow."""
    counter = iter(range(10**6))

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=_ROWS)
    def twice(rows: list[tuple[str, ...]]) -> None:
        folder = tmp_path / f"run-{next(counter)}"
        folder.mkdir()
        target = str(folder / "l.sqlite")
        loaded(folder, target)
        body = "".join(",".join(row) + ",x\n" for row in rows)
        path = statement(folder, body)
        args = ("reconcile", path, "--channel", "bank", "--actor", "rekon", "--json")
        first = json.loads(cli(target, *args).stdout)
        with Ledger(target) as ledger:
            head = ledger.projections.engine.head()
            balances = ledger.projections.balances()
        second = json.loads(cli(target, *args).stdout)
        assert second["accepted"] == 0
        assert second["duplicates"] == first["accepted"] + first["duplicates"]
        with Ledger(target) as ledger:
            assert ledger.projections.engine.head() == head
            assert ledger.projections.balances() == balances

    twice()


def test_a_statement_saved_with_semicolons_is_read_the_same(tmp_path: Path, target: str) -> None:
    """Spreadsheets in an Indonesian locale separate cells with ';': the header shows it."""
    loaded(tmp_path, target)
    path = tmp_path / "pos.csv"
    path.write_text(
        "channel_ref;reference;ref;amount;status;date\nPOS-1;D-1;HH-1;300000;credited;2025-01-12\n",
        encoding="utf-8",
    )
    result = cli(target, "reconcile", path, "--channel", "post", "--actor", "rekon", "--json")
    assert (result.exit_code, json.loads(result.stdout)["accepted"]) == (0, 1)
