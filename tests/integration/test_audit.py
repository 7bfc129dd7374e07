"""Audit on real stores: tampering found and located, checkpoints, point-in-time, erasure.

Tampering is done the way an intruder with database access would: straight in the
tables, behind the ledger's back. The example tests run on SQLite and PostgreSQL; the
property over every single-row alteration runs on SQLite.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import shutil
import sqlite3
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dinsos_ledger import audit, chain
from dinsos_ledger.application import Ledger
from dinsos_ledger.errors import UnknownSubject
from dinsos_ledger.importer import import_files
from dinsos_ledger.scenario import ScenarioConfig, write_scenario
from dinsos_ledger.types import subject_id

from tests.attacker import drop_guards, edit_quietly

DATA = Path(__file__).resolve().parents[1] / "data"
FIELD_OFFICE = DATA / "field_office.jsonl"
PII_KEYS = {"family_card", "head_nik", "head_name", "nik", "name"}


class Raw:
    """The ledger's tables reached directly, as someone with database access would."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.postgres = target.startswith("postgresql://")
        if self.postgres:
            url, _, query = target.partition("?")
            schema = query.removeprefix("schema=")
            self.url = url
            self.tables = {
                "events": f'"{schema}".ledger_events',
                "chain": f'"{schema}".dinsos_chain',
                "keys": f'"{schema}".dinsos_keys',
                "pos": "notification_id",
            }
        else:
            self.path = target
            self.tables = {
                "events": "stored_events",
                "chain": "dinsos_chain",
                "keys": "dinsos_keys",
                "pos": "rowid",
            }

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders, ``{events}``-style table names).

        An edit of the events or chain drops the append-only guards first and puts them
        back after, as an intruder hiding the edit would.
        """
        edit = sql.lstrip().upper().startswith(("UPDATE", "DELETE"))
        if edit and ("{events}" in sql or "{chain}" in sql):
            return edit_quietly(self.target, sql, params)
        sql = sql.format(**self.tables)
        if self.postgres:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                cursor = conn.execute(sql.replace("?", "%s"), params)  # type: ignore[call-overload]
                return list(cursor.fetchall()) if cursor.description else []
        with contextlib.closing(sqlite3.connect(self.path)) as conn, conn:
            return list(conn.execute(sql, params).fetchall())

    def originator(self, ref: str) -> Any:
        """The originator id of ``ref`` as this store keeps it."""
        sid = subject_id(ref)
        return sid if self.postgres else sid.hex

    def state(self, position: int) -> bytes:
        """The stored state at ``position``."""
        return bytes(self.run("SELECT state FROM {events} WHERE {pos} = ?", (position,))[0][0])

    def set_state(self, position: int, state: bytes) -> None:
        """Overwrite the stored state at ``position``."""
        self.run("UPDATE {events} SET state = ? WHERE {pos} = ?", (state, position))


def load_field_office(ledger: Ledger) -> None:
    """Import the field-office fixture (60 accepted commands)."""
    report = import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    assert report.accepted == 60


def position_of(ledger: Ledger, ref: str, version: int) -> int:
    """The log position of ``ref``'s ``version``-th event."""
    wanted = subject_id(ref).hex
    for position, originator_id, stored_version, _, _ in ledger.recorder.iter_rows():
        if originator_id == wanted and stored_version == version:
            return int(position)
    raise AssertionError(f"{ref} v{version} is not stored")


def event_count(ledger: Ledger) -> int:
    """How many events are stored, counted row by row."""
    return sum(1 for _ in ledger.recorder.iter_rows())


def flip_byte(data: bytes, index: int) -> bytes:
    """``data`` with the byte at ``index`` changed."""
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.fixture
def loaded(ledger: Ledger) -> Ledger:
    """A ledger holding the field-office fixture."""
    load_field_office(ledger)
    return ledger


@pytest.fixture
def raw(target: str) -> Raw:
    """Direct access to the ledger's tables."""
    return Raw(target)


