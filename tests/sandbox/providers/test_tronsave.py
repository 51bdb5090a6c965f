"""The TronSave emulator, driven with hand-built requests (reference section 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.tronsave import TronSaveEmulator
from tests.sandbox.providers.conftest import OTHER, RECEIVER

KEY = "ts-key"


@pytest.fixture
def emu(clock: VirtualClock, delegator: RecordingDelegator) -> TronSaveEmulator:
    return TronSaveEmulator(delegator, clock=clock, api_key=KEY)


def client_for(emu: TronSaveEmulator, base: str = "https://api.tronsave.io") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app), base_url=base, headers={"apikey": KEY}
    )


@pytest.fixture
async def http(emu: TronSaveEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(emu) as client:
        yield client


def body(**over: Any) -> dict[str, Any]:
    return {
        "resourceType": "ENERGY",
        "receiver": RECEIVER,
        "durationSec": 3600,
        "resourceAmount": 65_000,
        "unitPrice": "MEDIUM",
    } | over


def ok(resp: httpx.Response, status: int = 200) -> Any:
    payload = resp.json()
    assert resp.status_code == status, resp.text
    assert payload["error"] is False and payload["message"] == "Success"
    return payload["data"]


def tsas(resp: httpx.Response) -> str:
    payload = resp.json()
    assert payload["error"] is True and payload["data"] is None
    message: str = payload["message"]
    assert message.startswith("TSAS:")
    return message.split()[1]


async def test_api_key_errors(http: httpx.AsyncClient) -> None:
    resp = await http.get("/v2/user-info", headers={"apikey": ""})
    assert resp.status_code == 401 and resp.json()["message"] == "TSAS:106 API_KEY_REQUIRED"
    resp = await http.get("/v2/user-info", headers={"apikey": "wrong"})
    assert resp.status_code == 401 and resp.json()["message"] == "TSAS:107 INVALID_API_KEY"


async def test_create_is_201_and_the_order_progresses(
    http: httpx.AsyncClient,
    emu: TronSaveEmulator,
    clock: VirtualClock,
    delegator: RecordingDelegator,
) -> None:
    created = ok(await http.post("/v2/buy-resource", json=body()), status=201)
    order_id = created["orderId"]
    assert len(order_id) == 24 and int(order_id, 16) >= 0
    got = ok(await http.get(f"/v2/order/{order_id}"))
    assert got["fulfilledPercent"] == 0 and got["remainAmount"] == 65_000
    assert got["delegates"] == [] and got["price"] == 60  # MEDIUM = SLOW 55 + 5
    assert got["payoutAmount"] == 60 * 65_000  # a one-hour order pays one day's price
    clock.advance(6)
    got = ok(await http.get(f"/v2/order/{order_id}"))
    assert got["fulfilledPercent"] == 100 and got["remainAmount"] == 0
    assert got["delegates"][0]["amount"] == 65_000 and len(got["delegates"][0]["txid"]) == 64
    assert delegator.energy_of(RECEIVER) == 65_000
    listed = ok(await http.get("/v2/orders", params={"page": 0, "pageSize": 10}))
    assert listed["total"] == 1 and listed["data"][0]["status"] == "Completed"
    clock.advance(3600)
    emu.tick()
    assert delegator.energy_of(RECEIVER) == 0


async def test_user_info_balance_is_a_string_of_sun(
    http: httpx.AsyncClient, emu: TronSaveEmulator
) -> None:
    info = ok(await http.get("/v2/user-info"))
    assert info["balance"] == "1000000000"
    ok(await http.post("/v2/buy-resource", json=body(durationSec=3 * 86_400)), status=201)
    assert ok(await http.get("/v2/user-info"))["balance"] == str(1_000_000_000 - 58 * 65_000 * 3)


async def test_estimate_needs_no_key_and_follows_the_price_rules(clock: VirtualClock) -> None:
    emu = TronSaveEmulator(RecordingDelegator(capacity=100_000), clock=clock, api_key=KEY)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app), base_url="https://api.tronsave.io"
    ) as http:

        async def price(unit: str, amount: int) -> int:
            est = ok(await http.post("/v2/estimate-buy-resource", json=body(
                unitPrice=unit, resourceAmount=amount, durationSec=3 * 86_400)))  # fmt: skip
            assert est["estimateTrx"] == est["unitPrice"] * amount * 3
            value: int = est["unitPrice"]
            return value

        assert [await price(u, 65_000) for u in ("SLOW", "MEDIUM", "FAST")] == [53, 58, 58]
        assert [await price(u, 200_000) for u in ("SLOW", "MEDIUM", "FAST")] == [53, 58, 68]
        emu.delegator.capacity = 0  # type: ignore[attr-defined]
        assert [await price(u, 65_000) for u in ("SLOW", "MEDIUM", "FAST")] == [53, 63, 73]


async def test_fastify_validation(http: httpx.AsyncClient) -> None:
    payload = body()
    del payload["receiver"]
    resp = await http.post("/v2/buy-resource", json=payload)
    assert resp.status_code == 400
    assert resp.json() == {
        "statusCode": 400,
        "code": "FST_ERR_VALIDATION",
        "error": "Bad Request",
        "message": "body must have required property 'receiver'",
    }
    resp = await http.post("/v2/buy-resource", json=body(resourceAmount="lots"))
    assert resp.json()["message"] == "body/resourceAmount must be number"
    resp = await http.post("/v2/buy-resource", json=body(options={"allowPartialFill": "yes"}))
    assert resp.json()["message"] == "body/options/allowPartialFill must be boolean"
    resp = await http.post("/v2/buy-resource", json=body(resourceAmount="65000"))
    assert resp.status_code == 201  # Fastify coerces numeric strings


async def test_option_semantics(clock: VirtualClock) -> None:
    emu = TronSaveEmulator(RecordingDelegator(capacity=100_000), clock=clock, api_key=KEY)
    async with client_for(emu) as http:
        big = body(resourceAmount=200_000, options={"onlyCreateWhenFulfilled": True})
        assert tsas(await http.post("/v2/buy-resource", json=big)) == "CANNOT_FULFILLED"
        capped = body(options={"maxPriceAccepted": 59})
        resp = await http.post("/v2/buy-resource", json=capped)
        assert resp.status_code == 400 and tsas(resp) == "PRICE_EXCEED_MAX_PRICE_REQUIRED"
        assert tsas(await http.post("/v2/buy-resource", json=body(unitPrice=54))) == (
            "MIN_PRICE_INVALID"
        )
        guarded = body(options={"preventDuplicateIncompleteOrders": True})
        ok(await http.post("/v2/buy-resource", json=guarded), status=201)
        resp = await http.post("/v2/buy-resource", json=guarded)
        assert tsas(resp) == "MUST_BE_WAIT_PREVIOUS_ORDER_FILLED"
        assert tsas(await http.post("/v2/buy-resource", json=body(receiver="TBad"))) == (
            "INVALID_PARAMS"
        )
        clock.advance(6)
        ok(await http.post("/v2/buy-resource", json=guarded), status=201)  # the first is filled
        emu.faults.set_balance(10)
        assert tsas(await http.post("/v2/buy-resource", json=body(receiver=OTHER))) == (
            "INTERNAL_BALANCE_ACCOUNT_TOO_LOW"
        )
        resp = await http.get("/v2/order/0123456789abcdef01234567")
        assert resp.json()["message"] == "TSAS:408 INVALID_PARAMS Invalid orderId"
    assert len(emu.orders) == 2


async def test_partial_fill_progresses_as_stake_frees(clock: VirtualClock) -> None:
    delegator = RecordingDelegator(capacity=100_000)
    emu = TronSaveEmulator(delegator, clock=clock, api_key=KEY)
    async with client_for(emu) as http:
        first = ok(await http.post("/v2/buy-resource", json=body(resourceAmount=60_000)), 201)
        clock.advance(6)
        partial = body(receiver=OTHER, resourceAmount=80_000, options={"allowPartialFill": True})
        whole = body(receiver=OTHER, resourceAmount=80_000, durationSec=7200)
        p_id = ok(await http.post("/v2/buy-resource", json=partial), 201)["orderId"]
        w_id = ok(await http.post("/v2/buy-resource", json=whole), 201)["orderId"]
        clock.advance(6)
        got = ok(await http.get(f"/v2/order/{p_id}"))
        assert (got["fulfilledPercent"], got["remainAmount"]) == (50, 40_000)
        assert ok(await http.get(f"/v2/order/{w_id}"))["fulfilledPercent"] == 0
        clock.advance(3600)  # the first order's delegation is reclaimed: stake frees up
        got = ok(await http.get(f"/v2/order/{p_id}"))
        assert got["fulfilledPercent"] == 100 and len(got["delegates"]) == 2
        active = ok(await http.get("/v2/orders", params={"status": "Active"}))
        assert [o["id"] for o in active["data"]] == [w_id]
    assert first["orderId"] in emu.orders


async def test_rate_limit_default_is_15_per_second(
    http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    codes = [(await http.get("/v2/user-info")).status_code for _ in range(16)]
    assert codes[:15] == [200] * 15 and codes[15] == 429
    resp = await http.get("/v2/user-info")
    assert resp.json() == {"error": True, "message": "Rate limit reached"}
    clock.advance(1)
    assert (await http.get("/v2/user-info")).status_code == 200


async def test_nile_is_another_base_url_and_unknown_routes_are_fastify_404(
    emu: TronSaveEmulator,
) -> None:
    async with client_for(emu, "https://api-dev.tronsave.io") as http:
        assert ok(await http.get("/v2/user-info"))["balance"] == "1000000000"
        resp = await http.post("/v2/nothing")
    assert resp.status_code == 404
    assert resp.json() == {
        "message": "Route POST:/v2/nothing not found",
        "error": "Not Found",
        "statusCode": 404,
    }


async def test_injected_faults(
    http: httpx.AsyncClient,
    emu: TronSaveEmulator,
    clock: VirtualClock,
    delegator: RecordingDelegator,
) -> None:
    emu.faults.fail_next(1, status=504, after_accept=True, on="create")
    resp = await http.post("/v2/buy-resource", json=body())
    assert resp.status_code == 504 and len(emu.orders) == 1
    emu.faults.no_delivery()
    ok(await http.post("/v2/buy-resource", json=body(receiver=OTHER)), 201)
    clock.advance(600)
    emu.tick()
    assert delegator.energy_of(RECEIVER) == 65_000 and delegator.energy_of(OTHER) == 0
