"""The ledger's contract on a real store: one test class, run on SQLite and on PostgreSQL.

Every test gets a fresh, empty ledger on the current backend (the ``backend``, ``target``
and ``ledger`` fixtures of ``tests/conftest.py``) and may reopen it on the same target to
see what survived: idempotency, rejects that leave no trace, batches that keep their valid
lines, enrolments that never overfill a cohort under concurrent writers, personal data
sealed at rest, and the ``show`` view of each kind of subject.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from eventsourcing.persistence import StoredEvent

from dinsos_ledger.application import Ledger, Outcome
from dinsos_ledger.errors import UnknownSubject
from dinsos_ledger.types import subject_id

PII = {
    "family_card": "6408040101250001",
    "head_nik": "6408041203820001",
    "head_name": "Rahmat Hidayat Lawing",
    "nik": "6408050807450001",
    "name": "Sudarmo Wiryoatmojo",
}


def line(n: str, verb: str, ref: str, on: str, **fields: Any) -> dict[str, Any]:
    """A command with id ``n``."""
    return {"id": n, "command": verb, "ref": ref, "on": on, "actor": "petugas", **fields}


def household(n: str, ref: str, on: str = "2025-01-06", **pii: str) -> dict[str, Any]:
    """Register a household (with the test's personal data unless given)."""
    return line(
        n,
        "register_household",
        ref,
        on,
        region="64.08.04.2001",
        members=4,
        family_card=pii.get("family_card", PII["family_card"]),
        head_nik=pii.get("head_nik", PII["head_nik"]),
        head_name=pii.get("head_name", PII["head_name"]),
    )


def veteran(n: str, ref: str = "VT-1") -> dict[str, Any]:
    """Register a veteran with the test's personal data."""
    return line(
        n,
        "register_veteran",
        ref,
        "2025-01-06",
        region="64.08.05.2002",
        nik=PII["nik"],
        name=PII["name"],
    )


def cohort(n: str, ref: str, capacity: int) -> dict[str, Any]:
    """Plan a cohort."""
    return line(
        n,
        "plan_cohort",
        ref,
        "2025-01-06",
        region="64.08.04.2001",
        programme="PELATIHAN",
        capacity=capacity,
        starts="2025-03-03",
        ends="2025-03-28",
    )


def enrol(n: str, ref: str, cohort_ref: str, household_ref: str) -> dict[str, Any]:
    """Enrol a household in a cohort."""
    return line(n, "enrol", ref, "2025-02-10", cohort=cohort_ref, household=household_ref)


def statuses(results: list[Outcome]) -> list[tuple[str, str | None]]:
    """(status, code) of each outcome."""
    return [(o.status, o.code) for o in results]


ACCEPTED = ("accepted", None)
DUPLICATE = ("duplicate", None)


def all_stored_bytes(target: str) -> bytes:
    """Every value of every table of the ledger's store, as bytes (to look for plain PII)."""
    chunks: list[bytes] = []
    if target.startswith("postgresql://"):
        import psycopg

        parts = urlsplit(target)
        schema = parse_qs(parts.query)["schema"][0]
        with psycopg.connect(target.split("?", maxsplit=1)[0]) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            ]
            assert "ledger_events" in tables
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                    chunks.extend(_as_bytes(value) for value in row)
        return b"\n".join(chunks)
    with sqlite3.connect(target) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert "stored_events" in tables
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                chunks.extend(_as_bytes(value) for value in row)
    return b"\n".join(chunks)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


