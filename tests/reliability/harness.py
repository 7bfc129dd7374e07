"""What the reliability tests share: child processes, ledger state, stable command files.

The reliability tests run the real command line in child processes (so that a process can
be killed, can race another one, or can lose its database connection) and then compare
what the ledger recorded with what one clean, uninterrupted import records.

``ledger_state(target, refs)``
    Everything a user or auditor can observe of a ledger, as plain data: ``show`` of every
    ref, each subject's events (version, type, command id, business date), the accepted
    command ids, balances and continuity from the projections, and the integrity check.
``stable_scenario(path, households=...)``
    A generated command file whose rejected lines stay rejected whatever is recorded after
    them, so that any interleaving of the same file, and any crash and re-run, must end in
    the state of one clean import (see :data:`STATE_DEPENDENT_CODES`).
``cli(...)``, ``start_cli(...)``, ``stop(process)``
    The ``dinsos-ledger`` command line in a child process; ``stop`` kills it and its
    children and is meant for ``finally`` blocks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from dinsos_ledger.application import Ledger
from dinsos_ledger.errors import UnknownSubject
from dinsos_ledger.scenario import ScenarioConfig, ScenarioSummary, write_scenario

__all__ = [
    "AS_OF_DATES",
    "CLI",
    "STATE_DEPENDENT_CODES",
    "Run",
    "cli",
    "command_ids",
    "diff_states",
    "event_count",
    "finish",
    "import_here",
    "import_in_batches",
    "ledger_state",
    "non_blank_lines",
    "read_rejects",
    "recorded_command_count",
    "refs_in",
    "running",
    "scenario",
    "stable_scenario",
    "start_cli",
    "start_script",
    "stop",
    "wait_for",
]

#: The command line as a child process runs it (``python -m dinsos_ledger`` is not offered).
CLI: Final = (sys.executable, "-c", "from dinsos_ledger.cli import main; main()")

#: Business dates at which balances and continuity are compared: mid-way through the
#: generated scenarios, and after their end.
AS_OF_DATES: Final = (dt.date(2025, 6, 30), dt.date(2026, 12, 31))

#: Reject codes whose line may be accepted when it is read again against a later state
#: (the command format: "the same id may be sent again later and may then be accepted, if what
#: it needed has been recorded since"). A re-run after a crash, or a second process
#: reading the same file, reads earlier lines again, so a file holding such lines need not
#: end in the state of one clean import. Every other code is final: a subject stays
#: registered, closed, of its kind and registered on its date; a reference stays used; a
#: reversal stays reversed; cohort dates never change; an accepted id stays taken.
STATE_DEPENDENT_CODES: Final = frozenset(
    {
        "unknown_subject",
        "not_closed",
        "not_eligible",
        "insufficient_allocation",
        "unknown_reference",
        "cohort_full",
        "already_enrolled",
    }
)

_REF: Final = re.compile(r"[A-Z0-9][A-Z0-9-]{1,63}")
_TIMEOUT: Final = 300


# ------------------------------------------------------------------ child processes


def cli(
    target: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = _TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``dinsos-ledger --db TARGET ARGS…`` to completion and return what it did."""
    return subprocess.run(
        [*CLI, "--db", target, *args],
        capture_output=True,
        text=True,
        env=_child_env(env),
        timeout=timeout,
        check=False,
    )


def start_cli(
    target: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
) -> subprocess.Popen[str]:
    """Start ``dinsos-ledger --db TARGET ARGS…`` in its own process group; see :func:`stop`."""
    return subprocess.Popen(
        [*CLI, "--db", target, *args],
        stdout=stdout,
        stderr=stderr,
        text=True,
        env=_child_env(env),
        start_new_session=True,
    )


