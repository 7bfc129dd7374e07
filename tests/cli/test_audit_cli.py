"""End-to-end tests of the auditors' verbs: verify, checkpoint, show --known-at, history, forget.

Outputs are compared whole where the documentation or the auditors' guide fixes them; every verb
runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dinsos_ledger import chain
from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.types import subject_id

from tests.attacker import drop_guards, restore_guards

ROOT = Path(__file__).resolve().parents[2]
FIELD_OFFICE = ROOT / "tests" / "data" / "field_office.jsonl"
GUIDE = ROOT / "docs" / "auditors.md"
ALTERED = (
    "does not match its link: it was altered "
    "(or an earlier event was removed together with its link)"
)

Run = Callable[..., Result]


@pytest.fixture
def run(target: str) -> Run:
    """Run ``dinsos-ledger --db TARGET ARGS…`` and return the result (stdout, stderr apart)."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner(env=env).invoke(main, ["--db", target, *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def loaded(run: Run) -> Run:
    """``run`` on a ledger holding the field-office fixture."""
    result = run("import", str(FIELD_OFFICE), "--json")
    assert json.loads(result.stdout) == {"accepted": 60, "duplicates": 1, "rejected": 55}
    return run


def stored(target: str) -> list[tuple[int, str, int]]:
    """(position, originator id, version) of every stored event, read through the ledger."""
    with Ledger(target) as ledger:
        return [(r[0], r[1], r[2]) for r in ledger.recorder.iter_rows()]


def position_of(target: str, ref: str, version: int) -> int:
    """The log position of ``ref``'s ``version``-th event."""
    oid = subject_id(ref).hex
    return next(p for p, o, v in stored(target) if o == oid and v == version)


def tamper(target: str, sql: str, params: tuple[Any, ...]) -> None:
    """Run ``sql`` straight on the store (``{events}``, ``{pos}``, ``{chain}``; ``?`` marks).

    The append-only guards are dropped first and put back after, as an intruder hiding the
    edit would.
    """
    drop_guards(target)
    try:
        _tamper(target, sql, params)
    finally:
        restore_guards(target)


def _tamper(target: str, sql: str, params: tuple[Any, ...]) -> None:
    if target.startswith("postgresql://"):
        import psycopg

        url, _, query = target.partition("?")
        schema = query.removeprefix("schema=")
        sql = sql.format(
            events=f'"{schema}".ledger_events',
            pos="notification_id",
            chain=f'"{schema}".dinsos_chain',
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)  # type: ignore[call-overload]
        return
    sql = sql.format(events="stored_events", pos="rowid", chain="dinsos_chain")
    with contextlib.closing(sqlite3.connect(target)) as conn, conn:
        conn.execute(sql, params)


def change_amount(target: str, position: int) -> None:
    """Raise the amount of the disbursement stored at ``position`` by hand."""
    if target.startswith("postgresql://"):
        sql = (
            "UPDATE {events} SET state = "
            "convert_to(replace(convert_from(state, 'UTF8'), '750000', '7500000'), 'UTF8') "
            "WHERE {pos} = ?"
        )
    else:
        sql = (
            "UPDATE {events} SET state = CAST(replace(CAST(state AS TEXT), '750000', '7500000') "
            "AS BLOB) WHERE {pos} = ?"
        )
    tamper(target, sql, (position,))


def recompute_chain(target: str) -> None:
    """Rewrite every chain link from the rows as they are now: the chain has no secret."""
    with Ledger(target) as ledger:
        links = list(chain.links_of(ledger.recorder.iter_rows()))
    tamper(target, "DELETE FROM {chain}", ())
    for position, digest in links:
        tamper(target, "INSERT INTO {chain} (position, hash) VALUES (?, ?)", (position, digest))


# ----------------------------------------------------------------- verify


def test_verify_of_an_empty_ledger_is_ok(run: Run, target: str) -> None:
    """No events is an intact chain."""
    Ledger(target).disconnect()
    result = run("verify")
    assert (result.exit_code, result.stdout) == (0, "ok: 0 events\n")


