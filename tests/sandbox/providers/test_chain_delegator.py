"""ChainDelegator on the real emulated node, alone and behind a vendor emulator."""

from __future__ import annotations

import httpx
import pytest

from engine.core.clock import VirtualClock
from sandbox.providers.base import DelegationError
from sandbox.providers.chain_delegator import ChainDelegator
from sandbox.providers.eopen import EopenEmulator
from sandbox.providers.tronsave import TronSaveEmulator
from sandbox.tron_node import ChainState
from tests.sandbox.providers.conftest import OTHER, RECEIVER

PROVIDER = "TWZEhq5JuUVvGtutNgnRBATbF8BnHGyn4S"
TRX = 1_000_000


@pytest.fixture
def state(clock: VirtualClock) -> ChainState:
    chain = ChainState(clock)
    chain.create_account(PROVIDER, 2_000_000 * TRX)
    chain.stake_energy(PROVIDER, 1_000_000 * TRX)  # about 9.5 M energy
    chain.create_account(RECEIVER, 10 * TRX)
    return chain


def test_receiver_gains_at_least_the_ordered_energy_and_loses_it_on_reclaim(
    state: ChainState, clock: VirtualClock
) -> None:
    delegator = ChainDelegator(state, PROVIDER)
    before = state.available_energy(RECEIVER)
    txid = delegator.delegate(RECEIVER, 65_000, 3600)
    assert len(txid) == 64
    assert state.available_energy(RECEIVER) - before >= 65_000
    clock.advance(3)
    delegator.reclaim(txid)
    assert state.available_energy(RECEIVER) == before
    with pytest.raises(DelegationError):
        delegator.reclaim(txid)


def test_node_refusals_become_delegation_errors(state: ChainState) -> None:
    delegator = ChainDelegator(state, PROVIDER)
    with pytest.raises(DelegationError, match="not exists"):
        delegator.delegate(OTHER, 65_000, 3600)  # not activated
    free = delegator.available_energy()
    assert 9_000_000 < free < 10_000_000
    with pytest.raises(DelegationError):
        delegator.delegate(RECEIVER, free + 100_000, 3600)  # out of stake
    assert not delegator.is_activated(OTHER)
    delegator.activate(OTHER)
    assert delegator.is_activated(OTHER)
    delegator.delegate(OTHER, 65_000, 3600)
    assert delegator.available_energy() < free - 60_000


def test_locked_delegations_use_the_order_duration(state: ChainState, clock: VirtualClock) -> None:
    delegator = ChainDelegator(state, PROVIDER, lock=True)
    txid = delegator.delegate(RECEIVER, 65_000, 300)
    with pytest.raises(DelegationError, match="insufficient delegateFrozenBalance"):
        delegator.reclaim(txid)
    clock.advance(303)
    delegator.reclaim(txid)


async def test_an_emulator_order_lands_on_chain(state: ChainState, clock: VirtualClock) -> None:
    emu = EopenEmulator(ChainDelegator(state, PROVIDER), clock=clock, api_key="k")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app),
        base_url="https://api.eopen.io/api",
        headers={"API-KEY": "k"},
    ) as http:
        params = {"pledgeAddress": OTHER, "rentalCount": "65000", "period": "1h"}
        created = (await http.post("/v1/tron/order", params=params)).json()
        assert created["code"] == 0
        assert state.has_account(OTHER)  # eopen activates unactivated receivers
        clock.advance(4)
        history = await http.get("/v1/tron/history", params={"orderId": created["data"]["id"]})
    assert history.json()["data"]["status"] == "COMPLETED"
    assert state.available_energy(OTHER) >= 65_000
    clock.advance(3600)
    emu.tick()
    assert state.available_energy(OTHER) == 0


async def test_tronsave_market_is_the_providers_free_stake(
    state: ChainState, clock: VirtualClock
) -> None:
    delegator = ChainDelegator(state, PROVIDER)
    emu = TronSaveEmulator(delegator, clock=clock, api_key="k")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app),
        base_url="https://api.tronsave.io",
        headers={"apikey": "k"},
    ) as http:
        too_much = delegator.available_energy() + 1
        resp = await http.post(
            "/v2/buy-resource",
            json={"receiver": RECEIVER, "resourceAmount": too_much,
                  "options": {"onlyCreateWhenFulfilled": True}},
        )  # fmt: skip
        assert resp.json()["message"].endswith("CANNOT_FULFILLED")
        resp = await http.post(
            "/v2/buy-resource", json={"receiver": RECEIVER, "resourceAmount": 80_000}
        )
        assert resp.status_code == 201
        clock.advance(6)
        order = (await http.get(f"/v2/order/{resp.json()['data']['orderId']}")).json()["data"]
    assert order["fulfilledPercent"] == 100 and order["delegates"][0]["delegator"] == PROVIDER
    assert state.available_energy(RECEIVER) >= 80_000
