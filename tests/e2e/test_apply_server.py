"""`energyctl apply --server URL`: a policy set handed to a running `energyctl run`.

The sidecar is a real process on the served sandbox World (`test_run_sidecar.Sidecar`);
`energyctl apply` runs as a second process on an edited copy of the policy files.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.sandboxed import Sandbox
from tests.e2e.test_run_sidecar import TOKEN, Sidecar, _box

pytestmark = pytest.mark.slow


@pytest.fixture
def car(tmp_path: Path) -> Iterator[Sidecar]:
    for box in _box(tmp_path / "world"):
        yield from _run(box)


def _run(box: Sandbox) -> Iterator[Sidecar]:
    sidecar = Sidecar(box)
    try:
        yield sidecar.start()
    finally:
        if sidecar.proc is not None:
            assert sidecar.terminate() == 0, sidecar.logs()[-4000:]


def _edited_copy(box: Sandbox, tmp: Path, threshold: str) -> Path:
    copy = tmp / "pushed"
    shutil.copytree(box.directory, copy, ignore=shutil.ignore_patterns("*.db*", "*.log"))
    policies = copy / "policies.yaml"
    text = re.sub(r"threshold: \S+", f"threshold: {threshold}", policies.read_text(), count=1)
    policies.write_text(text)
    return copy


def _apply(box: Sandbox, directory: Path, url: str, token: str | None, *extra: str) -> Any:
    env = dict(box.env)
    env.pop("PUSH_TOKEN", None)
    if token is not None:
        env["PUSH_TOKEN"] = token
    box_env, box.env = box.env, env
    try:
        return box.energyctl(
            "apply", "-f", str(directory), "--server", url, "--token-env", "PUSH_TOKEN", *extra
        )
    finally:
        box.env = box_env


def test_apply_server_puts_the_set_in_force(car: Sidecar, tmp_path: Path) -> None:
    box = car.box
    before = car.status()["revision"]
    copy = _edited_copy(box, tmp_path, "77k")
    result = _apply(box, copy, car.url, TOKEN)
    assert result.returncode == 0, result.stderr
    assert "applied by the sidecar: revision" in result.stdout
    car.wait_for(
        lambda: 77_000 in {e["threshold"] for e in car.status()["addresses"]}, "the set in force"
    )
    status = car.status()
    assert status["revision"] != before and status["policySource"] == "api"
    assert box.orders() == []  # nothing was applied locally: no purchase, no local store write


def test_apply_server_reports_refusals_and_changes_nothing(car: Sidecar, tmp_path: Path) -> None:
    box = car.box
    before = car.status()["revision"]
    copy = _edited_copy(box, tmp_path, "78k")
    wrong = _apply(box, copy, car.url, "not-the-token", "-o", "json")
    assert wrong.returncode == 1
    answer = json.loads(wrong.stdout)
    assert answer["status"] == 401 and "token" in answer["answer"]["error"]
    (copy / "policies.yaml").write_text("kind: Nonsense\n")
    invalid = _apply(box, copy, car.url, TOKEN)
    assert invalid.returncode == 1
    assert "policies.yaml" in invalid.stderr  # refused before sending
    nowhere = _apply(box, _edited_copy(box, tmp_path / "x", "79k"), "http://127.0.0.1:9", TOKEN)
    assert nowhere.returncode == 1
    assert "error:" in nowhere.stderr
    assert car.status()["revision"] == before
    assert TOKEN not in car.logs()
