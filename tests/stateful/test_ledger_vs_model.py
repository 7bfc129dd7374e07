"""The real ledger against the plain reference model, command by command.

A hypothesis state machine sends the same commands (from ``tests/strategies.py``) to a
real :class:`Ledger` on a store and to :class:`tests.model.Model`, and checks that they
agree on every outcome (accepted, duplicate, or rejected with the same code) and on every
subject's state and balances after each step. One rule restarts the ledger (close and
reopen on the same target), so what it remembers must be what it stored. It runs on
SQLite, and on PostgreSQL with fewer examples.
"""

from __future__ import annotations

import io
import itertools
import shutil
import tempfile
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from dinsos_ledger.application import Ledger, Outcome
from dinsos_ledger.errors import UnknownSubject
from dinsos_ledger.findings import today_in_wita
from dinsos_ledger.importer import read_commands
from dinsos_ledger.privacy import MasterKey
from dinsos_ledger.projections.programmes import programmes

from tests.model import Model, model_findings, model_reconciliation
from tests.strategies import Pools, commands, hostile_lines, programme_stories, registrations

#: The default pools with more enrolment refs, so that cohorts fill up and households re-enrol.
POOLS = Pools(enrolments=tuple(f"EN-{n}" for n in range(1, 7)))

#: Examples and steps per backend: each example is a fresh store, so PostgreSQL gets fewer.
SETTINGS = {
    "sqlite": settings(max_examples=25, stateful_step_count=30),
    "postgres": settings(max_examples=8, stateful_step_count=25),
}

#: What ``show`` and the model both report, per kind (the rest is the ledger's own detail).
COMPARED = {
    "household": (
        "region",
        "members",
        "family_card",
        "head_nik",
        "head_name",
        "closed_on",
        "forgotten",
    ),
    "veteran": ("region", "nik", "name", "closed_on", "forgotten"),
    "cohort": ("region", "programme", "capacity", "starts", "ends"),
    "enrolment": ("cohort", "household", "status"),
    "programme": ("name", "recipients", "defined_on"),
}

#: Days ``programmes`` is asked about: before, inside and after the drawn commands' dates.
PROGRAMME_DAYS = (None, date(2024, 12, 31), date(2025, 1, 20), date(2025, 2, 10), date(2025, 4, 1))


def _raw(line: str | bytes) -> bytes:
    """A hostile line as the bytes a file would hold."""
    return line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")


def _reaches_the_ledger(line: str | bytes) -> bool:
    """Whether the importer reads ``line`` as a command line (it skips whitespace-only lines)."""
    return bool(_raw(line).strip())


