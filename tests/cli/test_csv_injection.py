"""The CSV export is safe to open in a spreadsheet: no cell an operator typed runs as a formula."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger.cli import main
from dinsos_ledger.projections.export import FORMULA_STARTS, spreadsheet_safe

HOSTILE = {
    "=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
    "+SUM(A1:A9)": "'+SUM(A1:A9)",
    "-2+3+cmd|' /C notepad'!A0": "'-2+3+cmd|' /C notepad'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0": "'@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
    "petugas=ok": "petugas=ok",
}


def _command(index: int, body: dict[str, object]) -> str:
    return json.dumps({"id": f"c{index}", "on": "2025-01-02", **body})


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_hostile_actors_and_notes_are_exported_as_text_and_amounts_stay_numbers(
    target: str, tmp_path: Path
) -> None:
    """A formula in actor, note or reason gets a leading quote; numbers and JSON Lines do not."""
    lines = [
        _command(
            0,
            {
                "command": "register_veteran",
                "ref": "VT-X",
                "actor": "petugas",
                "region": "64.08.05.2001",
                "nik": "6408050101450001",
                "name": "Hostile Test",
            },
        ),
        _command(1, {"command": "assess", "ref": "VT-X", "actor": "petugas", "eligible": True}),
    ]
    for index, text in enumerate(HOSTILE, start=2):
        lines.append(
            _command(
                index,
                {
                    "command": "allocate",
                    "ref": "VT-X",
                    "actor": text.strip() or "x",
                    "note": text,
                    "programme": "TALI_ASIH",
                    "amount": 1000 + index,
                    "period": "2025-01",
                    "reference": f"A-{index}",
                },
            )
        )
    source = tmp_path / "hostile.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    imported = runner.invoke(main, ["--db", target, "import", str(source), "--json"])
    assert imported.exit_code == 0, imported.output
    out = tmp_path / "events.csv"
    assert (
        runner.invoke(main, ["--db", target, "export", "--format", "csv", str(out)]).exit_code == 0
    )
    with out.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["event"] == "allocated"]
    assert [row["note"] for row in rows] == list(HOSTILE.values())
    assert [row["actor"] for row in rows] == [spreadsheet_safe(t.strip() or "x") for t in HOSTILE]
    assert [row["amount"] for row in rows] == [str(1000 + i) for i in range(2, 2 + len(HOSTILE))]
    for row in rows:
        for name, value in row.items():
            assert not value.startswith(FORMULA_STARTS), (name, value)
    as_jsonl = tmp_path / "events.jsonl"
    assert (
        runner.invoke(
            main, ["--db", target, "export", "--format", "jsonl", str(as_jsonl)]
        ).exit_code
        == 0
    )
    notes = [
        json.loads(line)["note"]
        for line in as_jsonl.read_text(encoding="utf-8").splitlines()
        if json.loads(line)["event"] == "allocated"
    ]
    assert notes == list(HOSTILE)  # JSON is data, not a sheet: left as typed


@given(st.text(max_size=30))
def test_a_neutralised_cell_never_starts_a_formula_and_loses_nothing(text: str) -> None:
    """Whatever the text, the cell starts with no formula character and strips back to it."""
    cell = spreadsheet_safe(text)
    assert not cell.startswith(FORMULA_STARTS)
    assert cell == text or (cell == "'" + text and text.startswith(FORMULA_STARTS))
