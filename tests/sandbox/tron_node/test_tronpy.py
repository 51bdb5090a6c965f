"""tronpy 0.6.2, sync and async, unmodified, reads the emulated node over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from tronpy import AsyncTron, Tron
from tronpy.exceptions import AddressNotFound, ApiError, BlockNotFound
from tronpy.providers import AsyncHTTPProvider, HTTPProvider

from engine.core.clock import VirtualClock
from sandbox.tron_node import ChainState, TronNode
from tests.sandbox.tron_node.conftest import FRESH, OTHER, PROVIDER, TRX, USER


@pytest.fixture
def busy(chain: ChainState, clock: VirtualClock) -> ChainState:
    """The user holds 65k energy from the provider, has spent one transfer; an hour passed."""
    chain.delegate_energy(PROVIDER, USER, chain.sun_for_energy(131_000), lock_period_blocks=0)
    chain.mark_usdt_holder(OTHER)
    chain.transfer_usdt(USER, OTHER)
    clock.advance(3600)
    return chain


@pytest.fixture
def served(busy: ChainState) -> Iterator[TronNode]:
    with TronNode.start(busy) as node:
        yield node


def expected_energy(chain: ChainState) -> int:
    return chain.available_energy(USER)


def test_sync_reads(served: TronNode) -> None:
    chain = served.state
    tron = Tron(HTTPProvider(served.url))
    account = tron.get_account(USER)
    assert account["address"] == USER and account["balance"] == 100 * TRX
    resource = tron.get_account_resource(USER)
    assert resource["EnergyLimit"] >= 131_000
    assert tron.get_energy(USER) == expected_energy(chain) > 131_000 - 64_285
    assert tron.get_bandwidth(USER) == 600 - resource["freeNetUsed"]
    head = tron.get_latest_block_number()
    assert head == chain.head_block_number() == 1200
    assert tron.get_block(1)["block_header"]["raw_data"]["number"] == 1
    latest = tron.get_block()
    assert latest["block_header"]["raw_data"]["number"] == head
    assert tron.get_block(latest["blockID"])["blockID"] == latest["blockID"]
    with pytest.raises(BlockNotFound):
        tron.get_block(head + 5)
    params = {p["key"]: p.get("value", 0) for p in tron.get_chain_parameters()}
    assert params["getEnergyFee"] == 100
    delegated = tron.get_delegated_resource_v2(PROVIDER, USER)["delegatedResource"]
    assert [d["from"] for d in delegated] == [PROVIDER]
    assert delegated[0]["frozen_balance_for_energy"] == chain.sun_for_energy(131_000)
    index = tron.get_delegated_resource_account_index_v2(PROVIDER)
    assert index == {"account": PROVIDER, "toAccounts": [USER]}
    assert tron.get_latest_solid_block_number() == head - 19


def test_sync_unactivated_address(served: TronNode) -> None:
    tron = Tron(HTTPProvider(served.url))
    for read in (tron.get_account, tron.get_account_resource, tron.get_energy, tron.get_bandwidth):
        with pytest.raises(AddressNotFound):
            read(FRESH)
    assert tron.get_delegated_resource_v2(PROVIDER, FRESH) == {}


async def test_async_reads(served: TronNode) -> None:
    chain = served.state
    async with AsyncTron(AsyncHTTPProvider(served.url)) as tron:
        account = await tron.get_account(USER)
        assert account["address"] == USER
        resource = await tron.get_account_resource(USER)
        assert resource["EnergyUsed"] > 0
        assert await tron.get_energy(USER) == expected_energy(chain)
        assert await tron.get_bandwidth(USER) == 600 - resource["freeNetUsed"]
        assert await tron.get_latest_block_number() == chain.head_block_number()
        block = await tron.get_block(1)
        assert int(block["blockID"][:16], 16) == 1
        params = await tron.get_chain_parameters()
        assert {"key": "getEnergyFee", "value": 100} in params
        delegated = await tron.get_delegated_resource_v2(PROVIDER, USER)
        assert delegated["delegatedResource"][0]["to"] == USER
        index = await tron.get_delegated_resource_account_index_v2(USER)
        assert index == {"account": USER, "fromAccounts": [PROVIDER]}
        for read in (tron.get_account, tron.get_account_resource, tron.get_energy):
            with pytest.raises(AddressNotFound):
                await read(FRESH)
        with pytest.raises(AddressNotFound):
            await tron.get_bandwidth(FRESH)


def test_api_key_header_reaches_the_node(served: TronNode) -> None:
    tron = Tron(HTTPProvider(f"{served.url}/?trongrid", api_key="k"))
    tron.get_account_resource(USER)
    assert served.app.state.api_keys["k"] == 1


def test_rejected_key_gets_tronpys_rate_limit_path(
    busy: ChainState, capsys: pytest.CaptureFixture[str]
) -> None:
    with TronNode.start(busy, api_key="good") as node:
        only_bad = Tron(HTTPProvider(f"{node.url}/?trongrid", api_key="bad"))
        with pytest.raises(ApiError, match="rate limit"):
            only_bad.get_account(USER)
        assert "Exceed the user daily usage" in capsys.readouterr().err
        rotating = Tron(HTTPProvider(f"{node.url}/?trongrid", api_key=["bad", "good"]))
        assert rotating.get_account(USER)["address"] == USER
        assert node.app.state.api_keys["good"] == 1
        plain = Tron(HTTPProvider(node.url))  # no "trongrid" in the URL: no key sent
        with pytest.raises(Exception, match="401"):
            plain.get_account(USER)


async def test_concurrent_reads_through_injected_latency_agree(busy: ChainState) -> None:
    """Reads through the node's injected latency all answer, and agree. That they overlap
    (a timing) is measured by bench/tronpy_read.py, not asserted here."""
    n = 8
    with TronNode.start(busy, latency=0.05) as node:
        async with AsyncTron(AsyncHTTPProvider(node.url)) as tron:
            energies = await asyncio.gather(*(tron.get_energy(USER) for _ in range(n)))
    assert energies == [expected_energy(busy)] * n
