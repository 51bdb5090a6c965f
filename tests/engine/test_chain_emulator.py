"""ChainReader against the emulated node (sandbox.tron_node) in process, over ASGITransport,
and once over a real loopback socket with an API key."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from tronpy.keys import to_base58check_address

from engine.core.clock import VirtualClock
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import ChainReader, ChainTemporaryError
from sandbox.tron_node import ChainState, TronNode, create_app

TRX = 1_000_000


def addr(i: int) -> str:
    return str(to_base58check_address(b"\x41" + i.to_bytes(20, "big")))


def reader_for(state: ChainState, clock: VirtualClock) -> ChainReader:
    transport = httpx.ASGITransport(app=create_app(state))
    return ChainReader("http://node.test", api_key=None, clock=clock, transport=transport)


async def test_snapshots_match_the_chain_state() -> None:
    clock = VirtualClock()
    state = ChainState(clock)
    provider, other, user, idle, spender = addr(1), addr(2), addr(3), addr(4), addr(5)
    for a in (provider, other, user, idle, spender):
        state.create_account(a, balance_sun=1_000_000 * TRX)
    state.stake_energy(provider, 500_000 * TRX)
    state.stake_energy(other, 100_000 * TRX)
    first = state.sun_for_energy(131_000)
    state.delegate_energy(provider, user, first)
    state.delegate_energy(other, user, 2 * TRX * 1000, lock_period_blocks=0)
    state.delegate_energy(provider, spender, state.sun_for_energy(100_000))
    state.mark_usdt_holder(idle)
    state.transfer_usdt(spender, idle)
    state.advance(3)
    async with reader_for(state, clock) as reader:
        results = await reader.snapshots([user, idle, spender, addr(99)])
        detailed = await reader.snapshot(user, delegators=True)
    head = state.head_block_number()
    for a in (user, idle, spender):
        snap = results[a]
        assert isinstance(snap, EnergySnapshot)
        assert snap.activated
        assert snap.available == state.available_energy(a)
        assert snap.block == head
        assert snap.read_at == clock.now()
    user_snap = results[user]
    assert isinstance(user_snap, EnergySnapshot)
    assert user_snap.delegated_in == first + 2 * TRX * 1000
    assert user_snap.limit >= 131_000
    spender_snap = results[spender]
    assert isinstance(spender_snap, EnergySnapshot)
    assert spender_snap.used > 60_000  # a USDT transfer, decayed by one block at most
    assert spender_snap.available == spender_snap.limit - spender_snap.used
    unactivated = results[addr(99)]
    assert isinstance(unactivated, EnergySnapshot) and not unactivated.activated
    assert detailed.delegators == {provider: first, other: 2 * TRX * 1000}


async def test_over_loopback_with_an_api_key_and_latency() -> None:
    clock = VirtualClock()
    state = ChainState(clock)
    a = addr(7)
    state.create_account(a, balance_sun=10 * TRX)
    with TronNode.start(state, latency=0.001, api_key="k-123") as node:
        good = ChainReader(node.url, api_key=SecretStr("k-123"), clock=clock, concurrency=4)
        async with good:
            snap = await good.snapshot(a)
        assert snap.activated and snap.available == 0
        bad = ChainReader(node.url, api_key=SecretStr("wrong"), clock=clock)
        async with bad:
            with pytest.raises(ChainTemporaryError) as info:
                await bad.snapshot(a)
    assert "wrong" not in str(info.value)
    assert node.url in str(info.value)


async def test_a_stopped_node_is_a_temporary_error() -> None:
    state = ChainState(VirtualClock())
    with TronNode.start(state) as node:
        url = node.url
    async with ChainReader(url, api_key=None, clock=VirtualClock(), timeout=2) as reader:
        with pytest.raises(ChainTemporaryError, match="ConnectError"):
            await reader.snapshot(addr(1))


async def test_a_node_that_stopped_following_the_chain_is_stale() -> None:
    """A frozen node keeps answering with its old head: with `max_head_age`, every read of
    the batch fails as temporary (never buy blind, never end an order on stale state)."""
    from sandbox.tron_node.faults import NodeFaults

    clock = VirtualClock()
    state = ChainState(clock)
    state.create_account(addr(1), balance_sun=10 * TRX)
    faults = NodeFaults()
    transport = httpx.ASGITransport(app=create_app(state, faults=faults))
    reader = ChainReader(
        "http://node.test", api_key=None, clock=clock, transport=transport, max_head_age=120
    )
    async with reader:
        clock.advance(60)
        fresh = await reader.snapshots([addr(1)])
        assert isinstance(fresh[addr(1)], EnergySnapshot)
        faults.freeze()
        await reader.snapshots([addr(1)])  # the node keeps these answers from now on
        clock.advance(121)
        stale = await reader.snapshots([addr(1)])
        assert isinstance(stale[addr(1)], ChainTemporaryError)
        assert "not following the chain" in str(stale[addr(1)])
        with pytest.raises(ChainTemporaryError, match="121s old"):
            await reader.snapshot(addr(1))
        faults.thaw()
        assert isinstance((await reader.snapshots([addr(1)]))[addr(1)], EnergySnapshot)


@pytest.mark.parametrize("endpoint", ["getaccountresource", "getaccount"])
async def test_a_node_answering_junk_is_a_failed_read_not_zero_energy(endpoint: str) -> None:
    """Regression: HTTP 200 with a JSON body that is no account (`{"status": "busy"}`)
    was read as an account with 0 energy. It is a temporary failure; an unactivated
    address (`{}`) is still a state, and the node's truthful answers read again after."""
    from sandbox.tron_node.faults import NodeFaults

    clock = VirtualClock()
    state = ChainState(clock)
    rich, fresh = addr(1), addr(2)
    state.create_account(rich, balance_sun=1_000_000 * TRX)
    state.stake_energy(rich, 500_000 * TRX)
    faults = NodeFaults()
    transport = httpx.ASGITransport(app=create_app(state, faults=faults))
    async with ChainReader("http://node.test", api_key=None, clock=clock, transport=transport) as r:
        faults.junk(endpoints=[endpoint])
        junk = await r.snapshots([rich, fresh])
        assert isinstance(junk[rich], ChainTemporaryError), junk[rich]
        assert "unexpected answer: no " in str(junk[rich])
        assert faults.junked >= 1
        with pytest.raises(ChainTemporaryError):
            await r.snapshot(rich)
        if endpoint == "getaccountresource":  # `{}` stays what it is: unactivated
            faults.junk(endpoints=[endpoint], body=b"{}")
            unactivated = await r.snapshot(fresh)
            assert not unactivated.activated
        faults.reset()
        snap = await r.snapshot(rich)
    assert snap.activated and snap.available == state.available_energy(rich) > 0