def test_verify_of_an_intact_ledger_prints_ok_and_the_count(loaded: Run, target: str) -> None:
    """the CLI contract: exit 0 and `ok: N events`, N counting every stored event."""
    result = loaded("verify")
    assert result.exit_code == 0
    assert result.stdout == f"ok: {len(stored(target))} events\n"
    assert result.stderr == ""


def test_verify_names_the_altered_event_and_exits_1(loaded: Run, target: str) -> None:
    """A hand-raised amount: the finding names position, subject, version and event type."""
    position = position_of(target, "KT-HH-0001", 5)
    change_amount(target, position)
    result = loaded("verify")
    assert result.exit_code == 1
    assert result.stdout == (
        f"altered at position {position} (KT-HH-0001, household, version 5, disbursed): "
        f"event at position {position} {ALTERED}\n"
    )
    assert result.stderr == (
        f"Error: verification failed: {position - 1} events verified before the first finding\n"
    )


def test_verify_names_a_removed_event(loaded: Run, target: str) -> None:
    """A deleted row is named by its position (there is nothing left to describe)."""
    position = position_of(target, "KT-HH-0003", 2)
    tamper(target, "DELETE FROM {events} WHERE {pos} = ?", (position,))
    result = loaded("verify")
    assert result.exit_code == 1
    assert result.stdout == (
        f"removed at position {position}: event at position {position} is missing "
        "but its link remains: it was removed\n"
    )


