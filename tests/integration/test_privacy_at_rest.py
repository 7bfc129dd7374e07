"""Personal data at rest and in messages (the audit and privacy rules), on SQLite and PostgreSQL.

After a realistic import nothing the database holds (every table, every file) contains a
NIK, family-card number or name in plain text; after ``forget`` the subject's wrapped key
is gone and no copy the ledger can reach opens its personal data; and no reject message
repeats a personal value that was sent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dinsos_ledger import audit
from dinsos_ledger.application import Ledger
from dinsos_ledger.cli import main
from dinsos_ledger.importer import Reject, import_files
from dinsos_ledger.privacy import open_sealed, unwrap_data_key
from dinsos_ledger.scenario import ScenarioConfig, write_scenario
from dinsos_ledger.types import subject_id

DATA = Path(__file__).resolve().parents[1] / "data"
PII_VALUE_RE = re.compile(rb'"(?:family_card|head_nik|head_name|nik|name)"\s*:\s*"([^"\\]+)"')


#: A programme's name is its public title, not personal data.
PROGRAMME_NAME_RE = re.compile(rb'"command"\s*:\s*"define_programme".*?"name"\s*:\s*"([^"\\]+)"')


def personal_values(*files: Path) -> set[bytes]:
    """Every personal value sent in ``files``, accepted or not (even in truncated lines)."""
    values: set[bytes] = set()
    for path in files:
        data = path.read_bytes()
        values.update(match.group(1) for match in PII_VALUE_RE.finditer(data))
        values.difference_update(match.group(1) for match in PROGRAMME_NAME_RE.finditer(data))
    return values


_GLUE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _stands_alone(blob: bytes, value: bytes) -> bool:
    """Whether ``value`` occurs in ``blob`` as plain text, not glued to letters or digits.

    Random ciphertext or base64 may hold a short name by chance, which is no leak. Names
    under four letters count only as quoted JSON strings.
    """
    if len(value) < 4:
        return b'"' + value + b'"' in blob
    at = blob.find(value)
    while at != -1:
        before = blob[at - 1] if at > 0 else None
        end = at + len(value)
        after = blob[end] if end < len(blob) else None
        if before not in _GLUE and after not in _GLUE:
            return True
        at = blob.find(value, at + 1)
    return False


def leaks(blobs: dict[str, bytes], values: set[bytes]) -> list[tuple[str, bytes]]:
    """Which of ``values`` appear as plain text in which of ``blobs``."""
    return [
        (name, value)
        for name, blob in blobs.items()
        for value in sorted(values)
        if _stands_alone(blob, value)
    ]


def stored_blobs(target: str, directory: Path) -> dict[str, bytes]:
    """Everything the store holds, as bytes.

    That is every file beside a SQLite ledger, or every table row in the PostgreSQL schema
    (every column, bytes kept as bytes).
    """
    if not target.startswith("postgresql://"):
        return {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}
    import psycopg

    url, _, query = target.partition("?")
    schema = query.removeprefix("schema=")
    blobs: dict[str, bytes] = {}
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        ]
        assert "dinsos_keys" in tables
        for table in tables:
            parts = []
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                for value in row:
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        parts.append(bytes(value))
                    elif value is not None:
                        parts.append(str(value).encode("utf-8"))
            # The text form too: how a dump (pg_dump, COPY) would write the rows.
            as_text = f'SELECT t::text FROM "{schema}"."{table}" t'
            for (text,) in conn.execute(as_text):
                parts.append(text.encode("utf-8"))
            blobs[table] = b"\n".join(parts)
    return blobs


@pytest.fixture
def store_dir(target: str, tmp_path: Path) -> Path:
    """The directory of a SQLite ledger (the command files live elsewhere)."""
    if target.startswith("postgresql://"):
        return tmp_path
    return Path(target).parent


@pytest.fixture
def command_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The field-office fixture and a generated district scenario, kept outside the store."""
    directory = tmp_path_factory.mktemp("commands")
    scenario = directory / "scenario.jsonl"
    config = ScenarioConfig(
        seed=5, households=150, veterans=12, cohorts=3, erasures=4, end=dt.date(2025, 12, 31)
    )
    write_scenario(config, scenario)
    return [DATA / "field_office.jsonl", scenario]


