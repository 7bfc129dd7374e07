"""The demo: a realistic Kutai Timur ledger built from scratch in a folder, with its report.

:func:`run_demo` generates the scenario of :mod:`dinsos_ledger.scenario` (ending today, so the
continuity timelines are current), imports it into a new SQLite ledger through
:func:`~dinsos_ledger.importer.import_files` exactly as ``dinsos-ledger import`` would, checks
that the ledger refused precisely the scenario's intentional mistakes, and writes the HTML
report. The command file is the same for the same seed, size and end date, so two demos run
on the same day with the same options hold the same events. The banks' and the post
office's statements of the scenario's payments (:mod:`dinsos_ledger.statements`) are then
reconciled as ``dinsos-ledger reconcile`` would, after a few late entries an auditor must
look at, so the report has findings and a reconciliation to show.

The folder holds only what the demo made (:data:`DEMO_FILES`) and a marker file. A folder
that is not empty and has no marker is never touched; in a folder with the marker, a new
demo removes the files of the previous one and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from pathlib import Path
from typing import Final

import attrs

from dinsos_ledger.application import Ledger
from dinsos_ledger.i18n import messages
from dinsos_ledger.importer import ImportReport, Reject, import_files
from dinsos_ledger.progress import Progress
from dinsos_ledger.reconcile import reconcile_statement
from dinsos_ledger.report import REPORT_FILE, write_report
from dinsos_ledger.scenario import ScenarioConfig, ScenarioExtras, ScenarioSummary, generate
from dinsos_ledger.statements import (
    LATE_ENTRIES_FILE,
    STATEMENT_FILES,
    StatementSummary,
    late_entries,
    write_statements,
)

__all__ = [
    "DEFAULT_DIR",
    "DEMO_FILES",
    "LEDGER_FILE",
    "MARKER_FILE",
    "REJECTS_FILE",
    "REPORT_DIR",
    "SCENARIO_FILE",
    "DemoDirectoryError",
    "DemoResult",
    "compare_rejects",
    "demo_config",
    "prepare_directory",
    "run_demo",
]

#: Where ``dinsos-ledger demo`` works unless told otherwise.
DEFAULT_DIR: Final = "demo"
#: The command file the demo generates (JSON Lines, the command format).
SCENARIO_FILE: Final = "scenario.jsonl"
#: The demo's ledger (SQLite); its master key is beside it in ``LEDGER_FILE.key``.
LEDGER_FILE: Final = "dinsos-ledger.sqlite"
#: The refused lines of the import, as ``dinsos-ledger import --rejects`` writes them.
REJECTS_FILE: Final = "rejects.jsonl"
#: The folder of the HTML report.
REPORT_DIR: Final = "report"
#: Marks a folder as made by the demo, so that a later demo may clean it.
MARKER_FILE: Final = ".dinsos-ledger-demo"
#: Every file the demo makes, relative to its folder; a new demo removes these and only these.
DEMO_FILES: Final = (
    MARKER_FILE,
    SCENARIO_FILE,
    LEDGER_FILE,
    f"{LEDGER_FILE}.key",
    f"{LEDGER_FILE}-journal",
    f"{LEDGER_FILE}-wal",
    f"{LEDGER_FILE}-shm",
    REJECTS_FILE,
    f"{REPORT_DIR}/{REPORT_FILE}",
    f"{REPORT_DIR}/{REPORT_FILE}.tmp",
    LATE_ENTRIES_FILE,
    *STATEMENT_FILES.values(),
)

# The default scenario's proportions (600 households : 40 veterans : 12 cohorts : 4 erasures)
# are kept when the number of households changes.
_DEFAULT: Final = ScenarioConfig()


class DemoDirectoryError(ValueError):
    """Raised when the demo's folder holds files the demo did not make."""