def start_script(
    script: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start a helper script of this folder with the test interpreter; see :func:`stop`."""
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(env),
        start_new_session=True,
    )


def stop(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` and its process group if still running, and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=30)
    except (subprocess.TimeoutExpired, ValueError):
        process.kill()
        process.wait(timeout=30)


@contextmanager
def running(processes: list[subprocess.Popen[str]]) -> Iterator[list[subprocess.Popen[str]]]:
    """Yield ``processes`` (a list the body may extend); kill whatever still runs on exit."""
    try:
        yield processes
    finally:
        for process in processes:
            stop(process)


def _child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    # A child must never pick up a ledger other than the one named by --db.
    env.pop("DINSOS_LEDGER_DB", None)
    env.update(extra or {})
    return env


class Run:
    """The outcome of one ``import --json`` child process."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def counts(self) -> dict[str, int]:
        """``{"accepted", "duplicates", "rejected"}`` as printed by ``--json``."""
        data: dict[str, int] = json.loads(self.stdout.strip().splitlines()[-1])
        return data

    def describe(self) -> str:
        """Exit status and output, for assertion messages."""
        return (
            f"exit {self.returncode}\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-4000:]}"
        )


def finish(process: subprocess.Popen[str], timeout: float = _TIMEOUT) -> Run:
    """Wait for ``process`` and return its :class:`Run` (kill it if it overruns)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(process)
        raise
    return Run(process.returncode, out or "", err or "")


# ------------------------------------------------------------------------ files


def non_blank_lines(path: Path) -> list[tuple[int, bytes]]:
    """``(line number, bytes)`` of every non-blank line, numbered from 1 as the CLI contract counts."""
    found = []
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if raw.strip(b" \t\r\n"):
                found.append((number, raw))
    return found


def refs_in(path: Path) -> list[str]:
    """Every well-formed ref a command file names (``ref``, ``cohort``, ``household``)."""
    refs: set[str] = set()
    for _, raw in non_blank_lines(path):
        try:
            command = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(command, dict):
            continue
        for key in ("ref", "cohort", "household"):
            value = command.get(key)
            if isinstance(value, str) and _REF.fullmatch(value):
                refs.add(value)
    return sorted(refs)


def read_rejects(path: Path) -> list[dict[str, Any]]:
    """The reject lines an import wrote with ``--rejects`` (none if the file is missing).

    A process killed while writing may leave its last line unfinished: that line is not a
    report and is left out.
    """
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line]


def stable_scenario(
    path: Path, *, households: int, veterans: int = 4, cohorts: int = 2, seed: int = 2025
) -> ScenarioSummary:
    """Write a generated scenario without the lines whose reject code is state-dependent.

    Dropping a rejected line changes nothing that is recorded (the command format: rejected commands
    leave no trace), so the file still tells the same story, mistakes of the other kinds
    included. Returns the summary of the generated file before lines were dropped.
    """
    config = ScenarioConfig(
        seed=seed, households=households, veterans=veterans, cohorts=cohorts, erasures=2
    )
    full = path.with_suffix(".full.jsonl")
    summary = write_scenario(config, full)
    drop = {r.line for r in summary.expected_rejects if r.code in STATE_DEPENDENT_CODES}
    with full.open("rb") as source, path.open("wb") as out:
        for number, raw in enumerate(source, start=1):
            if number not in drop:
                out.write(raw)
    return summary


def scenario(
    path: Path, *, households: int, veterans: int = 4, cohorts: int = 2
) -> ScenarioSummary:
    """Write a generated scenario as is, mistakes of every kind included."""
    config = ScenarioConfig(households=households, veterans=veterans, cohorts=cohorts, erasures=2)
    return write_scenario(config, path)


# ------------------------------------------------------------------ ledger state


def command_ids(ledger: Ledger) -> list[str]:
    """The ids of every accepted command, sorted (read from the ``dinsos_commands`` table)."""
    recorder: Any = ledger.recorder
    if ledger.target.is_postgres:
        from psycopg.sql import SQL, Identifier

        query = SQL("SELECT id FROM {0}.{1}").format(
            Identifier(recorder.datastore.schema), Identifier("dinsos_commands")
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query)
            return sorted(row["id"] for row in curs.fetchall())
    with recorder.datastore.transaction(commit=False) as c:
        c.execute("SELECT id FROM dinsos_commands")
        return sorted(row[0] for row in c.fetchall())


def recorded_command_count(target: str) -> int:
    """How many commands the ledger at ``target`` has recorded, read without opening it.

    Used while another process writes: it creates nothing, and a ledger whose tables do not
    exist yet has recorded 0 commands.
    """
    if target.startswith("postgresql://"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        url, _, query = target.partition("?")
        schema = query.partition("schema=")[2] or "public"
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                row = conn.execute(
                    SQL("SELECT count(*) FROM {0}.{1}").format(
                        Identifier(schema), Identifier("dinsos_commands")
                    )
                ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0
    import sqlite3

    if not Path(target).exists():
        return 0
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT count(*) FROM dinsos_commands").fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()
    return int(row[0]) if row else 0


def event_count(ledger: Ledger) -> int:
    """How many events the ledger has stored."""
    return sum(1 for _ in ledger.recorder.iter_rows())  # type: ignore[attr-defined]


def ledger_state(target: str, refs: Iterable[str]) -> dict[str, Any]:
    """Everything observable of the ledger at ``target`` about ``refs``, as plain data.

    The recorded timestamps and the sealed personal data differ between two ledgers that
    hold the same story, so events are compared by version, type, command id and business
    date, and personal data through ``show`` (opened).
    """
    from dinsos_ledger import audit

    with Ledger(target) as ledger:
        shows: dict[str, Any] = {}
        events: dict[str, Any] = {}
        for ref in refs:
            try:
                shows[ref] = ledger.show(ref)
                events[ref] = [
                    (e.originator_version, type(e).__qualname__, e.command_id, e.on.isoformat())
                    for e in ledger.events_of(ref)
                ]
            except UnknownSubject:
                continue
        projections = ledger.projections
        balances = {
            str(day): [row.to_json() for row in projections.balances(day)]
            for day in (None, *AS_OF_DATES)
        }
        continuity = {
            str(day): [t.to_json() for t in projections.continuity(day)] for day in AS_OF_DATES
        }
        report = audit.verify(ledger)
        return {
            "shows": shows,
            "events": events,
            "commands": command_ids(ledger),
            "event_count": event_count(ledger),
            "balances": balances,
            "continuity": continuity,
            "verify": (report.ok, report.events),
        }


def diff_states(left: Mapping[str, Any], right: Mapping[str, Any]) -> str:
    """A short description of where two :func:`ledger_state` results differ ('' if equal)."""
    lines = []
    for key in left:
        if left[key] == right.get(key):
            continue
        a, b = left[key], right.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys = sorted(set(a) | set(b))
            bad = [k for k in keys if a.get(k) != b.get(k)]
            shown = bad[0] if bad else None
            lines.append(
                f"{key}: {len(bad)} entries differ, first {shown!r}:\n"
                f"  {a.get(shown)!r}\n  {b.get(shown)!r}"
            )
        elif isinstance(a, list) and isinstance(b, list):
            only_a = sorted(set(map(str, a)) - set(map(str, b)))[:5]
            only_b = sorted(set(map(str, b)) - set(map(str, a)))[:5]
            lines.append(f"{key}: {len(a)} vs {len(b)}; only left {only_a}; only right {only_b}")
        else:
            lines.append(f"{key}: {a!r} vs {b!r}")
    return "\n".join(lines)


def import_in_batches(
    target: str, path: Path, batch_size: int
) -> tuple[list[set[str]], list[tuple[int, str | None, str]]]:
    """Import ``path`` cleanly in batches of ``batch_size``, as the importer batches it.

    Returns the accepted command ids after each batch (cumulative, starting with the empty
    set before the first) and every reject as ``(line, id, code)``.
    """
    from dinsos_ledger.importer import import_files

    cumulative: list[set[str]] = [set()]
    rejects: list[tuple[int, str | None, str]] = []
    with Ledger(target) as ledger:
        real = ledger.apply_prepared  # what the importer applies each batch through

        def counting(commands: Sequence[Any]) -> Any:
            outcomes = real(commands)
            accepted = {o.id for o in outcomes if o.accepted}
            cumulative.append(cumulative[-1] | {i for i in accepted if i is not None})
            return outcomes

        ledger.apply_prepared = counting  # type: ignore[method-assign]
        import_files(
            ledger,
            [path],
            on_reject=lambda r: rejects.append((r.line, r.id, r.code)),
            batch_size=batch_size,
        )
    return cumulative, rejects


def import_here(target: str, path: Path, batch_size: int = 500) -> list[tuple[int, str]]:
    """Import ``path`` in this process (as the ``import`` verb does); return the rejects.

    For reference ledgers and set-up, where a child process would only cost start-up time.
    """
    from dinsos_ledger.importer import import_files

    rejects: list[tuple[int, str]] = []
    with Ledger(target) as ledger:
        import_files(
            ledger,
            [path],
            on_reject=lambda r: rejects.append((r.line, r.code)),
            batch_size=batch_size,
        )
        ledger.projections.catch_up()
    return rejects


def wait_for(predicate: Any, timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
