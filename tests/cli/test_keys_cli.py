"""Master key handling end to end, as a careless operator or an attacker meets it (both backends).

- Only ``import``, ``reconcile`` and ``demo`` create a ledger: every other verb on a target
  that holds none exits 2 with ``no ledger at TARGET`` and creates nothing.
- A key is created only with a new ledger. A ledger copied without its key file, or
  opened with another key, is refused (exit 2) by every verb that reads or writes personal
  data or records commands, and nothing is written.
- Verbs that touch no personal data run without any master key and create none.
- A ledger from before key check values is upgraded on the first open that proves its key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.cli.base import CREATING_VERBS, KEYLESS_VERBS
from dinsos_ledger.commands import BODY_DIGEST_PURPOSE, canonical_body
from dinsos_ledger.key_tables import KeyRefused, NoLedger
from dinsos_ledger.privacy import MasterKey, digest_key, key_check_value

from tests.conftest import require_postgres

Run = Callable[..., Result]

REGION = "64.08.04.2001"


def household(n: int, *, nik: str | None = None) -> dict[str, Any]:
    """A registration of household HH-n (unique NIK and family card unless given)."""
    return {
        "id": f"h-{n}",
        "command": "register_household",
        "ref": f"HH-{n:04d}",
        "on": "2025-01-06",
        "actor": "petugas",
        "region": REGION,
        "members": 4,
        "family_card": f"{6408040101250000 + n}",
        "head_nik": nik or f"{6408041203820000 + n}",
        "head_name": f"Kepala {n}",
    }


def commands(count: int = 3) -> list[dict[str, Any]]:
    """Registrations, assessments and allocations of ``count`` households, all accepted."""
    out: list[dict[str, Any]] = []
    for n in range(count):
        out.append(household(n))
        out.append(
            {
                "id": f"a-{n}",
                "command": "assess",
                "ref": f"HH-{n:04d}",
                "on": "2025-01-07",
                "actor": "petugas",
                "desil": 2,
            }
        )
        out.append(
            {
                "id": f"al-{n}",
                "command": "allocate",
                "ref": f"HH-{n:04d}",
                "on": "2025-01-08",
                "actor": "petugas",
                "programme": "PKH",
                "amount": 750_000,
                "period": "2025-01",
                "reference": f"PKH-{n}",
            }
        )
    return out


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    """Write ``items`` as JSON lines to ``path``."""
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


@pytest.fixture
def run(target: str) -> Run:
    """Run ``dinsos-ledger --db TARGET ARGS…`` in-process (``env`` changes the environment)."""

    def invoke(*args: str | os.PathLike[str], env: dict[str, str | None] | None = None) -> Result:
        result = CliRunner(env=env).invoke(main, ["--db", target, *map(str, args)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def loaded(run: Run, tmp_path: Path) -> Path:
    """The ledger holds three households; returns the file they were imported from."""
    path = write_jsonl(tmp_path / "commands.jsonl", commands())
    result = run("import", path, "--json")
    assert result.exit_code == 0, result.stderr
    return path


def no_key(backend: str, target: str) -> dict[str, str | None]:
    """The environment without any master key (and, on SQLite, the key file moved away)."""
    if backend == "sqlite":
        Path(target + ".key").rename(target + ".key.away")
    return {"DINSOS_LEDGER_KEY": None}


def other_key(backend: str, target: str) -> dict[str, str | None]:
    """The environment (and key file) holding a key that is not the ledger's."""
    other = MasterKey.generate().to_base64()
    if backend == "sqlite":
        key = Path(target + ".key")
        key.unlink()
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, other.encode() + b"\n")
        os.close(fd)
        return {}
    return {"DINSOS_LEDGER_KEY": other}