def test_a_realistic_import_stores_no_personal_data_in_plain_text(
    ledger: Ledger, target: str, store_dir: Path, command_files: list[Path]
) -> None:
    """Neither the events, the keys, the command digests nor the projections hold PII."""
    values = personal_values(*command_files)
    assert len(values) > 300  # the search is not vacuous
    report = import_files(ledger, command_files, on_reject=lambda _: None)
    assert report.accepted > 1000
    ledger.projections.catch_up()
    blobs = stored_blobs(target, store_dir)
    assert leaks(blobs, values) == []
    # The sealed fields are there, as ciphertext: the search looked at the right bytes.
    token = ledger.get("KT-HH-0001").head_nik.token  # type: ignore[attr-defined]
    assert any(token.encode() in blob for blob in blobs.values())


def test_the_search_would_find_personal_data_stored_in_plain_text(
    ledger: Ledger, target: str, store_dir: Path
) -> None:
    """The leak detector itself works: a NIK written as a note is found."""
    ledger.register_household(
        ref="KT-HH-0001",
        on="2025-01-06",
        actor="petugas.01",
        region="64.08.04.2001",
        members=4,
        family_card="6408040101250001",
        head_nik="6408041203820001",
        head_name="Rahmat Hidayat",
    )
    ledger.follow_up(
        ref="KT-HH-0001",
        on="2025-01-07",
        actor="petugas.01",
        outcome="visited",
        note="kepala keluarga 6408041203820001",
    )
    found = leaks(stored_blobs(target, store_dir), {b"6408041203820001", b"Rahmat Hidayat"})
    assert {value for _, value in found} == {b"6408041203820001"}


def test_after_forget_no_reachable_copy_opens_the_personal_data(
    ledger: Ledger, target: str, store_dir: Path
) -> None:
    """The key row is gone; a fresh ledger on the same store opens nothing; ciphertext stays."""
    report = import_files(ledger, [DATA / "field_office.jsonl"], on_reject=lambda _: None)
    assert report.accepted == 60
    ref, sid = "KT-HH-0002", subject_id("KT-HH-0002")
    wrapped = ledger.recorder.select_wrapped_key(sid)  # type: ignore[attr-defined]
    assert wrapped is not None
    sealed = ledger.get(ref).head_nik  # type: ignore[attr-defined]

    ledger.forget(ref=ref, on="2025-06-01", actor="kepala.dinas", reason="UU PDP request 7")

    with Ledger(target) as fresh:
        assert fresh.recorder.select_wrapped_key(sid) is None  # type: ignore[attr-defined]
        assert fresh.keyring.data_key(sid) is None
        assert fresh.keyring.open(sid, "head_nik", sealed) is None
        for version in range(1, fresh.get(ref).version + 1):
            assert fresh.show(ref, version=version)["head_nik"] is None
        # The event rows keep the ciphertext (the log is immutable and the chain intact) …
        first = next(iter(fresh.events_of(ref)))
        assert first.head_nik == sealed
        assert audit.verify(fresh).ok
    # … and neither the table rows nor (once closed) the files keep the wrapped key.
    ledger.disconnect()
    assert not any(wrapped in blob for blob in stored_blobs(target, store_dir).values()), (
        "the shredded key's bytes are still in the store (SQLite without secure_delete?)"
    )


def test_a_backup_taken_before_erasure_still_opens_with_the_master_key(
    ledger: Ledger,
) -> None:
    """What the auditors' guide warns about: erasure cannot reach copies made before it."""
    import_files(ledger, [DATA / "field_office.jsonl"], on_reject=lambda _: None)
    ref, sid = "KT-HH-0002", subject_id("KT-HH-0002")
    backup_of_key = ledger.recorder.select_wrapped_key(sid)  # type: ignore[attr-defined]
    sealed = ledger.get(ref).head_name  # type: ignore[attr-defined]
    ledger.forget(ref=ref, on="2025-06-01", actor="kepala.dinas", reason="UU PDP")
    data_key = unwrap_data_key(ledger.master_key, sid, backup_of_key)
    assert open_sealed(data_key, sid, "head_name", sealed) == "Siti Aminah"


