"""The chaos harness in CI: a few seeded runs keep the money invariants, and the checks
catch a deliberately broken safeguard (so a clean run means something).

`bench/chaos.py --runs 200` plays many more seeds; these stay well under the per-test
timeout (a run is a fraction of a second of wall time).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import applying
from engine.store import OrderFilter, OrderPhase, open_store
from providers.base import AmbiguousError, TemporaryError
from sandbox.chaos.running import WATCHED, run
from sandbox.chaos.scenario import KINDS, Fault, Scenario

SEEDS = (0, 1, 7, 12, 29, 42)


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_seeded_run_keeps_the_invariants(seed: int, tmp_path: Path) -> None:
    report = await run(seed, tmp_path)
    assert report.faults and report.placed > 0
    assert report.clean, report.details
    assert report.errors == []
    assert report.recover_s is not None  # every need met, or held with an open order


def test_scenarios_are_reproducible_and_cover_every_kind() -> None:
    assert Scenario.random(5, WATCHED) == Scenario.random(5, WATCHED)
    seen = {f.kind for seed in range(20) for f in Scenario.random(seed, WATCHED).faults}
    assert seen == set(KINDS)


def _fail_over_on_ambiguity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break invariant 3: treat an ambiguous create as a definite failure."""
    real = applying.bounded

    async def bounded(clock, seconds, call):  # type: ignore[no-untyped-def]
        try:
            return await real(clock, seconds, call)
        except AmbiguousError as exc:
            raise TemporaryError(exc.provider, str(exc)) from exc

    monkeypatch.setattr(applying, "bounded", bounded)


async def test_the_checks_catch_a_blind_retry_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # itrx (no idempotency key) answers 503 after accepting; address 4 has itrx first
    faults = [Fault(0, "fail", "itrx", "create")]
    scenario = Scenario.fixed(3, faults, {4: 0})
    (tmp_path / "good").mkdir()
    good = await run(3, tmp_path / "good", scenario)
    assert good.clean and good.placed == 1, good.details

    _fail_over_on_ambiguity(monkeypatch)
    (tmp_path / "bad").mkdir()
    bad = await run(3, tmp_path / "bad", Scenario.fixed(3, faults, {4: 0}))
    assert bad.double_orders == 1, bad.details


async def test_a_kill_after_the_answer_loses_nothing(tmp_path: Path) -> None:
    # killed between mefree's receipt and the store write; restarted on the same file
    scenario = Scenario.fixed(4, [Fault(0, "kill", "after_place")], {6: 0})
    report = await run(4, tmp_path, scenario)
    assert report.kills == 1
    assert report.clean and report.placed == 1, report.details


async def test_a_node_outage_longer_than_the_delivery_wait_fails_nothing(
    tmp_path: Path,
) -> None:
    """Regression (found by the chaos runs): with the node down, tracking concluded "the
    chain shows nothing" from no reading at all, and failed a delivered order after
    `delivery_wait`. It now waits for a reading: the order ends delivered."""
    faults = [Fault(1, "node_down", "node", "14")]
    scenario = Scenario.fixed(5, faults, {6: 0}, fault_steps=15)
    report = await run(5, tmp_path, scenario)
    assert report.clean, report.details
    store = await open_store(f"sqlite:///{tmp_path / 'chaos.db'}", _Clock())
    try:
        [order] = await store.orders(OrderFilter(limit=10))
    finally:
        await store.close()
    assert order.phase is OrderPhase.DELIVERED, order


class _Clock:
    def now(self) -> float:
        return 1_767_225_600.0

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("not used")