def store_state(target: str) -> dict[str, Any]:
    """Every row of the ledger's tables (events, chain, commands, keys, secrets), by table."""
    with Ledger(target, create=False, need_key=False) as ledger:
        recorder: Any = ledger.recorder
        tables = ["dinsos_commands", "dinsos_keys", "dinsos_chain", "dinsos_secrets"]
        state: dict[str, Any] = {"events": list(recorder.iter_rows())}
        if ledger.target.is_postgres:
            schema = recorder.datastore.schema
            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                for table in tables:
                    curs.execute(f'SELECT * FROM "{schema}".{table} ORDER BY 1')
                    state[table] = [tuple(r.values()) for r in curs.fetchall()]
        else:
            with recorder.datastore.transaction(commit=False) as c:
                for table in tables:
                    c.execute(f"SELECT * FROM {table} ORDER BY 1")
                    state[table] = [tuple(r) for r in c.fetchall()]
        return state


# ---------------------------------------------------------------- item 8: no ledger, no creation


def schema_exists(url: str, schema: str) -> bool:
    """Whether ``schema`` exists in the database at ``url``."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
        return bool(row and row[0])


VERB_ARGS: dict[str, tuple[str, ...]] = {
    "verify": (),
    "balances": ("--json",),
    "continuity": ("--json",),
    "coverage": ("--json",),
    "overdue": ("--json",),
    "outstanding": ("--json",),
    "findings": ("--json",),
    "reconciliation": ("--json",),
    "programmes": ("--json",),
    "export": ("--format", "jsonl", "{tmp}/out.jsonl"),
    "report": ("{tmp}/report",),
    "history": ("HH-0000",),
    "rebuild": (),
    "checkpoint": ("{tmp}/cp.json", "--key", "{tmp}/signing.pem"),
    "show": ("HH-0000",),
    "forget": ("HH-0000", "--actor", "a", "--reason", "r"),
    "rotate-key": ("--new-key", "{tmp}/new.key"),
}


def args_of(verb: str, tmp_path: Path) -> list[str]:
    """The arguments that make ``verb`` run, with ``{tmp}`` replaced by the test's folder."""
    return [a.format(tmp=tmp_path) for a in VERB_ARGS[verb]]


NON_CREATING = sorted(set(VERB_ARGS) - CREATING_VERBS)


def test_only_import_reconcile_and_demo_may_create_a_ledger() -> None:
    """The creating verbs are exactly those of the command-line contract."""
    assert frozenset({"import", "reconcile", "demo"}) == CREATING_VERBS


