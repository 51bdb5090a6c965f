"""The /control/* API that other processes (workload, provider emulators) drive the chain with."""

from __future__ import annotations

import httpx

from engine.core.clock import ScaledClock, VirtualClock
from sandbox.tron_node import ChainState, TronNode
from tests.sandbox.tron_node.conftest import FRESH, OTHER, TRX, addr


def test_control_round_trip() -> None:
    chain = ChainState(VirtualClock())
    with TronNode.start(chain) as node, httpx.Client(base_url=node.url) as c:
        provider, user = addr(50), addr(51)
        created = c.post("/control/accounts", json={"address": provider, "balance_sun": 10**13})
        assert created.status_code == 200 and created.json()["balance_sun"] == 10**13
        c.post("/control/fund", json={"address": user, "sun": 50 * TRX}).raise_for_status()
        assert c.post("/control/stake", json={"address": provider, "sun": 10**12}).json()["txid"]
        sun = c.get("/control/sun-for-energy", params={"energy": 65_000}).json()["sun"]
        assert sun == chain.sun_for_energy(65_000)
        body = {"owner": provider, "receiver": user, "sun": sun, "lock_period_blocks": 1200}
        assert len(c.post("/control/delegate", json=body).json()["txid"]) == 64
        account = c.get(f"/control/accounts/{user}").json()
        assert account["available_energy"] >= 65_000 and account["exists"]
        sent = c.post("/control/transfer", json={"sender": user, "recipient": OTHER}).json()
        pool = account["available_energy"]
        assert (sent["block"], sent["energy_usage"]) == (1, pool)
        assert sent["energy_fee"] == (130_285 - pool) * 100
        assert c.post("/control/advance", json={"seconds": 3600}).json()["head"] == 1200
        state = c.get("/control/state").json()
        assert (state["head"], state["solid"]) == (1200, 1181)
        early = c.post("/control/undelegate", json={"owner": provider, "receiver": user, "sun": 1})
        assert early.status_code == 400 and "unlock_balance=0" in early.json()["error"]
        missing = c.post("/control/delegate", json={**body, "receiver": FRESH})
        assert missing.status_code == 400 and "not exists" in missing.json()["error"]
        bad = c.post("/control/stake", json={"address": provider})
        assert bad.status_code == 400 and "'sun'" in bad.json()["error"]


def test_advance_refused_on_a_running_clock() -> None:
    with TronNode.start(ChainState(ScaledClock(speed=10))) as node:
        refused = httpx.post(node.url + "/control/advance", json={"seconds": 5})
    assert refused.status_code == 400 and "cannot be advanced" in refused.json()["error"]
