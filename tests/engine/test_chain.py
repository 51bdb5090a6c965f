"""ChainReader against a stub node (httpx.MockTransport) answering with the reference's shapes.

Covers the snapshot fields, unactivated addresses, error bodies and transport failures, the
API-key header, the concurrency bound and the rate limit (on a VirtualClock).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tronpy.keys import to_base58check_address, to_hex_address

from engine.core.clock import VirtualClock
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import (
    API_KEY_HEADER,
    ChainPermanentError,
    ChainReader,
    ChainTemporaryError,
    canonical_address,
    public_url,
)
from providers.http import RateLimiter

NODE = "http://node.test:8090"
NODEINFO = {"block": "Num:1000,ID:" + "00" * 32, "solidityBlock": "Num:981,ID:" + "11" * 32}
TOTALS = {"TotalEnergyLimit": 180_000_000_000, "TotalEnergyWeight": 19_000_000_000}


def addr(i: int) -> str:
    return str(to_base58check_address(b"\x41" + i.to_bytes(20, "big")))


Handler = Callable[[str, dict[str, Any]], Any]


class StubNode:
    """Answers /wallet/* from dicts; `override` may replace any answer (or raise)."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.index: dict[str, dict[str, Any]] = {}
        self.delegated: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.override: Handler | None = None

    def add(self, address: str, resource: dict[str, Any], account_resource: Any = None) -> None:
        self.resources[address] = {**TOTALS, **resource}
        self.accounts[address] = {"address": address, "account_resource": account_resource or {}}

    def answer(self, path: str, body: dict[str, Any]) -> Any:
        if self.override is not None:
            got = self.override(path, body)
            if got is not None:
                return got
        if path == "/wallet/getnodeinfo":
            return NODEINFO
        if path == "/wallet/getaccountresource":
            return self.resources.get(body["address"], {})
        if path == "/wallet/getaccount":
            return self.accounts.get(body["address"], {})
        if path == "/wallet/getdelegatedresourceaccountindexv2":
            return self.index.get(body["value"], {"account": body["value"]})
        if path == "/wallet/getdelegatedresourcev2":
            return self.delegated.get((body["fromAddress"], body["toAddress"]), {})
        return httpx.Response(404, text="not found")

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        got = self.answer(request.url.path, json.loads(request.content or b"{}"))
        return got if isinstance(got, httpx.Response) else httpx.Response(200, json=got)

    def reader(self, **kwargs: Any) -> ChainReader:
        kwargs.setdefault("api_key", None)
        kwargs.setdefault("clock", VirtualClock())
        return ChainReader(NODE, transport=httpx.MockTransport(self.handle), **kwargs)


async def test_snapshot_of_an_account_with_delegated_energy() -> None:
    node, clock = StubNode(), VirtualClock(start=1_800_000_000.0)
    a = addr(1)
    node.add(
        a,
        {"EnergyUsed": 43_333, "EnergyLimit": 131_000, "freeNetLimit": 600},
        {"energy_usage": 43_333, "acquired_delegated_frozenV2_balance_for_energy": 13_800_000_000},
    )
    async with node.reader(clock=clock) as reader:
        snap = await reader.snapshot(a)
    assert snap == EnergySnapshot(
        address=a,
        activated=True,
        available=131_000 - 43_333,
        limit=131_000,
        used=43_333,
        delegated_in=13_800_000_000,
        block=1000,
        read_at=1_800_000_000.0,
        total_energy_limit=180_000_000_000,
        total_energy_weight=19_000_000_000,
    )


async def test_zero_fields_are_absent_and_mean_zero() -> None:
    node = StubNode()
    a = addr(2)
    node.add(a, {"freeNetLimit": 600})
    async with node.reader() as reader:
        snap = await reader.snapshot(a)
    assert (snap.activated, snap.available, snap.limit, snap.used, snap.delegated_in) == (
        True,
        0,
        0,
        0,
        0,
    )


async def test_used_above_limit_is_clamped_to_zero_available() -> None:
    node = StubNode()
    a = addr(3)
    node.add(a, {"EnergyUsed": 70_000, "EnergyLimit": 65_000})
    async with node.reader() as reader:
        snap = await reader.snapshot(a)
    assert snap.available == 0
    assert (snap.limit, snap.used) == (65_000, 70_000)


async def test_unactivated_address_is_a_state_and_costs_one_call() -> None:
    node = StubNode()
    a = addr(4)
    async with node.reader() as reader:
        snap = await reader.snapshot(a)
    assert snap.activated is False
    assert (snap.available, snap.limit, snap.used, snap.block) == (0, 0, 0, 1000)
    paths = [r.url.path for r in node.requests]
    assert paths == ["/wallet/getnodeinfo", "/wallet/getaccountresource"]


async def test_hex_address_is_read_in_base58() -> None:
    node = StubNode()
    a = addr(5)
    node.add(a, {"EnergyLimit": 10})
    async with node.reader() as reader:
        snap = await reader.snapshot(str(to_hex_address(a)))
    assert snap.address == a
    assert snap.available == 10


def _error_body(path: str, body: dict[str, Any]) -> Any:
    if path == "/wallet/getaccountresource":
        return {"Error": "class java.lang.IllegalAccessException : lack of computing resources"}
    return None


def _status(code: int, payload: Any) -> Handler:
    def handler(path: str, body: dict[str, Any]) -> Any:
        if path == "/wallet/getaccountresource":
            return httpx.Response(code, json=payload)
        return None

    return handler


def _raise(exc: Exception, only: str = "/wallet/getaccountresource") -> Handler:
    def handler(path: str, body: dict[str, Any]) -> Any:
        if only in ("*", path):
            raise exc
        return None

    return handler


@pytest.mark.parametrize(
    ("override", "expected", "cause"),
    [
        (_error_body, "node error: class java.lang.IllegalAccessException", None),
        (_status(503, {"x": 1}), "HTTP 503 (server error)", httpx.HTTPStatusError),
        (
            _status(403, {"Error": "Exceed the user daily usage (100000)"}),
            "HTTP 403 (rate limited or out of quota): Exceed the user daily usage",
            httpx.HTTPStatusError,
        ),
        (_status(429, {}), "HTTP 429 (rate limited", httpx.HTTPStatusError),
        (_raise(httpx.ReadTimeout("slow")), "no answer within 10.0s", httpx.ReadTimeout),
        (_raise(httpx.ConnectError("refused")), "ConnectError: refused", httpx.ConnectError),
    ],
)
async def test_node_failures_are_temporary_errors_naming_node_and_cause(
    override: Handler, expected: str, cause: type[BaseException] | None
) -> None:
    node = StubNode()
    node.override = override
    async with node.reader() as reader:
        with pytest.raises(ChainTemporaryError) as info:
            await reader.snapshot(addr(6))
    message = str(info.value)
    assert message.startswith("node http://node.test:8090 /wallet/getaccountresource: ")
    assert expected in message
    if cause is not None:
        assert isinstance(info.value.__cause__, cause)


async def test_non_json_answer_is_temporary() -> None:
    node = StubNode()
    node.override = lambda path, body: httpx.Response(200, text="<html>gateway</html>")
    async with node.reader() as reader:
        with pytest.raises(ChainTemporaryError, match="unreadable answer"):
            await reader.snapshot(addr(7))


async def test_malformed_numbers_are_temporary() -> None:
    node = StubNode()
    a = addr(8)
    node.add(a, {"EnergyLimit": "lots"})
    async with node.reader() as reader:
        with pytest.raises(ChainTemporaryError, match="unexpected answer: EnergyLimit"):
            await reader.snapshot(a)


@pytest.mark.parametrize("bad", ["", "T" + "1" * 33, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", "41zz"])
async def test_bad_address_is_permanent(bad: str) -> None:
    node = StubNode()
    async with node.reader() as reader:
        with pytest.raises(ChainPermanentError, match="not a TRON address"):
            await reader.snapshot(bad)


async def test_one_failure_does_not_sink_the_batch() -> None:
    node = StubNode()
    good = [addr(i) for i in range(10, 20)]
    for a in good:
        node.add(a, {"EnergyLimit": 100, "EnergyUsed": 30})
    broken = addr(99)

    def fail_one(path: str, body: dict[str, Any]) -> Any:
        if body.get("address") == broken:
            return httpx.Response(502, text="bad gateway")
        return None

    node.override = fail_one
    asked = [*good[:5], "nonsense", broken, *good[5:], addr(98)]
    async with node.reader(concurrency=3) as reader:
        results = await reader.snapshots(asked)
    assert list(results) == asked
    for a in good:
        snap = results[a]
        assert isinstance(snap, EnergySnapshot)
        assert snap.available == 70
    assert isinstance(results["nonsense"], ChainPermanentError)
    assert isinstance(results[broken], ChainTemporaryError)
    unactivated = results[addr(98)]
    assert isinstance(unactivated, EnergySnapshot)
    assert unactivated.activated is False


async def test_batch_when_the_node_is_down_gives_every_address_the_error() -> None:
    node = StubNode()
    node.override = _raise(httpx.ConnectError("refused"), only="*")
    async with node.reader() as reader:
        results = await reader.snapshots([addr(1), addr(2)])
    assert all(isinstance(v, ChainTemporaryError) for v in results.values())
    assert len(results) == 2


async def test_api_key_header_goes_to_any_url_and_never_into_messages() -> None:
    node = StubNode()
    a = addr(9)
    node.add(a, {"EnergyLimit": 5})
    secret = "3f0e2c5e-0000-4000-8000-super-secret"
    reader = ChainReader(
        "http://user:pw@127.0.0.1:9/?token=abc",
        api_key=SecretStr(secret),
        clock=VirtualClock(),
        transport=httpx.MockTransport(node.handle),
    )
    async with reader:
        await reader.snapshot(a)
        node.override = _status(403, {"Error": "The key exceeds the frequency limit(15)"})
        with pytest.raises(ChainTemporaryError) as info:
            await reader.snapshot(a)
    assert node.requests
    assert all(r.headers.get_list(API_KEY_HEADER) == [secret] for r in node.requests)
    for text in (str(info.value), repr(reader), repr(info.value)):
        assert secret not in text
        assert "pw" not in text and "token" not in text
    assert "http://127.0.0.1:9" in str(info.value)


async def test_no_key_means_no_key_header_even_for_trongrid() -> None:
    node = StubNode()
    a = addr(9)
    node.add(a, {"EnergyLimit": 5})
    reader = ChainReader(
        "https://api.trongrid.io",
        api_key=None,
        clock=VirtualClock(),
        transport=httpx.MockTransport(node.handle),
    )
    async with reader:
        await reader.snapshot(a)
    assert all(API_KEY_HEADER not in r.headers for r in node.requests)


async def test_delegators_are_read_when_asked() -> None:
    node = StubNode()
    receiver, p1, p2, p3 = addr(30), addr(31), addr(32), addr(33)
    node.add(
        receiver, {"EnergyLimit": 200_000}, {"acquired_delegated_frozenV2_balance_for_energy": 6}
    )
    node.index[receiver] = {"account": receiver, "fromAccounts": [p1, p2, p3]}
    node.delegated[(p1, receiver)] = {
        "delegatedResource": [
            {"from": p1, "to": receiver, "frozen_balance_for_energy": 1_000_000},
            {
                "from": p1,
                "to": receiver,
                "frozen_balance_for_energy": 2_000_000,
                "expire_time_for_energy": 1_777_531_209_000,
            },
        ]
    }
    node.delegated[(p2, receiver)] = {
        "delegatedResource": [{"from": p2, "to": receiver, "frozen_balance_for_energy": 3_000_000}]
    }
    node.delegated[(p3, receiver)] = {
        "delegatedResource": [{"from": p3, "to": receiver, "frozen_balance_for_bandwidth": 5}]
    }
    async with node.reader() as reader:
        plain = await reader.snapshot(receiver)
        detailed = await reader.snapshot(receiver, delegators=True)
    assert plain.delegators is None
    assert detailed.delegators == {p1: 3_000_000, p2: 3_000_000}


async def test_concurrency_bound_is_honoured() -> None:
    node = StubNode()
    addresses = [addr(i) for i in range(100, 400)]
    for a in addresses:
        node.add(a, {"EnergyLimit": 1})
    in_flight = peak = 0
    plain = node.handle

    async def counting(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return await plain(request)

    reader = ChainReader(
        NODE,
        api_key=None,
        clock=VirtualClock(),
        concurrency=7,
        transport=httpx.MockTransport(counting),
    )
    async with reader:
        results = await reader.snapshots(addresses)
        many = await asyncio.gather(*(reader.snapshot(a) for a in addresses[:50]))
    assert peak == 7
    assert all(isinstance(v, EnergySnapshot) and v.available == 1 for v in results.values())
    assert len(many) == 50


async def test_rate_limit_is_honoured_on_the_clock() -> None:
    clock = VirtualClock()
    node = StubNode()
    addresses = [addr(i) for i in range(500, 520)]
    for a in addresses:
        node.add(a, {"EnergyLimit": 1})
    stamps: list[float] = []
    plain = node.handle

    async def stamping(request: httpx.Request) -> httpx.Response:
        stamps.append(clock.now())
        return await plain(request)

    reader = ChainReader(
        NODE,
        api_key=None,
        clock=clock,
        concurrency=50,
        rate_limit_per_s=5,
        transport=httpx.MockTransport(stamping),
    )
    async with reader:
        batch = asyncio.ensure_future(reader.snapshots(addresses))
        while not batch.done():
            await asyncio.sleep(0.001)
            clock.advance(0.05)
        results = batch.result()
    assert len(stamps) == 1 + 2 * len(addresses)  # head + two reads per address
    assert all(isinstance(v, EnergySnapshot) for v in results.values())
    start = stamps[0]
    for t in stamps:  # no half-open one-second window holds more than 5 requests
        assert sum(1 for u in stamps if t <= u < t + 1.0) <= 5
    assert stamps[-1] - start >= (len(stamps) - 1) / 5 - 1e-6


async def test_the_chain_rate_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, burst=1, clock=VirtualClock())


def test_canonical_address_accepts_both_forms() -> None:
    usdt = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    assert canonical_address(usdt) == usdt
    assert canonical_address("41a614f803b6fd780986a42c78ec9c7f77e6ded13c") == usdt


async def test_blocks_and_heads() -> None:
    node = StubNode()
    block = {"blockID": "00" * 32, "block_header": {"raw_data": {"number": 5}}}

    def blocks(path: str, body: dict[str, Any]) -> Any:
        if path == "/wallet/getblockbynum":
            return block if body["num"] == 5 else {}
        if path == "/wallet/gettransactioninfobyblocknum":
            return [{"id": "ab"}] if body["num"] == 5 else []
        return None

    node.override = blocks
    async with node.reader() as reader:
        heads = await reader.heads()
        assert (heads.number, heads.block_id, heads.solid) == (1000, "00" * 32, 981)
        assert await reader.block(5) == block
        assert await reader.block(6) is None
        assert await reader.block_infos(5) == [{"id": "ab"}]
        assert await reader.block_infos(6) == []
        node.override = lambda path, body: {"Error": "num must be positive"}
        with pytest.raises(ChainTemporaryError, match="getblockbynum: node error"):
            await reader.block(-1)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pw@[::1]:8090/node/?apikey=s", "http://[::1]:8090/node"),
        ("https://api.trongrid.io/", "https://api.trongrid.io"),
        ("http://127.0.0.1:8090#frag", "http://127.0.0.1:8090"),
    ],
)
def test_public_url_drops_credentials(url: str, shown: str) -> None:
    assert public_url(url) == shown


async def test_malformed_node_info_is_temporary() -> None:
    node = StubNode()
    node.override = lambda path, body: {"block": "garbage"} if "nodeinfo" in path else None
    async with node.reader() as reader:
        with pytest.raises(ChainTemporaryError, match="getnodeinfo: unexpected answer"):
            await reader.heads()