def test_verify_json_is_a_machine_readable_finding(loaded: Run, target: str) -> None:
    """--json prints the report: ok, counts, head, and the finding as an object."""
    position = position_of(target, "KT-HH-0001", 5)
    change_amount(target, position)
    result = loaded("verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["events"] == position - 1
    assert report["head_position"] == position - 1
    assert report["checkpoint"] is None
    assert report["finding"] == {
        "kind": "altered",
        "position": position,
        "ref": "KT-HH-0001",
        "subject_kind": "household",
        "version": 5,
        "event": "disbursed",
        "message": f"event at position {position} {ALTERED}",
    }


def test_verify_json_of_an_intact_ledger(loaded: Run, target: str) -> None:
    """--json of an intact ledger: ok, every event counted, no finding."""
    result = loaded("verify", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    rows = stored(target)
    assert report["ok"] is True
    assert report["events"] == len(rows)
    assert report["head_position"] == rows[-1][0]
    assert re.fullmatch(r"[0-9a-f]{64}", report["head_hash"])
    assert report["finding"] is None


# ----------------------------------------------------------------- checkpoints


def signing_key(tmp_path: Path) -> tuple[Path, str]:
    """The auditors' signing key, made once per test away from the ledger, and its public key."""
    path = tmp_path / "audit" / "signing-key.pem"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        made = CliRunner().invoke(main, ["checkpoint-key", str(path)])
        assert made.exit_code == 0, made.output
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return path, base64.b64encode(raw).decode()


def checkpoint(run: Run, target: str, out: Path, tmp_path: Path) -> Result:
    """Write a checkpoint signed with the test's signing key (see :func:`signing_key`)."""
    del target
    key, _ = signing_key(tmp_path)
    return run("checkpoint", str(out), "--key", str(key))


def verify_against(run: Run, out: Path, tmp_path: Path, *args: str) -> Result:
    """``verify --checkpoint OUT --public-key`` pinned to the test's signing key."""
    _, public = signing_key(tmp_path)
    return run("verify", "--checkpoint", str(out), "--public-key", public, *args)


def test_checkpoint_writes_a_signed_head_that_verify_accepts(
    loaded: Run, target: str, tmp_path: Path
) -> None:
    """The file names position, hash, count, time and ledger id, with key and signature."""
    out = tmp_path / "cp-1.json"
    result = checkpoint(loaded, target, out, tmp_path)
    assert result.exit_code == 0, result.output
    signed = json.loads(out.read_text())
    rows = stored(target)
    assert set(signed) == {
        "position",
        "head_hash",
        "events",
        "created_at",
        "ledger",
        "public_key",
        "signature",
    }
    assert (signed["position"], signed["events"]) == (rows[-1][0], len(rows))
    assert signed["public_key"] == signing_key(tmp_path)[1]
    created = dt.datetime.fromisoformat(signed["created_at"])
    assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert result.stderr == (
        f"checkpoint: {len(rows)} events, head at position {rows[-1][0]}, "
        f"ledger {signed['ledger']}, signed by {signed['public_key']}\n"
    )
    verified = verify_against(loaded, out, tmp_path)
    assert (verified.exit_code, verified.stdout) == (0, f"ok: {len(rows)} events\n")
    assert f"the log extends checkpoint {out}" in verified.stderr


def test_checkpoint_key_writes_an_owner_only_key_and_prints_its_public_key(
    tmp_path: Path,
) -> None:
    """The private key is 0600 PEM, the public key goes to stdout, an existing file is kept."""
    path = tmp_path / "signing.pem"
    made = CliRunner().invoke(main, ["checkpoint-key", str(path)])
    assert made.exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert made.stdout == base64.b64encode(raw).decode() + "\n"
    before = path.read_bytes()
    again = CliRunner().invoke(main, ["checkpoint-key", str(path)])
    assert again.exit_code == 2
    assert "a signing key is never replaced" in again.stderr
    assert path.read_bytes() == before


def test_checkpoint_without_a_key_is_a_usage_error_and_creates_no_key(
    loaded: Run, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --key and no $DINSOS_LEDGER_SIGNING_KEY: exit 2, nothing written, nothing beside the ledger."""
    monkeypatch.delenv("DINSOS_LEDGER_SIGNING_KEY", raising=False)
    out = tmp_path / "cp.json"
    result = loaded("checkpoint", str(out))
    assert result.exit_code == 2
    assert "a checkpoint needs a signing key kept away from the ledger" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()
    if not target.startswith("postgresql://"):
        assert not Path(target + ".signing-key.pem").exists()
        beside = {p.name for p in Path(target).parent.iterdir()}
        assert not any("signing" in name for name in beside)


def test_checkpoint_never_creates_a_missing_key_file(
    loaded: Run, target: str, tmp_path: Path
) -> None:
    """A --key path that does not exist is exit 2 naming it; the path stays absent."""
    missing = tmp_path / "nowhere.pem"
    result = loaded("checkpoint", str(tmp_path / "cp.json"), "--key", str(missing))
    assert result.exit_code == 2
    assert f"key file '{missing}' does not exist" in result.stderr
    assert not missing.exists()
    from_env = loaded(
        "checkpoint", str(tmp_path / "cp.json"), env={"DINSOS_LEDGER_SIGNING_KEY": str(missing)}
    )
    assert from_env.exit_code == 2
    assert not missing.exists()
    del target


def test_import_writes_a_checkpoint_after_each_import(
    run: Run, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`import --checkpoint OUT --key FILE` signs the head once the import is recorded."""
    monkeypatch.delenv("DINSOS_LEDGER_SIGNING_KEY", raising=False)
    key, _ = signing_key(tmp_path)
    first = tmp_path / "cp-1.json"
    result = run("import", str(FIELD_OFFICE), "--checkpoint", str(first), "--key", str(key))
    assert result.exit_code == 1  # the field-office file has rejects; the import is recorded
    assert json.loads(first.read_text())["events"] == len(stored(target))
    assert verify_against(run, first, tmp_path).exit_code == 0
    more = tmp_path / "more.jsonl"
    more.write_text(
        json.dumps(
            {
                "id": "more-1",
                "command": "follow_up",
                "ref": "KT-HH-0001",
                "on": "2025-06-01",
                "actor": "petugas",
                "outcome": "visited",
            }
        )
        + "\n"
    )
    second = tmp_path / "cp-2.json"
    env = {"DINSOS_LEDGER_SIGNING_KEY": str(key)}
    assert run("import", str(more), "--checkpoint", str(second), env=env).exit_code == 0
    assert json.loads(second.read_text())["events"] == len(stored(target))
    for path in (first, second):
        assert verify_against(run, path, tmp_path).exit_code == 0


def test_import_with_a_checkpoint_but_no_key_records_nothing(
    run: Run, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing key or a taken checkpoint name is exit 2 before a single line is applied."""
    monkeypatch.delenv("DINSOS_LEDGER_SIGNING_KEY", raising=False)
    out = tmp_path / "cp.json"
    no_key = run("import", str(FIELD_OFFICE), "--checkpoint", str(out))
    assert no_key.exit_code == 2
    assert "a checkpoint needs a signing key kept away from the ledger" in no_key.stderr
    key, _ = signing_key(tmp_path)
    out.write_text("{}")
    taken = run("import", str(FIELD_OFFICE), "--checkpoint", str(out), "--key", str(key))
    assert taken.exit_code == 2
    assert f"{out} exists" in taken.stderr
    assert run("import", str(FIELD_OFFICE), "--key", str(key)).exit_code == 2
    assert "Traceback" not in no_key.output + taken.output
    if not target.startswith("postgresql://"):
        assert not Path(target).exists() or not stored(target)


def test_a_broken_chain_is_not_checkpointed(loaded: Run, target: str, tmp_path: Path) -> None:
    """Signing a tampered head would launder it: exit 1, no file written."""
    position = position_of(target, "KT-HH-0001", 5)
    change_amount(target, position)
    out = tmp_path / "cp.json"
    result = checkpoint(loaded, target, out, tmp_path)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: the chain does not verify, so it is not checkpointed: "
        f"altered at position {position} (KT-HH-0001, household, version 5, disbursed): "
    )
    assert not out.exists()


def test_checkpoint_keeps_an_existing_file_unless_forced(
    loaded: Run, target: str, tmp_path: Path
) -> None:
    """A checkpoint is evidence: it is not overwritten by accident."""
    out = tmp_path / "cp.json"
    assert checkpoint(loaded, target, out, tmp_path).exit_code == 0
    before = out.read_text()
    again = checkpoint(loaded, target, out, tmp_path)
    assert again.exit_code == 2
    assert again.stderr == (
        f"Error: {out} exists: a checkpoint is evidence; choose a new name or give --force\n"
    )
    assert out.read_text() == before
    key, _ = signing_key(tmp_path)
    assert loaded("checkpoint", str(out), "--force", "--key", str(key)).exit_code == 0


def test_checkpoint_to_stdout(loaded: Run, target: str, tmp_path: Path) -> None:
    """`checkpoint -` prints the signed JSON, for piping to storage elsewhere."""
    key, _ = signing_key(tmp_path)
    result = loaded("checkpoint", "-", env={"DINSOS_LEDGER_SIGNING_KEY": str(key)})
    assert result.exit_code == 0
    assert json.loads(result.stdout)["events"] == len(stored(target))


def test_a_checkpoint_finds_a_truncated_tail(loaded: Run, target: str, tmp_path: Path) -> None:
    """Deleting the last events and their links passes plain verify, not --checkpoint."""
    out = tmp_path / "cp.json"
    assert checkpoint(loaded, target, out, tmp_path).exit_code == 0
    head = json.loads(out.read_text())["position"]
    tamper(target, "DELETE FROM {events} WHERE {pos} > ?", (head - 2,))
    tamper(target, "DELETE FROM {chain} WHERE position > ?", (head - 2,))
    # The projections still hold the cut events: a careful attacker rebuilds them too.
    assert loaded("verify").exit_code == 1
    assert loaded("rebuild").exit_code == 0
    assert loaded("verify").exit_code == 0
    result = verify_against(loaded, out, tmp_path)
    assert result.exit_code == 1
    assert result.stdout.startswith(f"truncated at position {head}: chain ends at position ")


def test_a_checkpoint_edited_after_signing_fails_verification(
    loaded: Run, target: str, tmp_path: Path
) -> None:
    """Changing a signed field breaks the signature: exit 1, the checkpoint is not trusted."""
    out = tmp_path / "cp.json"
    assert checkpoint(loaded, target, out, tmp_path).exit_code == 0
    signed = json.loads(out.read_text())
    signed["events"] -= 1
    out.write_text(json.dumps(signed))
    result = verify_against(loaded, out, tmp_path)
    assert result.exit_code == 1
    assert result.stdout == (
        "checkpoint: checkpoint signature does not verify: a field was changed after signing\n"
    )
    assert result.stderr == f"Error: checkpoint {out} cannot be trusted\n"
    as_json = verify_against(loaded, out, tmp_path, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["finding"]["kind"] == "checkpoint"


def test_a_pinned_public_key_must_have_signed_the_checkpoint(
    loaded: Run, target: str, tmp_path: Path
) -> None:
    """--public-key (base64 or a PEM file) refuses a checkpoint signed by any other key."""
    out = tmp_path / "cp.json"
    assert checkpoint(loaded, target, out, tmp_path).exit_code == 0
    own = json.loads(out.read_text())["public_key"]
    other = Ed25519PrivateKey.generate().public_key()
    other_b64 = base64.b64encode(
        other.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    pem = tmp_path / "auditor.pub.pem"
    pem.write_bytes(
        other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert loaded("verify", "--checkpoint", str(out), "--public-key", own).exit_code == 0
    for pinned in (other_b64, str(pem)):
        refused = loaded("verify", "--checkpoint", str(out), "--public-key", pinned)
        assert refused.exit_code == 1
        assert refused.stdout == (
            "checkpoint: checkpoint must be signed by this ledger's pinned key (got another key)\n"
        )


def test_an_unpinned_checkpoint_is_refused_even_with_a_valid_signature(
    loaded: Run, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker re-signs a rewritten chain with their own key: without a pin it proves nothing."""
    monkeypatch.delenv("DINSOS_LEDGER_TRUSTED_KEYS", raising=False)
    attacker = tmp_path / "attacker.pem"
    assert CliRunner().invoke(main, ["checkpoint-key", str(attacker)]).exit_code == 0
    out = tmp_path / "forged.json"
    assert loaded("checkpoint", str(out), "--key", str(attacker)).exit_code == 0
    signer = json.loads(out.read_text())["public_key"]
    result = loaded("verify", "--checkpoint", str(out))
    assert result.exit_code == 1
    assert result.stdout == (
        f"checkpoint: checkpoint is signed by {signer}, which is not pinned: give --public-key "
        "KEY or list the key in the file named by $DINSOS_LEDGER_TRUSTED_KEYS "
        "(a checkpoint signed by an unknown key proves nothing)\n"
    )
    assert "Traceback" not in result.output
    del target


def test_a_trusted_keys_file_pins_the_signers(loaded: Run, target: str, tmp_path: Path) -> None:
    """$DINSOS_LEDGER_TRUSTED_KEYS lists the keys (comments allowed); others are refused."""
    out = tmp_path / "cp.json"
    assert checkpoint(loaded, target, out, tmp_path).exit_code == 0
    _, public = signing_key(tmp_path)
    other = base64.b64encode(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    trusted = tmp_path / "trusted-keys"
    trusted.write_text(
        f"# auditors of Dinas Sosial\n\n{other} inspektorat\n{public} dinsos-audit\n"
    )
    env = {"DINSOS_LEDGER_TRUSTED_KEYS": str(trusted)}
    accepted = loaded("verify", "--checkpoint", str(out), env=env)
    assert accepted.exit_code == 0, accepted.output
    trusted.write_text(f"{other} inspektorat\n")
    refused = loaded("verify", "--checkpoint", str(out), env=env)
    assert refused.exit_code == 1
    assert "which is not among the trusted keys of $DINSOS_LEDGER_TRUSTED_KEYS" in refused.stdout
    trusted.write_text("not-a-key\n")
    broken = loaded("verify", "--checkpoint", str(out), env=env)
    assert broken.exit_code == 2
    assert f"trusted keys file {trusted}, line 1: 'public key' must be base64" in broken.stderr
    missing = loaded(
        "verify", "--checkpoint", str(out), env={"DINSOS_LEDGER_TRUSTED_KEYS": str(tmp_path / "x")}
    )
    assert missing.exit_code == 2
    assert "cannot read the trusted keys file" in missing.stderr


def test_a_rewritten_and_re_signed_ledger_fails_against_the_pinned_checkpoint(
    loaded: Run, target: str, tmp_path: Path
) -> None:
    """Rewriting a row and recomputing the whole chain passes plain verify, not the pinned checkpoint."""
    out = tmp_path / "cp.json"
    assert checkpoint(loaded, target, out, tmp_path).exit_code == 0
    position = position_of(target, "KT-HH-0001", 5)
    change_amount(target, position)
    recompute_chain(target)
    assert loaded("verify").exit_code == 1  # the stored balances no longer match the events
    assert loaded("rebuild").exit_code == 0
    assert loaded("verify").exit_code == 0  # chain and projections recomputed: all consistent
    attacker = tmp_path / "attacker.pem"
    assert CliRunner().invoke(main, ["checkpoint-key", str(attacker)]).exit_code == 0
    forged = tmp_path / "forged.json"
    assert loaded("checkpoint", str(forged), "--key", str(attacker)).exit_code == 0
    for path in (out, forged):
        result = verify_against(loaded, path, tmp_path)
        assert result.exit_code == 1, path


def test_a_checkpoint_of_another_ledger_is_refused(loaded: Run, tmp_path: Path) -> None:
    """A checkpoint is checked only against the ledger it names."""
    other_db = str(tmp_path / "other.sqlite")
    runner = CliRunner()
    runner.invoke(main, ["--db", other_db, "import", str(FIELD_OFFICE)])
    out = tmp_path / "other-cp.json"
    key, _ = signing_key(tmp_path)
    signed = runner.invoke(main, ["--db", other_db, "checkpoint", str(out), "--key", str(key)])
    assert signed.exit_code == 0
    result = verify_against(loaded, out, tmp_path)
    assert result.exit_code == 1
    theirs = json.loads(out.read_text())["ledger"]
    assert result.stdout.startswith(f"checkpoint: the checkpoint is of ledger {theirs}, but ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint", "{missing}"], "Error: cannot read checkpoint {missing}: "),
        (["--checkpoint", "{not_json}"], "Error: {not_json} is not a checkpoint: it is not JSON"),
        (["--public-key", "AAAA"], "Error: --public-key pins the signer of a --checkpoint"),
    ],
)
def test_verify_usage_errors_exit_2(
    run: Run, tmp_path: Path, args: list[str], message: str
) -> None:
    """An unreadable checkpoint or a pin without one is a usage error, not a finding."""
    names = {"missing": str(tmp_path / "nope.json"), "not_json": str(tmp_path / "notes.txt")}
    (tmp_path / "notes.txt").write_text("hello\n")
    result = run("verify", *(a.format(**names) for a in args))
    assert result.exit_code == 2
    assert message.format(**names) in result.stderr


# ----------------------------------------------------------------- show --known-at


def _recorded(target: str, ref: str) -> list[dt.datetime]:
    with Ledger(target) as ledger:
        return [e.timestamp for e in ledger.events_of(ref)]


def test_show_known_at_reads_a_timestamp_without_offset_as_utc(loaded: Run, target: str) -> None:
    """The same moment written naive, with Z, or in WITA (+08:00) shows the same state."""
    third = _recorded(target, "KT-HH-0001")[2].astimezone(dt.UTC)
    naive = third.replace(tzinfo=None).isoformat()
    zulu = naive + "Z"
    wita = third.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    outputs = {
        loaded("show", "KT-HH-0001", "--known-at", when, "--json").stdout
        for when in (naive, zulu, wita)
    }
    assert len(outputs) == 1
    shown = json.loads(outputs.pop())
    assert shown == json.loads(loaded("show", "KT-HH-0001", "--version", "3", "--json").stdout)


def test_show_known_at_before_registration_exits_1(loaded: Run, target: str) -> None:
    """Before its first event was recorded the subject did not exist yet."""
    first = _recorded(target, "KT-HH-0001")[0].astimezone(dt.UTC)
    moment = first - dt.timedelta(seconds=1)
    result = loaded("show", "KT-HH-0001", "--known-at", moment.isoformat())
    assert result.exit_code == 1
    assert result.stderr == (f"Error: KT-HH-0001 was not yet registered at {moment.isoformat()}\n")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--known-at", "2025-03-01"], "a date without a time"),
        (["--known-at", "yesterday"], "must be an ISO 8601 date and time"),
        (["--known-at", "2025-03-01T00:00:00", "--version", "2"], "not both"),
    ],
)
def test_show_known_at_usage_errors_exit_2(loaded: Run, args: list[str], fragment: str) -> None:
    """A moment that is not one, or two ways of choosing it, is a usage error."""
    result = loaded("show", "KT-HH-0001", *args)
    assert result.exit_code == 2
    assert fragment in result.stderr


