"""Two writers, restarts and projections against the plain model, step by step.

``tests/stateful/test_ledger_vs_model.py`` checks outcomes and ``show`` through one ledger
object. This machine adds what reliability needs on top:

- two :class:`Ledger` objects on the same store take turns (as two processes would), so
  each must notice what the other recorded (subjects cached between batches, command ids,
  projection positions);
- restarts close and reopen one writer, or both, at any step;
- balances and continuity timelines come from the projections (``balances(as_of)``,
  ``continuity(as_of)``, caught up by whichever writer asks, sometimes rebuilt from
  zero) and must equal :meth:`Model.balances` and :meth:`Model.continuity` at several
  as-of dates.

It runs on SQLite and on PostgreSQL; the slow variant runs many more examples.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
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
from dinsos_ledger.privacy import MasterKey

from tests.conftest import require_postgres
from tests.model import Model
from tests.strategies import Pools, commands, registrations

POOLS = Pools(enrolments=tuple(f"EN-{n}" for n in range(1, 6)))

#: As-of dates around and after the pools' two months of business dates.
AS_OF = (
    date(2025, 1, 5),
    date(2025, 1, 31),
    date(2025, 2, 20),
    date(2025, 4, 30),
    date(2026, 1, 1),
)

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
SETTINGS = {
    ("sqlite", "quick"): settings(max_examples=12, stateful_step_count=30, **_COMMON),
    ("postgres", "quick"): settings(max_examples=5, stateful_step_count=25, **_COMMON),
    ("sqlite", "thorough"): settings(max_examples=150, stateful_step_count=50, **_COMMON),
    ("postgres", "thorough"): settings(max_examples=60, stateful_step_count=50, **_COMMON),
}


class TwoWritersVsModel(RuleBasedStateMachine):
    """Two ledger objects on one store and the model, driven with the same commands."""

    #: Returns a fresh target and a function that disposes of it (set per backend).
    new_target: Callable[[], tuple[str, Callable[[], None]]]

    sent = Bundle("sent")

    def __init__(self) -> None:
        """Open two writers on a fresh store; start an empty model."""
        super().__init__()
        self.target, self.dispose = type(self).new_target()
        self.key = MasterKey.generate()
        self.writers = [self._open(), self._open()]
        self.model = Model()
        self.ids = itertools.count(1)

    def _open(self) -> Ledger:
        return Ledger(self.target, master_key=self.key)

    def teardown(self) -> None:
        """Close both writers and drop the store."""
        for writer in self.writers:
            writer.disconnect()
        self.dispose()

    def _agree(self, command: Any, outcome: Outcome) -> None:
        expected = self.model.execute(command)
        got = (outcome.status, outcome.code)
        assert got == expected, f"ledger {got} ({outcome.message}), model {expected}: {command!r}"

    def _fresh(self, command: dict[str, Any], keep_id: int) -> dict[str, Any]:
        # Mostly a new id, so that id_conflict does not hide the other rules.
        if keep_id == 0 or "id" not in command:
            return command
        return command | {"id": f"w-{next(self.ids)}"}

    @initialize(prologue=st.one_of(registrations(POOLS), st.just([])), writer=st.integers(0, 1))
    def register_some_subjects(self, prologue: list[dict[str, Any]], writer: int) -> None:
        """Mostly start from every pool subject registered (and assessed)."""
        outcomes = self.writers[writer].apply_batch(prologue)
        for command, outcome in zip(prologue, outcomes, strict=True):
            self._agree(command, outcome)

    @rule(target=sent, command=commands(POOLS), keep_id=st.integers(0, 7), writer=st.integers(0, 1))
    def execute(self, command: dict[str, Any], keep_id: int, writer: int) -> dict[str, Any]:
        """One command through either writer: the outcome equals the model's."""
        command = self._fresh(command, keep_id)
        self._agree(command, self.writers[writer].execute(command))
        return command

    @rule(
        batch=st.lists(st.tuples(commands(POOLS), st.integers(0, 7)), min_size=2, max_size=8),
        writer=st.integers(0, 1),
    )
    def execute_a_batch(self, batch: list[tuple[dict[str, Any], int]], writer: int) -> None:
        """A batch through either writer: each outcome equals the model's, in order."""
        lines = [self._fresh(command, keep_id) for command, keep_id in batch]
        for command, outcome in zip(lines, self.writers[writer].apply_batch(lines), strict=True):
            self._agree(command, outcome)

    @rule(command=sent, writer=st.integers(0, 1))
    def send_again(self, command: dict[str, Any], writer: int) -> None:
        """An earlier command again, perhaps through the other writer: a duplicate, or judged afresh."""
        self._agree(command, self.writers[writer].execute(command))

    @rule(writer=st.integers(0, 1))
    def restart_one(self, writer: int) -> None:
        """Close one writer and open it again on the same store."""
        self.writers[writer].disconnect()
        self.writers[writer] = self._open()

    @rule()
    def restart_both(self) -> None:
        """Close both writers, then open them again."""
        for writer in self.writers:
            writer.disconnect()
        self.writers = [self._open(), self._open()]

    @rule(writer=st.integers(0, 1), as_of=st.sampled_from((None, *AS_OF)))
    def balances_agree(self, writer: int, as_of: date | None) -> None:
        """The projections' balances (caught up by either writer) equal the model's."""
        rows = [row.to_json() for row in self.writers[writer].projections.balances(as_of)]
        assert rows == self.model.balances(as_of)

    @rule(writer=st.integers(0, 1), as_of=st.sampled_from(AS_OF))
    def continuity_agrees(self, writer: int, as_of: date) -> None:
        """The projections' timelines (caught up by either writer) equal the model's."""
        timelines = [t.to_json() for t in self.writers[writer].projections.continuity(as_of)]
        assert timelines == self.model.continuity(as_of)

    @rule(writer=st.integers(0, 1))
    def rebuild(self, writer: int) -> None:
        """Rebuild every projection from the first event; the next answers must not change."""
        self.writers[writer].projections.rebuild()

    @invariant()
    def both_writers_see_the_same_subjects(self) -> None:
        """Whatever either writer recorded, both show the same state of every subject."""
        for ref in POOLS.all_refs():
            expected = self.model.show(ref)
            seen = []
            for writer in self.writers:
                try:
                    seen.append(writer.show(ref))
                except LookupError:
                    seen.append(None)
            assert seen[0] == seen[1], ref
            assert (seen[0] is None) == (expected is None), ref


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
        schema = f"mr_{uuid.uuid4().hex[:20]}"

        def drop() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

        return f"{url}?schema={schema}", drop

    return new_target


@pytest.mark.parametrize("variant", ["quick", pytest.param("thorough", marks=pytest.mark.slow)])
def test_two_writers_with_restarts_agree_with_the_model_on_balances_and_timelines(
    backend: str, tmp_path: Path, variant: str
) -> None:
    """Outcomes, shown state, balances and timelines agree with the model through restarts."""
    if backend == "sqlite":
        new_target = _sqlite_targets(tmp_path)
    else:
        new_target = _postgres_targets(require_postgres())
    machine = type(
        f"TwoWritersVsModelOn{backend.title()}",
        (TwoWritersVsModel,),
        {"new_target": staticmethod(new_target)},
    )
    run_state_machine_as_test(machine, settings=SETTINGS[(backend, variant)])
