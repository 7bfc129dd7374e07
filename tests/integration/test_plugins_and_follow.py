"""Projections as plugins (entry points, ``module:Class``) and ``follow`` on both backends.

The plugin is the one the analysts' guide builds (its code is taken from
docs/analysts.md), installed the cheap way: a package folder and a ``.dist-info`` with
``entry_points.txt`` on the path, which is what ``pip install`` leaves behind. A second,
test-only projection (``applied_log``) logs every event it is given, without a key, so an
event applied twice would show as two rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.projections import registry
from dinsos_ledger.projections.follow import Follower, lock_key

from tests.docs.test_docs import python_blocks

ROOT = Path(__file__).resolve().parents[2]
FIELD_OFFICE = ROOT / "tests" / "data" / "field_office.jsonl"
CLI = [sys.executable, "-c", "from dinsos_ledger.cli import main; main()"]

PROBE = '''
"""Test-only projection: one row per event applied, no key (a repeat shows as two rows)."""

import os
import time
from typing import Any, ClassVar

from dinsos_ledger.projections.engine import Projection, Writer


class AppliedLog(Projection):
    name: ClassVar[str] = "applied_log"
    tables: ClassVar[tuple[str, ...]] = ("applied_log",)

    def create_tables(self, writer: Writer) -> None:
        writer.create_table("applied_log", {"position": "integer not null"})

    def handle(self, event: Any, position: int, writer: Writer) -> None:
        delay = float(os.environ.get("PROBE_DELAY", "0"))
        if delay:
            time.sleep(delay)
        writer.insert("applied_log", {"position": position})
'''


def tutorial_module() -> str:
    """The plugin module of the analysts' guide, as written there."""
    text = (ROOT / "docs" / "analysts.md").read_text(encoding="utf-8")
    (source,) = [s for _, s in python_blocks(text) if s.startswith('"""desa_report:')]
    return source


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder holding the tutorial's package, the probe and their installed metadata."""
    folder = tmp_path / "site"
    (folder / "desa_report").mkdir(parents=True)
    (folder / "desa_report" / "__init__.py").write_text(tutorial_module(), encoding="utf-8")
    (folder / "follow_probe.py").write_text(PROBE, encoding="utf-8")
    info = folder / "desa_report-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: desa-report\nVersion: 0.1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[dinsos_ledger.projections]\n"
        "desa_monthly = desa_report:DesaMonthly\n"
        "applied_log = follow_probe:AppliedLog\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plugin package importable and its entry points visible in this process."""
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    return site


