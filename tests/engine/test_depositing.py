"""The deposit desk against the emulated chain and vendors (tests/engine/market.py): a
deposit in a block buys one sweep's energy, once per episode; several deposits before the
sweep still one; the sweep closes the episode; a restart buys nothing twice; the webhook
arrives once, signed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from engine.act.tracking import Tracker
from engine.core.deposits import NeedState
from engine.sidecar.depositing import DepositDesk, DepositSettings, UnknownDepositAddress
from engine.sidecar.webhooks import WebhookSender, verify
from policies.deposits import USDT, DepositPolicy
from tests.engine.market import SINK, TRX, Market, address

SECRET = "whsec-test"


def deposit_policy(addresses: list[str], providers: list[str], **spec: Any) -> DepositPolicy:
    base: dict[str, Any] = {
        "addresses": addresses,
        "sweepTo": SINK,
        "providers": providers,
        "maxPrice": "120 sun/energy",
        "budget": {"perDay": "10000 TRX"},
        "minDeposit": 1_000_000,
    }
    base.update(spec)
    return DepositPolicy.model_validate(
        {"apiVersion": "energyctl/v1", "kind": "DepositPolicy", "metadata": {"name": "sweep"}}
        | {"spec": base}
    )


class Receiver:
    """The sweeper's webhook endpoint: records and verifies each delivery."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.seen: list[dict[str, Any]] = []
        self.valid: list[bool] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.valid.append(verify(SECRET, dict(request.headers), body, self.market.clock.now()))
        self.seen.append(json.loads(body))
        return httpx.Response(200)


@pytest.fixture
async def market(tmp_path: Path) -> Any:
    m = await Market.open(tmp_path)
    yield m
    await m.close()


def desk_for(
    market: Market,
    policy: DepositPolicy,
    receiver: Receiver | None = None,
    vendor: str = "p-eopen",
    cursor: str = "energyctl",
) -> DepositDesk:
    hooks = None
    if receiver is not None:
        hooks = WebhookSender(market.clock, transport=httpx.MockTransport(receiver), first_pause=0)
    return DepositDesk(
        {"sweep": policy},
        store=market.store,
        reader=market.reader,
        providers={vendor: market.providers[vendor]},
        clock=market.clock,
        settings=DepositSettings(quote_ttl=0),
        webhooks=hooks,
        cursor=cursor,
    )


async def settle(market: Market, desk: DepositDesk) -> None:
    """Let the vendor deliver, track the orders, and let the desk see it."""
    tracker = Tracker(
        store=market.store, providers=market.providers, reader=market.reader, clock=market.clock
    )
    for _ in range(4):
        market.advance(3)
        await tracker.track(await market.store.open_orders())
        await desk.check_orders()
    for task in list(desk._tasks):
        await task


def with_webhook(addresses: list[str], providers: list[str]) -> DepositPolicy:
    hook = {"url": "http://sweeper.test/ready", "secret": {"fromEnv": "WEBHOOK_SECRET"}}
    policy = deposit_policy(addresses, providers, webhook=hook)
    assert policy.spec.webhook is not None
    policy.spec.webhook.secret._resolve(SecretStr(SECRET), None)  # as the loader does
    return policy


async def test_a_deposit_buys_one_sweeps_energy_once(market: Market) -> None:
    deposit_addresses = market.watched(3, trx=10)
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    policy = with_webhook(deposit_addresses, ["p-eopen"])
    receiver = Receiver(market)
    desk = desk_for(market, policy, receiver)
    await desk.start()
    await desk.follow_once()  # starts at the head
    target = deposit_addresses[0]
    market.chain.transfer_usdt(customer, target, amount=5_000_000)
    market.chain.transfer_usdt(customer, target, amount=7_000_000)  # a second deposit
    market.chain.transfer_usdt(customer, deposit_addresses[1], amount=10)  # below minDeposit
    market.advance(3)
    acted = await desk.follow_once()
    assert [n.address for n in acted] == [target]
    needs = await market.store.deposit_needs()
    assert len(needs) == 1 and needs[0].deposits == 2 and needs[0].state is NeedState.ORDERED
    assert market.creates("eopen") == 1
    await settle(market, desk)
    (need,) = await market.store.deposit_needs()
    assert need.state is NeedState.READY and need.notified_at is not None
    assert market.energy(target) >= 64_285  # the hot wallet holds USDT: the cheaper sweep
    assert len(receiver.seen) == 1 and receiver.valid == [True]
    assert receiver.seen[0]["address"] == target and receiver.seen[0]["order"]
    # another deposit before the sweep joins the episode: nothing more is bought
    market.chain.transfer_usdt(customer, target, amount=3_000_000)
    market.advance(3)
    await desk.follow_once()
    await desk.safety_net()
    assert market.creates("eopen") == 1
    # the sweep: a transfer out of the deposit address closes the episode
    market.chain.transfer_usdt(target, SINK, amount=15_000_000)
    market.advance(3)
    await desk.follow_once()
    assert await market.store.deposit_needs() == []
    (closed,) = await market.store.deposit_needs(open_only=False)
    assert closed.close_reason == "swept"
    assert len(receiver.seen) == 1  # once per episode
    await desk.aclose()


