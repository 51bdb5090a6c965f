"""Renewal before expiry, end to end: a steady sender on a rolling level of day-long
pieces through the simulator (the engine's own passes against the emulated node and
vendors): pieces end mid-run, the next is bought before they end, nothing burns around
the ends and an address never has two open orders."""

from __future__ import annotations

import itertools
from pathlib import Path

from engine.store import OrderPhase
from sandbox import demo
from sandbox.simulating import simulate

ADDRESSES = [demo.watched_address(n) for n in range(2)]
POLICY = f"""\
apiVersion: energyctl/v1
kind: Provider
metadata: {{name: mefree}}
spec:
  type: mefree
  apiKey: {{fromEnv: K1}}
  apiSecret: {{fromEnv: K2}}
---
apiVersion: energyctl/v1
kind: Provider
metadata: {{name: eopen}}
spec:
  type: eopen
  apiKey: {{fromEnv: K3}}
---
apiVersion: energyctl/v1
kind: EnergyPolicy
metadata: {{name: steady}}
spec:
  addresses: [{", ".join(ADDRESSES)}]
  threshold: 131k
  topUp: {{auto: {{}}, duration: [1d]}}
  strategy: cheapest
  expectedUse: {{perDay: 1.8M}}
  renewBefore: 20m
  providers: [mefree, eopen]
  maxPrice: 100 sun/energy
  budget: {{perDay: 1000 TRX}}
"""


async def test_a_daily_rental_is_renewed_before_it_ends(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    result = await simulate(
        [tmp_path / "policy.yaml"], "steady", days=2.6, with_optimum=False, sweep=900.0
    )
    start = result.started_at
    delivered = [o for o in result.orders if o.phase is OrderPhase.DELIVERED]
    daily = [o for o in delivered if o.duration == 86_400]
    end = start + 2.6 * 86_400
    for address in ADDRESSES:
        mine = [o for o in daily if o.address == address]
        # the pieces of the first day end during the run, and before some of those ends
        # the next piece was bought within the lead time (20 min): the end was seen coming
        ends = [o.created_at + 86_400 for o in mine if o.created_at + 86_400 < end]
        assert len(ends) >= 3, ends
        ahead = [e for e in ends if any(e - 1200 <= o.created_at < e for o in mine)]
        assert ahead, (address, sorted((o.created_at - start) / 3600 for o in mine))
    # no transfer burned around the expiries (the first hour: the first delivery)
    late = [t for t in result.transfers if t.at - start > 3600]
    assert late and not [t for t in late if t.burned_sun]
    # at most one open order per address at any time: each order of an address was
    # settled (its last update) before the next one was created
    for address in ADDRESSES:
        mine = sorted(
            (o for o in result.orders if o.address == address), key=lambda o: o.created_at
        )
        for before, after in itertools.pairwise(mine):
            assert before.updated_at <= after.created_at, (before, after)
