"""`energyctl sandbox`: the README's first command ends by itself with orders delivered;
`--world-only` prints the world's URLs and credentials; a gentle workload never burns TRX."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from sandbox import demo
from sandbox.running import SandboxOptions, SandboxRun
from sandbox.workload import Transfer, Workload

ENERGYCTL = str(Path(sys.executable).with_name("energyctl"))


def test_sandbox_runs_for_its_duration_and_tops_up_drained_addresses(tmp_path: Path) -> None:
    done = subprocess.run(
        [ENERGYCTL, "sandbox", "--duration", "6s", "--speed", "60", "--no-live"],
        capture_output=True, text=True, timeout=50, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"orders: (\d+) placed, (\d+) delivered on the emulated chain", done.stdout)
    assert found is not None, done.stdout
    assert int(found[2]) >= demo.WATCHED  # every address started drained
    assert re.search(r"transfers: \d+, \d+ burned TRX", done.stdout), done.stdout
    assert "Traceback" not in done.stderr


def test_world_only_prints_one_json_line_and_serves_it() -> None:
    with subprocess.Popen(
        [ENERGYCTL, "sandbox", "--world-only", "--random-ports", "--duration", "20s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        described = json.loads(proc.stdout.readline())
        node = described["node"]["url"]
        assert node.startswith("http://127.0.0.1:")
        assert set(described["providers"]) == set(demo.VENDORS)
        assert described["providers"]["itrx"]["credentials"] == demo.CREDENTIALS["itrx"]
        assert described["env"] == demo.env_values()
        block = httpx.post(node + "/wallet/getnowblock", timeout=10).json()
        assert block["block_header"]["raw_data"]["number"] >= 0
        proc.send_signal(2)  # Ctrl-C stops it cleanly
        assert proc.wait(timeout=20) == 0


def test_no_transfer_burns_while_budgets_and_providers_last(tmp_path: Path) -> None:
    import asyncio

    # every address pays a USDT holder every 4 emulated minutes, from minute 2
    senders = [demo.watched_address(n) for n in range(demo.WATCHED)]
    transfers = sorted(
        (Transfer(120.0 + 240.0 * k + n, sender, False) for k in range(3) for n, sender in
         enumerate(senders)),
        key=lambda t: t.at,
    )  # fmt: skip
    options = SandboxOptions(
        duration=7.0, speed=120.0, workload=Workload("gentle", tuple(transfers)),
        directory=tmp_path,
    )  # fmt: skip
    with SandboxRun(options) as run:
        state = asyncio.run(run.run())
    assert len(state.transfers) == 3 * demo.WATCHED, len(state.transfers)
    assert all(r.ok for r in state.transfers)
    assert state.burns == [], [(r.sender, r.burned_sun) for r in state.burns]
    assert state.delivered > demo.WATCHED  # the first top-ups and some after spending
    assert not state.errors