def checkpoint_of(ledger: Ledger) -> chain.Checkpoint:
    """A signed checkpoint of the ledger's head, read back as an auditor would."""
    key = Ed25519PrivateKey.generate()
    _, signed = audit.make_checkpoint(ledger, key)
    pinned = base64.b64decode(chain.public_key_text(key))
    return audit.load_checkpoint(json.loads(json.dumps(signed)), pinned)


# ----------------------------------------------------------------- intact ledgers


def test_an_empty_ledger_verifies_with_no_events(ledger: Ledger) -> None:
    """A fresh ledger has an intact, empty chain."""
    report = audit.verify(ledger)
    assert report.ok
    assert report.events == 0
    assert report.finding is None


def test_an_untouched_ledger_verifies_every_stored_event(loaded: Ledger) -> None:
    """Every stored event is verified and the head is the last stored position."""
    report = audit.verify(loaded)
    assert report.ok, report.finding
    assert report.events == event_count(loaded)
    last = max(row[0] for row in loaded.recorder.iter_rows())
    assert report.head_position == last


def test_verification_ignores_events_recorded_while_it_runs(loaded: Ledger) -> None:
    """Writers may go on recording during a verification without a false finding."""
    before = event_count(loaded)
    real_rows = loaded.recorder.iter_rows
    written = []

    def rows_then_write(**kwargs: Any) -> Iterator[Any]:
        for row in real_rows(**kwargs):
            if not written:
                # A writer commits after the verification started reading.
                written.append(
                    loaded.follow_up(ref="KT-HH-0001", on="2025-06-01", actor="x", outcome="phoned")
                )
            yield row

    loaded.recorder.iter_rows = rows_then_write
    try:
        report = audit.verify(loaded)
    finally:
        del loaded.recorder.iter_rows
    assert report.ok, report.finding
    assert report.events == before
    assert audit.verify(loaded).events == before + 1


# ----------------------------------------------------------------- tampering