def test_exports_and_reports_hold_no_personal_data_before_or_after_erasure(
    target: str, tmp_path: Path
) -> None:
    """What leaves the ledger (export files, the HTML report) never carries PII."""
    source = DATA / "field_office.jsonl"
    values = personal_values(source)
    runner = CliRunner()

    def run(*args: str) -> None:
        result = runner.invoke(main, ["--db", target, *args], catch_exceptions=False)
        assert result.exit_code in (0, 1), result.output  # 1: the fixture's rejects

    run("import", str(source))
    for stage in ("before", "after"):
        if stage == "after":
            run("forget", "KT-HH-0002", "--actor", "kepala.dinas", "--reason", "UU PDP")
        out = tmp_path / stage
        out.mkdir()
        run("export", "--format", "jsonl", str(out / "events.jsonl"))
        run("export", "--format", "csv", str(out / "events.csv"))
        run("report", str(out / "report"), "--as-of", "2025-06-30")
        blobs = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert len(blobs) >= 3
        assert leaks(blobs, values) == [], stage


# ----------------------------------------------------------------- messages

_BAD = [
    ("register_household", "head_nik", "640804120382000"),
    ("register_household", "head_nik", "64080412038200017"),
    ("register_household", "head_nik", "64080412038200a1"),
    ("register_household", "head_nik", "６４０８０４１２０３８２０００１"),
    ("register_household", "family_card", "640804010125000X"),
    ("register_household", "family_card", " 6408040101250001"),
    ("register_household", "head_name", "Rahmat Hidayat " * 14),
    ("register_household", "head_name", "Rahmat\u0000Hidayat"),
    ("register_veteran", "nik", "64080112034500"),
    ("register_veteran", "nik", "6408011203450001 "),
    ("register_veteran", "name", "Ahmad Saputra bin " * 12),
]


def _registration(command: str, ref: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": f"reg-{ref}",
        "command": command,
        "ref": ref,
        "on": "2025-01-06",
        "actor": "petugas.01",
        "region": "64.08.04.2001",
    }
    if command == "register_household":
        base.update(
            members=4,
            family_card="6408040101250001",
            head_nik="6408041203820001",
            head_name="Rahmat Hidayat",
        )
    else:
        base.update(nik="6408011203450001", name="Ahmad Saputra")
    return base


def _bad_lines() -> Iterator[tuple[str, dict[str, Any]]]:
    for n, (command, field, value) in enumerate(_BAD):
        line = _registration(command, f"KT-XX-{n:04d}")
        line[field] = value
        yield value, line


def test_reject_messages_never_repeat_a_personal_value(ledger: Ledger, tmp_path: Path) -> None:
    """Bad NIKs, family cards and names: a reject says what is wrong, never what the value was."""
    path = tmp_path / "bad.jsonl"
    sent = list(_bad_lines())
    path.write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for _, line in sent), encoding="utf-8"
    )
    rejects: list[Reject] = []
    import_files(ledger, [path], on_reject=rejects.append)
    assert [r.code for r in rejects] == ["invalid"] * len(sent)
    for (value, _), reject in zip(sent, rejects, strict=True):
        shown = json.dumps(reject.to_json(), ensure_ascii=False)
        for piece in {value, value.strip(), value[:16], value.replace("\u0000", "")}:
            assert piece not in shown, reject
            assert json.dumps(piece)[1:-1] not in shown, reject


def test_refusals_of_well_formed_commands_never_repeat_personal_values(ledger: Ledger) -> None:
    """already_registered and id_conflict name the ref and the id, not the person."""
    first = _registration("register_veteran", "KT-VT-0001")
    assert ledger.execute(first).accepted
    again = dict(first, id="reg-again", name="Ahmad Saputra Kedua", nik="6408011203450002")
    conflict = dict(first, name="Ahmad Saputra Lain", nik="6408011203450003")
    for command in (again, conflict):
        outcome = ledger.execute(command)
        assert outcome.rejected
        for value in (command["name"], command["nik"], "Ahmad Saputra", "6408011203450001"):
            assert value not in (outcome.message or "")


def test_the_import_verb_prints_no_personal_value_on_stderr(target: str, tmp_path: Path) -> None:
    """Rejects shown on stderr (file:line: code: message) are as clean as the reject file."""
    path = tmp_path / "bad.jsonl"
    sent = list(_bad_lines())
    path.write_text("".join(json.dumps(line) + "\n" for _, line in sent), encoding="utf-8")
    result = CliRunner().invoke(main, ["--db", target, "import", str(path)])
    assert result.exit_code == 1
    assert result.stderr.count(": invalid: ") == len(sent)
    for value, _ in sent:
        assert value.strip() not in result.output
