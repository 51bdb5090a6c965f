"""The CI workflow example (examples/ci/energy-policies.yml) parses as a GitHub Actions
workflow and runs only commands that exist: every `energyctl` line is parsed by the
real command line (click), unknown commands and options fail, and every other command is
a shell keyword, an assignment, pip or python (set up by the workflow) or a program
found on this machine."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from engine.cli import main

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "ci" / "energy-policies.yml"
SHELL_WORDS = {"set", "echo", "if", "then", "fi", "exit", "[", "test", "true"}
RUNNER_PROGRAMS = {"pip", "python"}  # actions/setup-python puts them on PATH
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def _workflow() -> dict[Any, Any]:
    # YAML 1.1 reads the key `on` as True: accept either spelling
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


def _steps() -> list[dict[str, Any]]:
    return [step for job in _workflow()["jobs"].values() for step in job["steps"]]


def _commands(script: str) -> list[list[str]]:
    """Each simple command of a step's script, as words, without redirections."""
    script = re.sub(r"\$\{\{[^}]*\}\}", "X", script)  # Actions expressions
    out: list[list[str]] = []
    for line in script.splitlines():
        for part in re.split(r";|&&|\|\|", line):
            words = shlex.split(part, comments=True)
            words = words[: next((i for i, w in enumerate(words) if w in (">", ">>")), None)]
            while words and words[0] in ("if", "then"):
                words = words[1:]
            if words:
                out.append(words)
    return out


def check_energyctl(words: list[str]) -> None:
    """Parse `energyctl ...` with the real command line: unknown names raise UsageError."""
    assert words[0] == "energyctl"
    command = main.get_command(click.Context(main), words[1])
    if command is None:
        raise click.UsageError(f"no command {words[1]!r}")
    command.make_context(f"energyctl {words[1]}", words[2:])


def test_the_workflow_is_a_pull_request_workflow() -> None:
    flow = _workflow()
    assert "pull_request" in flow["on"]
    [job] = flow["jobs"].values()
    assert job["runs-on"]
    for step in job["steps"]:
        assert ("uses" in step) != ("run" in step), step
        if "uses" in step:
            assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]
    assert any(step.get("uses", "").startswith("actions/upload-artifact@") for step in job["steps"])


def test_every_command_exists() -> None:
    seen: list[str] = []
    for step in _steps():
        for words in _commands(step.get("run", "")):
            first = words[0]
            if first == "energyctl":
                check_energyctl(words)
                seen.append(words[1])
            elif not (first in SHELL_WORDS | RUNNER_PROGRAMS or _ASSIGNMENT.match(first)):
                assert shutil.which(first), f"{first}: no such program ({step['name']})"
    assert seen == ["validate", "plan"]
    plan = next(
        w for s in _steps() for w in _commands(s.get("run", "")) if w[:2] == ["energyctl", "plan"]
    )
    assert "--detailed-exitcode" in plan and "json" in plan


def test_the_check_refuses_an_unknown_option() -> None:
    with pytest.raises(click.UsageError, match="--detailed-exit-code"):
        check_energyctl(["energyctl", "plan", "-f", "p/", "--detailed-exit-code"])
    with pytest.raises(click.UsageError, match="planx"):
        check_energyctl(["energyctl", "planx"])