# ----------------------------------------------------------------- history


def test_history_json_lists_every_event_without_personal_data(loaded: Run, target: str) -> None:
    """One entry per version with the envelope; no NIK, name or ciphertext anywhere."""
    result = loaded("history", "KT-HH-0004", "--json")
    assert result.exit_code == 0
    entries = json.loads(result.stdout)
    with Ledger(target) as ledger:
        subject: Any = ledger.get("KT-HH-0004", version=1)
        versions = ledger.get("KT-HH-0004").version
    assert [e["version"] for e in entries] == list(range(1, versions + 1))
    assert entries[0]["type"] == "registered"
    assert entries[0]["region"] == "64.08.02.2003"
    for token in (subject.family_card.token, subject.head_nik.token, subject.head_name.token):
        assert token not in result.stdout
    for value in ("6408020201250004", "Maria Hului", "family_card", "head_nik", "head_name"):
        assert value not in result.stdout


def test_history_text_prints_one_line_per_event(loaded: Run) -> None:
    """Text output: `vN  DATE  TYPE  by ACTOR  [COMMAND-ID]  recorded …  fields`."""
    result = loaded("history", "KT-HH-0001")
    lines = result.stdout.splitlines()
    assert len(lines) == 9
    assert re.fullmatch(
        r"v1 +2025-01-06  registered +by petugas\.sangatta  \[ktm-0001\]  recorded \S+\+00:00"
        r"  ref=KT-HH-0001 region=64\.08\.04\.2001 members=4",
        lines[0],
    )
    assert "programme=PKH amount=750000 reference=SP2D/2025/01/0001 channel=bank" in lines[4]
    assert "disbursement_confirmed" in lines[8]
    assert "channel_ref=BRI/2025/01/88121" in lines[8]