async def test_a_restart_mid_episode_buys_nothing_twice(market: Market) -> None:
    deposit_addresses = market.watched(2, trx=10)
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    policy = deposit_policy(deposit_addresses, ["p-eopen"])
    first = desk_for(market, policy)
    await first.start()
    await first.follow_once()
    market.chain.transfer_usdt(customer, deposit_addresses[0], amount=5_000_000)
    market.advance(3)
    await first.follow_once()
    assert market.creates("eopen") == 1
    await first.aclose()
    # a new process: the episode and its order are in the store
    second = desk_for(market, policy)
    await second.start()
    await second.safety_net()
    await second.check_orders()
    assert market.creates("eopen") == 1
    await settle(market, second)
    assert (await market.store.deposit_needs())[0].state is NeedState.READY
    await second.safety_net()
    assert market.creates("eopen") == 1


async def test_an_unactivated_address_waits_unless_the_vendor_activates(market: Market) -> None:
    fresh, other = address("never-activated"), address("never-activated", 2)
    policy = deposit_policy([fresh, other], ["p-mefree"])
    desk = desk_for(market, policy, vendor="p-mefree")  # Mefree does not activate
    need, _ = await market.store.record_deposit(
        policy="sweep", address=fresh, token=USDT, txid="t1", block=1, amount=5_000_000
    )
    await desk.act([need])
    (held,) = await market.store.deposit_needs()
    assert held.state is NeedState.OPEN and "not activated" in (held.note or "")
    assert market.creates("mefree") == 0
    activating = desk_for(market, deposit_policy([fresh, other], ["p-eopen"]))
    need, _ = await market.store.record_deposit(
        policy="sweep", address=other, token=USDT, txid="t2", block=1, amount=5_000_000
    )
    await activating.act([need])
    assert market.creates("eopen") == 1  # eopen activates the receiver with the order


async def test_run_time_addresses_are_watched_and_kept(market: Market) -> None:
    policy = deposit_policy([], ["p-eopen"])
    desk = desk_for(market, policy)
    added = address("added-later")
    await desk.add_address("sweep", added)
    assert desk.policy_of(added) == "sweep"
    again = desk_for(market, policy)
    await again.start()
    assert again.policy_of(added) == "sweep"
    await again.remove_address("sweep", added)
    third = desk_for(market, policy)
    await third.start()
    assert third.policy_of(added) is None


async def test_the_sweep_energy_follows_the_hot_wallets_token_balance(market: Market) -> None:
    empty_hot = address("empty-hot-wallet")
    market.chain.create_account(empty_hot, TRX)
    holder = desk_for(market, deposit_policy([], ["p-eopen"]))
    fresh = desk_for(market, deposit_policy([], ["p-eopen"], sweepTo=empty_hot))
    assert await holder.buyer.sweep_energy(holder.policies["sweep"]) == 64_285  # SINK holds USDT
    assert await fresh.buyer.sweep_energy(fresh.policies["sweep"]) == 130_285
    # the node answers balanceOf through triggerconstantcontract
    assert await market.reader.token_balance(USDT, empty_hot) == 0
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    market.chain.transfer_usdt(customer, empty_hot, amount=2_000_000)
    assert await market.reader.token_balance(USDT, empty_hot) == 2_000_000


