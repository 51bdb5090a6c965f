"""`energyctl providers` against the sandbox world served on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.core.clock import VirtualClock
from sandbox import demo
from sandbox.world import World

CANARY = "canary-secret-5a4b3c2d"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Path]]:
    # Signatures carry the real time (Mefree checks it): the world's clock starts now.
    with World(clock=VirtualClock(time.time()), watched=2) as running:
        yield running, running.write_policies(tmp_path_factory.mktemp("policies"))


def _invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["providers", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_console_script_lists_every_provider(world: tuple[World, Path]) -> None:
    running, policies = world
    energyctl = Path(sys.executable).parent / "energyctl"
    proc = subprocess.run(
        [str(energyctl), "providers", "-f", str(policies), "--amount", "65k", "--duration", "1h"],
        env={**os.environ, **running.env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "TYPE", "DURATIONS", "AMOUNT"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(demo.VENDORS)
    assert "2.925 TRX (45 sun/energy)" in rows["mefree"]
    assert "2.6 TRX (40 sun/energy)" in rows["itrx"]
    assert "3.9 TRX (60 sun/energy)" in rows["tronsave"]
    assert all(row.endswith("100000 TRX") for row in rows.values())
    assert ">= 64k" in rows["eopen"] and "exclusive" in rows["itrx"]


def test_json_output_with_refusals_and_an_auth_error(world: tuple[World, Path]) -> None:
    running, policies = world
    env = {**running.env(), "SANDBOX_ITRX_API_KEY": CANARY}
    code, out, err = _invoke(
        env, "-f", str(policies), "--amount", "70k", "--duration", "2h", "-o", "json"
    )
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["mefree"]["quoteError"] == "unsupported duration 2h"
    assert rows["tronsave"]["quote"]["totalSun"] == 70_000 * 65  # MEDIUM: SLOW 60 (<= 1 day) + 5
    assert rows["itrx"]["balanceError"].startswith("permanent (auth): itrx:")
    assert rows["eopen"]["capabilities"]["minAmount"] == 64_000
    assert CANARY not in out + err


def test_quote_for_an_address_and_below_minimum(world: tuple[World, Path]) -> None:
    running, policies = world
    code, out, _ = _invoke(
        running.env(), "-f", str(policies), "--amount", "64k", "--duration", "10m",
        "--address", running.watched[1], "-o", "json",
    )  # fmt: skip
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["mefree"]["quoteError"] == "unsupported duration 10m"
    assert rows["eopen"]["quote"]["totalSun"] == 64_000 * 38
    assert rows["itrx"]["quote"] is None
    assert rows["tronsave"]["quoteError"] == "below minimum 64001"  # the SDK's minimum


def test_load_errors_exit_1(world: tuple[World, Path], tmp_path: Path) -> None:
    running, policies = world
    env = {k: v for k, v in running.env().items() if k != "SANDBOX_EOPEN_API_KEY"}
    code, _, err = _invoke(env, "-f", str(policies), "--amount", "65k", "--duration", "1h")
    assert code == 1
    assert "providers.yaml:" in err and "SANDBOX_EOPEN_API_KEY is not set" in err
    code, _, err = _invoke(running.env(), "-f", str(tmp_path / "missing"), "--amount", "65k",
                           "--duration", "1h")  # fmt: skip
    assert code == 1 and "no such file or directory" in err
    result = CliRunner().invoke(
        main, ["providers", "-f", str(policies), "--amount", "lots", "--duration", "1h"]
    )
    assert result.exit_code == 2 and "--amount" in result.output