def test_history_of_an_unknown_ref_exits_1(loaded: Run) -> None:
    """An unknown subject is a refusal with the ledger's message."""
    result = loaded("history", "KT-HH-9999")
    assert (result.exit_code, result.stderr) == (1, "Error: KT-HH-9999 is not registered\n")


# ----------------------------------------------------------------- forget


def test_forget_of_an_open_subject_exits_1_with_not_closed(loaded: Run) -> None:
    """the command format: forget needs a closed subject; the code and message are shown."""
    result = loaded("forget", "KT-HH-0003", "--actor", "kepala.dinas", "--reason", "UU PDP")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: not_closed: KT-HH-0003 must be closed before it is forgotten (close it first)\n"
    )


def test_forget_shreds_personal_data_and_keeps_the_books(loaded: Run, target: str) -> None:
    """After forget: PII null in show, balances and history unchanged, verify still ok."""
    before = json.loads(loaded("show", "KT-HH-0002", "--json").stdout)
    books = [
        loaded(*args).stdout
        for args in (("balances", "--json"), ("continuity", "--as-of", "2025-06-30", "--json"))
    ]
    assert all(json.loads(book) for book in books)
    history = json.loads(loaded("history", "KT-HH-0002", "--json").stdout)
    exported = loaded("export", "--format", "jsonl", "-").stdout.splitlines()
    events = len(stored(target))
    result = loaded("forget", "KT-HH-0002", "--actor", "kepala.dinas", "--reason", "UU PDP 12")
    assert result.exit_code == 0
    assert re.fullmatch(
        r"forgotten: KT-HH-0002 \(command forget-KT-HH-0002-[0-9a-f]{32}\)\n", result.stderr
    )
    after = json.loads(loaded("show", "KT-HH-0002", "--json").stdout)
    assert (after["family_card"], after["head_nik"], after["head_name"]) == (None, None, None)
    assert after["forgotten"] is True
    assert after["balances"] == before["balances"]
    assert [
        loaded(*args).stdout
        for args in (("balances", "--json"), ("continuity", "--as-of", "2025-06-30", "--json"))
    ] == books
    export = loaded("export", "--format", "jsonl", "-").stdout
    assert export.splitlines()[:-1] == exported
    for value in ("6408040101250002", "6408045507790002", "Siti Aminah"):
        assert value not in export
    now = json.loads(loaded("history", "KT-HH-0002", "--json").stdout)
    assert now[:-1] == history
    assert now[-1]["type"] == "forgotten"
    assert now[-1]["reason"] == "UU PDP 12"
    assert now[-1]["actor"] == "kepala.dinas"
    assert now[-1]["on"] == dt.date.today().isoformat()
    assert loaded("verify").stdout == f"ok: {events + 1} events\n"


