"""The typed methods of :class:`Ledger` are generated from the command definitions."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dinsos_ledger import commands as cmd
from dinsos_ledger.application import Ledger
from dinsos_ledger.errors import NotEligible


def _arguments(name: str) -> type:
    return getattr(cmd, "".join(part.title() for part in name.split("_")) + "Args")  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", cmd.COMMAND_NAMES)
def test_every_command_has_a_typed_method_with_exactly_its_fields(name: str) -> None:
    """A method per command, whose keyword parameters are the command's fields."""
    method = getattr(Ledger, name)
    required, _optional, known = cmd._PLANS[name]
    parameters = inspect.signature(method).parameters
    assert next(iter(parameters)) == "self"
    fields = {p for p in parameters if p != "self"}
    assert fields == known - {"command"}
    given = {p for p, param in parameters.items() if param.default is inspect.Parameter.empty}
    assert given - {"self"} == {f for f, _ in required} - {"id"}
    args = _arguments(name)
    assert set(args.__annotations__) == fields
    assert method.__doc__ == args.__doc__
    assert method.__doc__


def test_a_typed_method_records_the_command_and_raises_the_rule_s_error(
    memory_ledger: Ledger,
) -> None:
    """Accepted commands return an outcome; a refusal raises the error of its rule."""
    outcome = memory_ledger.register_household(
        ref="KT-HH-1",
        on="2025-01-02",
        actor="petugas",
        region="64.08.01.2001",
        members=3,
        family_card="6408010101010001",
        head_nik="6408010101010002",
        head_name="Siti",
    )
    assert outcome.accepted
    assert outcome.id is not None
    assert outcome.id.startswith("api-")
    with pytest.raises(NotEligible):
        memory_ledger.allocate(
            ref="KT-HH-1",
            on="2025-01-03",
            actor="petugas",
            programme="PKH",
            amount=750_000,
            period="2025-01",
            reference="PKH/1",
        )
    with pytest.raises(TypeError, match="keyword arguments only"):
        memory_ledger.attend("KT-EN-1")  # type: ignore[misc]


def test_type_checkers_see_each_method_s_fields(tmp_path: Path) -> None:
    """mypy reports a mistyped and an unknown field of a typed method (embedders keep checks)."""
    snippet = tmp_path / "embedder.py"
    snippet.write_text(
        textwrap.dedent(
            """
            from dinsos_ledger.application import Ledger

            def use(ledger: Ledger) -> None:
                ledger.allocate(ref="A", on="2025-01-01", actor="x", programme="PKH",
                                amount="5", period="2025-01", reference="r")
                ledger.attend(ref="A", on="2025-01-01", actor="x", bogus=1)
                ledger.withdraw(ref="A", on="2025-01-01", actor="x")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(snippet)],
        capture_output=True,
        text=True,
        check=False,
    )
    out = result.stdout
    assert 'Argument "amount" to "allocate" of "Ledger" has incompatible type "str"' in out or (
        'Argument "amount" has incompatible type "str"' in out
    ), out
    assert 'Unexpected keyword argument "bogus"' in out, out
    assert 'Missing named argument "reason"' in out, out
    assert out.count("error:") == 3, out
