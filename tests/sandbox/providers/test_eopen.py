"""The eopen emulator, driven with hand-built requests (reference section 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.eopen import EopenEmulator
from tests.sandbox.providers.conftest import OTHER, RECEIVER

KEY = "eopen-key"
BASE = "https://api.eopen.io/api"


@pytest.fixture
def emu(clock: VirtualClock, delegator: RecordingDelegator) -> EopenEmulator:
    return EopenEmulator(delegator, clock=clock, api_key=KEY)


@pytest.fixture
async def http(emu: EopenEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app), base_url=BASE, headers={"API-KEY": KEY}
    ) as client:
        yield client


def ok(resp: httpx.Response) -> Any:
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == 0, resp.text
    assert set(body) == {"code", "msg", "time", "data"} and isinstance(body["time"], str)
    return body["data"]


def code(resp: httpx.Response) -> int:
    assert resp.status_code == 200
    value: int = resp.json()["code"]
    return value


ORDER = {"pledgeAddress": RECEIVER, "rentalCount": "65000", "period": "1h"}


async def test_price_matches_the_docs_arithmetic(http: httpx.AsyncClient) -> None:
    data = ok(await http.get("/v1/tron/price", params={"rentalCount": 64500, "period": "1h"}))
    assert data == {
        "sun": "30",
        "trxPrice": "1.94",  # 30 x 64,500 = 1.935 TRX, rounded half up
        "period": "1h",
        "resourceType": "ENERGY",
        "rentalCount": 64500,
    }
    day = ok(await http.get("/v1/tron/price", params={"rentalCount": 64500, "period": "1d"}))
    assert int(day["sun"]) > int(data["sun"])


async def test_params_from_query_json_body_or_form(
    http: httpx.AsyncClient, emu: EopenEmulator
) -> None:
    ok(await http.get("/v1/tron/order", params=ORDER))  # the docs' `curl -G`
    ok(await http.post("/v1/tron/order", json=ORDER))
    ok(await http.post("/v1/tron/order", data=ORDER))
    ok(await http.post("/v1/tron/order", params={"period": "1h"}, json={**ORDER, "period": None}))
    assert len(emu.orders) == 4  # a null in the body leaves the query's value
    assert code(await http.post("/v1/tron/order", params=ORDER, json={"period": "2w"})) == 20010


async def test_error_codes(http: httpx.AsyncClient) -> None:
    cases = [
        ({"rentalCount": "65000", "period": "1h"}, 11003),
        ({**ORDER, "rentalCount": "63999"}, 20006),
        ({**ORDER, "rentalCount": "6.5e4"}, 100),
        ({**ORDER, "period": "2h"}, 20008),
        ({**ORDER, "period": "1w"}, 20010),
        ({**ORDER, "pledgeAddress": "TNotAnAddress"}, 20005),
        ({**ORDER, "resourceType": "BANDWIDTH"}, 20011),
    ]
    for params, expected in cases:
        resp = await http.post("/v1/tron/order", params=params)
        assert code(resp) == expected, params
        assert resp.json()["data"] is None
    assert code(await http.post("/v1/tron/order", params=ORDER, headers={"API-KEY": "x"})) == 20001
    assert code(await http.get("/v1/tron/history", params={"orderId": "OR1"})) == 12002


async def test_order_history_progression(
    http: httpx.AsyncClient, emu: EopenEmulator, clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    created = ok(await http.post("/v1/tron/order", params=ORDER))
    assert created["id"].startswith("OR") and len(created["id"]) == 24
    assert created == {"id": created["id"], "amount": 1.95, "currency": "TRX"}
    history = {"orderId": created["id"]}
    got = ok(await http.get("/v1/tron/history", params=history))
    assert got["status"] == "PENDING" and got["txId"] == ""
    assert got["rentalCount"] == "65000" and got["amount"] == "1.95"
    clock.advance(2)
    assert ok(await http.get("/v1/tron/history", params=history))["status"] == "PROCESSING"
    clock.advance(2)
    got = ok(await http.get("/v1/tron/history", params=history))
    assert got["status"] == "COMPLETED" and len(got["txId"]) == 64
    assert delegator.energy_of(RECEIVER) == 65_000
    clock.advance(3600)
    emu.tick()
    assert delegator.energy_of(RECEIVER) == 0


async def test_account_balances_are_decimal_strings(
    http: httpx.AsyncClient, emu: EopenEmulator
) -> None:
    before = ok(await http.get("/v1/account"))
    assert before["balance"]["available"] == {"trx": "1000", "usdt": "0"}
    ok(await http.post("/v1/tron/order", params=ORDER))
    after = ok(await http.get("/v1/account"))
    assert after["balance"]["available"]["trx"] == "998.05"
    assert emu.balance_sun == 998_050_000


async def test_pays_in_usdt_when_trx_is_short_and_refunds_failures(clock: VirtualClock) -> None:
    emu = EopenEmulator(
        RecordingDelegator(capacity=10_000_000),
        clock=clock,
        api_key=KEY,
        balance_sun=0,
        usdt_micros=1_000_000,  # one order's 0.557143 USDT, not two
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app), base_url=BASE, headers={"API-KEY": KEY}
    ) as http:
        created = ok(await http.post("/v1/tron/order", params=ORDER))
        assert (
            created["currency"] == "USDT" and created["amount"] == 0.557143
        )  # 1.95 TRX at 3.5 TRX per USDT = 0.5571428..., rounded up
        assert code(await http.post("/v1/tron/order", params=ORDER)) == 20002
        emu.delegator.refuse_next(3)  # type: ignore[attr-defined]
        clock.advance(60)
        got = ok(await http.get("/v1/tron/history", params={"orderId": created["id"]}))
    assert got["status"] == "REFUNDED" and emu.usdt_micros == 1_000_000


async def test_activates_unactivated_receivers(clock: VirtualClock) -> None:
    delegator = RecordingDelegator(inactive={OTHER})
    emu = EopenEmulator(delegator, clock=clock, api_key=KEY)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app), base_url=BASE, headers={"API-KEY": KEY}
    ) as http:
        ok(await http.post("/v1/tron/order", params={**ORDER, "pledgeAddress": OTHER}))
    clock.advance(5)
    emu.tick()
    assert delegator.activations == [OTHER] and delegator.energy_of(OTHER) == 65_000


async def test_capacity_whitelist_rate_limit_and_5xx(clock: VirtualClock) -> None:
    emu = EopenEmulator(
        RecordingDelegator(capacity=100_000), clock=clock, api_key=KEY, ip_whitelist={"10.0.0.1"}
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app, client=("10.0.0.1", 1234)),
        base_url=BASE,
        headers={"API-KEY": KEY},
    ) as http:
        too_big = {**ORDER, "rentalCount": "200000"}
        assert code(await http.post("/v1/tron/order", params=too_big)) == 20009
        emu.faults.fail_next(1, status=503, after_accept=False)
        resp = await http.get("/v1/account")
        assert resp.status_code == 503 and resp.json()["code"] == 11000
        clock.advance(1)
        emu.faults.rate_limit(1)
        ok(await http.get("/v1/account"))
        assert code(await http.get("/v1/account")) == 20004
    emu.ip_whitelist = {"10.0.0.2"}
    emu.faults.reset()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app, client=("10.0.0.1", 1)), base_url=BASE
    ) as http:
        assert code(await http.get("/v1/account", headers={"API-KEY": KEY})) == 20012