def test_forget_with_a_given_id_and_date_is_idempotent(loaded: Run) -> None:
    """Sending the same forget twice records it once; --json prints the outcome."""
    args = (
        "forget",
        "KT-HH-0002",
        "--actor",
        "kd",
        "--reason",
        "r",
        "--on",
        "2025-06-01",
        "--id",
        "erasure-0001",
        "--json",
    )
    first, second = loaded(*args), loaded(*args)
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert json.loads(first.stdout) == {
        "status": "accepted",
        "id": "erasure-0001",
        "code": None,
        "message": None,
    }
    assert json.loads(second.stdout)["status"] == "duplicate"
    history = json.loads(loaded("history", "KT-HH-0002", "--json").stdout)
    assert [e["on"] for e in history if e["type"] == "forgotten"] == ["2025-06-01"]


def test_forget_of_an_unknown_subject_exits_1_and_a_bad_date_exits_2(loaded: Run) -> None:
    """A refusal is exit 1 with its code; a malformed option is a usage error."""
    unknown = loaded("forget", "KT-HH-9999", "--actor", "a", "--reason", "r", "--json")
    assert unknown.exit_code == 1
    assert json.loads(unknown.stdout)["code"] == "unknown_subject"
    bad = loaded("forget", "KT-HH-0002", "--actor", "a", "--reason", "r", "--on", "01-06-2025")
    assert bad.exit_code == 2


# ----------------------------------------------------------------- the guide


@pytest.mark.parametrize("verb", ["verify", "checkpoint", "history", "forget", "show"])
def test_every_audit_verb_is_in_the_auditors_guide(verb: str) -> None:
    """docs/auditors.md explains each verb an auditor uses, with its options."""
    guide = GUIDE.read_text(encoding="utf-8")
    assert f"dinsos-ledger {verb}" in guide or f"--db ledger.sqlite {verb}" in guide
    options = re.findall(r"--[a-z][a-z-]+", CliRunner().invoke(main, [verb, "--help"]).stdout)
    for option in set(options) - {"--help"}:
        assert option in guide, f"{verb} {option} is not documented"


def test_the_signing_key_variable_is_documented() -> None:
    """The environment variable that names the key is in the guide."""
    assert "DINSOS_LEDGER_SIGNING_KEY" in GUIDE.read_text(encoding="utf-8")
