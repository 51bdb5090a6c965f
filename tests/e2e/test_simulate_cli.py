"""`energyctl simulate`: two policy sets side by side, a JSON report and a PNG chart each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.sandbox.test_simulating import POLICY

ENERGYCTL = str(Path(sys.executable).with_name("energyctl"))


def test_simulate_compares_two_policy_sets(tmp_path: Path) -> None:
    (tmp_path / "hourly.yaml").write_text(POLICY)
    (tmp_path / "level.yaml").write_text(POLICY.replace("amount: 131k", "amount: 200k"))
    out = tmp_path / "out"
    done = subprocess.run(
        [ENERGYCTL, "simulate", "-f", str(tmp_path / "hourly.yaml"), "-f",
         str(tmp_path / "level.yaml"), "--workload", "steady", "--days", "0.1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=50, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0].split()
    assert header == ["hourly", "level"]
    assert "spent / floor" in done.stdout and "simulating hourly" in done.stderr
    assert "cost over optimum" in done.stdout and "energy wasted" in done.stdout
    assert "bound's recovery window" in done.stdout
    for name in ("hourly", "level"):
        report = json.loads((out / f"{name}.json").read_text())
        assert report["name"] == name and report["transfers"] > 0
        assert report["total_sun"] == report["spent_sun"] + report["burned_sun"]
        # the hindsight optimum: a lower bound, so the policy costs at least as much
        bound = report["optimum"]["lower_bound_sun"]
        assert 0 < bound <= report["total_sun"]
        assert report["cost_over_optimum"] == round(report["total_sun"] / bound, 4)
        assert report["optimum"]["milp_sun"] is None or report["optimum"]["milp_sun"] >= bound
        assert 0 < report["optimum"]["recovery_factor"] <= 1
        assert report["wasted_energy"] <= report["energy_capacity"]
        assert 0 <= report["wasted_share"] <= 1
        assert set(report["providers"]) == {"cheap"} and report["transfers_burning"] >= 0
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    hourly = json.loads((out / "hourly.json").read_text())
    level = json.loads((out / "level.json").read_text())
    assert hourly["transfers"] == level["transfers"]  # the same workload for both


def test_simulate_reports_an_invalid_policy_set(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(POLICY.replace("providers: [cheap]", "providers: [nope]"))
    done = subprocess.run(
        [ENERGYCTL, "simulate", "-f", str(tmp_path / "bad.yaml"), "--days", "0.01",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=50, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "nope" in done.stderr


def _spent(tmp_path: Path, *extra: str) -> int:
    (tmp_path / "hourly.yaml").write_text(POLICY)
    out = tmp_path / ("out" + "".join(extra))
    done = subprocess.run(
        [ENERGYCTL, "simulate", "-f", str(tmp_path / "hourly.yaml"), "--workload", "steady",
         "--days", "0.1", "--out", str(out), *extra],
        capture_output=True, text=True, timeout=50, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "hourly.json").read_text())
    assert report["spent_sun"] > 0
    return int(report["spent_sun"])


def test_simulate_drift_seed_moves_the_prices(tmp_path: Path) -> None:
    """--drift-seed N runs the market with Drift(N): eopen's prices then move with the time
    of day (+-15 %), so the same orders cost otherwise than at the fixed table."""
    fixed = _spent(tmp_path)
    drifting = _spent(tmp_path, "--drift-seed", "3")
    assert drifting != fixed
    assert _spent(tmp_path, "--drift-seed", "3") == drifting  # seeded: the same moves
    helped = subprocess.run(
        [ENERGYCTL, "simulate", "--help"], capture_output=True, text=True, timeout=50, check=False
    )
    assert "--drift-seed" in helped.stdout