class LedgerVsModel(RuleBasedStateMachine):
    """Drive the ledger and the model with the same commands; they must always agree."""

    #: Returns a fresh target and a function that disposes of it (set per backend).
    new_target: Callable[[], tuple[str, Callable[[], None]]]

    sent = Bundle("sent")

    def __init__(self) -> None:
        """Open a ledger on a fresh store and start an empty model."""
        super().__init__()
        self.target, self.dispose = type(self).new_target()
        self.key = MasterKey.generate()
        self.ledger = Ledger(self.target, master_key=self.key)
        self.model = Model()
        self.ids = itertools.count(1)

    def teardown(self) -> None:
        """Close the ledger and drop its store."""
        self.ledger.disconnect()
        self.dispose()

    def _agree(self, command: Any, outcome: Outcome) -> None:
        expected = self.model.execute(command)
        got = (outcome.status, outcome.code)
        event(f"{got[0]} {got[1] or ''}".strip())
        assert got == expected, f"ledger {got} ({outcome.message}), model {expected}: {command!r}"

    def _fresh(self, command: dict[str, Any], keep_id: int) -> dict[str, Any]:
        # Mostly a new id, so that id_conflict does not hide the other rules; sometimes
        # the drawn one, from a small pool, so that ids collide as they do in real files.
        if keep_id == 0 or "id" not in command:
            return command
        return command | {"id": f"m-{next(self.ids)}"}

    @initialize(prologue=st.one_of(registrations(POOLS), registrations(POOLS), st.just([])))
    def register_some_subjects(self, prologue: list[dict[str, Any]]) -> None:
        """Mostly start from every pool subject registered (and assessed)."""
        for command, outcome in zip(prologue, self.ledger.apply_batch(prologue), strict=True):
            self._agree(command, outcome)

    @rule(target=sent, command=commands(POOLS), keep_id=st.integers(0, 7))
    def execute(self, command: dict[str, Any], keep_id: int) -> dict[str, Any]:
        """One command: the ledger's outcome equals the model's."""
        command = self._fresh(command, keep_id)
        self._agree(command, self.ledger.execute(command))
        return command

    @rule(
        target=sent,
        cohort=st.sampled_from(POOLS.cohorts),
        household=st.sampled_from(POOLS.households),
        enrolment=st.sampled_from(POOLS.enrolments),
        shift=st.integers(-1, 2),
    )
    def enrol_while_the_cohort_is_open(
        self, cohort: str, household: str, enrolment: str, shift: int
    ) -> dict[str, Any]:
        """An enrol dated around the later registration of its cohort and household.

        Drawn commands are dated anywhere in two months; this one is dated where an enrol
        can succeed, so that cohorts fill up and households meet their cohort twice.
        """
        known = [
            self.model.subjects[r].registered_on
            for r in (cohort, household)
            if r in self.model.subjects
        ]
        on = max(known, default=POOLS.start) + timedelta(days=shift)
        command = {
            "id": f"m-{next(self.ids)}",
            "command": "enrol",
            "ref": enrolment,
            "on": on.isoformat(),
            "actor": "petugas",
            "cohort": cohort,
            "household": household,
        }
        self._agree(command, self.ledger.execute(command))
        return command

    @rule(
        target=sent,
        verb=st.sampled_from(("allocate", "disburse", "reverse", "confirm")),
        ref=st.sampled_from(POOLS.households + POOLS.veterans + POOLS.cohorts),
        programme=st.sampled_from(POOLS.programmes[:2]),
        amount=st.sampled_from(POOLS.payments),
        reference=st.sampled_from(POOLS.references),
        shift=st.integers(0, 30),
    )
    def move_money(
        self, verb: str, ref: str, programme: str, amount: int, reference: str, shift: int
    ) -> dict[str, Any]:
        """An allocate, disburse or reverse on a registered subject, from few programmes.

        Drawn commands spread over four programmes and every kind of ref; these stay with
        two programmes after the subject's registration, so that balances run out and
        payments are reversed twice.
        """
        subject = self.model.subjects.get(ref)
        on = (subject.registered_on if subject else POOLS.start) + timedelta(days=shift)
        command: dict[str, Any] = {
            "id": f"m-{next(self.ids)}",
            "command": verb,
            "ref": ref,
            "on": on.isoformat(),
            "actor": "petugas",
        }
        if verb == "reverse":
            command |= {"reference": reference, "reason": "dana kembali"}
        elif verb == "confirm":
            # Mostly the amount the channel should report, so confirmations succeed.
            paid = self._paid(ref, reference)
            command |= {
                "reference": reference,
                "amount": paid if paid is not None and shift % 5 else amount,
                "channel_ref": f"BRI-{shift}",
            }
        else:
            command |= {"programme": programme, "amount": amount, "reference": reference}
            channel = ("bank", "post", "cash")[shift % 3]
            command |= {"period": "2025-01"} if verb == "allocate" else {"channel": channel}
        self._agree(command, self.ledger.execute(command))
        return command

    def _paid(self, ref: str, reference: str) -> int | None:
        subject = self.model.subjects.get(ref)
        for d in subject.disbursements if subject else ():
            if d.reference == reference:
                return d.amount
        return None

    @rule(
        target=sent,
        code=st.sampled_from(POOLS.programmes[:2]),
        ref=st.sampled_from(POOLS.households + POOLS.veterans + POOLS.cohorts),
        shift=st.integers(-2, 20),
        limit=st.sampled_from((4, 5, 2, None, 1)),
    )
    def change_a_programme_rule(
        self, code: str, ref: str, shift: int, limit: int | None
    ) -> dict[str, Any]:
        """Define or amend one of the two programmes ``move_money`` allocates.

        Dated around a subject's registration, where its allocations fall, so that the rule
        changes between two allocations and some allocations precede the definition.
        """
        subject = self.model.subjects.get(ref)
        on = (subject.registered_on if subject else POOLS.start) + timedelta(days=shift)
        command: dict[str, Any] = {
            "id": f"m-{next(self.ids)}",
            "ref": code,
            "on": on.isoformat(),
            "actor": "operator",
            "desil_limit": limit,
        }
        if code in self.model.subjects:
            command["command"] = "amend_programme"
        else:
            command |= {
                "command": "define_programme",
                "name": "Program daerah",
                "recipients": ["household", "veteran", "cohort"][: 1 + shift % 3],
            }
        self._agree(command, self.ledger.execute(command))
        return command

    @rule(story=programme_stories(POOLS))
    def tell_a_programme_story(self, story: list[dict[str, Any]]) -> None:
        """A definition, amendments and allocations around them, in one batch."""
        lines = [command | {"id": f"m-{next(self.ids)}"} for command in story]
        for command, outcome in zip(lines, self.ledger.apply_batch(lines), strict=True):
            self._agree(command, outcome)

    @rule(batch=st.lists(st.tuples(commands(POOLS), st.integers(0, 7)), min_size=2, max_size=8))
    def execute_a_batch(self, batch: list[tuple[dict[str, Any], int]]) -> None:
        """A batch in one transaction: each line's outcome equals the model's, in order."""
        lines = [self._fresh(command, keep_id) for command, keep_id in batch]
        for command, outcome in zip(lines, self.ledger.apply_batch(lines), strict=True):
            self._agree(command, outcome)

    @rule(command=sent, verbatim=st.booleans())
    def send_again(self, command: dict[str, Any], verbatim: bool) -> None:
        """An earlier command again: a duplicate, an id_conflict, or judged afresh if it was refused."""
        again = command if verbatim else command | {"note": "dikirim ulang dengan isi lain"}
        self._agree(again, self.ledger.execute(again))

    @rule(command=sent, nik=st.text(alphabet="0123456789", min_size=16, max_size=16))
    def send_again_with_other_personal_data(self, command: dict[str, Any], nik: str) -> None:
        """A registration again with another NIK and name: id_conflict, or duplicate once forgotten."""
        fields = {"register_household": "head_nik", "register_veteran": "nik"}
        kind = command.get("command")
        field = fields.get(kind) if isinstance(kind, str) else None
        if field is None:
            return
        name = "head_name" if field == "head_nik" else "name"
        again = command | {field: nik, name: "Nama Tebakan"}
        self._agree(again, self.ledger.execute(again))

    @rule(line=hostile_lines().filter(_reaches_the_ledger))
    def send_a_hostile_line(self, line: str | bytes) -> None:
        """A line no reading of the documentation accepts, read the way the importer reads a file."""
        # Second line of its file, so that a leading byte-order mark is content, not skipped.
        [(_, item)] = list(read_commands(io.BytesIO(b"\n" + _raw(line) + b"\n")))
        [outcome] = self.ledger.apply_batch([item])
        self._agree(_raw(line), outcome)

    @rule()
    def restart(self) -> None:
        """Close the ledger and open it again on the same store."""
        self.ledger.disconnect()
        self.ledger = Ledger(self.target, master_key=self.key)

    @invariant()
    def findings_and_reconciliation_agree(self) -> None:
        """Findings (but future_dated) and reconciliation agree with the model's."""
        today = today_in_wita()
        for as_of in (None, POOLS.start + timedelta(days=20)):
            got = [
                {k: v for k, v in f.to_json().items() if k != "message"}
                for f in self.ledger.projections.findings(as_of)
                if f.code != "future_dated"
            ]
            assert got == model_findings(self.model, as_of, as_of or today), as_of
            rows = [row.to_json() for row in self.ledger.projections.reconciliation(as_of)]
            assert rows == model_reconciliation(self.model, as_of), as_of

    @invariant()
    def every_subject_agrees(self) -> None:
        """Each ref's state and balances read the same from the ledger and the model."""
        balances = self.model.balances()
        for ref in POOLS.all_refs():
            expected = self.model.show(ref)
            if expected is None:
                with pytest.raises(UnknownSubject):
                    self.ledger.show(ref)
                continue
            shown = self.ledger.show(ref)
            assert (shown["ref"], shown["kind"], shown["registered_on"]) == (
                expected["ref"],
                expected["kind"],
                expected["registered_on"],
            )
            for field in COMPARED[expected["kind"]]:
                assert shown[field] == expected[field], (ref, field)
            if expected["kind"] not in ("enrolment", "programme"):
                assert shown["balances"] == {
                    row["programme"]: {k: row[k] for k in ("allocated", "disbursed", "outstanding")}
                    for row in balances
                    if row["ref"] == ref
                }, ref

    @invariant()
    def the_programmes_agree(self) -> None:
        """``programmes`` answers as the model does, today and as of several dates."""
        today = POOLS.start + timedelta(days=30)
        for day in PROGRAMME_DAYS:
            assert programmes(self.ledger, day, today=today) == self.model.programmes(day, today)


