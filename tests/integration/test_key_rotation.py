"""``rotate-key``: every wrapped key under a new master key, all or nothing (both backends).

Afterwards the new key opens everything and the old one is refused like any wrong key;
re-importing an old file answers exactly as before; no event, chain link or command digest
changes. A rotation killed half way (SIGKILL) leaves the ledger on its old key; one killed
after its commit is finished by the next open; an import running meanwhile records nothing
under the old key; a backup from before the rotation still opens with the old key.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.importer import import_files
from dinsos_ledger.key_tables import KeyChanged
from dinsos_ledger.privacy import MasterKey, key_check_value
from dinsos_ledger.rotation import rotate_master_key

from tests.cli.test_keys_cli import commands, household, store_state, write_jsonl
from tests.conftest import _drop_schema, require_postgres

REFS = [f"HH-{n:04d}" for n in range(7)]


def cli(
    target: str, *args: str | os.PathLike[str], env: dict[str, str | None] | None = None
) -> Result:
    """Run ``dinsos-ledger --db TARGET ARGS…`` in-process."""
    result = CliRunner(env=env).invoke(main, ["--db", target, *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def key_file(path: Path, key: MasterKey) -> Path:
    """Write ``key`` to ``path`` (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, key.to_base64().encode() + b"\n")
    os.close(fd)
    return path


def current_key(target: str) -> MasterKey:
    """The key the ledger was opened with (TARGET.key, or DINSOS_LEDGER_KEY)."""
    with Ledger(target, create=False) as ledger:
        return ledger.master_key


def env_for(backend: str, key: MasterKey) -> dict[str, str | None]:
    """The environment (PostgreSQL) that opens the ledger with ``key``."""
    return {} if backend == "sqlite" else {"DINSOS_LEDGER_KEY": key.to_base64()}


def shown(target: str, env: dict[str, str | None]) -> dict[str, Any]:
    """``show REF --json`` of every household, by ref."""
    out = {}
    for ref in REFS:
        result = cli(target, "show", ref, "--json", env=env)
        assert result.exit_code == 0, result.stderr
        out[ref] = json.loads(result.stdout)
    return out


@pytest.fixture
def source(target: str, tmp_path: Path) -> Path:
    """The ledger holds seven households (one closed and forgotten); returns their file."""
    items = [*commands(len(REFS))]
    items += [
        {
            "id": "close-6",
            "command": "close",
            "ref": "HH-0006",
            "on": "2025-02-01",
            "actor": "a",
            "reason": "moved",
        },
        {
            "id": "forget-6",
            "command": "forget",
            "ref": "HH-0006",
            "on": "2025-02-02",
            "actor": "a",
            "reason": "r",
        },
    ]
    path = write_jsonl(tmp_path / "source.jsonl", items)
    result = cli(target, "import", path, "--json")
    assert result.exit_code == 0, result.stderr
    return path


def rotate(backend: str, target: str, new: MasterKey, tmp_path: Path, old: MasterKey) -> Result:
    """``rotate-key`` by the command line: --new-key FILE on SQLite, the variable on PostgreSQL."""
    if backend == "sqlite":
        path = key_file(tmp_path / f"new-{uuid.uuid4().hex[:6]}.key", new)
        return cli(target, "rotate-key", "--new-key", path, "--actor", "admin", "--json")
    env = {"DINSOS_LEDGER_KEY": old.to_base64(), "DINSOS_LEDGER_NEW_KEY": new.to_base64()}
    return cli(target, "rotate-key", "--actor", "admin", "--json", env=env)