def test_one_changed_byte_of_a_state_is_found_at_its_event(loaded: Ledger, raw: Raw) -> None:
    """A single byte changed in a stored state is named by position, subject and version."""
    position = position_of(loaded, "KT-HH-0001", 5)
    state = raw.state(position)
    raw.set_state(position, flip_byte(state, len(state) // 2))
    report = audit.verify(loaded)
    assert not report.ok
    assert report.finding == audit.AuditFinding(
        kind="altered",
        position=position,
        message=report.finding.message if report.finding else "",
        ref="KT-HH-0001",
        subject_kind="household",
        version=5,
        event="disbursed",
    )
    assert report.events == position - 1


def test_a_changed_amount_is_found_even_though_the_json_stays_valid(
    loaded: Ledger, raw: Raw
) -> None:
    """Raising a disbursed amount in place (the classic fraud) breaks the chain there."""
    position = position_of(loaded, "KT-HH-0001", 5)
    state = raw.state(position)
    assert b'"amount":750000' in state
    raw.set_state(position, state.replace(b'"amount":750000', b'"amount":7500000'))
    report = audit.verify(loaded)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", position)


def test_a_deleted_event_row_is_found_as_removed(loaded: Ledger, raw: Raw) -> None:
    """A row deleted while its link remains is reported as removed at its position."""
    position = position_of(loaded, "KT-HH-0003", 2)
    raw.run("DELETE FROM {events} WHERE {pos} = ?", (position,))
    report = audit.verify(loaded)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("removed", position)
    assert report.finding.ref is None  # the row is gone: nothing left to describe


def test_a_row_deleted_with_its_link_shows_at_the_next_event(loaded: Ledger, raw: Raw) -> None:
    """Deleting a row and its link breaks the chain at the following event."""
    position = position_of(loaded, "KT-HH-0003", 2)
    raw.run("DELETE FROM {events} WHERE {pos} = ?", (position,))
    raw.run("DELETE FROM {chain} WHERE position = ?", (position,))
    following = min(row[0] for row in loaded.recorder.iter_rows() if row[0] > position)
    report = audit.verify(loaded)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", following)


def test_a_row_inserted_directly_is_found_as_inserted(loaded: Ledger, raw: Raw) -> None:
    """A forged allocation inserted behind the ledger's back is named at its position."""
    position = position_of(loaded, "KT-HH-0001", 3)
    topic, state = raw.run("SELECT topic, state FROM {events} WHERE {pos} = ?", (position,))[0]
    raw.run(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?)",
        (raw.originator("KT-HH-0001"), 99, topic, bytes(state)),
    )
    inserted = raw.run("SELECT MAX({pos}) FROM {events}")[0][0]
    report = audit.verify(loaded)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("inserted", inserted)
    assert (report.finding.ref, report.finding.version, report.finding.event) == (
        "KT-HH-0001",
        99,
        "allocated",
    )


def test_a_row_hidden_below_the_first_position_is_found(
    loaded: Ledger, raw: Raw, target: str
) -> None:
    """A forged event at position -1 changes the subject's state; verify must not miss it."""
    position = position_of(loaded, "KT-HH-0001", 3)
    topic, state = raw.run("SELECT topic, state FROM {events} WHERE {pos} = ?", (position,))[0]
    forged = bytes(state).replace(b"PKH-2025-01-HH0001", b"PKH-2025-01-FORGED")
    version = loaded.get("KT-HH-0001").version + 1
    raw.run(
        "INSERT INTO {events} ({pos}, originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?, ?)",
        (-1, raw.originator("KT-HH-0001"), version, topic, forged),
    )
    with Ledger(target) as fresh:
        # The repository reads the forged allocation …
        assert fresh.show("KT-HH-0001")["balances"]["PKH"]["allocated"] == 2 * 750_000 + 750_000
        report = audit.verify(fresh)
    assert report.finding is not None  # … so the audit must find it
    assert (report.finding.kind, report.finding.position) == ("inserted", -1)
    assert (report.finding.ref, report.finding.version) == ("KT-HH-0001", version)


def test_two_swapped_states_are_found_at_the_first(loaded: Ledger, raw: Raw) -> None:
    """Swapping two events' states (each a valid event) is found at the earlier one."""
    first = position_of(loaded, "KT-HH-0001", 3)
    second = position_of(loaded, "KT-HH-0001", 4)
    a, b = raw.state(first), raw.state(second)
    raw.set_state(first, b)
    raw.set_state(second, a)
    report = audit.verify(loaded)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", first)


def test_a_changed_link_is_found_at_its_position(loaded: Ledger, raw: Raw) -> None:
    """Tampering with the chain table itself is found too."""
    position = position_of(loaded, "KT-VT-0001", 1)
    raw.run("UPDATE {chain} SET hash = ? WHERE position = ?", (bytes(32), position))
    report = audit.verify(loaded)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", position)


def test_a_null_state_is_reported_not_crashed_on(loaded: Ledger, raw: Raw) -> None:
    """A column emptied to NULL is a finding at its row, not a traceback."""
    position = position_of(loaded, "KT-HH-0002", 2)
    raw.run("UPDATE {events} SET state = NULL WHERE {pos} = ?", (position,))
    report = audit.verify(loaded)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", position)


# PostgreSQL refuses values of the wrong type; SQLite keeps any value in any column.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


@sqlite_only
@pytest.mark.parametrize(
    "value",
    [pytest.param("'x'", id="version-as-text"), pytest.param("2.5", id="version-as-real")],
)
def test_a_version_of_the_wrong_type_is_reported_on_sqlite(
    loaded: Ledger, raw: Raw, value: str
) -> None:
    """A version made text or real is located, not a traceback."""
    position = position_of(loaded, "KT-HH-0002", 2)
    raw.run(f"UPDATE {{events}} SET originator_version = {value} WHERE {{pos}} = ?", (position,))
    report = audit.verify(loaded)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", position)


@sqlite_only
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("originator_id", "'not-a-uuid'"),
        ("state", "'text, not a blob'"),
        ("topic", "X'00ff'"),
    ],
)
def test_any_column_of_the_wrong_type_is_reported_on_sqlite(
    loaded: Ledger, raw: Raw, column: str, value: str
) -> None:
    """Values the recorder cannot even read stand in as altered rows; the walk goes on."""
    position = position_of(loaded, "KT-HH-0002", 2)
    raw.run(f"UPDATE {{events}} SET {column} = {value} WHERE {{pos}} = ?", (position,))
    report = audit.verify(loaded)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", position)
    assert report.events == position - 1


