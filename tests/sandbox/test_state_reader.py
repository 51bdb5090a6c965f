"""StateReader gives the same EnergySnapshots as ChainReader over the emulated node's HTTP API."""

from __future__ import annotations

from engine.core.clock import VirtualClock
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import ChainPermanentError, ChainReader
from sandbox import demo
from sandbox.state_reader import StateReader
from sandbox.world import World

UNACTIVATED = "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8"


def _world() -> World:
    world = World(clock=VirtualClock(), watched=3)
    chain = world.chain
    delegator = world.delegators["itrx"]
    delegator.delegate(world.watched[0], 131_000, 3600)  # energy in, then some spent
    world.delegators["mefree"].delegate(world.watched[0], 65_000, 3600)
    world.advance(30)
    world.spend(world.watched[0])
    delegator.delegate(world.watched[1], 65_000, 3600)
    world.advance(600)
    chain.transfer_usdt(world.watched[1], demo.SINK)  # burns: more than it holds
    world.advance(9)
    return world


async def test_snapshots_equal_the_http_readers() -> None:
    world = _world()
    assert isinstance(world.clock, VirtualClock)
    addresses = [*world.watched, UNACTIVATED, demo.provider_address("itrx"), "not-an-address"]
    async with ChainReader(
        "http://node.sandbox", api_key=None, clock=world.clock, transport=world.node_transport()
    ) as http:
        for delegators in (False, True):
            over_http = await http.snapshots(addresses, delegators=delegators)
            direct = await StateReader(world.chain, world.clock).snapshots(
                addresses, delegators=delegators
            )
            assert list(direct) == list(over_http) == addresses
            for address in addresses[:-1]:
                assert direct[address] == over_http[address], address
            assert isinstance(direct["not-an-address"], ChainPermanentError)
            assert isinstance(over_http["not-an-address"], ChainPermanentError)
        assert await StateReader(world.chain, world.clock).heads() == await http.heads()
        one = await StateReader(world.chain, world.clock).snapshot(world.watched[0])
        assert one == await http.snapshot(world.watched[0])
    first = direct[world.watched[0]]
    assert isinstance(first, EnergySnapshot) and first.activated
    assert 0 < first.available < first.limit and first.delegated_in > 0  # spent, not empty
    assert first.delegators is not None and len(first.delegators) == 2
    unactivated = direct[UNACTIVATED]
    assert isinstance(unactivated, EnergySnapshot) and not unactivated.activated
