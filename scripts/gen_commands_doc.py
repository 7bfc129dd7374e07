"""Write docs/commands.md, the command reference, from the code's own command definitions.

Run it after adding or changing a command, a field, a limit or an error code::

    python scripts/gen_commands_doc.py          # rewrite docs/commands.md
    python scripts/gen_commands_doc.py --check  # exit 1 if the file is out of date

Commands and their fields come from :func:`dinsos_ledger.commands.definitions` (the tables the
parser checks lines with), field meanings from ``commands.FIELD_DOCS``, the error codes in
the order they are checked from ``errors.CODES`` with each error class's docstring, and the
subjects a command applies to from the application's dispatch table. A new command appears
here as soon as it is in those tables. ``tests/docs/test_commands_doc.py`` fails when the
committed file differs from what this script writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "commands.md"

# The subject a creating command brings into being (the others act on existing subjects,
# listed in the application's dispatch table).
_CREATES = {
    "register_household": "a new household",
    "register_veteran": "a new veteran",
    "plan_cohort": "a new training cohort",
    "enrol": "a new enrolment (of an existing household in an existing cohort)",
    "define_programme": "a new programme",
}

_COMMON = {
    "id": "ktm-0101",
    "ref": "KT-HH-000101",
    "on": "2025-03-05",
    "actor": "petugas.sangatta",
}

# One realistic line per command. A command without one here gets a line built from its
# field types, so a newly added command is never missing from the reference.
EXAMPLES: dict[str, dict[str, Any]] = {
    "register_household": {
        "region": "64.08.04.2001",
        "members": 4,
        "family_card": "6408040101250001",
        "head_nik": "6408041203820001",
        "head_name": "Rahmat Hidayat",
    },
    "register_veteran": {
        "ref": "KT-VET-0007",
        "region": "64.08.09.2003",
        "nik": "6408090507450001",
        "name": "Abdul Karim",
    },
    "plan_cohort": {
        "ref": "KT-COH-2025-01",
        "region": "64.08.04.2001",
        "programme": "PELATIHAN",
        "capacity": 25,
        "starts": "2025-04-01",
        "ends": "2025-05-31",
    },
    "assess": {"desil": 2},
    "allocate": {
        "programme": "PKH",
        "amount": 750000,
        "period": "2025-03",
        "reference": "PKH/2025-Q1/KT-HH-000101",
    },
    "disburse": {
        "programme": "PKH",
        "amount": 750000,
        "reference": "PKH/2025-Q1/KT-HH-000101/BAYAR-1",
        "channel": "bank",
    },
    "reverse": {
        "reference": "PKH/2025-Q1/KT-HH-000101/BAYAR-1",
        "reason": "rekening pasif, dana kembali",
    },
    "confirm": {
        "reference": "PKH/2025-Q1/KT-HH-000101/BAYAR-1",
        "amount": 750000,
        "channel_ref": "BRI-20250307-000123",
    },
    "follow_up": {"outcome": "visited", "note": "kunjungan rumah"},
    "enrol": {
        "ref": "KT-ENR-000101",
        "cohort": "KT-COH-2025-01",
        "household": "KT-HH-000101",
        "on": "2025-03-20",
    },
    "attend": {"ref": "KT-ENR-000101", "on": "2025-04-02"},
    "complete": {"ref": "KT-ENR-000101", "on": "2025-05-31"},
    "withdraw": {"ref": "KT-ENR-000101", "on": "2025-04-15", "reason": "pindah kerja"},
    "close": {"reason": "moved"},
    "forget": {"reason": "permintaan penghapusan data"},
    "define_programme": {
        "ref": "PKH",
        "name": "Program Keluarga Harapan",
        "recipients": ["household"],
        "desil_limit": 4,
    },
    "amend_programme": {"ref": "PKH", "desil_limit": 3},
}


def _synthesised(schema: dict[str, Any]) -> Any:
    """A value that satisfies a field's schema, for commands without a written example."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if schema.get("format") == "date":
        return "2025-03-05"
    return "X" * max(1, int(schema.get("minLength", 1)))


def example(name: str) -> dict[str, Any]:
    """The example line of command ``name``, fields in the order of its definition."""
    from dinsos_ledger.commands import definitions

    [definition] = [d for d in definitions() if d.name == name]
    given = {**_COMMON, **EXAMPLES.get(name, {})}
    line: dict[str, Any] = {}
    for field in definition.fields:
        if field.name == "command":
            line["command"] = name
        elif field.name in given:
            line[field.name] = given[field.name]
        elif field.required:
            line[field.name] = _synthesised(field.schema)
    return line


def _cell(text: str) -> str:
    # Docstrings quote code reST-style (``x``); Markdown wants `x`.
    return text.replace("``", "`").replace("|", "\\|").replace("\n", " ")


def _field_row(field: Any) -> str:
    required = "yes" if field.required else "no"
    return f"| `{field.name}` | {_cell(field.text)} | {required} | {_cell(field.description)} |"


def _applies_to() -> dict[str, str]:
    from dinsos_ledger.application import _APPLIES

    return {name: ", ".join(k.kind.value for k in kinds) for name, kinds in _APPLIES.items()}