# ----------------------------------------------------------------- checkpoints


def test_a_truncated_tail_passes_alone_but_not_against_a_checkpoint(
    loaded: Ledger, raw: Raw
) -> None:
    """Cutting off the last events leaves no trace inside the database; a checkpoint sees it."""
    checkpoint = checkpoint_of(loaded)
    keep = checkpoint.position - 3
    raw.run("DELETE FROM {events} WHERE {pos} > ?", (keep,))
    raw.run("DELETE FROM {chain} WHERE position > ?", (keep,))
    assert audit.verify(loaded).ok
    report = audit.verify(loaded, checkpoint=checkpoint)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("truncated", checkpoint.position)


def test_a_consistently_rewritten_chain_is_found_against_a_checkpoint(
    loaded: Ledger, raw: Raw
) -> None:
    """Someone who rewrites an event and every link after it fools verify, not a checkpoint."""
    checkpoint = checkpoint_of(loaded)
    position = position_of(loaded, "KT-HH-0001", 5)
    raw.set_state(position, raw.state(position).replace(b"750000", b"7500000"))
    previous = dict(loaded.recorder.iter_links())[position - 1]
    rows = loaded.recorder.iter_rows(after=position - 1)
    for at, digest in list(chain.links_of(rows, previous)):
        raw.run("UPDATE {chain} SET hash = ? WHERE position = ?", (digest, at))
    assert audit.verify(loaded).ok
    report = audit.verify(loaded, checkpoint=checkpoint)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.position) == ("altered", checkpoint.position)


def test_a_ledger_that_grew_still_extends_its_checkpoint(loaded: Ledger) -> None:
    """Events recorded after a checkpoint do not break it."""
    checkpoint = checkpoint_of(loaded)
    loaded.follow_up(ref="KT-HH-0001", on="2025-06-01", actor="pendamping.pkh", outcome="visited")
    report = audit.verify(loaded, checkpoint=checkpoint)
    assert report.ok, report.finding
    assert report.events == checkpoint.events + 1


def test_a_checkpoint_vouches_for_the_verified_head(loaded: Ledger) -> None:
    """The checkpoint names the head position, hash, count and the ledger's id."""
    checkpoint = checkpoint_of(loaded)
    report = audit.verify(loaded)
    assert checkpoint.position == report.head_position
    assert checkpoint.head_hash == report.head_hash
    assert checkpoint.events == report.events
    assert checkpoint.ledger == audit.ledger_id(loaded)


def test_the_ledger_id_is_stable_across_connections(target: str) -> None:
    """The id is made once and read back by every later connection."""
    with Ledger(target) as first:
        assert audit.ledger_id(first) is None
        made = audit.ledger_id(first, create=True)
        assert made is not None
        assert audit.ledger_id(first, create=True) == made
    with Ledger(target) as second:
        assert audit.ledger_id(second) == made


def test_a_checkpoint_of_another_ledger_is_a_finding(loaded: Ledger, tmp_path: Path) -> None:
    """A checkpoint is only ever checked against the ledger it was made of."""
    with Ledger(str(tmp_path / "other.sqlite")) as other:
        load_field_office(other)
        foreign = checkpoint_of(other)
    report = audit.verify(loaded, checkpoint=foreign)
    assert report.finding is not None
    assert report.finding.kind == "checkpoint"
    assert foreign.ledger in report.finding.message


def test_a_broken_chain_is_not_checkpointed(loaded: Ledger, raw: Raw) -> None:
    """Signing a tampered head would launder it: make_checkpoint refuses."""
    position = position_of(loaded, "KT-HH-0001", 2)
    raw.set_state(position, flip_byte(raw.state(position), 3))
    with pytest.raises(audit.ChainBroken, match=f"altered at position {position}"):
        audit.make_checkpoint(loaded, Ed25519PrivateKey.generate())


# ----------------------------------------------------------------- the property