async def test_a_sweep_not_seen_in_a_block_is_found_by_the_balance(market: Market) -> None:
    deposit_addresses = market.watched(1, trx=10)
    target = deposit_addresses[0]
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    policy = deposit_policy(deposit_addresses, ["p-eopen"])
    first = desk_for(market, policy)
    await first.start()
    await first.follow_once()
    market.chain.transfer_usdt(customer, target, amount=5_000_000)
    market.advance(3)
    await first.follow_once()
    await settle(market, first)
    assert (await market.store.deposit_needs())[0].state is NeedState.READY
    # the sweep happens in a block the next follower never reads (more than an hour of
    # blocks behind, it jumps to the head)
    market.chain.transfer_usdt(target, SINK, amount=5_000_000)
    market.advance(3_700)
    second = desk_for(market, policy, cursor="another-replica")
    await second.start()
    await second.follow_once()
    assert (await market.store.deposit_needs())[0].state is NeedState.READY  # not seen
    await second.safety_net()
    assert await market.store.deposit_needs() == []
    (closed,) = await market.store.deposit_needs(open_only=False)
    assert closed.close_reason == "swept" and market.creates("eopen") == 1


async def test_ensure_on_a_deposit_address_opens_its_episode_once(market: Market) -> None:
    deposit_addresses = market.watched(1, trx=10)
    target = deposit_addresses[0]
    desk = desk_for(market, deposit_policy(deposit_addresses, ["p-eopen"]))
    await desk.start()
    first = await desk.ensure(target, wait=0)
    again = await desk.ensure(target, wait=0)  # the sweeper asks twice: one episode, one order
    assert first["watched"] and first["episode"]["state"] == "ordered"
    assert again["episode"]["id"] == first["episode"]["id"] and again["order"] is not None
    assert market.creates("eopen") == 1
    with pytest.raises(UnknownDepositAddress):
        await desk.ensure(address("stranger"), wait=0)


async def test_two_replicas_seeing_one_deposit_buy_once(market: Market) -> None:
    deposit_addresses = market.watched(4, trx=10)
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    policy = deposit_policy(deposit_addresses, ["p-eopen"])
    one, two = desk_for(market, policy), desk_for(market, policy)
    for desk in (one, two):
        await desk.start()
        await desk.follow_once()
    for target in deposit_addresses:
        market.chain.transfer_usdt(customer, target, amount=5_000_000)
    market.advance(3)
    acted = await asyncio.gather(one.follow_once(), two.follow_once())
    assert all(len(a) == 4 for a in acted)  # both saw every deposit open
    assert market.creates("eopen") == 4  # one order per episode: the claims decided
    needs = await market.store.deposit_needs()
    assert len(needs) == 4 and all(n.client_order_id for n in needs)
    await market.assert_one_open_per_address()


async def test_a_restarted_desk_reads_the_blocks_it_missed(market: Market) -> None:
    deposit_addresses = market.watched(2, trx=10)
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    policy = deposit_policy(deposit_addresses, ["p-eopen"])
    first = desk_for(market, policy)
    await first.start()
    await first.follow_once()
    await first.aclose()
    # down for a minute: a deposit lands, twenty blocks pass
    market.chain.transfer_usdt(customer, deposit_addresses[1], amount=5_000_000)
    market.advance(60)
    second = desk_for(market, policy)
    await second.start()
    acted = await second.follow_once()
    assert [n.address for n in acted] == [deposit_addresses[1]]
    assert market.creates("eopen") == 1


async def test_a_store_failure_while_recording_keeps_the_deposits(market: Market) -> None:
    from engine.store import StoreUnavailableError

    deposit_addresses = market.watched(1, trx=10)
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    desk = desk_for(market, deposit_policy(deposit_addresses, ["p-eopen"]))
    await desk.start()
    await desk.follow_once()
    market.chain.transfer_usdt(customer, deposit_addresses[0], amount=5_000_000)
    market.advance(3)
    real = market.store.record_deposits

    async def down(deposits: Any) -> Any:
        raise StoreUnavailableError("injected: the database is unavailable")

    market.store.record_deposits = down  # type: ignore[method-assign]
    await desk.round()  # the block is read; recording it fails
    assert desk.last_error and "unavailable" in desk.last_error
    market.store.record_deposits = real  # type: ignore[method-assign]
    market.advance(3)
    await desk.round()
    assert [n.address for n in await market.store.deposit_needs()] == deposit_addresses
    assert market.creates("eopen") == 1


