"""`energyctl providers check` against `energyctl sandbox --world-only`, both subprocesses.

The world runs on random ports (tests run side by side); the policy files are the ones in
`examples/sandbox/` (`demo.DEMO_POLICIES`) written for those ports. The canary's orders
are confirmed by reading the emulated chain through the engine's `ChainReader`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.core.clock import SystemClock
from engine.observe.chain import ChainReader
from sandbox import demo

ENERGYCTL = str(Path(sys.executable).with_name("energyctl"))


@dataclass
class Running:
    described: dict[str, Any]
    policies: Path

    def check(self, *args: str, stdin: str | None = None, **env: str) -> Any:
        return subprocess.run(
            [ENERGYCTL, "providers", "check", "-f", str(self.policies), *args],
            env={**os.environ, **demo.env_values(), **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )

    def chain(self, address: str) -> Any:
        async def read() -> Any:
            node = self.described["node"]["url"]
            async with ChainReader(node, api_key=None, clock=SystemClock()) as reader:
                return await reader.snapshot(address, delegators=True)

        return asyncio.run(read())


@contextmanager
def world_only(directory: Path, *extra: str) -> Iterator[Running]:
    with subprocess.Popen(
        [ENERGYCTL, "sandbox", "--world-only", "--random-ports", "--duration", "120s", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            described = json.loads(proc.stdout.readline())
            urls = {"node": described["node"]["url"]}
            urls |= {v: described["providers"][v]["baseUrl"] for v in demo.VENDORS}
            files = demo.render_policy_files(
                urls, f"sqlite:///{directory / 'energyctl.db'}", demo.DEMO_POLICIES
            )
            for name, text in files.items():
                (directory / name).write_text(text)
            yield Running(described, directory)
        finally:
            proc.send_signal(2)
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with world_only(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


def _verdicts(stdout: str) -> dict[str, str]:
    """`name (type): pass|FAIL (...)` lines, by name."""
    return {
        line.split(" ", 1)[0]: line.split(": ", 1)[1]
        for line in stdout.splitlines()
        if line and not line.startswith(" ") and " (" in line.split(":", 1)[0]
    }


def test_every_vendor_passes(world: Running) -> None:
    done = world.check()
    assert done.returncode == 0, done.stdout + done.stderr
    assert _verdicts(done.stdout) == dict.fromkeys(demo.VENDORS, "pass")
    n = len(demo.VENDORS)
    assert done.stdout.endswith(f"{n} of {n} providers pass\n")
    done = world.check("--output", "json")
    assert done.returncode == 0, done.stderr
    reports = {r["name"]: r for r in json.loads(done.stdout)}
    assert list(reports) == list(demo.VENDORS)
    for report in reports.values():
        assert report["ok"] is True and report["cause"] is None
        assert all(c["ok"] for c in report["checks"].values()), report
        assert abs(report["clockSkewSeconds"]) < 2
        assert report["balanceSun"] == 100_000 * 1_000_000
        assert report["quotes"] and all(q["totalSun"] for q in report["quotes"])
    # the examples' rolling levels: atLeast (262k) for a day is among the sizes quoted
    assert {"energy": 262_000, "duration": 86_400} in [
        {"energy": q["energy"], "duration": q["duration"]} for q in reports["eopen"]["quotes"]
    ]
    for vendor in ("itrx", "eopen", "tronsave", "tronzap"):
        assert reports[vendor]["checks"]["lookup"]["documented"] is True


def test_a_wrong_key_names_the_vendor_and_the_cause(world: Running) -> None:
    done = world.check(SANDBOX_TRONSAVE_API_KEY="wrong-key-7f3e")
    assert done.returncode == 1, done.stdout + done.stderr
    verdicts = _verdicts(done.stdout)
    assert verdicts["tronsave"].startswith("FAIL (authenticated: credentials refused:")
    assert "INVALID_API_KEY" in verdicts["tronsave"]
    assert all(verdicts[v] == "pass" for v in ("mefree", "itrx", "eopen"))
    assert "wrong-key-7f3e" not in done.stdout + done.stderr
    done = world.check("-o", "json", SANDBOX_MEFREE_API_SECRET="wrong-secret-1c2d")
    assert done.returncode == 1
    mefree = {r["name"]: r for r in json.loads(done.stdout)}["mefree"]
    assert mefree["ok"] is False and mefree["cause"].startswith("authenticated: credentials")


def test_a_skewed_vendor_clock_names_the_vendor_and_clock_skew(tmp_path: Path) -> None:
    with world_only(tmp_path, "--vendor-clock-offset", "mefree=30") as skewed:
        assert skewed.described["clock"]["vendorOffsets"] == {"mefree": 30.0}
        done = skewed.check()
        assert done.returncode == 1, done.stdout + done.stderr
        verdicts = _verdicts(done.stdout)
        # refused as a stale signature (a 5 s window) or accepted (a wider one): either
        # way the cause given is the clock, measured from Mefree's Date header
        assert verdicts["mefree"].startswith("FAIL (")
        assert "clock skew +" in verdicts["mefree"]
        assert "ahead of ours" in verdicts["mefree"]
        assert all(verdicts[v] == "pass" for v in ("itrx", "eopen", "tronsave"))
        done = skewed.check("-o", "json")
        mefree = {r["name"]: r for r in json.loads(done.stdout)}["mefree"]
        assert 29 <= mefree["clockSkewSeconds"] <= 31
        assert mefree["checks"]["clock"]["ok"] is False


def test_the_canary_asks_first(world: Running) -> None:
    receiver = world.described["watched"][2]
    done = world.check("--canary", receiver, stdin="n\n")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Place these orders?" in done.stdout and "canary: not ordered" in done.stdout
    assert "mefree: 65k for 1h to " + receiver in done.stdout
    assert world.chain(receiver).delegators == {}


def test_the_canary_delivers_one_order_per_vendor_on_the_chain(world: Running) -> None:
    receiver = world.described["watched"][1]
    done = world.check("--canary", receiver, "--yes", "--deadline", "30s", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    reports = {r["name"]: r for r in json.loads(done.stdout)}
    for vendor, report in reports.items():
        canary = report["canary"]
        assert canary["delivered"] is True, (vendor, canary)
        assert canary["receiver"] == receiver and canary["providerOrderId"]
        assert canary["energyRise"] >= canary["energy"] * 0.97
        texts = [step["text"] for step in canary["steps"]]
        assert texts[1].startswith("accepted: order ") and texts[-1].startswith("delivered: ")
    # each step was printed as it came (stderr when the output is JSON)
    assert "tronsave: +" in done.stderr and "vendor: accepted: order " in done.stderr
    sizes = {v: reports[v]["canary"]["energy"] for v in demo.VENDORS}
    assert sizes == {
        "mefree": 65_000,
        "itrx": 10_000,
        "eopen": 64_000,
        "tronsave": 64_001,
        "catfee": 65_000,
        "feee": 32_000,
        "tronzap": 32_000,  # the services list's minimum (read when the pool opened)
        "netts": 61_000,
    }
    # the chain: one delegation from each vendor's account to the receiver, of its size
    snapshot = world.chain(receiver)
    assert snapshot.delegators is not None
    senders = {demo.provider_address(v): v for v in demo.VENDORS}
    assert set(snapshot.delegators) == set(senders)
    per_sun = snapshot.total_energy_limit / (snapshot.total_energy_weight * 1_000_000)
    for sender, sun in snapshot.delegators.items():
        energy = sizes[senders[sender]]
        assert energy <= sun * per_sun < energy * 1.01, (senders[sender], sun)
    assert snapshot.limit >= sum(sizes.values())
