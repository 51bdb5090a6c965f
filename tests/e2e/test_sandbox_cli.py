"""`energyctl sandbox`: the README's first command ends by itself with orders delivered;
`--world-only` prints the world's URLs and credentials; a gentle workload never burns TRX."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
        first = httpx.post(node + "/wallet/getnowblock", timeout=10).json()
        assert re.fullmatch(r"[0-9a-f]{64}", first["blockID"]), first
        number = first["block_header"]["raw_data"].get("number", 0)  # 0 is omitted
        # real time by default: a request signed with the wall clock is fresh for Mefree
        assert described["clock"]["speed"] == 1.0
        mefree = described["providers"]["mefree"]
        time.sleep(6)  # longer than Mefree's 5 s freshness window would be at 60x
        later = httpx.post(node + "/wallet/getnowblock", timeout=10).json()
        assert later["block_header"]["raw_data"].get("number", 0) > number, (first, later)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        secret = mefree["credentials"]["apiSecret"].encode()
        sign = base64.b64encode(
            hmac.new(secret, (stamp + "GET/api/config").encode(), hashlib.sha256).digest()
        ).decode()
        answer = httpx.get(
            mefree["baseUrl"] + "/api/config",
            headers={"MF-ACCESS-KEY": mefree["credentials"]["apiKey"],
                     "MF-ACCESS-TIMESTAMP": stamp, "MF-ACCESS-SIGN": sign},
            timeout=10,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        proc.send_signal(2)  # Ctrl-C stops it cleanly
        assert proc.wait(timeout=20) == 0


def test_no_transfer_burns_while_budgets_and_providers_last(tmp_path: Path) -> None:
    """Acceptance (issue 7): a few emulated minutes of the sandbox, and no transfer burned
    TRX while the policies had budget and the providers had energy. Each address spends
    more than its first top-up (18 x 64,285 > 1M), so the engine must buy again in time."""
    import asyncio

    senders = [demo.watched_address(n) for n in range(demo.WATCHED)]
    transfers = sorted(
        (Transfer(120.0 + 30.0 * k + n * 0.5, sender, False) for k in range(18)
         for n, sender in enumerate(senders)),
        key=lambda t: t.at,
    )  # fmt: skip
    # 40x: a transfer every 30 emulated seconds leaves the engine ~0.75 real seconds per
    # transfer to notice and buy; at 120x a loaded machine could miss that (the test flaked)
    options = SandboxOptions(
        duration=18.0, speed=40.0, workload=Workload("gentle", tuple(transfers)),
        directory=tmp_path,
    )  # fmt: skip
    with SandboxRun(options) as run:
        state = asyncio.run(run.run())
    assert len(state.transfers) == 18 * demo.WATCHED, len(state.transfers)
    assert all(r.ok for r in state.transfers)
    assert state.burns == [], [(r.sender, r.burned_sun) for r in state.burns]
    assert state.delivered > demo.WATCHED  # the first top-ups, then more after spending
    assert not state.errors


async def test_the_engines_http_api_answers_during_a_run(tmp_path: Path) -> None:
    """The sandbox's engine is the sidecar's: /healthz and /v1/status answer while it runs."""
    import asyncio

    options = SandboxOptions(duration=20.0, speed=60.0, directory=tmp_path)
    with SandboxRun(options) as run:
        assert run.api_url.startswith("http://127.0.0.1:")
        stop = asyncio.Event()
        task = asyncio.create_task(run.run(stop))
        status: dict[str, Any] = {}
        async with httpx.AsyncClient(base_url=run.api_url, timeout=5) as client:
            for _ in range(150):
                await asyncio.sleep(0.1)
                try:
                    health = await client.get("/healthz")
                    answer = await client.get("/v1/status")
                except httpx.TransportError:
                    continue  # not serving yet
                status = answer.json()
                if status.get("passes", 0) > 0:
                    break
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            assert answer.status_code == 200, answer.text
            orders = (await client.get("/v1/orders", params={"limit": 100})).json()
        stop.set()
        state = await task
    assert status["passes"] > 0 and status["lastPassError"] is None
    assert len(status["addresses"]) == demo.WATCHED
    assert isinstance(orders, list) and orders  # the first pass bought top-ups
    assert state.passes >= status["passes"] and not state.errors


def test_the_deposits_workload_sweeps_through_the_sidecars_api(tmp_path: Path) -> None:
    """`--workload deposits`: the sidecar (its deposit desk) follows the served node, buys
    one sweep's energy per deposit, and the sweeper, asking `GET /v1/addresses`, sweeps
    every deposit with it: no sweep burns."""
    import asyncio

    options = SandboxOptions(duration=20.0, speed=60.0, directory=tmp_path, deposits=1000)
    with SandboxRun(options) as run:
        state = asyncio.run(run.run())
    assert state.deposits > 0 and not state.errors
    # the sweeper waits for energy ready (it gives up only after 30 emulated minutes, longer
    # than the run): a sweep that burns was told "ready" too early or for too little
    assert [r for r in state.sweeps if r.burned_sun] == []
    assert len(state.sweeps) >= state.deposits // 2  # the newest may still wait
    deposit_orders = [o for o in state.orders if o.policy == "deposits"]
    swept = {r.sender for r in state.sweeps}
    assert swept <= {o.address for o in deposit_orders}
    assert len(deposit_orders) == len({o.address for o in deposit_orders})  # one each