def _cli(target: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--db", target, *args], catch_exceptions=False)


def _import(target: str, path: Path = FIELD_OFFICE) -> None:
    result = _cli(target, "import", str(path), "--json")
    assert result.exit_code in (0, 1), result.output


def _tables(ledger: Ledger, names: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    with ledger.projections.engine.reading() as reader:
        return {name: sorted(map(tuple, reader.all(f"SELECT * FROM {name}"))) for name in names}


TABLES = ("proj_subjects", "proj_money", "proj_contacts", "desa_monthly", "applied_log")


# ------------------------------------------------------------------- plugins


@pytest.mark.usefixtures("installed")
def test_an_installed_plugin_is_kept_rebuilt_and_queried_like_a_built_in(target: str) -> None:
    """Entry-point projections are registered, rebuilt by name by the CLI and answer queries."""
    _import(target)
    result = _cli(target, "rebuild", "desa_monthly", "--json")
    assert result.exit_code == 0, result.output
    assert '"rebuilt":["desa_monthly"]' in result.stdout
    with Ledger(target) as ledger:
        names = [p.name for p in ledger.projections.registered]
        assert names[:3] == ["subjects", "money", "contacts"]
        assert {"desa_monthly", "applied_log"} <= set(names)
        namespace: dict[str, Any] = {}
        exec(tutorial_module(), namespace)  # noqa: S102 - the guide's own code
        rows = ledger.projections.query(namespace["CUMULATIVE"])
        paid = ledger.projections.query(
            "SELECT CAST(SUM(amount) AS BIGINT) FROM proj_money "
            "WHERE entry = 'disbursement' AND reversed_on IS NULL"
        )
    assert rows
    by_desa: dict[str, int] = {}
    for desa, _month, amount, cumulative in rows:
        by_desa[desa] = by_desa.get(desa, 0) + amount
        assert cumulative == by_desa[desa]
    assert sum(by_desa.values()) == paid[0][0]


def test_a_projection_named_on_the_command_line_or_in_the_environment_is_kept(
    target: str, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--projection module:Class`` and ``$DINSOS_LEDGER_PROJECTIONS`` work without metadata."""
    plain = site.parent / "plain"
    plain.mkdir()
    (plain / "desa_report.py").write_text(tutorial_module(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(plain))
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    _import(target)
    result = _cli(target, "--projection", "desa_report:DesaMonthly", "rebuild", "desa_monthly")
    assert result.exit_code == 0, result.output
    assert "desa_monthly" in result.stdout
    assert _cli(target, "rebuild", "desa_monthly").exit_code == 2  # not known without it
    monkeypatch.setenv(registry.ENV_VAR, "desa_report:DesaMonthly")
    assert _cli(target, "rebuild", "desa_monthly").exit_code == 0


def test_a_plugin_that_takes_a_built_in_name_is_exit_2(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin named like a built-in projection is refused with a message, not a traceback."""
    (tmp_path / "clash.py").write_text(
        "from dinsos_ledger.projections.builtin import MoneyProjection\n"
        "class Money(MoneyProjection):\n    pass\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _import(target)
    monkeypatch.setenv(registry.ENV_VAR, "clash:Money")
    result = _cli(target, "rebuild")
    assert result.exit_code == 2
    assert "a projection named 'money' is already registered" in result.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module:Thing", "cannot import projection no_such_module:Thing (--projection)"),
        ("json:dumps", "json:dumps (--projection) must be a subclass of"),
        ("not a name", "must be named as module:Class"),
    ],
)
def test_a_broken_plugin_name_is_exit_2_with_a_message_naming_it(
    target: str, spec: str, message: str
) -> None:
    """A plugin that cannot be used stops the verb with exit 2 and no traceback."""
    _import(target)
    result = _cli(target, "--projection", spec, "balances")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


# -------------------------------------------------------------------- follow


def _env(site: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), **extra}
    env.pop(registry.ENV_VAR, None)
    return env


def _start(
    target: str, site: Path, tmp_path: Path, tag: str, **extra: str
) -> subprocess.Popen[bytes]:
    out = (tmp_path / f"{tag}.out").open("wb")
    err = (tmp_path / f"{tag}.err").open("wb")
    args = ["--db", target, "follow", "--interval", "0.1", "--page-size", "7"]
    return subprocess.Popen(
        [*CLI, *args, "--json", "--status-every", "0.2"],
        env=_env(site, **extra),
        stdout=out,
        stderr=err,
    )


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _status_line(out: Path) -> Callable[[], bool]:
    return lambda: out.exists() and '"position"' in out.read_text()


def _caught_up(ledger: Ledger) -> Callable[[], bool]:
    def check() -> bool:
        positions = ledger.projections.engine.positions()
        return min(positions.values()) == ledger.projections.engine.head() > 0

    return check


def _stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


@pytest.fixture
def followers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Follower processes started by a test, killed if the test leaves any running."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _commands(start: int, count: int) -> list[dict[str, Any]]:
    day = "2025-02-03"
    lines: list[dict[str, Any]] = []
    for n in range(start, start + count):
        ref = f"KT-HH-{9000 + n}"
        base = {"ref": ref, "on": day, "actor": "petugas"}
        lines += [
            {
                **base,
                "id": f"f-{n}-r",
                "command": "register_household",
                "region": f"64.08.0{n % 9 + 1}.2001",
                "members": 3,
                "family_card": f"64080101{n:08d}",
                "head_nik": f"64080202{n:08d}",
                "head_name": "Warga",
            },
            {**base, "id": f"f-{n}-a", "command": "assess", "desil": 2},
            {
                **base,
                "id": f"f-{n}-l",
                "command": "allocate",
                "programme": "PKH",
                "amount": 500_000,
                "period": "2025-02",
                "reference": f"AL-{n}",
            },
            {
                **base,
                "id": f"f-{n}-d",
                "command": "disburse",
                "programme": "PKH",
                "amount": 300_000,
                "reference": f"SP-{n}",
                "channel": "bank",
            },
        ]
    return lines


def _assert_exactly_once_and_equal_to_a_rebuild(target: str) -> None:
    with Ledger(target) as ledger:
        head = ledger.projections.engine.head()
        followed = _tables(ledger, TABLES)
        assert [row[0] for row in followed["applied_log"]] == list(range(1, head + 1))
        ledger.projections.rebuild()
        assert _tables(ledger, TABLES) == followed


def test_a_writer_and_two_followers_apply_every_event_exactly_once(
    target: str,
    installed: Path,
    tmp_path: Path,
    followers: list[subprocess.Popen[bytes]],
) -> None:
    """Events written while two followers run end in projections equal to a rebuild."""
    _import(target)
    followers += [
        _start(target, installed, tmp_path, "one"),
        _start(target, installed, tmp_path, "two"),
    ]
    for tag in ("one", "two"):  # both running (a status line), not just one caught up
        _wait(_status_line(tmp_path / f"{tag}.out"), f"follower {tag} to start")
    with Ledger(target) as ledger:
        _wait(_caught_up(ledger), "the followers to catch up")
        for start in range(0, 40, 4):
            outcomes = ledger.apply_batch(_commands(start, 4))
            assert all(o.accepted for o in outcomes), outcomes
            time.sleep(0.05)
        _wait(_caught_up(ledger), "the followers to apply the new events")
    assert [_stop(p) for p in followers] == [0, 0]
    _assert_exactly_once_and_equal_to_a_rebuild(target)
    statuses = (tmp_path / "one.out").read_text() + (tmp_path / "two.out").read_text()
    assert '"behind":0' in statuses


def test_a_follower_killed_mid_page_leaves_a_position_another_follower_continues_from(
    target: str,
    installed: Path,
    tmp_path: Path,
    followers: list[subprocess.Popen[bytes]],
) -> None:
    """SIGKILL during a slow page rolls it back; a second follower takes over and finishes."""
    _import(target)
    with Ledger(target) as ledger:
        assert all(o.accepted for o in ledger.apply_batch(_commands(0, 10)))
        slow = _start(target, installed, tmp_path, "slow", PROBE_DELAY="0.05")
        followers.append(slow)

        def started() -> bool:
            positions = ledger.projections.engine.positions()
            return positions.get("applied_log", 0) > 0

        _wait(started, "the slow follower to commit a page")
        time.sleep(0.15)  # well inside a page of 7 events at 0.05 s each
        slow.kill()
        slow.wait()
        positions = ledger.projections.engine.positions()
        with ledger.projections.engine.reading() as reader:
            logged = reader.all("SELECT COUNT(*) FROM applied_log")[0][0]
        assert logged == positions["applied_log"]  # the page in flight left nothing behind
        assert positions["applied_log"] < ledger.projections.engine.head()
        followers.append(_start(target, installed, tmp_path, "next"))
        _wait(_caught_up(ledger), "the second follower to take over")
    assert _stop(followers[-1]) == 0
    _assert_exactly_once_and_equal_to_a_rebuild(target)


def test_a_running_standby_takes_over_when_the_leader_is_killed(
    target: str,
    installed: Path,
    tmp_path: Path,
    followers: list[subprocess.Popen[bytes]],
) -> None:
    """Kill the leading follower: the other one (standing by on PostgreSQL) applies what follows."""
    import json

    _import(target)
    followers += [
        _start(target, installed, tmp_path, "a"),
        _start(target, installed, tmp_path, "b"),
    ]
    for tag in ("a", "b"):
        _wait(_status_line(tmp_path / f"{tag}.out"), f"follower {tag} to start")

    def leaders() -> list[int]:
        found = []
        for i, tag in enumerate(("a", "b")):
            lines = (tmp_path / f"{tag}.out").read_text().splitlines()
            if lines and json.loads(lines[-1])["leading"]:
                found.append(i)
        return found

    _wait(lambda: bool(leaders()), "a leader")
    leader = followers[leaders()[0]]
    other = followers[1 - leaders()[0]]
    leader.kill()
    leader.wait()
    with Ledger(target) as ledger:
        assert all(o.accepted for o in ledger.apply_batch(_commands(0, 5)))
        _wait(_caught_up(ledger), "the standby to take over")
    assert _stop(other) == 0
    _assert_exactly_once_and_equal_to_a_rebuild(target)


def test_sigterm_stops_a_follower_promptly_with_exit_0(
    target: str, site: Path, tmp_path: Path, followers: list[subprocess.Popen[bytes]]
) -> None:
    """A follower asked to stop finishes at once with exit 0 and a last status line."""
    _import(target)
    followers.append(_start(target, site, tmp_path, "term"))
    out = tmp_path / "term.out"
    _wait(lambda: out.exists() and '"behind":0' in out.read_text(), "a status line")
    began = time.monotonic()
    assert _stop(followers[0]) == 0
    assert time.monotonic() - began < 3
    assert "Traceback" not in (tmp_path / "term.err").read_text()


def test_a_new_event_wakes_a_postgres_follower_before_its_poll(target: str, backend: str) -> None:
    """eventsourcing's recorder notifies its channel on insert: the follower wakes at once."""
    if backend != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    _import(target)
    with Ledger(target) as ledger:
        follower = Follower(ledger.projections, interval=30.0)
        assert follower._lead()
        assert ledger.recorder.channel_name  # type: ignore[attr-defined]
        began = time.monotonic()
        ledger.apply_batch(_commands(0, 1))
        follower._wait(30.0)
        assert time.monotonic() - began < 5
        follower._close_session()


def test_lock_keys_differ_by_schema_and_projection() -> None:
    """Followers of different ledgers (schemas) or projections never share a lock."""
    keys = {lock_key(s, n) for s in ("a", "b") for n in ("money", "contacts")}
    assert len(keys) == 4
    assert all(-(2**63) <= k < 2**63 for k in keys)


def test_the_guide_s_plugin_module_stands_alone() -> None:
    """The tutorial's module imports nothing from the guide's other examples."""
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(tutorial_module()), namespace)  # noqa: S102 - the guide's own code
    assert namespace["DesaMonthly"].name == "desa_monthly"