def _error_texts() -> dict[str, str]:
    from dinsos_ledger.errors import LedgerError

    found: dict[str, str] = {}
    pending: list[type[LedgerError]] = [LedgerError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        doc = " ".join((cls.__doc__ or "").split())
        doc = doc.removeprefix("Raised when ").rstrip(".")
        found.setdefault(cls.code, doc[:1].upper() + doc[1:])
    return found


HEADER = """\
# The command format

<!-- Generated by scripts/gen_commands_doc.py from the code's command definitions;
     do not edit by hand. -->

Everything the ledger records arrives as a **command**: one JSON object on one line of a
command file. This page is the reference for integrators (a village office's form, a
payment channel's export, a script): every command with its fields, types and limits, an
example line, the rules the ledger checks and the error code each gives, the format of a
reject line, and how sending the same line twice is handled. The same definitions are
published as JSON Schema (draft 2020-12) by

```console
$ dinsos-ledger schema > dinsos-ledger-command.schema.json
```

so a form can check a line before sending it (see [JSON Schema](#json-schema) below).

## The file

- JSON Lines: UTF-8, one command (a JSON object) per line; blank lines are ignored. A
  byte-order mark at the start of the file is ignored; a line longer than 1 MiB is
  refused without being read.
- A field not listed for the command is an error (`invalid`), as is a key given twice.
- Amounts are whole rupiah: JSON integers from 1 to 1,000,000,000,000 (`750000`, never
  `750000.0` or `"750000"`).
- Dates are `YYYY-MM-DD` and must exist in the calendar (`2025-02-30` is refused).
- Commands are applied in file order, and files in the order given to `dinsos-ledger import`.
  Valid lines are recorded even when others are refused.

## Fields every command has

| field | type | required | meaning |
|---|---|---|---|
"""

REJECTS = """\
## Reject lines

`dinsos-ledger import FILE --rejects OUT` appends one JSON object per refused line to OUT:

```json
{"file": "kantor.jsonl", "line": 5, "id": "ktm-0005", "code": "invalid", \
"message": "'on' must be a date that exists in the calendar (got \\"2025-02-30\\")"}
```

| key | meaning |
|---|---|
| `file` | the input file as given on the command line (`-` for standard input) |
| `line` | the line number, counting from 1, blank lines included |
| `id` | the line's `id`, or `null` when it has none (or it is not a string) |
| `code` | the error code (above) |
| `message` | what is wrong and where, in English; it never repeats personal data |

Without `--rejects` the same is printed on standard error as `file:line: code: message`.
`--retry-file OUT` writes each refused line **unchanged** to OUT, so it can be corrected
and imported again; unlike the reject lines it holds personal data, as the input does, so
keep it where the input is kept and delete it once it has been imported.

`--json` prints the counts on standard output: `{"accepted": 1520, "duplicates": 3,
"rejected": 2}`. The exit status is 0 when nothing was refused and 1 when something was.

## Idempotency: sending a line again

The `id` is the idempotency key. A command whose `id` is that of an accepted command with
an identical body (the same fields and values, in any key order) is a **duplicate**: it is
skipped and counted, not an error, so importing the same file twice records nothing twice
and an interrupted import can simply be run again. The same `id` with another body is
refused (`id_conflict`). A refused command leaves no trace but its reject line: its `id`
may be sent again later, corrected, and is then accepted like a new one.

## JSON Schema

`dinsos-ledger schema` prints the JSON Schema (draft 2020-12) of one command line: a `oneOf`
with one branch per command, selected by the value of `command`, each listing its fields
with their types, patterns and limits and refusing unknown fields. It is generated from
the same definitions as this page. It checks the shape of a line only; the rules of the
table above, and three things JSON Schema cannot express, are checked on import: that a
date exists in the calendar (the schema checks the `YYYY-MM-DD` shape; the `format:
date` annotation is not enforced by every validator), that `ends` is not before `starts`,
and that an amount is written without a fraction (JSON Schema treats `1.0` as the
integer `1`; the ledger refuses it).
"""


def render() -> str:
    """The reference as Markdown."""
    from dinsos_ledger.commands import definitions
    from dinsos_ledger.errors import CODES

    defs = definitions()
    applies = _applies_to()
    parts = [HEADER.rstrip("\n")]
    common = {"command", "id", "ref", "on", "actor", "note"}
    parts.extend(_field_row(field) for field in defs[0].fields if field.name in common)
    parts += ["", "## Commands", "", "| command | applies to | does |", "|---|---|---|"]
    for d in defs:
        target = applies.get(d.name) or _CREATES.get(d.name, "—")
        parts.append(f"| [`{d.name}`](#{d.name}) | {_cell(target)} | {_cell(d.summary)} |")
    for d in defs:
        target = applies.get(d.name) or _CREATES.get(d.name, "—")
        parts += ["", f"### `{d.name}`", "", f"{d.summary} Applies to: {target}.", ""]
        extra = [f for f in d.fields if f.name not in common]
        if extra:
            parts += ["| field | type | required | meaning |", "|---|---|---|---|"]
            parts.extend(_field_row(f) for f in extra)
        else:
            parts.append("No fields beyond the common ones.")
        if d.rule:
            parts += ["", d.rule]
        parts += ["", "```json", json.dumps(example(d.name), ensure_ascii=False), "```"]
    texts = _error_texts()
    parts += [
        "",
        "## Rules and error codes",
        "",
        "For one command the checks run in this order; the first that fails gives the code",
        "of its reject line. Nothing of a refused command is recorded.",
        "",
        "| # | code | when |",
        "|---|---|---|",
    ]
    for number, code in enumerate(CODES, 1):
        parts.append(f"| {number} | `{code}` | {_cell(texts.get(code, ''))} |")
    parts += ["", REJECTS.rstrip("\n")]
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    """Write the reference, or with ``--check`` report whether it is current (exit 1 if not)."""
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(
                f"{OUTPUT.relative_to(ROOT)} is out of date: run {Path(__file__).name}",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
