"""Ask a ledger for balances and continuity again and again, writing what each answer showed.

Run as a child process by ``test_load.py``::

    python query_loop.py TARGET OUT STOP AS_OF

Until the file STOP exists (or ten minutes have passed), each round asks the projections
for the balances (no as-of date) and the continuity timelines as of AS_OF, checks that
each answer is consistent in itself, and appends one JSON line to OUT: how long each
question took, totals, and every inconsistency found. The test reads OUT afterwards.
Personal data is never read: only balances and timelines.
"""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

from dinsos_ledger.application import Ledger


def _balance_problems(rows: list[dict[str, Any]]) -> list[str]:
    """What is wrong with one balances answer taken on its own."""
    problems = []
    keys = [(r["ref"], r["programme"]) for r in rows]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        problems.append("balances are not sorted by ref and programme, once each")
    for r in rows:
        if r["outstanding"] != r["allocated"] - r["disbursed"]:
            problems.append(
                f"{r['ref']} {r['programme']}: outstanding is not allocated - disbursed"
            )
        if r["outstanding"] < 0:
            problems.append(f"{r['ref']} {r['programme']}: outstanding {r['outstanding']} < 0")
        if r["allocated"] < 0 or r["disbursed"] < 0:
            problems.append(f"{r['ref']} {r['programme']}: a negative sum")
    return problems


def _timeline_problems(rows: list[dict[str, Any]]) -> list[str]:
    """What is wrong with one continuity answer taken on its own."""
    problems = []
    refs = [r["ref"] for r in rows]
    if refs != sorted(refs) or len(set(refs)) != len(refs):
        problems.append("timelines are not sorted by ref, once each")
    for r in rows:
        gap_days = sum(g["days"] for g in r["gaps"])
        if r["covered_days"] + gap_days != r["total_days"]:
            problems.append(f"{r['ref']}: covered + gap days != total days")
        # the CLI contract: covered/total rounded to 4 places, half up (not Python's round()).
        exact = Fraction(r["covered_days"], r["total_days"])
        if math.floor(exact * 10_000 + Fraction(1, 2)) / 10_000 != r["coverage"]:
            problems.append(f"{r['ref']}: coverage {r['coverage']} is not covered/total")
    return problems


def main(target: str, out: str, stop: str, as_of: str) -> None:
    """Query until ``stop`` exists; one JSON line per round in ``out``."""
    day = date.fromisoformat(as_of)
    deadline = time.monotonic() + 600
    with Ledger(target) as ledger, Path(out).open("a", encoding="utf-8") as log:
        while not Path(stop).exists() and time.monotonic() < deadline:
            started = time.monotonic()
            balances = [row.to_json() for row in ledger.projections.balances()]
            asked = time.monotonic()
            timelines = [t.to_json() for t in ledger.projections.continuity(day)]
            done = time.monotonic()
            record = {
                "balances_s": asked - started,
                "continuity_s": done - asked,
                "rows": len(balances),
                "allocated": sum(r["allocated"] for r in balances),
                "disbursed": sum(r["disbursed"] for r in balances),
                "timelines": len(timelines),
                "problems": _balance_problems(balances) + _timeline_problems(timelines),
            }
            log.write(json.dumps(record) + "\n")
            log.flush()


if __name__ == "__main__":
    main(*sys.argv[1:5])
