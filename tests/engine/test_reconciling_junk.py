"""A node answering junk: a failed read, never 0 energy, and nothing bought (issue 13,
finding 1). The in-process market of `tests/engine/market.py`; helpers of
`tests/engine/test_reconciling.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.engine.market import TRX, VENDORS, Market, address
from tests.engine.test_reconciling import policy_set, reconciler


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Market]:
    m = await Market.open(tmp_path)
    try:
        yield m
        await m.assert_one_open_per_address()
    finally:
        await m.close()


async def test_junk_from_the_node_is_a_failed_read_and_buys_nothing(
    market: Market, tmp_path: Path
) -> None:
    """Regression: a node answering `getaccountresource` with HTTP 200 and a JSON body
    without the energy fields (`{"status": "busy"}`) was read as 0 energy, and the pass
    bought for every watched address although each held 65k-400k. A body without the
    network totals a real node always sends is now a failed read: nothing is bought."""
    watched = market.watched(20)
    staker = address("junk-staker")
    market.chain.create_account(staker, 1_000_000 * TRX)
    market.chain.stake_energy(staker, 900_000 * TRX)
    for n, item in enumerate(watched):
        energy = 65_000 + n * 335_000 // 19
        market.chain.delegate_energy(staker, item, market.chain.sun_for_energy(energy), None)
    assert min(market.energy(a) for a in watched) >= 65_000
    rec = reconciler(market, policy_set(tmp_path, watched, ["p-eopen", "p-mefree"]))
    market.node_app.state.faults.junk()
    result = await rec.run_pass(apply=True)
    assert result.outcomes == ()
    assert all(market.creates(v) == 0 for v in VENDORS)
    assert {str(e.reason) for e in result.plan.entries} == {"ObservationError"}, [
        e.detail for e in result.plan.entries
    ]
    assert "no TotalEnergyLimit" in result.plan.entries[0].detail
    market.node_app.state.faults.junk(False)
    healthy = await rec.run_pass(apply=True)
    assert healthy.outcomes == () and all(market.creates(v) == 0 for v in VENDORS)
