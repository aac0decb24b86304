"""The README's two set-up commands stay true: CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_a_demo_command_and_a_test_command() -> None:
    demo, tests = setup_commands()
    assert demo.endswith("wasmq demo") and "pip install" in demo
    assert "pytest" in tests and "ruff" in tests and "mypy" in tests


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, tests = setup_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines
