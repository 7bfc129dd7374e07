"""Benchmark dinsos-ledger against a bare eventsourcing application, in the same run.

Each figure is a ratio against the nearest equivalent work done by bare ``eventsourcing`` in
the same run, plus the absolute numbers (the machines are noisy; ratios measured side by side
mean more than times alone). Two kinds of figure:

- **whole processes** (rows ``process: …``), as users meet them, start-up included:
  ``dinsos-ledger import``, ``rebuild``, ``verify`` and ``balances --json`` against bare
  processes (``benchmarks/bare.py``) doing the equivalent work, on two scenario shapes (many
  subjects with short histories, few with long ones), on SQLite and on PostgreSQL, with
  wall and CPU time and the child's peak memory; plus the district's import rate;
- **in one process**: the ledger's API against a bare application in the same process.

::

    python benchmarks/run.py                 # the full run (several minutes)
    python benchmarks/run.py --quick         # a small smoke run (CI keeps it working)
    python benchmarks/run.py --postgres postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/run.py --processes-only --rounds 1 --catch-up-events 500000
    python benchmarks/run.py --write docs/performance-results.md

It prints a table; ``--write`` also writes it as Markdown. Nothing here asserts a speed:
the targets are compared and shown as met or not.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
from eventsourcing.application import Repository

from dinsos_ledger import audit
from dinsos_ledger.application import Ledger
from dinsos_ledger.importer import import_files
from dinsos_ledger.scenario import ScenarioConfig, write_scenario

sys.path.insert(0, str(Path(__file__).parent))
from bare import bare_append, drop_schema, select_and_decode

AS_OF = dt.date(2026, 10, 31)


# ----------------------------------------------------------------- the bare baseline


def bare_select_and_decode(ledger: Ledger) -> tuple[float, int]:
    """Seconds to select every stored event page by page and decode it; and the count."""
    return select_and_decode(ledger.recorder, ledger.app.mapper)


def bare_select(ledger: Ledger) -> tuple[float, int]:
    """Seconds to select every stored event page by page (no decoding); and the count."""
    recorder = ledger.recorder
    started = time.perf_counter()
    count, after = 0, 0
    while True:
        page = recorder.select_notifications(after, 1000, inclusive_of_start=False)
        if not page:
            break
        count += len(page)
        after = page[-1].id
    return time.perf_counter() - started, count


# ------------------------------------------------------------------------- helpers


@contextmanager
def ledger_target(kind: str, workdir: Path, pg_url: str | None) -> Iterator[str]:
    """A fresh ledger target of ``kind`` (sqlite or postgres), removed afterwards."""
    if kind == "sqlite":
        path = workdir / f"ledger-{uuid.uuid4().hex[:8]}.sqlite"
        yield str(path)
        return
    assert pg_url is not None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    os.environ.setdefault("DINSOS_LEDGER_KEY", base64.b64encode(os.urandom(32)).decode())
    try:
        yield f"{pg_url.split('?')[0]}?schema={schema}"
    finally:
        drop_schema(pg_url, schema)


def synthetic_commands(
    households: int, events_each: int, first: int = 0
) -> Iterator[dict[str, Any]]:
    """Commands for ``households`` households with about ``events_each`` events each."""
    start = dt.date(2025, 1, 1)
    for h in range(first, first + households):
        ref = f"BH-{h:07d}"
        kk = f"6408{(h % 18) + 1:02d}{h % 1_000_000:010d}"[:16]
        yield {
            "id": f"{ref}-r",
            "command": "register_household",
            "ref": ref,
            "on": start.isoformat(),
            "actor": "petugas.01",
            "region": f"64.08.{(h % 18) + 1:02d}.{2001 + h % 7}",
            "members": 4,
            "family_card": kk,
            "head_nik": kk,
            "head_name": f"Kepala {h}",
        }
        yield {
            "id": f"{ref}-a",
            "command": "assess",
            "ref": ref,
            "on": start.isoformat(),
            "actor": "petugas.01",
            "desil": 1 + h % 6,
        }
        for e in range(events_each - 2):
            on = (start + dt.timedelta(days=7 * (e + 1) + h % 5)).isoformat()
            if h % 6 < 4 and e % 3 == 0:
                yield {
                    "id": f"{ref}-{e}",
                    "command": "allocate",
                    "ref": ref,
                    "on": on,
                    "actor": "petugas.01",
                    "programme": "BPNT",
                    "amount": 200_000,
                    "period": on[:7],
                    "reference": f"A-{e}",
                }
            else:
                yield {
                    "id": f"{ref}-{e}",
                    "command": "follow_up",
                    "ref": ref,
                    "on": on,
                    "actor": "petugas.01",
                    "outcome": "visited",
                }


def apply_all(ledger: Ledger, commands: Iterator[dict[str, Any]], size: int = 500) -> int:
    """Apply ``commands`` in batches of ``size``; return how many were accepted."""
    accepted, batch = 0, []
    for command in commands:
        batch.append(command)
        if len(batch) == size:
            accepted += sum(o.accepted for o in ledger.apply_batch(batch))
            batch = []
    if batch:
        accepted += sum(o.accepted for o in ledger.apply_batch(batch))
    return accepted


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``func()`` and its result."""
    gc.collect()
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


