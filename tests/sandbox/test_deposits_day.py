"""Acceptance: a deposits workload over 500 deposit addresses for an emulated day, on the
in-process world (emulated chain and vendors), with the engine's deposit desk restarted
mid-run. Every sweep finds its energy (none burns), each deposit episode buys exactly one
order, no address without a deposit gets one, the webhook arrives once per episode with a
valid signature - and the sweeper sweeps only when it arrived."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import httpx

from engine.sidecar.webhooks import WebhookSender, verify
from policies.addresses import encode_base58check
from sandbox import demo
from sandbox.simulating import SimulationClock, load_for_simulation
from sandbox.simulating_deposits import simulate_deposits

SECRET = "sandbox-webhook-secret"  # what simulate answers for the webhook's fromEnv
ADDRESSES = 500
QUIET = 20  # addresses in the file that never receive a deposit

POLICY = f"""\
apiVersion: energyctl/v1
kind: Provider
metadata: {{name: eopen}}
spec: {{type: eopen, apiKey: {{fromEnv: EOPEN_KEY}}}}
---
apiVersion: energyctl/v1
kind: Provider
metadata: {{name: mefree}}
spec: {{type: mefree, apiKey: {{fromEnv: MEFREE_KEY}}, apiSecret: {{fromEnv: MEFREE_SECRET}}}}
---
apiVersion: energyctl/v1
kind: DepositPolicy
metadata: {{name: sweep}}
spec:
  addressesFrom: {{file: addresses.txt}}
  sweepTo: {demo.SINK}
  minDeposit: 1000000
  providers: [eopen, mefree]
  maxPrice: 120 sun/energy
  budget: {{perDay: 100000 TRX}}
  webhook: {{url: "http://sweeper.test/ready", secret: {{fromEnv: WEBHOOK_SECRET}}}}
"""


def address(n: int) -> str:
    return encode_base58check(hashlib.sha256(f"deposit-test/{n}".encode()).digest()[:20])


class Sweeper:
    """The exchange's webhook endpoint: the sweeper sweeps an address once told."""

    def __init__(self, clock: SimulationClock) -> None:
        self.clock = clock
        self.events: list[dict[str, object]] = []
        self.valid: list[bool] = []
        self.ready: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.valid.append(verify(SECRET, dict(request.headers), body, self.clock.now()))
        event = json.loads(body)
        self.events.append(event)
        self.ready.add(str(event["address"]))
        return httpx.Response(204)

    async def is_ready(self, address: str) -> bool:
        if address in self.ready:
            self.ready.discard(address)
            return True
        return False


async def test_a_day_of_deposits_with_a_restart(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(POLICY)
    active = [address(n) for n in range(ADDRESSES - QUIET)]
    quiet = [address(n) for n in range(ADDRESSES - QUIET, ADDRESSES)]
    (tmp_path / "addresses.txt").write_text("\n".join(active + quiet) + "\n")
    policy_set = load_for_simulation([tmp_path])
    # the deposits workload gives every address in the file a deposit: a second policy
    # set file without the quiet addresses feeds the schedule, the engine watches all
    clock = SimulationClock()
    hook = Sweeper(clock)
    sender = WebhookSender(clock, transport=httpx.MockTransport(hook), first_pause=0)
    result = await simulate_deposits(
        policy_set,
        name="day",
        days=1,
        step=300,  # 100 blocks a step: the follower is still reading when the desk restarts
        webhooks=sender,
        ready=hook.is_ready,
        restart_after=12 * 3600,
        deposit_addresses_only=active,
        clock=clock,
    )
    extra = result.extra
    assert extra["deposits"] == len(active) and "restarted_at" in extra
    assert extra["sweeps"] == len(active) and extra["burned_sweeps"] == 0
    assert extra["unswept"] == 0
    assert extra["episodes"] == len(active)  # one episode per deposit (one deposit each)
    per_address = Counter(o.address for o in result.orders)
    assert set(per_address) == set(active)  # none for the quiet addresses
    assert max(per_address.values()) == 1  # exactly one order per episode, restart or not
    assert all(o.phase == "delivered" for o in result.orders)
    assert len(hook.events) == len(active) and all(hook.valid)
    assert Counter(e["address"] for e in hook.events) == Counter(active)
    assert {e["order"] for e in hook.events} == {o.client_order_id for o in result.orders}
