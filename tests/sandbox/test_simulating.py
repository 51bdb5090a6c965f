"""Simulation: the report's arithmetic checked by hand on a tiny workload; secrets mapping."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from policies.models import EngineSpec
from sandbox import demo
from sandbox.reporting import comparison_table, write_chart
from sandbox.simulating import SimulationError, reaction_step, simulate

ADDRESS = demo.watched_address(0)
POLICY = f"""\
apiVersion: energyctl/v1
kind: Provider
metadata: {{name: cheap}}
spec:
  type: eopen
  apiKey: {{fromEnv: MY_EOPEN_KEY}}
---
apiVersion: energyctl/v1
kind: EnergyPolicy
metadata: {{name: one}}
spec:
  addresses: [{ADDRESS}]
  threshold: 65k
  topUp: {{amount: 131k, duration: 1h}}
  providers: [cheap]
  maxPrice: 100 sun/energy
  budget: {{perDay: 1000 TRX}}
"""
# eopen's 1 h price is 30 sun per energy for the whole period, its 10 min price 38
# (docs/sandbox-providers.md); a transfer to a holder needs 64,285 energy, to a fresh
# address 130,285; burning costs 100 sun per energy.
CSV = f"""\
time,sender,recipient_holds_usdt
2026-01-01T00:10:00Z,{ADDRESS},true
2026-01-01T00:20:00Z,{ADDRESS},true
2026-01-01T00:20:10Z,{ADDRESS},false
"""


async def test_report_arithmetic_on_a_tiny_workload(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    (tmp_path / "w.csv").write_text(CSV)
    result = await simulate([tmp_path / "p.yaml"], str(tmp_path / "w.csv"), days=0.03)
    report = result.report()
    first, second, third = result.transfers
    # topped up at the start: both holder transfers come out of the rented energy
    assert (first.energy_used, first.burned_sun) == (64_285, 0)
    assert (second.energy_used, second.burned_sun) == (64_285, 0)
    # 131,000 - 2 x 64,285 = 2,430 left (plus a little regeneration) for 130,285 needed
    assert third.energy_total == 130_285 and 2_430 <= third.energy_used < 3_500
    assert third.burned_sun == (130_285 - third.energy_used) * 100
    orders = [o for o in result.orders if str(o.phase) == "delivered"]
    assert orders and all(o.energy == 131_000 and o.provider == "cheap" for o in orders)
    assert report["providers"]["cheap"]["spent_sun"] == 131_000 * 30 * len(orders)
    assert report["spent_sun"] == 131_000 * 30 * len(orders)
    assert report["burned_sun"] == third.burned_sun
    assert report["transfers"] == 3 and report["transfers_burning"] == 1
    used = 2 * 64_285 + third.energy_used
    assert report["energy_used"] == used
    assert report["energy_bought"] == 131_000 * len(orders)
    assert report["waste_energy"] == 131_000 * len(orders) - used
    total = report["spent_sun"] + report["burned_sun"]
    assert report["cost_per_transfer_sun"] == total // 3
    assert report["burn_per_transfer_sun"] == (2 * 64_285 + 130_285) * 100 // 3
    floor = report["floor"]
    assert (floor["provider"], floor["duration"]) == ("cheap", 600)  # the 10 min rental
    assert result.floor is not None and result.floor.energy == 131_000
    unit = Fraction(result.floor.total_sun, 131_000)  # eopen's quote: 38 sun/energy, rounded up
    assert 38 <= unit < 39 and floor["unit_price_sun"] == round(float(unit), 4)
    assert floor["floor_sun"] == int(unit * used)
    assert report["spent_over_floor"] == round(float(report["spent_sun"] / (unit * used)), 4)
    chart = write_chart(result, tmp_path / "chart.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = comparison_table([report, {**report, "name": "again"}])
    assert "spent / floor" in table and "again" in table and "cheap (TRX)" in table


async def test_file_secrets_and_unknown_workloads_are_refused(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY.replace("fromEnv: MY_EOPEN_KEY", "fromFile: k"))
    with pytest.raises(SimulationError, match="comes from a file"):
        await simulate([tmp_path / "p.yaml"], "steady", days=0.01)
    (tmp_path / "p.yaml").write_text(POLICY)
    with pytest.raises(SimulationError, match="neither a profile"):
        await simulate([tmp_path / "p.yaml"], "spiky", days=0.01)


async def test_an_exhausted_budget_stops_buying_and_transfers_burn(tmp_path: Path) -> None:
    # room for one 131k order a day (3.93 TRX at eopen's 1 h price; the cap needs 13.1)
    (tmp_path / "p.yaml").write_text(POLICY.replace("perDay: 1000 TRX", "perDay: 14 TRX"))
    rows = [f"2026-01-01T{h:02d}:{m:02d}:00Z,{ADDRESS},true" for h in range(3) for m in (5, 35)]
    (tmp_path / "w.csv").write_text("time,sender,recipient_holds_usdt\n" + "\n".join(rows))
    result = await simulate([tmp_path / "p.yaml"], str(tmp_path / "w.csv"), days=0.125)
    report = result.report()
    charged = [o for o in result.orders if str(o.phase) not in ("failed", "abandoned")]
    assert len(charged) == 1 and report["spent_sun"] == 131_000 * 30 <= 14 * 1_000_000
    # the first order covers two transfers; every later one burns
    assert [r.burned_sun > 0 for r in result.transfers] == [False, False] + [True] * 4
    assert report["burned_sun"] == sum(r.burned_sun for r in result.transfers)


async def test_a_set_with_both_kinds_of_policy_is_refused_by_name(tmp_path: Path) -> None:
    deposits = f"""\
---
apiVersion: energyctl/v1
kind: DepositPolicy
metadata: {{name: sweep}}
spec:
  addresses: [{demo.deposit_address(0)}]
  sweepTo: {demo.SINK}
  providers: [cheap]
  maxPrice: 100 sun/energy
  budget: {{perDay: 100 TRX}}
"""
    (tmp_path / "p.yaml").write_text(POLICY + deposits)
    for workload in ("deposits", "payments"):
        with pytest.raises(SimulationError, match=r"EnergyPolicies \(one\) and DepositPolicies"):
            await simulate([tmp_path / "p.yaml"], workload, days=0.01)


@pytest.mark.parametrize(
    ("observation", "step"),
    [
        ({"mode": "poll", "interval": "15s"}, 15.0),
        ({"mode": "poll", "interval": "5s"}, 5.0),
        ({"mode": "poll", "interval": "5m"}, 60.0),  # never coarser than a minute
        ({"mode": "follow", "interval": "5m"}, 15.0),  # wakes within a block: 15 s here
        ({}, 30.0),  # the default poll interval
    ],
)
def test_the_default_step_is_the_engines_reaction_time(
    observation: dict[str, str], step: float
) -> None:
    spec = EngineSpec.model_validate({"observation": observation})
    assert reaction_step(spec) == step
