"""`energyctl report` on a simulation's store and node gives the simulator's figures.

One emulated day of the `steady` workload on four addresses in two policies (a wasteful
three-day rental, and an hourly one with a low threshold that burns), the store kept and
the world's node served; then the report's core (and the command, through click's
CliRunner) reads that store and node. Per address, spend, energy bought, used, wasted,
burned and cost per transfer must agree with the simulator's report within 2 %.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.act.reporting import cost_report
from engine.cli import main
from engine.observe.chain import ChainReader
from engine.store import open_store
from sandbox import demo
from sandbox.serving import LoopbackServer
from sandbox.simulating import SimulationResult, load_for_simulation, simulate
from sandbox.tron_node.app import create_app

A = [demo.watched_address(n) for n in range(4)]
POLICIES = f"""\
apiVersion: energyctl/v1
kind: Provider
metadata: {{name: cheap}}
spec:
  type: eopen
  apiKey: {{fromEnv: MY_EOPEN_KEY}}
---
apiVersion: energyctl/v1
kind: EnergyPolicy
metadata: {{name: payouts}}
spec:
  addresses: [{A[0]}, {A[1]}]
  threshold: 150k
  topUp: {{amount: 3M, duration: 3d}}
  providers: [cheap]
  maxPrice: 300 sun/energy
  budget: {{perDay: 5000 TRX}}
---
apiVersion: energyctl/v1
kind: EnergyPolicy
metadata: {{name: hourly}}
spec:
  addresses: [{A[2]}, {A[3]}]
  threshold: 40k
  topUp: {{amount: 131k, duration: 1h}}
  providers: [cheap]
  maxPrice: 100 sun/energy
  budget: {{perDay: 5000 TRX}}
"""
KEYS = (
    "spent_sun", "burned_sun", "energy_bought", "energy_used", "energy_needed",
    "wasted_energy", "cost_per_transfer_sun", "burn_per_transfer_sun", "transfers",
)  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, SimulationResult]:
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "p.yaml").write_text(POLICIES)
    store_url = f"sqlite:///{tmp / 'sim.db'}"

    async def go() -> SimulationResult:
        return await simulate(
            [tmp / "p.yaml"], "steady", days=1.0, store_url=store_url, keep_world=True,
            with_optimum=False,
        )  # fmt: skip

    import asyncio

    return tmp / "p.yaml", store_url, asyncio.run(go())


def _close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= 0.02 * max(abs(theirs), 1)


def _compare(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    off = []
    for address, expected in theirs.items():
        got = ours[address]
        off += [
            f"{address} {key}: report {got[key]} simulator {expected[key]}"
            for key in KEYS
            if not _close(got[key], expected[key])
        ]
    return off


def _by_address(report: dict[str, Any]) -> dict[str, Any]:
    return {
        address: {**row, "policy": name}
        for name, policy in report["policies"].items()
        for address, row in policy["addresses"].items()
    }


async def test_report_core_matches_the_simulator(run: tuple[Path, str, SimulationResult]) -> None:
    path, store_url, result = run
    simulated = result.report()["addresses"]
    assert set(simulated) == set(A)
    # the workload did something worth comparing: transfers, spend, and some burning
    assert all(simulated[a]["transfers"] > 10 and simulated[a]["spent_sun"] > 0 for a in A)
    assert sum(simulated[a]["burned_sun"] for a in A) > 0
    assert result.world is not None
    policy_set = load_for_simulation([path])
    clock = result.world.clock
    store = await open_store(store_url, clock)
    async with (
        store,
        ChainReader(
            "http://node.invalid", api_key=None, clock=clock,
            transport=result.world.node_transport(),
        ) as reader,
    ):  # fmt: skip
        found = (await cost_report(policy_set, store, reader, since=2 * 86_400)).to_json()
    ours = _by_address(found)
    assert _compare(ours, simulated) == []
    assert {a: ours[a]["policy"] for a in A} == {a: simulated[a]["policy"] for a in A}
    rules = {(s["policy"], s["rule"]) for s in found["suggestions"]}
    assert ("payouts", "waste") in rules  # a million for three days, a day's use
    waste = next(s for s in found["suggestions"] if s["rule"] == "waste")
    assert 0 < waste["estimated_sun"] < waste["current_sun"]


def test_report_command_on_the_served_node(run: tuple[Path, str, SimulationResult]) -> None:
    path, store_url, result = run
    assert result.world is not None
    node = LoopbackServer(create_app(result.world.chain)).start()
    try:
        runner = CliRunner()
        done = runner.invoke(
            main,
            ["report", "-f", str(path), "--since", "2d", "-o", "json", "--store", store_url,
             "--node", node.url],
            env={"MY_EOPEN_KEY": "x"},
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        ours = _by_address(json.loads(done.stdout))
        assert _compare(ours, result.report()["addresses"]) == []
        text = runner.invoke(
            main, ["report", "-f", str(path), "--since", "2d", "--store", store_url,
                   "--node", node.url],
        )  # fmt: skip
        assert text.exit_code == 0, text.output
        assert "payouts" in text.stdout and A[0] in text.stdout and "suggestions:" in text.stdout
        bad = runner.invoke(main, ["report", "-f", str(path), "--since", "soon"])
        assert bad.exit_code == 2 and "--since" in bad.output
    finally:
        node.stop()