# --------------------------------------------------------------------- measurements


class Table:
    """Rows of the result table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, what: str, ours: str, bare: str, ratio: str, target: str) -> None:
        """Add a row and print it."""
        self.rows.append((what, ours, bare, ratio, target))
        print(f"  {what:<46} {ours:>18} {bare:>18} {ratio:>8}  {target}", flush=True)

    def markdown(self) -> str:
        """The table as Markdown."""
        lines = [
            "| measurement | dinsos-ledger | bare eventsourcing | ratio | target |",
            "|---|---:|---:|---:|---|",
        ]
        lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in self.rows]
        return "\n".join(lines)


def verdict(ok: bool, text: str) -> str:
    """Whether a target was met, and which."""
    return f"{'met' if ok else 'NOT met'}: {text}"


def bench_import(
    table: Table, kind: str, households: int, workdir: Path, pg: str | None, rounds: int
) -> None:
    """Import throughput against a bare batched append, alternating, best of ``rounds``."""
    commands = workdir / f"scenario-{households}.jsonl"
    if not commands.exists():
        write_scenario(
            ScenarioConfig(households=households, veterans=max(10, households // 50)), commands
        )
    ours: list[float] = []
    bare: list[float] = []
    accepted = 0
    for _ in range(rounds):
        with ledger_target(kind, workdir, pg) as target, Ledger(target) as ledger:
            seconds, report = timed(
                lambda ledger=ledger: import_files(ledger, [commands], on_reject=lambda _: None)
            )
            accepted = report.accepted
            ours.append(accepted / seconds)
            bare_target = (
                str(workdir / f"bare-{uuid.uuid4().hex[:6]}.sqlite")
                if kind == "sqlite"
                else target.split("?")[0]  # a fresh schema of its own, dropped afterwards
            )
            bare.append(accepted / bare_append(bare_target, accepted))
    ratio = max(ours) / max(bare)
    table.add(
        f"import, {kind} ({accepted:,} accepted)",
        f"{max(ours):,.0f} cmd/s",
        f"{max(bare):,.0f} ev/s",
        f"{ratio:.2f}",
        verdict(ratio >= 0.5, "≥ 0.5×"),
    )


def bench_rebuild_and_verify(table: Table, ledger: Ledger, label: str, rounds: int) -> None:
    """Rebuild and verify rates against bare select(-and-decode), alternating, best of."""
    rebuild, decode, verify, select = [], [], [], []
    count = 0
    for _ in range(rounds):
        seconds, _ = timed(ledger.projections.rebuild)
        bare_seconds, count = bare_select_and_decode(ledger)
        rebuild.append(count / seconds)
        decode.append(count / bare_seconds)
        # The chain walk against a bare select; the projection check that `verify` adds
        # costs about a rebuild, measured in the row above.
        seconds, report = timed(lambda: audit.verify(ledger, projections=False))
        assert report.ok, report
        bare_seconds, count = bare_select(ledger)
        verify.append(count / seconds)
        select.append(count / bare_seconds)
    ratio = max(rebuild) / max(decode)
    table.add(
        f"rebuild ({label}, {count:,} events)",
        f"{max(rebuild):,.0f} ev/s",
        f"{max(decode):,.0f} ev/s",
        f"{ratio:.2f}",
        verdict(ratio >= 0.4, "≥ 0.4× select-and-decode"),
    )
    ratio = max(verify) / max(select)
    table.add(
        f"verify ({label}, {count:,} events)",
        f"{max(verify):,.0f} ev/s",
        f"{max(select):,.0f} ev/s",
        f"{ratio:.2f}",
        verdict(ratio >= 0.4, "≥ 0.4× select"),
    )


def bench_long_subject(table: Table, workdir: Path, events: int) -> None:
    """Loading one subject with a long history (from its snapshot) against a full replay."""
    target = str(workdir / "long.sqlite")
    with Ledger(target) as ledger:
        ledger.register_veteran(
            ref="VET-LONG",
            on="2000-01-01",
            actor="a",
            region="64.08.04.1010",
            nik="6408040101000001",
            name="Veteran",
        )
        ledger.assess(ref="VET-LONG", on="2000-01-01", actor="a", eligible=True)
        start = dt.date(2000, 1, 1)
        apply_all(
            ledger,
            (
                {
                    "id": f"long-{i}",
                    "command": "follow_up",
                    "ref": "VET-LONG",
                    "on": (start + dt.timedelta(days=i // 4)).isoformat(),
                    "actor": "a",
                    "outcome": "visited",
                }
                for i in range(events - 2)
            ),
        )
    with Ledger(target) as ledger:
        loads = []
        for _ in range(31):
            started = time.perf_counter()
            subject = ledger.get("VET-LONG")
            loads.append((time.perf_counter() - started) * 1000)
        assert subject.version == events
        ours = statistics.median(loads)
        bare_repo = Repository(event_store=ledger.app.events)  # no snapshots: replay
        bare_loads = []
        for _ in range(5):
            started = time.perf_counter()
            bare_repo.get(subject.id)
            bare_loads.append((time.perf_counter() - started) * 1000)
        bare = statistics.median(bare_loads)
    table.add(
        f"load a subject with {events:,} events (median)",
        f"{ours:.2f} ms",
        f"{bare:.1f} ms",
        f"{bare / ours:.0f}× faster",
        verdict(ours <= 2.0, "≤ 2 ms"),
    )


def bench_queries(
    table: Table, workdir: Path, subjects: int, events_each: int, steps: int = 1
) -> tuple[Ledger, list[tuple[int, float, float]]]:
    """A ledger of ``subjects`` households built in ``steps``; query it at the end.

    Returns the ledger and, per step, (events in the log, seconds per 1,000 commands
    imported in that step, seconds to rebuild the whole log).
    """
    target = str(workdir / f"q{subjects}.sqlite")
    ledger = Ledger(target)
    growth: list[tuple[int, float, float]] = []
    per_step = subjects // steps
    for step in range(steps):
        seconds, accepted = timed(
            lambda step=step: apply_all(
                ledger, synthetic_commands(per_step, events_each, first=step * per_step)
            )
        )
        ledger.projections.catch_up()
        rebuild_seconds = timed(ledger.projections.rebuild)[0] if steps > 1 else 0.0
        events = ledger.recorder.max_notification_id() or 0
        growth.append((events, 1000 * seconds / accepted, rebuild_seconds))
        print(
            f"    {events:,} events: {1000 * seconds / accepted:.3f} s per 1,000 commands, "
            f"rebuild {rebuild_seconds:.1f} s",
            flush=True,
        )
    bare_seconds, count = bare_select_and_decode(ledger)
    for name, query in (
        ("continuity", lambda: ledger.projections.continuity(AS_OF)),
        ("balances", lambda: ledger.projections.balances(AS_OF)),
    ):
        seconds, rows = timed(query)
        table.add(
            f"{name} for {subjects:,} subjects ({len(rows):,} rows)",
            f"{seconds:.2f} s",
            f"{bare_seconds:.2f} s",
            f"{bare_seconds / seconds:.1f}× faster",
            f"(bare: decode all {count:,} events)",
        )
    return ledger, growth


def plot_growth(growth: list[tuple[int, float, float]], path: Path) -> None:
    """Import cost per 1,000 commands and rebuild time against the size of the log (SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    events = [g[0] / 1e6 for g in growth]
    figure = Figure(figsize=(7, 3.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    left.plot(events, [g[1] for g in growth], marker="o")
    left.set(title="import: seconds per 1,000 commands", xlabel="events in the log (millions)")
    left.set_ylim(bottom=0)
    right.plot(events, [g[2] for g in growth], marker="o", color="tab:orange")
    right.set(title="rebuild of the whole log: seconds", xlabel="events in the log (millions)")
    right.set_ylim(bottom=0)
    figure.savefig(path, format="svg", metadata={"Date": None})


def _peak_memory(code: str, target: str) -> float:
    """Peak resident memory (MB) of a fresh process running ``code`` on ``target``."""
    code += "\nimport resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    out = subprocess.run(
        [sys.executable, "-c", code, target], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


_REBUILD = (
    "import sys\n"
    "from dinsos_ledger.application import Ledger\n"
    "with Ledger(sys.argv[1]) as ledger:\n"
    "    ledger.projections.rebuild()\n"
)
_BARE_DECODE = (
    "import sys\n"
    f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
    "from run import bare_select_and_decode\n"
    "from dinsos_ledger.application import Ledger\n"
    "with Ledger(sys.argv[1]) as ledger:\n"
    "    bare_select_and_decode(ledger)\n"
)


def bench_memory(table: Table, small: Ledger, large: Ledger) -> None:
    """Peak memory of a rebuild as the log grows tenfold, beside a bare select-and-decode."""
    small_events = small.recorder.max_notification_id()
    large_events = large.recorder.max_notification_id()
    small_mb = _peak_memory(_REBUILD, small.target.display)
    large_mb = _peak_memory(_REBUILD, large.target.display)
    bare_mb = _peak_memory(_BARE_DECODE, large.target.display)
    table.add(
        f"rebuild peak memory, {large_events:,} events",
        f"{large_mb:,.0f} MB",
        f"{bare_mb:,.0f} MB",
        f"{large_mb / bare_mb:.2f}",
        verdict(
            large_mb < 512 and large_mb < 1.25 * small_mb,
            f"< 512 MB and flat ({small_mb:,.0f} MB at {small_events:,} events)",
        ),
    )


def bench_district(table: Table, workdir: Path) -> None:
    """The district-sized scenario: import, rebuild and report."""
    from dinsos_ledger.scenario import DISTRICT

    path = workdir / "district.jsonl"
    _, summary = timed(lambda: write_scenario(DISTRICT, path))
    with Ledger(str(workdir / "district.sqlite")) as ledger:
        seconds_import, report = timed(
            lambda: import_files(ledger, [path], on_reject=lambda _: None)
        )
        seconds_rebuild, _ = timed(ledger.projections.rebuild)
        from dinsos_ledger.report import write_report

        seconds_report, _ = timed(lambda: write_report(ledger, workdir / "district-report"))
    table.add(
        f"district scenario ({summary.lines:,} lines)",
        f"import {seconds_import:,.0f} s",
        f"rebuild {seconds_rebuild:,.0f} s",
        f"report {seconds_report:,.0f} s",
        f"{report.accepted:,} accepted",
    )


# ------------------------------------------------------------------- whole processes

BENCH_DIR = Path(__file__).resolve().parent

#: What a bare process imports: the libraries the ledger is built on, nothing of its own.
BARE_IMPORTS = (
    "import eventsourcing.application, cryptography.hazmat.primitives.ciphers.aead, click, cattrs"
)


def shapes(quick: bool) -> dict[str, ScenarioConfig]:
    """Scenario shapes: many subjects with short histories; few with long ones."""
    if quick:
        return {
            "many subjects": ScenarioConfig(
                households=120, veterans=15, cohorts=3, end=dt.date(2025, 4, 30)
            ),
            "long histories": ScenarioConfig(
                households=10, veterans=3, cohorts=2, start=dt.date(2023, 1, 1)
            ),
        }
    return {
        # 6,000 households, 750 veterans and 100 cohorts over eight months: 68,585 lines.
        "many subjects": ScenarioConfig(
            households=6_000, veterans=750, cohorts=100, end=dt.date(2025, 8, 31)
        ),
        # 300 households, 60 veterans, 10 cohorts over ten years: about 41,000 lines, around
        # a hundred events a subject (a snapshot is taken every 100).
        "long histories": ScenarioConfig(
            households=300, veterans=60, cohorts=10, start=dt.date(2017, 1, 1)
        ),
    }


def district_shape(quick: bool, months: int = 3) -> ScenarioConfig:
    """The district's 120,000 households over its last months (the whole file takes ~20 min)."""
    from dinsos_ledger.scenario import DISTRICT

    if quick:
        return ScenarioConfig(households=1_500, veterans=10, cohorts=4, start=dt.date(2026, 9, 1))
    return attrs.evolve(DISTRICT, start=dt.date(2026, 11 - months, 1))


def child_env() -> dict[str, str]:
    """The environment of a measured process: as a user runs it, with compiled bytecode."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cli(*args: str) -> list[str]:
    """The argv of a ``dinsos-ledger`` command: the installed script, as users run it."""
    script = Path(sys.executable).with_name("dinsos-ledger")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "dinsos_ledger.cli"]
    return [*base, *args]


def bare(*args: str) -> list[str]:
    """The argv of a bare eventsourcing process (``benchmarks/bare.py``)."""
    return [sys.executable, str(BENCH_DIR / "bare.py"), *args]


class Run:
    """A finished process: wall and CPU seconds, peak resident memory (MB), stdout."""

    def __init__(self, wall: float, cpu: float, rss: float, out: str) -> None:
        self.wall = wall
        self.cpu = cpu
        self.rss = rss
        self.out = out


def run_process(argv: list[str], ok: tuple[int, ...] = (0,)) -> Run:
    """Run ``argv`` to completion and measure it.

    CPU time and memory are the child's own (``wait4``: user and system time, including the
    processes it waited for, such as the importer's reader; ``ru_maxrss``), not this
    process's. CPU time is what to compare when other work shares the machine (a database
    server's time is not in it).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=child_env())
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode not in ok:
            message = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {message}")
        cpu = usage.ru_utime + usage.ru_stime
        return Run(seconds, cpu, usage.ru_maxrss / 1024, out.read().decode())


def warm_bytecode() -> None:
    """Compile the package's bytecode once, as an installed package has it."""
    import compileall

    import dinsos_ledger

    compileall.compile_dir(Path(dinsos_ledger.__file__).parent, quiet=1)
    run_process([sys.executable, "-c", BARE_IMPORTS])


def scenario_file(workdir: Path, name: str, config: ScenarioConfig) -> tuple[Path, int]:
    """The scenario file of a shape (written once per run) and its number of lines."""
    path = workdir / f"{name.replace(' ', '-')}.jsonl"
    if not path.exists():
        write_scenario(config, path)
    with path.open("rb") as f:
        return path, sum(1 for _ in f)


@contextmanager
def bare_target(kind: str, workdir: Path, pg: str | None) -> Iterator[str]:
    """A fresh store for the bare processes, removed afterwards."""
    if kind == "sqlite":
        yield str(workdir / f"bare-{uuid.uuid4().hex[:8]}.sqlite")
        return
    assert pg is not None
    schema = f"bare_{uuid.uuid4().hex[:10]}"
    try:
        yield f"{pg.split('?')[0]}?schema={schema}"
    finally:
        drop_schema(pg, schema)


def _events_in(target: str) -> int:
    with Ledger(target) as ledger:
        return ledger.recorder.max_notification_id() or 0


def _best(runs: list[Run]) -> Run:
    """The fastest of the rounds (by wall time), as the in-process figures keep the best."""
    return min(runs, key=lambda r: r.wall)


def _times(run: Run, events: int, unit: str = "ev/s") -> str:
    return f"{run.wall:,.1f} s ({run.cpu:,.1f} s CPU), {events / run.wall:,.0f} {unit}"


def _ratio(bare: Run, ours: Run) -> str:
    return f"{bare.wall / ours.wall:.2f} (CPU {bare.cpu / ours.cpu:.2f})"


def bench_processes(
    table: Table,
    kind: str,
    shape: str,
    config: ScenarioConfig,
    workdir: Path,
    pg: str | None,
    rounds: int,
    *,
    verify: bool = True,
) -> float:
    """Whole ``import``, ``rebuild`` and ``verify`` processes against bare processes.

    Returns the import rate (accepted commands a second, start-up included).
    """
    path, lines = scenario_file(workdir, shape, config)
    imports: list[Run] = []
    rebuilds: list[Run] = []
    verifies: list[Run] = []
    appends: list[Run] = []
    decodes: list[Run] = []
    accepted = events = 0
    for _ in range(rounds):
        with ledger_target(kind, workdir, pg) as target, bare_target(kind, workdir, pg) as base:
            run = run_process(cli("--db", target, "-q", "import", str(path), "--json"), ok=(0, 1))
            imports.append(run)
            accepted = json.loads(run.out)["accepted"]
            events = _events_in(target)
            appends.append(run_process(bare("append", base, str(events))))
            rebuilds.append(run_process(cli("--db", target, "-q", "rebuild", "--json")))
            if verify:
                verifies.append(run_process(cli("--db", target, "-q", "verify", "--json")))
            decodes.append(run_process(bare("decode", base)))
    label = f"{kind}, {shape}"
    ours, base_run = _best(imports), _best(appends)
    table.add(
        f"process: import, {label} ({lines:,} lines, {events:,} events)",
        _times(ours, accepted, "cmd/s"),
        _times(base_run, events),
        _ratio(base_run, ours),
        verdict(
            base_run.wall / ours.wall >= 0.7,
            f"≥ 0.7× bare append (peak {max(r.rss for r in imports):,.0f} MB)",
        ),
    )
    decode = _best(decodes)
    for name, runs, target_ratio in (("rebuild", rebuilds, 0.6), ("verify", verifies, 0.3)):
        if not runs:
            continue
        ours = _best(runs)
        table.add(
            f"process: {name}, {label}",
            _times(ours, events),
            _times(decode, events),
            _ratio(decode, ours),
            verdict(
                decode.wall / ours.wall >= target_ratio,
                f"≥ {target_ratio}× bare select-and-decode",
            ),
        )
    return accepted / _best(imports).wall


def bench_startup(table: Table, kind: str, workdir: Path, pg: str | None, rounds: int) -> None:
    """A read verb (``balances --json``) on a small ledger against a bare import-only process."""
    config = ScenarioConfig(
        households=3, veterans=1, cohorts=1, erasures=0, end=dt.date(2025, 3, 31)
    )
    path, _ = scenario_file(workdir, "startup", config)
    with ledger_target(kind, workdir, pg) as target:
        run_process(cli("--db", target, "-q", "import", str(path)), ok=(0, 1))
        events = _events_in(target)
        ours: list[Run] = []
        bare_runs: list[Run] = []
        for _ in range(rounds):
            ours.append(run_process(cli("--db", target, "balances", "--json")))
            bare_runs.append(run_process([sys.executable, "-c", BARE_IMPORTS]))
    best, base = _best(ours), _best(bare_runs)
    ratio = best.wall / base.wall
    table.add(
        f"process: balances --json, {kind}, {events} events",
        f"{1000 * best.wall:,.0f} ms ({1000 * best.cpu:,.0f} ms CPU)",
        f"{1000 * base.wall:,.0f} ms ({1000 * base.cpu:,.0f} ms CPU)",
        f"{ratio:.2f} (CPU {best.cpu / base.cpu:.2f})",
        verdict(ratio <= 1.5, "≤ 1.5× a bare import-only process"),
    )


def bench_catch_up(table: Table, ledger: Ledger, first: int, commands: int = 1_000) -> None:
    """Incremental catch-up of every projection after ``commands`` more commands.

    Against applying them: the ledger validating and recording the same commands.
    """
    ledger.projections.catch_up()
    events = ledger.recorder.max_notification_id() or 0
    households = commands // 10
    apply_s, accepted = timed(
        lambda: apply_all(ledger, synthetic_commands(households, 10, first=first))
    )
    catch_up_s, _ = timed(ledger.projections.catch_up)
    ratio = catch_up_s / apply_s
    new_events = (ledger.recorder.max_notification_id() or 0) - events
    table.add(
        f"catch-up after {accepted:,} commands into {events:,} events",
        f"{catch_up_s:.2f} s, {new_events / catch_up_s:,.0f} ev/s",
        f"apply {apply_s:.2f} s",
        f"{ratio:.2f}",
        verdict(ratio <= 1.0, "≤ 1× applying the commands"),
    )


def bench_district_rate(
    table: Table, workdir: Path, quick: bool, small_rate: float, months: int = 3
) -> None:
    """The district shape's import rate (a whole process) against the small file's, and RSS."""
    config = district_shape(quick, months)
    path, lines = scenario_file(workdir, "district", config)
    with ledger_target("sqlite", workdir, None) as target:
        run = run_process(cli("--db", target, "-q", "import", str(path), "--json"), ok=(0, 1))
    accepted = json.loads(run.out)["accepted"]
    rate = accepted / run.wall
    ratio = rate / small_rate
    table.add(
        f"process: district import, {config.households:,} households ({lines:,} lines)",
        f"{run.wall:,.0f} s ({run.cpu:,.0f} s CPU), {rate:,.0f} cmd/s, peak {run.rss:,.0f} MB",
        f"small file {small_rate:,.0f} cmd/s",
        f"{ratio:.2f}",
        verdict(ratio >= 0.8 and run.rss < 1024, "≥ 0.8× the small-file rate, < 1 GB"),
    )


def bench_all_processes(
    table: Table,
    kinds: list[str],
    workdir: Path,
    pg: str | None,
    quick: bool,
    rounds: int | None = None,
    args: argparse.Namespace | None = None,
) -> None:
    """Every whole-process measurement: each shape on each backend, start-up, the district."""
    warm_bytecode()
    rounds = rounds or (1 if quick else 2)
    wanted_shapes = (args.shapes if args else "many,long").split(",")
    wanted_kinds = (args.kinds if args else "sqlite,postgres").split(",")
    small_rate = args.small_rate if args else 0.0
    for shape, config in shapes(quick).items():
        if shape.split()[0] not in wanted_shapes:
            continue
        for kind in kinds:
            if kind not in wanted_kinds:
                continue
            rate = bench_processes(
                table,
                kind,
                shape,
                config,
                workdir,
                pg,
                rounds,
                verify=not getattr(args, "no_verify", False),
            )
            if kind == "sqlite" and shape == "many subjects":
                small_rate = rate
    for kind in kinds:
        bench_startup(table, kind, workdir, pg, 3 if quick else 7)
    months = args.district_months if args else 3
    if months and small_rate:
        bench_district_rate(table, workdir, quick, small_rate, months)


def main() -> None:
    """Run the benchmarks and print (and optionally write and plot) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--postgres", metavar="URL", default=os.environ.get("DINSOS_LEDGER_TEST_POSTGRES")
    )
    parser.add_argument(
        "--district", action="store_true", help="also the 120,000-household scenario"
    )
    parser.add_argument(
        "--district-only", action="store_true", help="only the 120,000-household scenario"
    )
    parser.add_argument(
        "--processes-only",
        action="store_true",
        help="only the whole-process measurements (and the catch-up)",
    )
    parser.add_argument(
        "--no-processes", action="store_true", help="only the in-process measurements"
    )
    parser.add_argument(
        "--shapes", default="many,long", help="whole-process shapes to run: many, long or both"
    )
    parser.add_argument(
        "--kinds", default="sqlite,postgres", help="backends for the whole-process shapes"
    )
    parser.add_argument(
        "--district-months", type=int, default=3, help="months of the district (0: none)"
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the verify processes")
    parser.add_argument(
        "--small-rate",
        type=float,
        default=0.0,
        help="the many-subject file's SQLite import rate, when this run does not measure it",
    )
    parser.add_argument(
        "--rounds", type=int, metavar="N", help="rounds of each whole-process measurement"
    )
    parser.add_argument(
        "--catch-up-events",
        type=int,
        metavar="N",
        help="with --processes-only: the size of the ledger caught up (default 1,000,000)",
    )
    parser.add_argument(
        "--write", metavar="FILE", type=Path, help="also write the table as Markdown"
    )
    parser.add_argument(
        "--plot", metavar="SVG", type=Path, help="plot cost against log size (full run)"
    )
    args = parser.parse_args()
    quick = args.quick
    table = Table()
    cpu = platform.processor() or platform.machine()
    print(
        f"dinsos-ledger benchmark on {platform.node()} ({cpu}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()})",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.district_only:
            bench_district(table, workdir)
            _write(args, table, quick)
            return
        if not args.no_processes:
            kinds = ["sqlite", "postgres"] if args.postgres else ["sqlite"]
            bench_all_processes(table, kinds, workdir, args.postgres, quick, args.rounds, args)
        if args.processes_only:
            with Ledger(str(workdir / "catch-up.sqlite")) as ledger:
                subjects = (args.catch_up_events or (10_000 if quick else 1_000_000)) // 10
                apply_all(ledger, synthetic_commands(subjects, 10))
                bench_catch_up(table, ledger, first=subjects)
            _write(args, table, quick)
            return
        households = 200 if quick else 4_000
        rounds = 1 if quick else 3
        bench_import(table, "sqlite", households, workdir, None, rounds)
        if args.postgres:
            bench_import(table, "postgres", households, workdir, args.postgres, rounds)
        small, _ = bench_queries(table, workdir, 1_000 if quick else 10_000, 10)
        bench_rebuild_and_verify(table, small, "sqlite", rounds)
        bench_long_subject(table, workdir, 1_000 if quick else 10_000)
        if quick:
            bench_catch_up(table, small, first=1_000)
        else:
            large, growth = bench_queries(table, workdir, 100_000, 10, steps=5)
            bench_catch_up(table, large, first=100_000)
            bench_rebuild_and_verify(table, large, "sqlite", rounds)
            bench_memory(table, small, large)
            large.disconnect()
            if args.plot:
                plot_growth(growth, args.plot)
        small.disconnect()
        if args.district:
            bench_district(table, workdir)
    _write(args, table, quick)


def _write(args: argparse.Namespace, table: Table, quick: bool) -> None:
    if args.write:
        args.write.write_text(
            f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{'quick' if quick else 'full'} run.\n\n{table.markdown()}\n"
        )


if __name__ == "__main__":
    main()