@attrs.frozen
class DemoResult:
    """What a demo made and how the import went."""

    directory: Path
    config: ScenarioConfig
    expected: ScenarioSummary
    """What the scenario generator wrote, including every intentional mistake."""
    imported: ImportReport
    mismatches: tuple[str, ...]
    """Differences between the expected and the actual rejects (empty when they match)."""
    seconds: float
    statements: dict[str, StatementSummary] = attrs.field(factory=dict)
    """What each channel's statement holds, its intentional mistakes included."""
    reconciled: dict[str, ImportReport] = attrs.field(factory=dict)
    """How each statement's rows went (as ``reconcile --json`` counts them)."""

    @property
    def scenario(self) -> Path:
        """The generated command file."""
        return self.directory / SCENARIO_FILE

    @property
    def ledger(self) -> Path:
        """The SQLite ledger."""
        return self.directory / LEDGER_FILE

    @property
    def rejects(self) -> Path:
        """The reject lines of the import."""
        return self.directory / REJECTS_FILE

    @property
    def report(self) -> Path:
        """The report's HTML page."""
        return self.directory / REPORT_DIR / REPORT_FILE

    @property
    def rejects_match(self) -> bool:
        """True when the ledger refused exactly the scenario's intentional mistakes."""
        return not self.mismatches

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary: paths, counts and whether the rejects were the expected ones."""
        return {
            "dir": str(self.directory),
            "scenario": str(self.scenario),
            "ledger": str(self.ledger),
            "rejects": str(self.rejects),
            "report": str(self.report),
            "seed": self.config.seed,
            "households": self.config.households,
            "start": self.config.start.isoformat(),
            "end": self.config.end.isoformat(),
            "lines": self.expected.lines,
            **self.imported.to_json(),
            "expected_rejects": len(self.expected.expected_rejects),
            "reconciled": {
                channel: report.to_json() for channel, report in self.reconciled.items()
            },
            "rejects_match": self.rejects_match,
            "seconds": round(self.seconds, 1),
        }


def demo_config(
    *, households: int | None = None, seed: int | None = None, end: dt.date | None = None
) -> ScenarioConfig:
    """The demo's scenario: the default one, ending ``end`` (default today), resized if asked.

    With ``households`` the numbers of veterans, cohorts and erasures keep the default
    scenario's proportions (at least one of each when there are households at all).
    """
    end = end or dt.date.today()
    start = min(_DEFAULT.start, end)
    config = attrs.evolve(_DEFAULT, start=start, end=end)
    if seed is not None:
        config = attrs.evolve(config, seed=seed)
    if households is not None and households != _DEFAULT.households:

        def share(default: int) -> int:
            if households == 0:
                return 0
            return max(1, math.ceil(default * households / _DEFAULT.households))

        config = attrs.evolve(
            config,
            households=households,
            veterans=share(_DEFAULT.veterans),
            cohorts=share(_DEFAULT.cohorts),
            erasures=min(households, share(_DEFAULT.erasures)),
        )
    return config


def prepare_directory(directory: Path) -> None:
    """Make ``directory`` ready for a demo: create it, or clean a previous demo's files.

    Raises :class:`DemoDirectoryError` when it is a file, or a folder that is not empty and
    was not made by the demo; nothing is deleted then.
    """
    if directory.exists() and not directory.is_dir():
        msg = f"{directory} must be a folder for the demo (got a file)"
        raise DemoDirectoryError(msg)
    if directory.is_dir() and any(directory.iterdir()):
        if not (directory / MARKER_FILE).is_file():
            msg = (
                f"{directory} is not empty and was not made by the demo: "
                "choose another --dir or empty it"
            )
            raise DemoDirectoryError(msg)
        for name in DEMO_FILES:
            (directory / name).unlink(missing_ok=True)
        report = directory / REPORT_DIR
        if report.is_dir() and not any(report.iterdir()):
            report.rmdir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER_FILE).write_text(
        "This folder was made by `dinsos-ledger demo`; the next demo may replace its files.\n",
        encoding="utf-8",
    )


def compare_rejects(summary: ScenarioSummary, rejects: list[Reject]) -> tuple[str, ...]:
    """Differences between the scenario's intentional mistakes and the ledger's rejects.

    Each is ``"line N: expected CODE, got CODE"`` (``accepted`` for a line with no reject).
    """
    expected = {r.line: r.code for r in summary.expected_rejects}
    actual = {r.line: r.code for r in rejects}
    return tuple(
        f"line {line}: expected {expected.get(line, 'accepted')}, "
        f"got {actual.get(line, 'accepted')}"
        for line in sorted(expected.keys() | actual.keys())
        if expected.get(line) != actual.get(line)
    )


def _compare_counts(summary: ScenarioSummary, imported: ImportReport) -> tuple[str, ...]:
    expected = {"accepted": summary.accepted, "duplicates": len(summary.expected_duplicates)}
    actual = {"accepted": imported.accepted, "duplicates": imported.duplicates}
    return tuple(
        f"{what}: expected {expected[what]}, got {actual[what]}"
        for what in expected
        if expected[what] != actual[what]
    )


def run_demo(
    directory: str | Path = DEFAULT_DIR,
    *,
    households: int | None = None,
    seed: int | None = None,
    end: dt.date | None = None,
    progress: Progress | None = None,
    lang: str | None = None,
) -> DemoResult:
    """Build the demo in ``directory``: scenario, ledger, rejects and report.

    ``progress`` shows each stage (generate, import, projections, report); ``lang`` is the
    report's language (default Indonesian). Raises
    :class:`DemoDirectoryError` when the folder may not be used.
    """
    started = time.monotonic()
    m = messages(lang)
    folder = Path(directory)
    config = demo_config(households=households, seed=seed, end=end)
    prepare_directory(folder)
    bars = progress or Progress(quiet=True)

    extras = ScenarioExtras()
    with (
        bars.stage(m("Generating commands")) as stage,
        (folder / SCENARIO_FILE).open("w", encoding="utf-8", newline="\n") as out,
    ):
        summary = generate(config, out, stage.update, extras=extras)
    late = late_entries(folder / LATE_ENTRIES_FILE, extras, config)
    statements = write_statements(folder, extras, config)
    late_rejects: list[Reject] = []
    statement_rejects: dict[str, list[Reject]] = {channel: [] for channel in STATEMENT_FILES}
    reconciled: dict[str, ImportReport] = {}

    rejects: list[Reject] = []
    with (folder / REJECTS_FILE).open("w", encoding="utf-8") as rejects_out:

        def on_reject(reject: Reject) -> None:
            rejects.append(reject)
            rejects_out.write(json.dumps(reject.to_json(), ensure_ascii=False) + "\n")

        with Ledger(str(folder / LEDGER_FILE)) as ledger:
            with bars.stage(m("Importing"), total=summary.lines) as stage:
                imported = import_files(
                    ledger, [folder / SCENARIO_FILE], on_reject=on_reject, progress=stage.advance
                )
            with bars.stage(m("Reconciling statements")):
                late_report = import_files(
                    ledger, [folder / LATE_ENTRIES_FILE], on_reject=late_rejects.append
                )
                for channel, name in STATEMENT_FILES.items():
                    reconciled[channel] = reconcile_statement(
                        ledger,
                        folder / name,
                        channel=channel,
                        actor="rekonsiliasi.dinsos",
                        on_reject=statement_rejects[channel].append,
                    )
            with bars.stage(m("Building projections")) as stage:
                ledger.projections.catch_up(stage.update)
            with bars.stage(m("Writing the report")):
                write_report(ledger, folder / REPORT_DIR, as_of=config.end, lang=lang)

    return DemoResult(
        directory=folder,
        config=config,
        expected=summary,
        imported=imported,
        mismatches=(
            compare_rejects(summary, rejects)
            + _compare_counts(summary, imported)
            + _compare_extras(late, late_report, late_rejects)
            + _compare_statements(statements, reconciled, statement_rejects)
        ),
        seconds=time.monotonic() - started,
        statements=statements,
        reconciled=reconciled,
    )


def _compare_extras(expected: int, report: ImportReport, rejects: list[Reject]) -> tuple[str, ...]:
    """The late entries must all be accepted: they are findings, not mistakes."""
    if report.accepted == expected and not rejects:
        return ()
    found = [f"{LATE_ENTRIES_FILE} line {r.line}: {r.code}" for r in rejects]
    return (f"{LATE_ENTRIES_FILE}: expected {expected} accepted, got {report.accepted}", *found)


def _compare_statements(
    expected: dict[str, StatementSummary],
    reconciled: dict[str, ImportReport],
    rejects: dict[str, list[Reject]],
) -> tuple[str, ...]:
    """Differences between each statement's intentional mistakes and the actual rejects."""
    out: list[str] = []
    for channel, summary in expected.items():
        wanted = {r.line: r.code for r in summary.expected_rejects}
        got = {r.line: r.code for r in rejects[channel]}
        name = STATEMENT_FILES[channel]
        out.extend(
            f"{name} line {line}: expected {wanted.get(line, 'accepted')}, "
            f"got {got.get(line, 'accepted')}"
            for line in sorted(wanted.keys() | got.keys())
            if wanted.get(line) != got.get(line)
        )
        report = reconciled[channel]
        if (report.accepted, report.duplicates) != (summary.accepted, summary.expected_duplicates):
            out.append(
                f"{name}: expected {summary.accepted} accepted and "
                f"{summary.expected_duplicates} duplicates, got {report.accepted} and "
                f"{report.duplicates}"
            )
    return tuple(out)