class TestLedgerContract:
    """What every backend must do, tested the same way on each."""

    @pytest.fixture
    def reopen(self, target: str) -> Iterator[Callable[[], Ledger]]:
        """Open the same target again (a restart); every ledger opened is closed afterwards."""
        opened: list[Ledger] = []

        def open_again() -> Ledger:
            again = Ledger(target)
            opened.append(again)
            return again

        yield open_again
        for each in opened:
            each.disconnect()

    # ------------------------------------------------------------------ idempotency

    def test_idempotency_survives_a_restart(
        self, ledger: Ledger, reopen: Callable[[], Ledger]
    ) -> None:
        """After a restart an accepted id with the same body is a duplicate, with another an id_conflict."""
        first = household("c-1", "HH-1")
        assert statuses(ledger.apply_batch([first])) == [ACCEPTED]
        ledger.disconnect()
        again = reopen()
        assert statuses(
            again.apply_batch([first, first | {"members": 5}, first | {"note": "ulang"}])
        ) == [DUPLICATE, ("rejected", "id_conflict"), ("rejected", "id_conflict")]
        assert again.show("HH-1")["version"] == 1
        assert again.show("HH-1")["members"] == 4

    def test_a_duplicate_is_recognised_whatever_the_order_of_its_fields(
        self, ledger: Ledger, reopen: Callable[[], Ledger]
    ) -> None:
        """The body is compared field by field, not as text."""
        first = household("c-1", "HH-1")
        ledger.execute(first)
        ledger.disconnect()
        assert reopen().execute(dict(sorted(first.items(), reverse=True))).status == "duplicate"

    def test_a_rejected_id_may_be_sent_again_and_accepted_later(
        self, ledger: Ledger, reopen: Callable[[], Ledger]
    ) -> None:
        """A refused command leaves no trace: its id is accepted once what it needed exists."""
        allocation = line(
            "c-9",
            "allocate",
            "HH-1",
            "2025-01-20",
            programme="PKH",
            amount=750_000,
            period="2025-01",
            reference="A-1",
        )
        assert statuses(ledger.apply_batch([allocation])) == [("rejected", "unknown_subject")]
        assert statuses(ledger.apply_batch([household("c-1", "HH-1"), allocation])) == [
            ACCEPTED,
            ("rejected", "not_eligible"),
        ]
        ledger.disconnect()
        again = reopen()
        assess = line("c-2", "assess", "HH-1", "2025-01-13", desil=3)
        assert statuses(again.apply_batch([assess, allocation])) == [ACCEPTED, ACCEPTED]
        assert again.show("HH-1")["balances"]["PKH"]["allocated"] == 750_000

    def test_a_rejected_line_never_undoes_the_others_of_its_batch(
        self, ledger: Ledger, reopen: Callable[[], Ledger]
    ) -> None:
        """Valid lines of a batch are recorded whatever is rejected around them, and stay."""
        batch = [
            household("c-1", "HH-1"),
            line("c-2", "assess", "HH-1", "2025-01-13", desil=11),
            line("c-3", "assess", "HH-1", "2025-01-13", desil=2),
            line("c-4", "attend", "HH-1", "2025-01-14"),
            household("c-5", "HH-2", family_card="6408040101250002", head_nik="6408041203820002"),
            household("c-6", "HH-1"),
        ]
        expected = [
            ACCEPTED,
            ("rejected", "invalid"),
            ACCEPTED,
            ("rejected", "not_applicable"),
            ACCEPTED,
            ("rejected", "already_registered"),
        ]
        assert statuses(ledger.apply_batch(batch)) == expected
        ledger.disconnect()
        again = reopen()
        assert [again.show(ref)["version"] for ref in ("HH-1", "HH-2")] == [2, 1]
        # Recorded lines come back as duplicates; rejected ones are judged afresh.
        assert statuses(again.apply_batch(batch)) == [
            DUPLICATE,
            ("rejected", "invalid"),
            DUPLICATE,
            ("rejected", "not_applicable"),
            DUPLICATE,
            ("rejected", "already_registered"),
        ]

    def test_a_big_batch_is_recorded_whole(
        self, ledger: Ledger, reopen: Callable[[], Ledger]
    ) -> None:
        """Hundreds of commands in one batch are all recorded, and all known after a restart."""
        batch = [
            household(
                f"c-{i}",
                f"HH-{i}",
                family_card=f"{6408040101250000 + i}",
                head_nik=f"{6408041203820000 + i}",
            )
            for i in range(300)
        ]
        assert {o.status for o in ledger.apply_batch(batch)} == {"accepted"}
        ledger.disconnect()
        assert {o.status for o in reopen().apply_batch(batch)} == {"duplicate"}

    # ------------------------------------------------------------------ concurrency

    def _nearly_full_cohort(self, ledger: Ledger, prefix: str, capacity: int) -> None:
        """A cohort ``{prefix}-CO`` with one seat left and two households waiting for it."""
        setup = [cohort(f"{prefix}-c0", f"{prefix}-CO", capacity)]
        setup.extend(
            household(
                f"{prefix}-h{i}",
                f"{prefix}-HH-{i}",
                family_card=f"64080401012{i:05d}",
                head_nik=f"64080412038{i:05d}",
            )
            for i in range(capacity + 1)
        )
        setup.extend(
            enrol(f"{prefix}-e{i}", f"{prefix}-EN-{i}", f"{prefix}-CO", f"{prefix}-HH-{i}")
            for i in range(capacity - 1)
        )
        assert {o.status for o in ledger.apply_batch(setup)} == {"accepted"}

    def test_the_loser_of_a_race_for_the_last_seat_retries_and_gets_cohort_full(
        self, ledger: Ledger, reopen: Callable[[], Ledger]
    ) -> None:
        """Two ledgers decide on the same state; the one that commits second works it out again."""
        self._nearly_full_cohort(ledger, "R", 3)
        winner, loser = reopen(), reopen()
        decided = threading.Event()
        committed = threading.Event()
        inserts: list[str] = []
        real_insert = loser.recorder.insert_events

        def late_insert(*args: Any, **kwargs: Any) -> Any:
            # The loser has decided to accept; hold its write until the winner's is committed.
            if not decided.is_set():
                decided.set()
                assert committed.wait(30)
            try:
                result = real_insert(*args, **kwargs)
            except Exception as e:
                inserts.append(type(e).__name__)
                raise
            inserts.append("recorded")
            return result

        loser.recorder.insert_events = late_insert  # type: ignore[method-assign]
        result: list[Outcome] = []
        thread = threading.Thread(
            target=lambda: result.append(loser.execute(enrol("R-el", "R-EN-L", "R-CO", "R-HH-3")))
        )
        thread.start()
        assert decided.wait(30)
        assert winner.execute(enrol("R-ew", "R-EN-W", "R-CO", "R-HH-2")).status == "accepted"
        committed.set()
        thread.join(30)
        assert not thread.is_alive()
        assert (result[0].status, result[0].code) == ("rejected", "cohort_full")
        assert inserts == ["IntegrityError"]
        fresh = reopen()
        assert fresh.show("R-CO")["active_enrolments"] == 3
        with pytest.raises(UnknownSubject):
            fresh.show("R-EN-L")

    # Four rounds, because a race shows itself only in some interleavings.
    @pytest.mark.parametrize("_round", range(4))
    def test_two_writers_enrolling_at_once_never_overfill_a_cohort(
        self, ledger: Ledger, reopen: Callable[[], Ledger], _round: int
    ) -> None:
        """Two ledgers on one store race for the last seat from two threads: one wins, one is full."""
        self._nearly_full_cohort(ledger, "C", 2)
        writers = [reopen(), reopen()]
        barrier = threading.Barrier(2)
        results: dict[int, Outcome] = {}

        def run(i: int) -> None:
            barrier.wait(10)
            results[i] = writers[i].execute(
                enrol(f"C-e{i}x", f"C-EN-X{i}", "C-CO", f"C-HH-{i + 1}")
            )

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(statuses(list(results.values()))) == [ACCEPTED, ("rejected", "cohort_full")]
        assert reopen().show("C-CO")["active_enrolments"] == 2

    @pytest.mark.usefixtures("ledger")  # creates the store the two writers open
    def test_two_writers_sending_the_same_command_record_it_once(
        self, reopen: Callable[[], Ledger]
    ) -> None:
        """The same command sent through two ledgers at once is accepted once, a duplicate once."""
        writers = [reopen(), reopen()]
        barrier = threading.Barrier(2)
        results: dict[int, Outcome] = {}
        same = household("c-1", "HH-1")

        def run(i: int) -> None:
            barrier.wait(10)
            results[i] = writers[i].execute(same)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(o.status for o in results.values()) == ["accepted", "duplicate"]
        assert reopen().show("HH-1")["version"] == 1

    def test_a_ledger_judges_by_what_another_writer_recorded_since(
        self, ledger: Ledger, reopen: Callable[[], Ledger]
    ) -> None:
        """What another ledger freed or assessed is seen: no stale refusal from an earlier read."""
        self._nearly_full_cohort(ledger, "S", 1)
        other = reopen()
        waiting = enrol("S-e9", "S-EN-9", "S-CO", "S-HH-0")
        allocation = line(
            "S-a1",
            "allocate",
            "S-HH-1",
            "2025-02-01",
            programme="PKH",
            amount=5,
            period="2025-01",
            reference="A-1",
        )
        assert statuses(
            ledger.apply_batch([enrol("S-e0", "S-EN-0", "S-CO", "S-HH-1"), waiting, allocation])
        ) == [
            ACCEPTED,
            ("rejected", "cohort_full"),
            ("rejected", "not_eligible"),
        ]
        assert statuses(
            other.apply_batch(
                [
                    line("S-w0", "withdraw", "S-EN-0", "2025-02-11", reason="pindah"),
                    line("S-s1", "assess", "S-HH-1", "2025-02-11", desil=1),
                ]
            )
        ) == [ACCEPTED, ACCEPTED]
        assert statuses(ledger.apply_batch([waiting, allocation])) == [ACCEPTED, ACCEPTED]

    # -------------------------------------------------------------------------- privacy

    def test_personal_data_is_sealed_at_rest(self, ledger: Ledger, target: str) -> None:
        """No NIK, family-card number or name appears in plain text in any stored event or table."""
        results = ledger.apply_batch(
            [
                household("c-1", "HH-1"),
                veteran("c-2"),
                line("c-3", "assess", "HH-1", "2025-01-13", desil=2),
                line("c-4", "close", "VT-1", "2025-02-01", reason="deceased"),
                line("c-5", "forget", "VT-1", "2025-02-02", reason="permintaan ahli waris"),
            ]
        )
        assert {o.status for o in results} == {"accepted"}
        rows = list(ledger.recorder.iter_rows())
        assert len(rows) == 5
        for _, _, _, topic, state in rows:
            for value in PII.values():
                assert value.encode() not in state
                assert value not in topic
        everything = all_stored_bytes(target)
        assert b"HH-1" in everything  # the scan does see the stored rows
        for value in PII.values():
            assert value.encode() not in everything

    def test_aggregate_ids_are_derived_from_the_ref_alone(self, ledger: Ledger) -> None:
        """Two refs with the same personal data get different ids; each id is the ref's."""
        ledger.apply_batch([household("c-1", "HH-1"), household("c-2", "HH-2")])
        ids = {originator_id for _, originator_id, _, _, _ in ledger.recorder.iter_rows()}
        assert ids == {subject_id("HH-1").hex, subject_id("HH-2").hex}

    def test_every_stored_row_decodes_through_the_ledgers_mapper(self, ledger: Ledger) -> None:
        """Stored rows are read back through ``ledger.app.mapper`` into typed events."""
        ledger.apply_batch([household("c-1", "HH-1"), veteran("c-2")])
        for position, originator_id, version, topic, state in ledger.recorder.iter_rows():
            event = ledger.app.mapper.to_domain_event(
                StoredEvent(
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=state,
                )
            )
            assert position >= 1
            assert event.originator_version == version == 1
            assert event.on.isoformat() == "2025-01-06"
            assert event.ref in ("HH-1", "VT-1")

    # ----------------------------------------------------------------------------- show

    def test_show_gives_a_households_state_with_its_personal_data_opened(
        self, ledger: Ledger, reopen: Callable[[], Ledger]
    ) -> None:
        """The view has ref, kind, version, region and the household's PII (the CLI contract)."""
        ledger.apply_batch(
            [household("c-1", "HH-1"), line("c-2", "assess", "HH-1", "2025-01-13", desil=2)]
        )
        ledger.disconnect()
        shown = reopen().show("HH-1")
        assert shown["ref"] == "HH-1"
        assert shown["kind"] == "household"
        assert shown["version"] == 2
        assert shown["region"] == "64.08.04.2001"
        assert {k: shown[k] for k in ("family_card", "head_nik", "head_name")} == {
            k: PII[k] for k in ("family_card", "head_nik", "head_name")
        }

    def test_show_as_of_a_version_gives_the_state_after_that_event(self, ledger: Ledger) -> None:
        """``version`` N gives the state after the subject's N-th event."""
        ledger.apply_batch(
            [
                household("c-1", "HH-1"),
                line("c-2", "assess", "HH-1", "2025-01-13", desil=2),
                line("c-3", "assess", "HH-1", "2025-01-14", desil=7),
            ]
        )
        assert [ledger.show("HH-1", version=n)["desil"] for n in (1, 2, 3)] == [None, 2, 7]
        assert [ledger.show("HH-1", version=n)["version"] for n in (1, 2, 3)] == [1, 2, 3]

    def test_show_gives_null_personal_data_once_forgotten_and_keeps_the_rest(
        self, ledger: Ledger, reopen: Callable[[], Ledger]
    ) -> None:
        """After forget the PII fields read null, in every version, and survive a restart so."""
        ledger.apply_batch(
            [
                veteran("c-1"),
                line("c-2", "close", "VT-1", "2025-02-01", reason="deceased"),
                line("c-3", "forget", "VT-1", "2025-02-02", reason="permintaan ahli waris"),
            ]
        )
        for view in (ledger.show("VT-1"), ledger.show("VT-1", version=1)):
            assert (view["nik"], view["name"]) == (None, None)
            assert view["region"] == "64.08.05.2002"
            assert (view["ref"], view["kind"]) == ("VT-1", "veteran")
        ledger.disconnect()
        view = reopen().show("VT-1")
        assert (view["nik"], view["name"], view["version"]) == (None, None, 3)

    def test_forgetting_one_subject_leaves_the_others_readable(self, ledger: Ledger) -> None:
        """Each subject has its own data key: forgetting one does not touch another."""
        ledger.apply_batch(
            [
                veteran("c-1"),
                veteran("c-2", "VT-2"),
                line("c-3", "close", "VT-1", "2025-02-01", reason="deceased"),
                line("c-4", "forget", "VT-1", "2025-02-02", reason="permintaan"),
            ]
        )
        assert ledger.show("VT-1")["nik"] is None
        assert ledger.show("VT-2")["nik"] == PII["nik"]

    def test_show_of_a_cohort_and_an_enrolment(self, ledger: Ledger) -> None:
        """Cohorts and enrolments show their ref, kind and version (no personal data)."""
        ledger.apply_batch(
            [
                cohort("c-1", "CO-1", 2),
                household("c-2", "HH-1"),
                enrol("c-3", "EN-1", "CO-1", "HH-1"),
            ]
        )
        shown = ledger.show("CO-1")
        assert (shown["ref"], shown["kind"], shown["version"]) == ("CO-1", "cohort", 2)
        shown = ledger.show("EN-1")
        assert (shown["ref"], shown["kind"], shown["version"]) == ("EN-1", "enrolment", 1)
        for field in PII:
            assert field not in shown

    def test_show_of_an_unknown_ref_is_unknown_subject(self, ledger: Ledger) -> None:
        """A ref that was never registered is unknown_subject."""
        with pytest.raises(UnknownSubject):
            ledger.show("HH-404")