def _small_ledger(path: Path) -> None:
    with Ledger(str(path)) as ledger:
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
        ledger.register_veteran(
            ref="KT-VT-0001",
            on="2025-01-07",
            actor="petugas.01",
            region="64.08.01.2004",
            nik="6408011203450001",
            name="Ahmad Saputra",
        )
        ledger.assess(ref="KT-HH-0001", on="2025-01-08", actor="petugas.01", desil=2)
        ledger.assess(ref="KT-VT-0001", on="2025-01-08", actor="petugas.01", eligible=True)
        ledger.allocate(
            ref="KT-HH-0001",
            on="2025-01-09",
            actor="operator",
            programme="PKH",
            amount=750_000,
            period="2025-01",
            reference="PKH-1",
        )
        ledger.disburse(
            ref="KT-HH-0001",
            on="2025-01-10",
            actor="operator",
            programme="PKH",
            amount=750_000,
            reference="SP2D-1",
            channel="bank",
        )
        ledger.follow_up(ref="KT-VT-0001", on="2025-01-11", actor="pendamping", outcome="visited")
        ledger.close(ref="KT-VT-0001", on="2025-01-12", actor="operator", reason="moved")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SQLite ledger (8 events) that each example copies before tampering."""
    directory = tmp_path_factory.mktemp("template")
    _small_ledger(directory / "ledger.sqlite")
    return directory


SMALL_EVENTS = 8

alterations = st.one_of(
    st.tuples(st.just("state"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("topic"), st.text(max_size=60)),
    st.tuples(st.just("originator_id"), st.uuids().map(lambda u: u.hex)),
    st.tuples(st.just("originator_version"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("rowid"), st.integers(-1000, 1000)),
    st.tuples(st.just("hash"), st.integers(0, 31), st.integers(1, 255)),
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(position=st.integers(1, SMALL_EVENTS), alteration=alterations)
def test_any_single_row_alteration_is_found_and_located(
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    position: int,
    alteration: tuple[Any, ...],
) -> None:
    """Whatever one column of one stored row becomes, verify names that row (SQLite)."""
    directory = tmp_path_factory.mktemp("tampered")
    for name in ("ledger.sqlite", "ledger.sqlite.key"):
        shutil.copy(template / name, directory / name)
    path = directory / "ledger.sqlite"
    column, *args = alteration
    expected = position
    drop_guards(str(path))
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        ((oid, version, topic, state),) = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "WHERE rowid = ?",
            (position,),
        ).fetchall()
        if column == "state":
            index = args[0] % len(state)
            new: Any = state[:index] + bytes([state[index] ^ args[1]]) + state[index + 1 :]
        elif column == "hash":
            ((digest,),) = conn.execute(
                "SELECT hash FROM dinsos_chain WHERE position = ?", (position,)
            ).fetchall()
            new = digest[: args[0]] + bytes([digest[args[0]] ^ args[1]]) + digest[args[0] + 1 :]
            conn.execute("UPDATE dinsos_chain SET hash = ? WHERE position = ?", (new, position))
            new = None
        else:
            new = args[0]
            assume(
                new
                != {
                    "topic": topic,
                    "originator_id": oid,
                    "originator_version": version,
                    "rowid": position,
                }[column]
            )
        if column == "rowid":
            assume(not 1 <= new <= SMALL_EVENTS)
            expected = min(position, new)
        if column == "originator_version":
            clash = conn.execute(
                "SELECT 1 FROM stored_events WHERE originator_id = ? AND originator_version = ?",
                (oid, new),
            ).fetchall()
            assume(not clash)
        if new is not None:
            conn.execute(f"UPDATE stored_events SET {column} = ? WHERE rowid = ?", (new, position))
    with Ledger(str(path)) as ledger:
        report = audit.verify(ledger)
    assert not report.ok
    assert report.finding is not None
    assert report.finding.position == expected
    shutil.rmtree(directory, ignore_errors=True)


# ----------------------------------------------------------------- bounded memory


def _peaks(directory: Path, households: int) -> tuple[int, int, int]:
    """Events, peak traced memory of verify, and of holding every row at once."""
    commands = directory / f"scenario-{households}.jsonl"
    config = ScenarioConfig(
        seed=11, households=households, veterans=10, cohorts=2, end=dt.date(2025, 12, 31)
    )
    write_scenario(config, commands)
    with Ledger(str(directory / f"ledger-{households}.sqlite")) as ledger:
        import_files(ledger, [commands], on_reject=lambda _: None)
        audit.verify(ledger)  # warm caches, so only the walk itself is measured below
        tracemalloc.start()
        try:
            report = audit.verify(ledger)
            _, streaming = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            rows = list(ledger.recorder.iter_rows())
            _, whole = tracemalloc.get_traced_memory()
            del rows
        finally:
            tracemalloc.stop()
    assert report.ok
    return report.events, streaming, whole


def test_verify_memory_does_not_grow_with_the_log(tmp_path: Path) -> None:
    """Verifying streams page by page: a log three times longer needs about the same memory."""
    small_events, small_peak, small_whole = _peaks(tmp_path, 200)
    big_events, big_peak, big_whole = _peaks(tmp_path, 800)
    assert big_events > 3 * small_events
    assert big_whole > 2.5 * small_whole  # holding the log in full does grow
    assert big_peak < 1.5 * small_peak, (small_peak, big_peak)


# ----------------------------------------------------------------- point in time


def _split(tmp_path: Path, at_line: int) -> tuple[Path, Path]:
    lines = FIELD_OFFICE.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"".join(lines[:at_line]))
    second.write_bytes(b"".join(lines[at_line:]))
    return first, second


def _refs() -> set[str]:
    refs = set()
    for line in FIELD_OFFICE.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            command = json.loads(line)
            refs.update(
                value
                for key in ("ref", "cohort", "household")
                if isinstance(value := command.get(key), str)
            )
    return refs


def test_show_known_at_equals_a_ledger_that_saw_only_what_was_recorded_by_then(
    ledger: Ledger, tmp_path: Path
) -> None:
    """The state known at T is that of a ledger fed only the commands recorded by T.

    One difference is by design: a subject forgotten after T reads its personal data as
    null even as of T, because erasure destroys the key for every point in time.
    """
    first, second = _split(tmp_path, 60)
    import_files(ledger, [first], on_reject=lambda _: None)
    moment = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    import_files(ledger, [second], on_reject=lambda _: None)
    forgotten_since = set()
    compared = 0
    with Ledger(":memory:") as witness:
        import_files(witness, [first], on_reject=lambda _: None)
        for ref in sorted(_refs()):
            try:
                expected = witness.show(ref)
            except UnknownSubject:
                with pytest.raises(UnknownSubject, match=r"not yet registered|is not registered"):
                    ledger.show(ref, known_at=moment)
                continue
            shown = ledger.show(ref, known_at=moment)
            if ledger.show(ref).get("forgotten"):
                forgotten_since.add(ref)
                expected = {k: None if k in PII_KEYS else v for k, v in expected.items()}
            assert shown == expected, ref
            compared += 1
    assert compared >= 10
    assert forgotten_since == {"KT-VT-0002", "KT-HH-0004"}


def test_before_its_first_event_a_subject_is_not_yet_registered(loaded: Ledger) -> None:
    """Asking for a moment before the registration was recorded is a clear refusal."""
    first = loaded.events_of("KT-HH-0001")[0].timestamp
    just_before = first - dt.timedelta(microseconds=1)
    with pytest.raises(UnknownSubject, match="KT-HH-0001 was not yet registered at"):
        loaded.show("KT-HH-0001", known_at=just_before)
    assert loaded.show("KT-HH-0001", known_at=first)["version"] == 1


def test_known_at_each_recorded_timestamp_equals_the_matching_version(loaded: Ledger) -> None:
    """At the moment event N was recorded, the subject is as after its N-th event."""
    for event in loaded.events_of("KT-HH-0001"):
        at = loaded.show("KT-HH-0001", known_at=event.timestamp)
        assert at == loaded.show("KT-HH-0001", version=event.originator_version)


def test_known_at_and_version_together_are_refused(loaded: Ledger) -> None:
    """Two ways of choosing the moment cannot both be given."""
    with pytest.raises(ValueError, match="not both"):
        loaded.show("KT-HH-0001", version=1, known_at=dt.datetime.now(dt.UTC))


# ----------------------------------------------------------------- history


def test_history_lists_every_event_in_order_without_personal_data(loaded: Ledger) -> None:
    """One entry per version, envelope first, and no personal field or ciphertext."""
    entries = audit.history(loaded, "KT-HH-0004")
    subject = loaded.get("KT-HH-0004")
    assert [e["version"] for e in entries] == list(range(1, subject.version + 1))
    assert entries[0]["type"] == "registered"
    assert entries[-1]["type"] == "forgotten"
    for entry in entries:
        assert list(entry)[:7] == [
            "version",
            "type",
            "on",
            "recorded",
            "actor",
            "command_id",
            "note",
        ]
        assert not PII_KEYS & set(entry)
    text = json.dumps(entries)
    for field in ("family_card", "head_nik", "head_name"):
        assert getattr(subject, field).token not in text


def test_history_types_are_snake_case_past_tense(loaded: Ledger) -> None:
    """Event types read like the documented words (allocated, disbursement_reversed, …)."""
    types = {entry["type"] for entry in audit.history(loaded, "KT-HH-0003")}
    assert {"registered", "assessed", "allocated", "disbursed", "disbursement_reversed"} <= types


def test_history_keeps_business_facts(loaded: Ledger) -> None:
    """Amounts, programmes, references and dates stay readable: they are the books."""
    entry = next(e for e in audit.history(loaded, "KT-HH-0001") if e["type"] == "disbursed")
    assert entry["programme"] == "PKH"
    assert type(entry["amount"]) is int
    assert entry["on"] == "2025-01-27"
    assert dt.datetime.fromisoformat(entry["recorded"]).utcoffset() == dt.timedelta(0)


def test_history_of_an_unknown_subject_is_refused(loaded: Ledger) -> None:
    """An unknown ref is UnknownSubject, not an empty history."""
    with pytest.raises(UnknownSubject, match="KT-HH-9999 is not registered"):
        audit.history(loaded, "KT-HH-9999")


# ----------------------------------------------------------------- erasure


def test_forget_keeps_balances_timelines_and_the_chain(loaded: Ledger, target: str) -> None:
    """After erasure only the personal data changes; the books and the chain stay whole."""
    ref = "KT-HH-0002"  # closed on 2025-03-01, not forgotten
    as_of = dt.date(2025, 6, 30)
    shown = loaded.show(ref)
    assert shown["head_nik"] is not None
    balances = [r.to_json() for r in loaded.projections.balances(as_of)]
    continuity = [t.to_json() for t in loaded.projections.continuity(as_of)]
    history = audit.history(loaded, ref)
    before = audit.verify(loaded)

    loaded.forget(ref=ref, on="2025-06-01", actor="kepala.dinas", reason="UU PDP request 12")

    after = loaded.show(ref)
    assert {k: after[k] for k in ("family_card", "head_nik", "head_name")} == dict.fromkeys(
        ("family_card", "head_nik", "head_name")
    )
    changed = {k for k in after if after[k] != shown[k]}
    assert changed == {"version", "forgotten", "family_card", "head_nik", "head_name"}
    assert [r.to_json() for r in loaded.projections.balances(as_of)] == balances
    assert [t.to_json() for t in loaded.projections.continuity(as_of)] == continuity
    assert audit.history(loaded, ref)[:-1] == history
    verified = audit.verify(loaded)
    assert verified.ok
    assert verified.events == before.events + 1
    with Ledger(target) as fresh:
        sid = subject_id(ref)
        subject = fresh.get(ref)
        assert fresh.recorder.select_wrapped_key(sid) is None
        assert fresh.keyring.open(sid, "head_nik", subject.head_nik) is None
        assert fresh.show(ref, version=1)["head_nik"] is None


def test_forget_of_an_open_subject_is_refused_and_changes_nothing(loaded: Ledger) -> None:
    """The documented not_closed: the key stays, the personal data still opens."""
    outcome = loaded.execute(audit.forget_command("KT-HH-0003", actor="x", reason="r"))
    assert (outcome.status, outcome.code) == ("rejected", "not_closed")
    assert loaded.show("KT-HH-0003")["head_name"] == "Yohanes Lawing"
    assert loaded.recorder.select_wrapped_key(subject_id("KT-HH-0003")) is not None


def test_the_forget_command_built_for_the_verb_is_accepted(loaded: Ledger) -> None:
    """The verb's default id and date make a valid command the ledger records."""
    outcome = loaded.execute(
        audit.forget_command("KT-HH-0002", actor="kepala.dinas", reason="UU PDP")
    )
    assert outcome.accepted
    assert outcome.id is not None
    assert outcome.id.startswith("forget-KT-HH-0002-")
    assert loaded.show("KT-HH-0002")["forgotten"] is True
    assert uuid.UUID(hex=outcome.id.rsplit("-", 1)[1])


