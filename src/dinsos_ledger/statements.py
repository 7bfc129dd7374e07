"""The demo's payment-channel statements and the entries an auditor should flag.

:func:`write_statements` writes, from the payments a scenario made (see
:class:`~dinsos_ledger.scenario.ScenarioExtras`), one CSV statement per channel as the banks
(Himbara) and PT Pos send them: most payments credited within days, some weeks late, a few
returned (account dormant, recipient moved), some not yet reported, and a few rows with the
mistakes statements really carry (an amount typed with thousands dots, a wrong amount, a
reference with a typo, a row sent twice). Each mistake is listed with the code ``reconcile``
must give it.

:func:`late_entries` writes a small command file of entries the ledger accepts but an auditor
must look at: households whose head's NIK or family card is already on the ledger, a veteran
registered under the NIK of a household's head, a payment dated before its allocation and a
close dated before a visit that was already recorded.

Everything is drawn from one ``random.Random`` seeded from the scenario's seed: the same
scenario always gives the same statements.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any, Final

import attrs

from dinsos_ledger.scenario import ExpectedReject, ScenarioConfig, ScenarioExtras

__all__ = [
    "LATE_ENTRIES_FILE",
    "STATEMENT_FILES",
    "StatementSummary",
    "late_entries",
    "write_statements",
]

#: The statement file of each channel, relative to the demo's folder.
STATEMENT_FILES: Final = {"bank": "statement-bank.csv", "post": "statement-post.csv"}
#: The command file of late entries the auditor must look at.
LATE_ENTRIES_FILE: Final = "late-entries.jsonl"

_HEADER: Final = ("channel_ref", "reference", "ref", "amount", "status", "date", "penyalur")
_BANKS: Final = ("BRI", "BNI", "MANDIRI", "BTN")
_MISTAKE_RATE: Final = 0.015
# Cumulative shares of the bank and post payments: credited within days, credited weeks
# late, returned; the rest is not reported yet.
_ON_TIME: Final = 0.80
_LATE: Final = 0.90
_RETURNED: Final = 0.93
# The late entries use the first three households of the scenario.
_PLANTED: Final = 3


@attrs.frozen
class StatementSummary:
    """What one statement holds: its rows and the mistakes among them."""

    channel: str
    rows: int
    expected_rejects: tuple[ExpectedReject, ...]
    expected_duplicates: int
    statuses: dict[str, int]

    @property
    def accepted(self) -> int:
        """Rows the ledger must record."""
        return self.rows - len(self.expected_rejects) - self.expected_duplicates


def _rows_of(
    channel: str, extras: ScenarioExtras, config: ScenarioConfig, rng: random.Random
) -> list[tuple[int, list[str], str | None]]:
    """``(date ordinal, row, expected code or "duplicate" or None)`` in no particular order."""
    last = config.end.toordinal()
    out: list[tuple[int, list[str], str | None]] = []
    number = 0
    for ref, reference, amount, on, paid_by in extras.payments:
        if paid_by != channel or ref in extras.erased or (ref, reference) in extras.reversed:
            continue
        draw = rng.random()
        if draw < _ON_TIME:
            status, day = "credited", on + rng.randint(1, 7 if channel == "bank" else 14)
        elif draw < _LATE:
            status, day = "credited", on + rng.randint(25, 75)  # reported weeks late
        elif draw < _RETURNED:
            status, day = "returned", on + rng.randint(5, 30)  # dormant account, moved away
        else:
            continue  # not reported yet
        if day > last:
            continue
        number += 1
        date = dt.date.fromordinal(day)
        agent = rng.choice(_BANKS) if channel == "bank" else "POS"
        channel_ref = (
            f"{agent}{date:%Y%m%d}{number:06d}"
            if channel == "bank"
            else f"POS/{date:%Y%m}/{number:06d}"
        )
        row = [channel_ref, reference, ref, str(amount), status, date.isoformat(), agent]
        if status == "credited" and rng.random() < _MISTAKE_RATE:
            kind = rng.choice(("dots", "amount", "typo", "twice"))
            if kind == "dots":
                # The channel's clerk typed the amount Indonesian style; sent again correctly.
                out.append((day, [*row[:3], f"{amount:,}".replace(",", "."), *row[4:]], "invalid"))
            elif kind == "amount":
                wrong = [*row[:3], str(max(1, amount - 50_000)), *row[4:]]
                out.append((day, wrong, "amount_mismatch"))
            elif kind == "typo":
                typo = [row[0] + "X", row[1] + "X", *row[2:]]
                out.append((day, typo, "unknown_reference"))
            else:
                out.append((day, row, None))
                out.append((day, list(row), "duplicate"))
                continue
        out.append((day, row, None))
    return out


def write_statements(
    folder: Path, extras: ScenarioExtras, config: ScenarioConfig
) -> dict[str, StatementSummary]:
    """Write the bank's and the post office's statements into ``folder``; say what they hold."""
    rng = random.Random(config.seed * 7919 + 1)  # noqa: S311 - demo data, not secrets
    summaries: dict[str, StatementSummary] = {}
    for channel, name in STATEMENT_FILES.items():
        rows = _rows_of(channel, extras, config, rng)
        # A statement lists its rows by date; a mistaken row comes before its correction.
        order = sorted(range(len(rows)), key=lambda i: (rows[i][0], i))
        rejects: list[ExpectedReject] = []
        duplicates = 0
        statuses: Counter[str] = Counter()
        with (folder / name).open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(_HEADER)
            for line, i in enumerate(order, start=2):
                _, row, code = rows[i]
                writer.writerow(row)
                if code == "duplicate":
                    duplicates += 1
                elif code is not None:
                    rejects.append(ExpectedReject(line, code))
                else:
                    statuses[row[4]] += 1
        summaries[channel] = StatementSummary(
            channel=channel,
            rows=len(rows),
            expected_rejects=tuple(rejects),
            expected_duplicates=duplicates,
            statuses=dict(sorted(statuses.items())),
        )
    return summaries


def late_entries(path: Path, extras: ScenarioExtras, config: ScenarioConfig) -> int:
    """Write the late entries to ``path``; return how many commands (all to be accepted).

    Needs at least three households in ``extras.people``; writes nothing otherwise.
    """
    day = max(config.start.toordinal(), config.end.toordinal() - 45)
    people = [p for p in extras.people if p[4] <= day]
    if len(people) < _PLANTED:
        path.write_text("", encoding="utf-8")
        return 0

    def command(n: int, verb: str, ref: str, on: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"late-{n:04d}",
            "command": verb,
            "ref": ref,
            "on": on,
            "actor": "operator.dinsos.02",
            **fields,
        }

    first, second, third = people[0], people[1], people[2]
    when = dt.date.fromordinal(day).isoformat()
    allocated = dt.date.fromordinal(day + 10).isoformat()
    paid = dt.date.fromordinal(day + 3).isoformat()
    commands = [
        # The head of an existing family registered again under a new family card.
        command(
            1,
            "register_household",
            "KT-HH-900001",
            when,
            region=first[3],
            members=3,
            family_card=first[2][:12] + "9001",
            head_nik=first[1],
            head_name="Rahmat Hidayat",
            note="usulan baru dari desa",
        ),
        # A second family on an existing family card.
        command(
            2,
            "register_household",
            "KT-HH-900002",
            when,
            region=second[3],
            members=2,
            family_card=second[2],
            head_nik=second[1][:12] + "9002",
            head_name="Siti Aminah",
        ),
        # A head of a household registered as a veteran too.
        command(
            3,
            "register_veteran",
            "KT-VET-9001",
            when,
            region=third[3],
            nik=third[1],
            name="Sudarmo",
        ),
        command(4, "assess", "KT-HH-900001", when, desil=2),
        command(
            5,
            "allocate",
            "KT-HH-900001",
            allocated,
            programme="PKH",
            amount=750_000,
            period=allocated[:7],
            reference="PKH/LATE/KT-HH-900001",
        ),
        # Paid a week before the allocation it draws on: a negative balance for a week.
        command(
            6,
            "disburse",
            "KT-HH-900001",
            paid,
            programme="PKH",
            amount=750_000,
            reference="PKH/LATE/KT-HH-900001/BAYAR-1",
            channel="cash",
        ),
        # A visit recorded, then the close of the case dated before it.
        command(
            7,
            "follow_up",
            "KT-HH-900002",
            dt.date.fromordinal(day + 5).isoformat(),
            outcome="visited",
        ),
        command(
            8,
            "close",
            "KT-HH-900002",
            dt.date.fromordinal(day + 2).isoformat(),
            reason="duplicate",
            note="keluarga yang sama dengan KK lama",
        ),
    ]
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(json.dumps(c, ensure_ascii=False) + "\n" for c in commands)
    return len(commands)