def _sqlite_targets(base: Path) -> Callable[[], tuple[str, Callable[[], None]]]:
    def new_target() -> tuple[str, Callable[[], None]]:
        folder = tempfile.mkdtemp(dir=base)
        return str(Path(folder) / "ledger.sqlite"), lambda: shutil.rmtree(
            folder, ignore_errors=True
        )

    return new_target


def _postgres_targets(url: str) -> Callable[[], tuple[str, Callable[[], None]]]:
    import psycopg

    def new_target() -> tuple[str, Callable[[], None]]:
        schema = f"sm_{uuid.uuid4().hex[:20]}"

        def drop() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

        return f"{url}?schema={schema}", drop

    return new_target


def test_the_ledger_agrees_with_the_reference_model(
    backend: str, make_target: Callable[[], str], tmp_path: Path
) -> None:
    """On every backend, every outcome and every subject's state agree with the model."""
    if backend == "sqlite":
        new_target = _sqlite_targets(tmp_path)
    else:
        new_target = _postgres_targets(make_target().split("?")[0])
    machine = type(
        f"LedgerVsModelOn{backend.title()}",
        (LedgerVsModel,),
        {"new_target": staticmethod(new_target)},
    )
    run_state_machine_as_test(machine, settings=SETTINGS[backend])