async def test_block_ranges_and_the_energy_fee() -> None:
    """`ChainReader.blocks` (getblockbylimitnext: start .. end - 1, at most 100) and
    `energy_fee` (getEnergyFee), and the report's reading of a window's transfers."""
    from engine.observe.transfers import read_transfers, window_start

    clock = VirtualClock()
    state = ChainState(clock)
    spender, other, sink = addr(1), addr(2), addr(3)
    for a in (spender, other, sink):
        state.create_account(a, balance_sun=1_000 * TRX)
    state.mark_usdt_holder(sink)
    state.advance(600)
    since = state.head_timestamp_ms()
    state.advance(3)
    txids = [state.transfer_usdt(spender, sink), state.transfer_usdt(other, sink)]
    state.advance(900)
    head = state.head_block_number()
    async with reader_for(state, clock) as reader:
        blocks = await reader.blocks(head - 99, head + 1)
        assert [b["block_header"]["raw_data"]["number"] for b in blocks] == list(
            range(head - 99, head + 1)
        )
        assert await reader.blocks(head + 1, head + 5) == []  # not produced yet
        with pytest.raises(ValueError, match="1 to 100"):
            await reader.blocks(0, 101)
        assert await reader.energy_fee() == state.params.energy_fee
        first = await window_start(reader, since, head, state.head_timestamp_ms())
        assert state.blocks.timestamp(first) >= since > state.blocks.timestamp(first - 1)
        seen: list[object] = []
        read = await read_transfers(reader, {spender}, first, head, seen.append)
    assert read == head - first + 1
    receipt = state.receipt_summary(txids[0])
    assert [(t.sender, t.energy_used, t.energy_total, t.burned_sun) for t in seen] == [  # type: ignore[attr-defined]
        (spender, receipt["energy_usage"], receipt["energy_usage_total"], receipt["energy_fee"])
    ]