def test_after_rotation_the_new_key_opens_everything_and_the_old_is_refused(
    backend: str, target: str, source: Path, tmp_path: Path
) -> None:
    """Same personal data, same events, same answers to a re-import; the old key is refused."""
    old = current_key(target)
    before = store_state(target)
    shown_before = shown(target, env_for(backend, old))
    again_before = cli(target, "import", source, "--json", env=env_for(backend, old))
    new = MasterKey.generate()

    result = rotate(backend, target, new, tmp_path, old)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["data_keys"] == len(REFS) - 1  # the forgotten one has no key left
    assert (report["old_check"], report["new_check"]) == (
        key_check_value(old),
        key_check_value(new),
    )
    assert report["actor"] == "admin"

    after = store_state(target)
    for table in ("events", "dinsos_chain", "dinsos_commands"):
        assert after[table] == before[table], table
    assert [sid for sid, _ in after["dinsos_keys"]] == [sid for sid, _ in before["dinsos_keys"]]
    assert not {w for _, w in after["dinsos_keys"]} & {w for _, w in before["dinsos_keys"]}

    assert shown(target, env_for(backend, new)) == shown_before
    assert shown_before["HH-0006"]["head_nik"] is None
    again_after = cli(target, "import", source, "--json", env=env_for(backend, new))
    assert (again_after.exit_code, again_after.stdout) == (
        again_before.exit_code,
        again_before.stdout,
    )
    assert json.loads(again_after.stdout) == {"accepted": 0, "duplicates": 23, "rejected": 0}
    changed = write_jsonl(tmp_path / "changed.jsonl", [household(1, nik="6408049999999999")])
    conflict = cli(target, "import", changed, "--json", env=env_for(backend, new))
    assert json.loads(conflict.stdout)["rejected"] == 1
    assert cli(target, "verify").stdout.startswith("ok: ")

    if backend == "sqlite":
        key_file(Path(target + ".key.try"), old)
        Path(target + ".key").rename(target + ".key.rotated")
        Path(target + ".key.try").rename(target + ".key")
    refused = cli(target, "show", "HH-0001", "--json", env=env_for(backend, old))
    assert refused.exit_code == 2
    assert "is not the key of the ledger" in refused.stderr

    with Ledger(target, create=False, need_key=False) as ledger:
        (record,) = ledger.recorder.select_rotations()
    assert record["actor"] == "admin"
    assert record["old_check"] == key_check_value(old)
    assert record["new_check"] == key_check_value(new)
    assert record["data_keys"] == len(REFS) - 1


def test_on_sqlite_the_key_file_is_replaced_and_the_old_one_kept_aside(
    backend: str, target: str, source: Path, tmp_path: Path
) -> None:
    """TARGET.key holds the new key (0600); the old one is TARGET.key.retired-<check value>."""
    del source
    if backend != "sqlite":
        pytest.skip("PostgreSQL has no key file")
    old = current_key(target)
    new = MasterKey.generate()
    assert rotate(backend, target, new, tmp_path, old).exit_code == 0
    key = Path(target + ".key")
    assert key.read_text().strip() == new.to_base64()
    assert key.stat().st_mode & 0o777 == 0o600
    retired = Path(f"{target}.key.retired-{key_check_value(old)[:16]}")
    assert retired.read_text().strip() == old.to_base64()
    assert not Path(target + ".key.new").exists()


def test_rotating_to_the_current_key_or_from_a_wrong_key_changes_nothing(
    backend: str, target: str, source: Path, tmp_path: Path
) -> None:
    """The same key again: exit 2; a wrong current key: exit 2; nothing written either way."""
    del source
    old = current_key(target)
    before = store_state(target)
    same = rotate(backend, target, old, tmp_path, old)
    assert same.exit_code == 2
    assert "current master key" in same.stderr
    wrong = MasterKey.generate()
    if backend == "sqlite":
        key_file(Path(target + ".key"), wrong)
    result = rotate(backend, target, MasterKey.generate(), tmp_path, wrong)
    assert result.exit_code == 2
    assert "is not the key of the ledger" in result.stderr
    assert store_state(target) == before


def test_the_keyed_index_and_digests_survive_a_rotation(target: str, source: Path) -> None:
    """Index entries and idempotency digests are keyed by wrapped keys: unchanged."""
    del source
    old = current_key(target)
    with Ledger(target, create=False, master_key=old) as ledger:
        entry = ledger.index_mac("nik", "6408041203820001")
        digest = ledger.body_digest(b"{}")
        new = MasterKey.generate()
        rotate_master_key(ledger, new, actor="t")
        assert ledger.index_mac("nik", "6408041203820001") == entry
    with Ledger(target, create=False, master_key=new) as ledger:
        assert ledger.index_mac("nik", "6408041203820001") == entry
        assert ledger.body_digest(b"{}") == digest
        assert ledger.index_mac("nik", "6408041203820002") != entry
        assert ledger.index_mac("family_card", "6408041203820001") != entry