def test_a_follower_rides_out_a_storage_error_and_catches_up(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page failing with a storage error is reported and retried; the follower goes on."""
    from dinsos_ledger.errors import StorageError

    assert all(o.accepted for o in ledger.apply_batch(_commands(0, 3)))
    engine = ledger.projections.engine
    original = engine.step
    errors: list[str] = []
    calls = {"n": 0}

    def flaky(names: Any = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StorageError("the server closed the connection")
        result = original(names)
        if not result.applied:
            follower.stop()
        return result

    monkeypatch.setattr(engine, "step", flaky)
    follower = Follower(
        ledger.projections, interval=0.05, on_error=lambda e: errors.append(e.message)
    )
    status = follower.run()
    assert errors == ["the server closed the connection"]
    assert status.behind == 0
    assert status.applied == engine.head()


def test_an_engine_on_a_scratch_connection_rebuilds_a_copy_and_leaves_the_ledger_alone(
    ledger: Ledger, tmp_path: Path
) -> None:
    """A private copy (temporary tables on PostgreSQL, a file on SQLite) equals the stored one."""
    from dinsos_ledger.projections.engine import ProjectionEngine

    assert all(o.accepted for o in ledger.apply_batch(_commands(0, 3)))
    engine = ledger.projections.engine
    engine.catch_up()
    before = _tables(ledger, ("proj_subjects", "proj_money", "proj_tracking"))
    copy = ProjectionEngine(
        ledger,
        [p for p in engine.projections if p.name in ("money", "contacts")],
        connection=engine.connection.scratch(str(tmp_path)),
    )
    try:
        assert copy.catch_up() == engine.head()
        with copy.reading() as reader:
            for table in ("proj_subjects", "proj_money"):
                assert sorted(map(tuple, reader.all(f"SELECT * FROM {table}"))) == before[table]
    finally:
        copy.close()
    assert _tables(ledger, ("proj_subjects", "proj_money", "proj_tracking")) == before


def test_a_catch_up_inside_an_open_read_gets_a_connection_of_its_own(ledger: Ledger) -> None:
    """A query made while a streamed read is open is answered, and its writes are kept."""
    assert all(o.accepted for o in ledger.apply_batch(_commands(0, 2)))
    projections = ledger.projections
    projections.catch_up()
    timelines = projections.iter_continuity()
    try:
        first = next(timelines)  # the read transaction stays open
        assert all(o.accepted for o in ledger.apply_batch(_commands(2, 1)))
        assert projections.catch_up() == 4
        assert [t.ref for t, _ in timelines] == ["KT-HH-9001"]  # the old snapshot, unchanged
        assert first[0].ref == "KT-HH-9000"
    finally:
        timelines.close()  # an open read would hold its locks past the test
    assert len(projections.balances()) == 3