# ----------------------------------------------------------------- snapshots


def _long_history(ledger: Ledger, allocations: int) -> None:
    ledger.register_household(
        ref="KT-HH-0001",
        on="2025-01-01",
        actor="petugas.01",
        region="64.08.04.2001",
        members=4,
        family_card="6408040101250001",
        head_nik="6408045505800001",
        head_name="Siti Aminah",
    )
    ledger.assess(ref="KT-HH-0001", on="2025-01-01", actor="petugas.01", desil=2)
    ledger.apply_batch(
        [
            {
                "id": f"alloc-{i}",
                "command": "allocate",
                "ref": "KT-HH-0001",
                "on": "2025-01-02",
                "actor": "petugas.01",
                "programme": "PKH",
                "amount": 1000 + i,
                "period": "2025-01",
                "reference": f"R-{i}",
            }
            for i in range(allocations)
        ]
    )


def _snapshot_table(raw: Raw) -> str:
    return (
        raw.tables["events"].replace("ledger_events", "ledger_snapshots")
        if raw.postgres
        else ("stored_snapshots")
    )


def test_an_intact_snapshot_passes_verification(ledger: Ledger, raw: Raw) -> None:
    """A ledger with snapshots verifies: each snapshot equals its replayed events."""
    _long_history(ledger, 230)
    assert raw.run(f"SELECT COUNT(*) FROM {_snapshot_table(raw)}")[0][0] >= 1
    assert audit.check_snapshots(ledger) is None
    assert audit.verify(ledger).ok