# ------------------------------------------------------------------------- processes


ROTATE_SCRIPT = """
import os, pathlib, signal, sys, time
from dinsos_ledger import rotation
from dinsos_ledger.application import Ledger
from dinsos_ledger.privacy import master_key_from_env

target, new_key, marker, go, mode = sys.argv[1:6]
if mode == "die-after-commit":
    rotation._promote = lambda target: os.kill(os.getpid(), signal.SIGKILL)

def progress(count):
    pathlib.Path(marker).write_text(str(count))
    while mode == "pause" and not pathlib.Path(go).exists():
        time.sleep(0.05)

# The pause below leaves the transaction idle: longer than PostgreSQL lets it by default.
settings = {"POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "300"}
with Ledger(target, create=False, env=settings) as ledger:
    rotation.rotate_master_key(
        ledger, master_key_from_env(new_key), actor="script", progress=progress, page=2
    )
"""


def start_rotation(
    target: str, new: MasterKey, tmp_path: Path, mode: str
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start a rotation in another process; returns it, its marker file and its go file."""
    marker, go = tmp_path / f"marker-{mode}", tmp_path / f"go-{mode}"
    process = subprocess.Popen(
        [sys.executable, "-c", ROTATE_SCRIPT, target, new.to_base64(), str(marker), str(go), mode],
        stderr=subprocess.PIPE,
    )
    return process, marker, go


def wait_for(path: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until ``path`` exists (the process reached that point)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"the process ended early: {process.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.usefixtures("source")
def test_a_rotation_killed_half_way_leaves_the_ledger_on_its_old_key(
    backend: str, target: str, tmp_path: Path
) -> None:
    """SIGKILL after the first page: nothing rotated; the old key opens all; rotating again works."""
    old = current_key(target)
    before = store_state(target)
    shown_before = shown(target, env_for(backend, old))
    new = MasterKey.generate()
    process, marker, _ = start_rotation(target, new, tmp_path, "pause")
    wait_for(marker, process)
    assert marker.read_text() == "2"  # one page of two keys re-wrapped, not yet committed
    process.send_signal(signal.SIGKILL)
    process.wait()

    assert store_state(target) == before
    assert shown(target, env_for(backend, old)) == shown_before
    with Ledger(target, create=False, need_key=False) as ledger:
        assert ledger.recorder.select_rotations() == []
    if backend == "sqlite":
        assert Path(target + ".key").read_text().strip() == old.to_base64()
    refused = cli(target, "show", "HH-0001", env={"DINSOS_LEDGER_KEY": new.to_base64()})
    if backend == "postgres":
        assert refused.exit_code == 2

    assert rotate(backend, target, new, tmp_path, old).exit_code == 0
    assert shown(target, env_for(backend, new)) == shown_before


@pytest.mark.usefixtures("source")
def test_a_rotation_killed_after_its_commit_is_finished_by_the_next_open(
    backend: str, target: str, tmp_path: Path
) -> None:
    """SIGKILL between the commit and the key file's rename: the next open promotes TARGET.key.new."""
    if backend != "sqlite":
        pytest.skip("only SQLite has a key file to replace after the commit")
    old = current_key(target)
    shown_before = shown(target, {})
    new = MasterKey.generate()
    process, _, _ = start_rotation(target, new, tmp_path, "die-after-commit")
    assert process.wait(timeout=120) == -signal.SIGKILL
    assert Path(target + ".key").read_text().strip() == old.to_base64()
    assert Path(target + ".key.new").read_text().strip() == new.to_base64()

    assert shown(target, {}) == shown_before  # the next open finishes the rotation
    assert Path(target + ".key").read_text().strip() == new.to_base64()
    assert not Path(target + ".key.new").exists()
    retired = Path(f"{target}.key.retired-{key_check_value(old)[:16]}")
    assert retired.read_text().strip() == old.to_base64()


def test_a_stale_new_key_file_is_never_accepted(
    backend: str, target: str, source: Path, tmp_path: Path
) -> None:
    """A TARGET.key.new whose check value is not the ledger's opens nothing."""
    del source, tmp_path
    if backend != "sqlite":
        pytest.skip("only SQLite has key files")
    key_file(Path(target + ".key.new"), MasterKey.generate())
    Path(target + ".key").unlink()
    result = cli(target, "show", "HH-0001")
    assert result.exit_code == 2
    assert "is missing" in result.stderr
    assert Path(target + ".key.new").exists()


def test_an_import_during_a_rotation_records_nothing_under_the_old_key(
    backend: str, target: str, source: Path, tmp_path: Path
) -> None:
    """An import that opened the ledger before the rotation committed is refused; run again, it is recorded.

    No subject ends up with a data key wrapped under a key the ledger no longer accepts.
    """
    del source
    old = current_key(target)
    new = MasterKey.generate()
    extra = write_jsonl(tmp_path / "extra.jsonl", [household(n) for n in range(20, 30)])
    process, marker, go = start_rotation(target, new, tmp_path, "pause")
    wait_for(marker, process)
    settings = {"SQLITE_LOCK_TIMEOUT": "120"}
    importer = Ledger(target, create=False, master_key=old, env=settings)
    failures: list[BaseException] = []

    def run_import() -> None:
        try:
            import_files(importer, [extra], on_reject=lambda _: None)
        except BaseException as e:  # noqa: BLE001 - handed to the test below
            failures.append(e)

    thread = threading.Thread(target=run_import)
    thread.start()
    time.sleep(1)  # the import now waits for the rotation's lock
    go.touch()
    assert process.wait(timeout=120) == 0
    thread.join(timeout=180)
    importer.disconnect()
    assert [type(e) for e in failures] == [KeyChanged]
    assert "was rotated while this process was running" in str(failures[0])

    new_env = env_for(backend, new)
    again = cli(target, "import", extra, "--json", env=new_env)
    assert json.loads(again.stdout) == {"accepted": 10, "duplicates": 0, "rejected": 0}
    with Ledger(target, create=False, master_key=new) as ledger:
        for n in range(20, 30):
            assert ledger.show(f"HH-{n:04d}")["head_nik"] == household(n)["head_nik"]
        for ref in REFS[:6]:
            assert ledger.show(ref)["head_nik"] is not None


def test_an_import_process_started_during_a_rotation_ends_cleanly(
    backend: str, target: str, source: Path, tmp_path: Path
) -> None:
    """A separate `import` process ends refused (exit 2) or recorded under the new key.

    Which of the two depends on whether it opened the ledger before the rotation committed;
    either way every subject it registered opens with the new key.
    """
    del source
    old = current_key(target)
    new = MasterKey.generate()
    extra = write_jsonl(tmp_path / "extra.jsonl", [household(n) for n in range(20, 30)])
    process, marker, go = start_rotation(target, new, tmp_path, "pause")
    wait_for(marker, process)
    env = {**os.environ, "DINSOS_LEDGER_LOCK_TIMEOUT": "120"}
    if backend == "postgres":
        env["DINSOS_LEDGER_KEY"] = old.to_base64()
    importer = subprocess.Popen(
        [tool("dinsos-ledger"), "--db", target, "import", str(extra), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    time.sleep(2)
    go.touch()
    assert process.wait(timeout=120) == 0
    out, err = importer.communicate(timeout=180)
    assert b"Traceback" not in err
    if importer.returncode == 2:
        assert b"rotated" in err or b"is not the key of the ledger" in err
        again = cli(target, "import", extra, "--json", env=env_for(backend, new))
        assert json.loads(again.stdout)["accepted"] == 10
    else:
        assert (importer.returncode, json.loads(out)["accepted"]) == (0, 10)
    with Ledger(target, create=False, master_key=new) as ledger:
        for n in range(20, 30):
            assert ledger.show(f"HH-{n:04d}")["head_nik"] == household(n)["head_nik"]


def tool(name: str) -> str:
    """The full path of a program (this interpreter's folder first), or skip without it."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def sqlite_backup(target: str, folder: Path) -> str:
    """A consistent copy of the SQLite ledger and its key file in ``folder``."""
    folder.mkdir()
    copy = folder / "ledger.sqlite"
    with sqlite3.connect(target) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    shutil.copy2(target + ".key", str(copy) + ".key")
    return str(copy)


def postgres_backup(target: str, tmp_path: Path) -> Callable[[], str]:
    """pg_dump of the ledger's schema now; the function restores it as another schema."""
    url, _, query = target.partition("?schema=")
    dump = tmp_path / "backup.sql"
    subprocess.run([tool("pg_dump"), "--no-owner", "-n", query, "-f", str(dump), url], check=True)
    restored = f"b_{uuid.uuid4().hex[:16]}"

    def restore() -> str:
        text = dump.read_text().replace(f"{query}.", f"{restored}.")
        text = text.replace(f"CREATE SCHEMA {query};", f"CREATE SCHEMA {restored};")
        text = text.replace(f"SCHEMA {query} ", f"SCHEMA {restored} ")
        dump.write_text(text)
        subprocess.run(
            [tool("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-f", str(dump), url],
            check=True,
            capture_output=True,
        )
        return f"{url}?schema={restored}"

    restore.schema = restored  # type: ignore[attr-defined]
    return restore


def test_a_backup_from_before_the_rotation_opens_with_the_old_key_only(
    backend: str, target: str, source: Path, tmp_path: Path
) -> None:
    """Restored after the rotation, the old backup still opens with the old key, not the new."""
    old = current_key(target)
    shown_before = shown(target, env_for(backend, old))
    if backend == "sqlite":
        backup = sqlite_backup(target, tmp_path / "backup")
    else:
        restore = postgres_backup(target, tmp_path)
    new = MasterKey.generate()
    assert rotate(backend, target, new, tmp_path, old).exit_code == 0

    restored = backup if backend == "sqlite" else restore()
    try:
        assert shown(restored, env_for(backend, old)) == shown_before
        again = cli(restored, "import", source, "--json", env=env_for(backend, old))
        assert json.loads(again.stdout) == {"accepted": 0, "duplicates": 23, "rejected": 0}
        if backend == "sqlite":
            key_file(Path(restored + ".key"), new)
        refused = cli(restored, "show", "HH-0001", env=env_for(backend, new))
        assert refused.exit_code == 2
        assert "is not the key of the ledger" in refused.stderr
    finally:
        if backend == "postgres":
            _drop_schema(require_postgres(), restore.schema)  # type: ignore[attr-defined]


def test_a_rotation_blocks_no_reader(target: str, source: Path, tmp_path: Path) -> None:
    """While a rotation holds the write lock, an auditor still reads the log without a key.

    (Verbs that bring projections up to date write, so on SQLite they wait for the
    rotation like any writer.)
    """
    del source
    process, marker, go = start_rotation(target, MasterKey.generate(), tmp_path, "pause")
    wait_for(marker, process)
    try:
        env: dict[str, str | None] = {"DINSOS_LEDGER_KEY": None}
        history = cli(target, "history", "HH-0001", "--json", env=env)
        assert history.exit_code == 0, history.stderr
        assert json.loads(history.stdout)[0]["type"] == "registered"
    finally:
        go.touch()
        assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""


def test_rotate_key_without_a_usable_new_key_is_a_usage_error(
    target: str, source: Path, tmp_path: Path
) -> None:
    """No new key, a key file readable by others, or a malformed key: exit 2, nothing rotated."""
    del source
    before = store_state(target)
    missing = cli(target, "rotate-key", env={"DINSOS_LEDGER_NEW_KEY": None})
    assert missing.exit_code == 2
    assert "--new-key FILE" in missing.stderr
    loose = key_file(tmp_path / "loose.key", MasterKey.generate())
    loose.chmod(0o644)
    refused = cli(target, "rotate-key", "--new-key", loose)
    assert refused.exit_code == 2
    assert "chmod 600" in refused.stderr
    bad = cli(target, "rotate-key", env={"DINSOS_LEDGER_NEW_KEY": "not base64!"})
    assert bad.exit_code == 2
    assert "DINSOS_LEDGER_NEW_KEY" in bad.stderr
    assert "not base64!" not in bad.stderr
    assert store_state(target) == before