async def test_a_sweep_in_the_deposits_own_block_closes_its_episode(market: Market) -> None:
    deposit_addresses = market.watched(2, trx=50)
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    desk = desk_for(market, deposit_policy(deposit_addresses, ["p-eopen"]))
    await desk.start()
    await desk.follow_once()  # starts at the head
    swept, later = deposit_addresses
    # one block: a deposit and its sweep; a sweep and then a new deposit
    market.chain.transfer_usdt(customer, swept, amount=5_000_000)
    market.chain.transfer_usdt(swept, SINK, amount=5_000_000)
    market.chain.transfer_usdt(customer, later, amount=2_000_000)
    market.advance(3)
    await desk.follow_once()
    market.chain.transfer_usdt(later, SINK, amount=2_000_000)
    market.chain.transfer_usdt(customer, later, amount=4_000_000)
    market.advance(3)
    await desk.follow_once()
    closed = await market.store.deposit_needs(open_only=False, addresses=[swept])
    assert [(n.state, n.close_reason) for n in closed] == [(NeedState.CLOSED, "swept")]
    (still,) = await market.store.deposit_needs(addresses=[later])  # the new deposit's
    assert still.deposits == 1 and still.deposit_block > closed[0].deposit_block
    # nothing bought for the episode that was swept in its own block; one for `later`
    assert market.creates("eopen") == 1 and closed[0].client_order_id is None


async def test_a_desk_under_a_new_name_resumes_where_the_last_one_stopped(
    market: Market,
) -> None:
    # `energyctl run` names itself HOST-PID by default: after a restart the name is new
    deposit_addresses = market.watched(2, trx=10)
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    policy = deposit_policy(deposit_addresses, ["p-eopen"])
    first = desk_for(market, policy, cursor="host-101")
    await first.start()
    await first.follow_once()
    await first.aclose()
    market.chain.transfer_usdt(customer, deposit_addresses[0], amount=5_000_000)
    market.advance(30)
    second = desk_for(market, policy, cursor="host-202")
    await second.start()
    acted = await second.follow_once()
    assert [n.address for n in acted] == [deposit_addresses[0]]
    assert market.creates("eopen") == 1


async def test_a_claim_left_by_a_killed_process_is_taken_up_soon_after_a_restart(
    market: Market,
) -> None:
    (target,) = market.watched(1, trx=10)
    policy = deposit_policy([target], ["p-eopen"])
    need, _ = await market.store.record_deposit(
        policy="sweep", address=target, token=USDT, txid="ab" * 32, block=1, amount=5_000_000
    )
    # claimed for an order (open -> ordered), then the process died: no order id recorded
    await market.store.update_deposit_need(need.id, state=NeedState.ORDERED, note="placing")
    market.advance(1)
    desk = desk_for(market, policy)
    await desk.start()
    market.advance(6)  # well short of the ten minutes a live claim is given
    await desk.check_orders()
    (again,) = await market.store.deposit_needs()
    assert again.state is NeedState.ORDERED and again.client_order_id is not None
    assert market.creates("eopen") == 1


async def test_a_block_read_again_after_the_sweep_buys_nothing_again(market: Market) -> None:
    # a replica whose follow position lags reads the deposit's block after another one
    # bought for it and the sweep closed the episode: that deposit is known, nothing opens
    (target,) = market.watched(1, trx=10)
    customer = address("customer")
    market.chain.create_account(customer, 1_000 * TRX)
    policy = deposit_policy([target], ["p-eopen"])
    ahead = desk_for(market, policy, cursor="ahead")
    await ahead.start()
    await ahead.follow_once()
    before = await market.store.deposit_cursor("ahead")
    assert before is not None
    market.chain.transfer_usdt(customer, target, amount=5_000_000)
    market.advance(3)
    assert [n.address for n in await ahead.follow_once()] == [target]
    await settle(market, ahead)
    market.chain.transfer_usdt(target, SINK, amount=5_000_000)
    market.advance(3)
    await ahead.follow_once()
    assert await market.store.deposit_needs() == []
    assert market.creates("eopen") == 1
    await ahead.aclose()
    await market.store.set_deposit_cursor("behind", before)
    behind = desk_for(market, policy, cursor="behind")
    await behind.start()
    assert await behind.follow_once() == []
    await behind.safety_net()
    assert await market.store.deposit_needs() == []
    assert len(await market.store.deposit_needs(open_only=False)) == 1
    assert market.creates("eopen") == 1
    await behind.aclose()
