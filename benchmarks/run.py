"""Benchmark dinsos-ledger against a bare eventsourcing application, in the same run.

Each figure is a ratio against the nearest equivalent work done by a bare ``eventsourcing``
application in the same process, plus the absolute numbers (the machines are noisy; ratios
measured side by side mean more than times alone)::

    python benchmarks/run.py                 # the full run (several minutes)
    python benchmarks/run.py --quick         # a small smoke run (CI keeps it working)
    python benchmarks/run.py --postgres postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/run.py --write docs/performance-results.md

It prints a table; ``--write`` also writes it as Markdown. Nothing here asserts a speed:
the targets are compared and shown as met or not.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gc
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

from eventsourcing.application import Application, Repository
from eventsourcing.domain import Aggregate, event

from dinsos_ledger import audit
from dinsos_ledger.application import Ledger
from dinsos_ledger.importer import import_files
from dinsos_ledger.scenario import ScenarioConfig, write_scenario

AS_OF = dt.date(2026, 10, 31)


# ----------------------------------------------------------------- the bare baseline


class Thing(Aggregate):
    """A bare aggregate with events of about the size of the ledger's."""

    # The arguments are the event's fields, stored whether or not the applier keeps them.
    @event("Registered")
    def __init__(self, ref: str, on: str, actor: str, region: str) -> None:  # noqa: ARG002
        self.ref = ref

    @event("Noted")
    def note(
        self,
        on: str,  # noqa: ARG002
        actor: str,  # noqa: ARG002
        amount: int,
        reference: str,  # noqa: ARG002
        programme: str,  # noqa: ARG002
    ) -> None:
        """Record an event of about the size of an allocation."""
        self.amount = amount


class Bare(Application):
    """A bare eventsourcing application."""


def bare_env(target: str) -> dict[str, str]:
    """The eventsourcing environment of a bare application on the same kind of store."""
    if target.startswith("postgresql://"):
        from urllib.parse import urlsplit

        parts = urlsplit(target)
        schema = f"bare_{uuid.uuid4().hex[:10]}"
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": parts.username or "postgres",
            "POSTGRES_PASSWORD": parts.password or "",
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        }
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": target}


def bare_append(target: str, events: int) -> float:
    """Seconds a bare application takes to append ``events`` events, 100 per save()."""
    env = bare_env(target)
    if env.get("POSTGRES_SCHEMA"):
        _create_schema(target, env["POSTGRES_SCHEMA"])
    app = Bare(env=env)
    started = time.perf_counter()
    pending: list[Thing] = []
    in_pending = 0
    count = 0
    while count < events:
        thing = Thing(ref=f"R{count}", on="2025-01-01", actor="petugas.01", region="64.08.01.2001")
        count += 1
        in_pending += 1
        for i in range(20):  # many aggregates of about 20 events each
            if count >= events:
                break
            thing.note(
                on="2025-01-02",
                actor="petugas.01",
                amount=200_000,
                reference=f"R-{i}",
                programme="BPNT",
            )
            count += 1
            in_pending += 1
        pending.append(thing)
        if in_pending >= 100:
            app.save(*pending)
            pending, in_pending = [], 0
    if pending:
        app.save(*pending)
    elapsed = time.perf_counter() - started
    app.close()
    if env.get("POSTGRES_SCHEMA"):
        _drop_schema(target, env["POSTGRES_SCHEMA"])
    return elapsed


def bare_select_and_decode(ledger: Ledger) -> tuple[float, int]:
    """Seconds to select every stored event page by page and decode it; and the count."""
    recorder, mapper = ledger.recorder, ledger.app.mapper
    started = time.perf_counter()
    count, after = 0, 0
    while True:
        page = recorder.select_notifications(after, 1000, inclusive_of_start=False)
        if not page:
            break
        for notification in page:
            mapper.to_domain_event(notification)
        count += len(page)
        after = page[-1].id
    return time.perf_counter() - started, count


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


def _create_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url.split("?", maxsplit=1)[0], autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url.split("?", maxsplit=1)[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


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
        _drop_schema(pg_url, schema)


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
                str(workdir / f"bare-{uuid.uuid4().hex[:6]}.sqlite") if kind == "sqlite" else target
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
        households = 200 if quick else 4_000
        rounds = 1 if quick else 3
        bench_import(table, "sqlite", households, workdir, None, rounds)
        if args.postgres:
            bench_import(table, "postgres", households, workdir, args.postgres, rounds)
        small, _ = bench_queries(table, workdir, 1_000 if quick else 10_000, 10)
        bench_rebuild_and_verify(table, small, "sqlite", rounds)
        bench_long_subject(table, workdir, 1_000 if quick else 10_000)
        if not quick:
            large, growth = bench_queries(table, workdir, 100_000, 10, steps=5)
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