def test_an_edited_snapshot_is_found(ledger: Ledger, raw: Raw, target: str) -> None:
    """Snapshots are not chained, yet subjects load from them: an edit must be found."""
    _long_history(ledger, 230)
    table = _snapshot_table(raw)
    ((version, state),) = raw.run(f"SELECT originator_version, state FROM {table}")
    edited = bytes(state).replace(b'"amount":1000,', b'"amount":9000,', 1)
    assert edited != bytes(state)
    raw.run(f"UPDATE {table} SET state = ?", (edited,))
    with Ledger(target) as fresh:
        # What the edit does: the subject loads from the snapshot, so its books change …
        assert (
            fresh.show("KT-HH-0001")["balances"]["PKH"]["allocated"]
            == sum(1000 + i for i in range(230)) + 8000
        )
        report = audit.verify(fresh)
    assert report.events == 232  # … while every event is intact
    assert report.finding is not None
    assert (report.finding.kind, report.finding.ref, report.finding.version) == (
        "snapshot",
        "KT-HH-0001",
        version,
    )


# ----------------------------------------------------------------- the store failing


def test_a_store_that_fails_while_read_is_a_storage_error_not_a_finding(loaded: Ledger) -> None:
    """A lost connection must not pass for a tampered row: it is a StorageError (exit 2)."""
    from eventsourcing.persistence import OperationalError

    from dinsos_ledger.errors import StorageError

    def broken(**_: Any) -> Iterator[Any]:
        raise OperationalError("server closed the connection unexpectedly")
        yield  # a generator, like the real one

    loaded.recorder.iter_rows = broken
    try:
        with pytest.raises(StorageError, match=r"cannot read the ledger at .*server closed"):
            audit.verify(loaded)
    finally:
        del loaded.recorder.iter_rows
