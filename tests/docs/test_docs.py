"""Every Python example in README.md and docs/*.md runs, and the CLI reference is current.

Blocks fenced as ```python are run; anything that must not run is fenced with another tag
(```text, ```console, ```json …). The blocks of one file run in order in one namespace, in
an empty temporary folder, so a tutorial can build on its earlier steps; line numbers in a
traceback are those of the Markdown file.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\S*)\s*$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of ``text`` as (first line number, source), in order."""
    blocks: list[tuple[int, str]] = []
    language: str | None = None
    start = 0
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        fence = _FENCE.match(line)
        if fence and language is None:
            language, start, lines = fence.group(1), number + 1, []
        elif line.strip() == "```" and language is not None:
            if language == "python":
                blocks.append((start, "\n".join(lines) + "\n"))
            language = None
        elif language is not None:
            lines.append(line)
    assert language is None, "a code block is not closed"
    return blocks


def program(text: str) -> str:
    """The file's Python blocks as one program, each line at its line number in the file."""
    out: list[str] = []
    for start, source in python_blocks(text):
        out.extend([""] * (start - 1 - len(out)))
        out.extend(source.splitlines())
    return "\n".join(out) + "\n"


def test_blocks_are_found_where_they_are_and_only_python_ones() -> None:
    """The extractor keeps line numbers and skips blocks fenced with another language."""
    text = "# t\n\n```python\nx = 1\n```\n\n```console\n$ rm -rf /\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == [(4, "x = 1\n"), (11, "y = x\n")]
    assert program(text).splitlines()[3] == "x = 1"
    assert program(text).splitlines()[10] == "y = x"


def _with_python(paths: list[Path]) -> list[Path]:
    return [p for p in paths if "```python" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", _with_python(DOCS), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's ```python blocks run without error, top to bottom, in an empty folder."""
    source = program(path.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DINSOS_LEDGER_DB", raising=False)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 - the docs are ours


def test_the_readme_and_the_tutorial_have_examples_to_run() -> None:
    """The docs test is not vacuous: the README and the tutorial carry Python examples."""
    for name in ("README.md", "docs/tutorial.md"):
        assert python_blocks((ROOT / name).read_text(encoding="utf-8")), name


# -- the CLI reference ----------------------------------------------------------------------


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_cli_reference", ROOT / "scripts" / "gen_cli_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_cli_reference", module)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_up_to_date() -> None:
    """docs/cli-reference.md is what scripts/gen_cli_reference.py writes from --help now."""
    expected = _generator().render()
    actual = (ROOT / "docs" / "cli-reference.md").read_text(encoding="utf-8")
    assert actual == expected, "run: python scripts/gen_cli_reference.py"


def test_every_verb_is_documented() -> None:
    """Each verb of the CLI has its own section, with its help, in the reference."""
    from dinsos_ledger.cli import main

    reference = (ROOT / "docs" / "cli-reference.md").read_text(encoding="utf-8")
    flowing = " ".join(reference.split())  # --help rewraps the docstrings
    assert main.commands
    for name, command in main.commands.items():
        assert f"\n## `dinsos-ledger {name}`\n" in reference, name
        assert f"Usage: dinsos-ledger {name} " in reference, name
        first_line = " ".join((command.help or "").strip().splitlines()[0].split())
        assert first_line in flowing, name
