"""The chaos harness in CI: a few seeded runs keep the money invariants, and the checks
catch a deliberately broken safeguard (so a clean run means something).

`bench/chaos.py --runs 200` plays many more seeds; these stay well under the per-test
timeout (a run is a fraction of a second of wall time).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.act import applying
from engine.store import OrderFilter, OrderPhase, open_store
from providers.base import AmbiguousError, TemporaryError
from sandbox.chaos import running as chaos_running
from sandbox.chaos.running import WATCHED, run
from sandbox.chaos.scenario import KINDS, Fault, Scenario

SEEDS = (0, 1, 7, 12, 29, 42)


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_seeded_run_keeps_the_invariants(seed: int, tmp_path: Path) -> None:
    report = await run(seed, tmp_path)
    assert report.faults and report.orders > 0  # (all may be held: killed after intents)
    assert report.clean, report.details
    assert report.errors == []
    assert report.recover_s is not None  # every need met, or held with an open order


def test_scenarios_are_reproducible_and_cover_every_kind() -> None:
    assert Scenario.random(5, WATCHED) == Scenario.random(5, WATCHED)
    seen = {f.kind for seed in range(20) for f in Scenario.random(seed, WATCHED).faults}
    assert seen == set(KINDS)


def _fail_over_on_ambiguity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break invariant 3: treat an ambiguous create as a definite failure."""
    real = applying.bounded  # type: ignore[attr-defined]  # applying's own name, patched below

    async def bounded(clock, seconds, call):  # type: ignore[no-untyped-def]
        try:
            return await real(clock, seconds, call)
        except AmbiguousError as exc:
            raise TemporaryError(exc.provider, str(exc)) from exc

    monkeypatch.setattr(applying, "bounded", bounded)


async def test_the_checks_catch_a_blind_retry_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # itrx (no idempotency key) answers 503 after accepting; address 3 has itrx first
    faults = [Fault(0, "fail", "itrx", "create")]
    scenario = Scenario.fixed(3, faults, {3: 0})
    (tmp_path / "good").mkdir()
    good = await run(3, tmp_path / "good", scenario)
    assert good.clean and good.placed == 1, good.details

    _fail_over_on_ambiguity(monkeypatch)
    (tmp_path / "bad").mkdir()
    bad = await run(3, tmp_path / "bad", Scenario.fixed(3, faults, {3: 0}))
    assert bad.double_orders == 1, bad.details


async def test_a_kill_after_the_answer_loses_nothing(tmp_path: Path) -> None:
    # killed between mefree's receipt and the store write; restarted on the same file
    scenario = Scenario.fixed(4, [Fault(0, "kill", "after_place")], {5: 0})
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
    scenario = Scenario.fixed(5, faults, {5: 0}, fault_steps=15)
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


async def test_junk_from_the_node_buys_nothing_blind(tmp_path: Path) -> None:
    """Regression (issue 13, finding 1): a node answering the account reads with HTTP 200
    junk was read as 0 energy and the engine bought for every watched address. Only the
    drained address is bought for, once the node answers truthfully again."""
    scenario = Scenario.fixed(8, [Fault(0, "node_junk", "node", "6")], {2: 0})
    report = await run(8, tmp_path, scenario)
    assert report.clean, report.details
    assert report.placed == 1 and report.recover_s is not None


async def test_a_price_move_between_quote_and_charge_keeps_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 13, finding 3): the reservation was the quote. itrx quotes
    9.825 TRX for 131k, and charges 12.445 TRX after the move (up to the lowest cap, 95
    sun/energy): with 22 TRX a day two orders fitted their quotes and spent 24.89 TRX.
    Each now reserves its cap (15.72 TRX): the second need is held by the budget."""
    rows = [
        (*row[:8], "{perDay: 22 TRX}") if row[0] == "p-itrx" else row
        for row in chaos_running.POLICIES
    ]
    monkeypatch.setattr(chaos_running, "POLICIES", tuple(rows))
    scenario = Scenario.fixed(9, [Fault(0, "price_move", "itrx", "1.0")], {3: 0, 4: 0})
    report = await run(9, tmp_path, scenario)
    assert report.budget_overruns == 0 and report.clean, report.details
    assert report.placed == 1 and report.held == 1, report