@pytest.mark.parametrize("verb", NON_CREATING)
def test_a_verb_on_a_mistyped_sqlite_path_exits_2_and_creates_nothing(
    verb: str, tmp_path: Path
) -> None:
    """`no ledger at TARGET`, exit 2; no file, no key, nothing else in the folder."""
    if verb not in main.commands:
        pytest.skip(f"{verb} is not a verb of this build yet")
    folder = tmp_path / "work"
    folder.mkdir()
    (tmp_path / "new.key").write_text(MasterKey.generate().to_base64())
    (tmp_path / "new.key").chmod(0o600)
    target = folder / "ledgr.sqlite"
    result = CliRunner().invoke(main, ["--db", str(target), verb, *args_of(verb, tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: no ledger at {target}\n"
    assert list(folder.iterdir()) == []
    assert not (tmp_path / "out.jsonl").exists()
    assert not (tmp_path / "cp.json").exists()


@pytest.mark.parametrize("verb", NON_CREATING)
def test_a_verb_on_an_empty_postgres_schema_exits_2_and_creates_nothing(
    verb: str, tmp_path: Path
) -> None:
    """No schema, no table is created; the message names the target."""
    if verb not in main.commands:
        pytest.skip(f"{verb} is not a verb of this build yet")
    url = require_postgres()
    schema = f"k_{uuid.uuid4().hex[:16]}"
    (tmp_path / "new.key").write_text(MasterKey.generate().to_base64())
    (tmp_path / "new.key").chmod(0o600)
    env = {"DINSOS_LEDGER_KEY": MasterKey.generate().to_base64()}
    result = CliRunner(env=env).invoke(
        main, ["--db", f"{url}?schema={schema}", verb, *args_of(verb, tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: no ledger at postgresql://")
    assert not schema_exists(url, schema)


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards)."""
    url = require_postgres()
    name = f"dinsos_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_verify_on_an_empty_postgres_database_creates_no_table(empty_database: str) -> None:
    """An empty database (public schema): exit 2, and it still holds no table at all."""
    result = CliRunner(env={"DINSOS_LEDGER_KEY": None}).invoke(
        main, ["--db", empty_database, "verify"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no ledger at postgresql://")
    with psycopg.connect(empty_database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        ).fetchone()
        assert row is not None
        assert row[0] == 0


def test_import_creates_the_ledger_and_its_key_together(
    backend: str, target: str, run: Run, tmp_path: Path
) -> None:
    """A new ledger gets its key (SQLite: TARGET.key, 0600) and remembers its check value."""
    path = write_jsonl(tmp_path / "c.jsonl", commands(1))
    assert run("import", path).exit_code == 0
    with Ledger(target, create=False) as ledger:
        assert len(ledger.key_check) == 32
        assert ledger.key_check == key_check_value(ledger.master_key)
    if backend == "sqlite":
        key = Path(target + ".key")
        assert key.stat().st_mode & 0o777 == 0o600


def test_the_library_refuses_a_missing_ledger_when_told_not_to_create(tmp_path: Path) -> None:
    """``Ledger(path, create=False)`` raises NoLedger and leaves no file behind."""
    with pytest.raises(NoLedger, match="no ledger at"):
        Ledger(str(tmp_path / "x.sqlite"), create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_sqlite_is_named_not_created_over(tmp_path: Path) -> None:
    """A text file given as --db: exit 2 naming it; the file is left as it was."""
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    before = text.read_bytes()
    # `verify` names a damaged or foreign database with exit 1; other verbs exit 2.
    result = CliRunner().invoke(main, ["--db", str(text), "balances", "--json"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert str(text) in result.stderr
    assert text.read_bytes() == before
    assert not Path(str(text) + ".key").exists()


# ------------------------------------------------------------- item 6: the ledger's own key only


KEYED = [
    ("import", ("{file}",)),
    ("show", ("HH-0000", "--json")),
    ("forget", ("HH-0000", "--actor", "a", "--reason", "r")),
]


def keyed_args(args: tuple[str, ...], file: Path) -> list[str]:
    """The arguments with ``{file}`` replaced."""
    return [a.format(file=file) for a in args]


@pytest.mark.parametrize(("verb", "args"), KEYED)
def test_a_ledger_copied_without_its_key_is_refused_and_nothing_is_written(
    backend: str, target: str, run: Run, loaded: Path, verb: str, args: tuple[str, ...]
) -> None:
    """No key file (SQLite) or no DINSOS_LEDGER_KEY: exit 2 naming it; no new key, no row."""
    more = write_jsonl(loaded.with_name("more.jsonl"), [household(7)])
    before = store_state(target)
    env = no_key(backend, target)
    result = run(verb, *keyed_args(args, more), env=env)
    assert result.exit_code == 2, result.output
    if backend == "sqlite":
        assert f"key file '{target}.key' is missing" in result.stderr
        assert "never made for an existing ledger" in result.stderr
        assert not Path(target + ".key").exists()
    else:
        assert "DINSOS_LEDGER_KEY" in result.stderr
    assert store_state(target) == before


@pytest.mark.parametrize(("verb", "args"), KEYED)
def test_another_key_is_refused_and_nothing_is_written(
    backend: str, target: str, run: Run, loaded: Path, verb: str, args: tuple[str, ...]
) -> None:
    """A wrong key: exit 2 saying it is not the ledger's key (check values), nothing recorded."""
    more = write_jsonl(loaded.with_name("more.jsonl"), [household(7)])
    before = store_state(target)
    env = other_key(backend, target)
    result = run(verb, *keyed_args(args, more), env=env)
    assert result.exit_code == 2, result.output
    assert "is not the key of the ledger" in result.stderr
    assert "nothing was written" in result.stderr
    assert store_state(target) == before


def test_a_restored_copy_with_its_key_file_answers_as_the_original(
    backend: str, target: str, loaded: Path, tmp_path: Path
) -> None:
    """The everyday backup: file and key copied together; re-import is all duplicates."""
    if backend != "sqlite":
        pytest.skip("a file copy is a SQLite backup")
    source = target
    copy = tmp_path / "restored" / "ledger.sqlite"
    copy.parent.mkdir()
    with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    shutil.copy2(source + ".key", str(copy) + ".key")
    result = CliRunner().invoke(main, ["--db", str(copy), "import", str(loaded), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"accepted": 0, "duplicates": 9, "rejected": 0}


def test_the_library_refuses_another_key_given_explicitly(target: str, loaded: Path) -> None:
    """``Ledger(target, master_key=other)`` raises KeyRefused before anything is written."""
    del loaded
    before = store_state(target)
    with pytest.raises(KeyRefused, match="is not the key of the ledger"):
        Ledger(target, master_key=MasterKey.generate())
    assert store_state(target) == before


def delete_check_values(target: str) -> None:
    """Make the ledger look as one written before key check values (direct SQL)."""
    with Ledger(target, create=False, need_key=False) as ledger:
        recorder: Any = ledger.recorder
        if ledger.target.is_postgres:
            with recorder.datastore.get_connection() as conn:
                conn.execute(f'DELETE FROM "{recorder.datastore.schema}".dinsos_secrets')
        else:
            with recorder.datastore.transaction(commit=True) as c:
                c.execute("DELETE FROM dinsos_secrets")


def rewrite_as_legacy_digests(target: str, master: MasterKey, items: list[dict[str, Any]]) -> None:
    """Store each command's digest as the earlier design did: whole body, master subkey."""
    subkey = digest_key(master, BODY_DIGEST_PURPOSE)
    rows = [
        (hmac.digest(subkey, canonical_body(item), "sha256").hex(), item["id"]) for item in items
    ]
    with Ledger(target, create=False, need_key=False) as ledger:
        recorder: Any = ledger.recorder
        if ledger.target.is_postgres:
            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.executemany(
                    f'UPDATE "{recorder.datastore.schema}".dinsos_commands '
                    "SET digest = %s WHERE id = %s",
                    rows,
                )
        else:
            with recorder.datastore.transaction(commit=True) as c:
                c.executemany("UPDATE dinsos_commands SET digest = ? WHERE id = ?", rows)


def test_a_ledger_from_before_check_values_is_upgraded_only_by_its_own_key(
    backend: str, target: str, run: Run, tmp_path: Path
) -> None:
    """A wrong key records nothing; the right one is proven by a data key, then remembered.

    Its older whole-body digests still answer re-imports: duplicates, and a changed NIK
    of a subject that is not forgotten is still an id_conflict; once forgotten, any NIK
    answers duplicate.
    """
    items = commands(2)
    path = write_jsonl(tmp_path / "c.jsonl", items)
    assert run("import", path).exit_code == 0
    with Ledger(target) as ledger:
        master = ledger.master_key
    delete_check_values(target)
    rewrite_as_legacy_digests(target, master, items)

    before = store_state(target)
    refused = run("show", "HH-0000", "--json", env=other_key(backend, target))
    assert refused.exit_code == 2
    assert "is not the key of the ledger" in refused.stderr
    assert store_state(target) == before
    assert before["dinsos_secrets"] == []

    right = {"DINSOS_LEDGER_KEY": master.to_base64()}
    if backend == "sqlite":
        key = Path(target + ".key")
        key.write_text(master.to_base64() + "\n")
    shown = run("show", "HH-0000", "--json", env=right)
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["head_nik"] == household(0)["head_nik"]
    with Ledger(target, master_key=master) as ledger:
        assert ledger.key_check == key_check_value(master)
    again = run("import", path, "--json", env=right)
    assert json.loads(again.stdout) == {"accepted": 0, "duplicates": 6, "rejected": 0}
    in_two = run("import", path, "--json", "--parallel", env=right)
    assert json.loads(in_two.stdout) == {"accepted": 0, "duplicates": 6, "rejected": 0}
    changed = write_jsonl(tmp_path / "changed.jsonl", [household(0, nik="6408049999999999")])
    conflict = run("import", changed, "--json", env=right)
    assert json.loads(conflict.stdout) == {"accepted": 0, "duplicates": 0, "rejected": 1}
    close = {"id": "c-0", "command": "close", "ref": "HH-0000", "on": "2025-02-01"}
    close |= {"actor": "a", "reason": "moved"}
    assert run("import", write_jsonl(tmp_path / "close.jsonl", [close]), env=right).exit_code == 0
    assert run("forget", "HH-0000", "--actor", "a", "--reason", "r", env=right).exit_code == 0
    after = run("import", changed, "--json", env=right)
    assert json.loads(after.stdout) == {"accepted": 0, "duplicates": 1, "rejected": 0}


# ------------------------------------------------------------ item 7: no key for verbs without PII


@pytest.mark.parametrize("verb", sorted(KEYLESS_VERBS))
def test_a_verb_without_personal_data_runs_without_any_master_key(
    backend: str, target: str, run: Run, loaded: Path, tmp_path: Path, verb: str
) -> None:
    """No key file and no DINSOS_LEDGER_KEY: the verb succeeds and creates no key."""
    del loaded
    if verb not in main.commands:
        pytest.skip(f"{verb} is not a verb of this build yet")
    if verb == "checkpoint":  # it needs a signing key (kept away from the ledger)
        made = CliRunner().invoke(main, ["checkpoint-key", str(tmp_path / "signing.pem")])
        assert made.exit_code == 0, made.output
    env = no_key(backend, target)
    env["DINSOS_LEDGER_SIGNING_KEY"] = None
    result = run(verb, *args_of(verb, tmp_path), env=env)
    assert result.exit_code == 0, result.output
    assert "DINSOS_LEDGER_KEY" not in result.stderr
    if backend == "sqlite":
        assert not Path(target + ".key").exists()


def test_the_keyless_verbs_are_those_without_personal_data() -> None:
    """The contract's list, plus rebuild, checkpoint and programmes (no personal data either)."""
    contract = {
        "verify",
        "balances",
        "continuity",
        "coverage",
        "overdue",
        "outstanding",
        "findings",
        "reconciliation",
        "export",
        "report",
        "history",
    }
    assert contract <= KEYLESS_VERBS
    assert not {"import", "show", "forget", "reconcile", "rotate-key"} & KEYLESS_VERBS


def test_a_sealed_field_is_not_readable_by_a_keyless_open(target: str, loaded: Path) -> None:
    """Opened without a key, the ledger reads the key only when personal data is asked for."""
    del loaded
    with Ledger(target, create=False, need_key=False) as ledger:
        assert ledger.show("HH-0000")["head_nik"] == household(0)["head_nik"]


def test_check_values_are_not_the_key_and_differ_per_key() -> None:
    """32 hex digits; different keys, different values; the key's bytes do not appear."""
    key = MasterKey.generate()
    value = key_check_value(key)
    assert len(value) == 32
    assert int(value, 16) >= 0
    assert value != key_check_value(MasterKey.generate())
    raw = base64.b64decode(key.to_base64())
    assert value not in (raw.hex(), hashlib.sha256(raw).hexdigest()[:32])


def test_import_without_a_postgres_key_creates_no_table(tmp_path: Path) -> None:
    """A new PostgreSQL ledger without DINSOS_LEDGER_KEY: exit 2 before any schema is made."""
    url = require_postgres()
    schema = f"k_{uuid.uuid4().hex[:16]}"
    path = write_jsonl(tmp_path / "c.jsonl", commands(1))
    result = CliRunner(env={"DINSOS_LEDGER_KEY": None}).invoke(
        main, ["--db", f"{url}?schema={schema}", "import", str(path)]
    )
    assert result.exit_code == 2
    assert "DINSOS_LEDGER_KEY" in result.stderr
    assert not schema_exists(url, schema)
