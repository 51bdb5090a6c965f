"""Netts emulator: key and whitelisted IP, the two endpoints' limits, the key's rate, shapes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.netts import NettsEmulator
from sandbox.providers.readings import Readings
from tests.sandbox.providers import shapes
from tests.sandbox.providers.conftest import RECEIVER

KEY, IP = "nt-key", "198.51.100.7"
HEADERS = {"X-API-KEY": KEY, "X-Real-IP": IP}


def emulator(clock: VirtualClock, delegator: RecordingDelegator, **kw: Any) -> NettsEmulator:
    return NettsEmulator(delegator, clock=clock, api_key=KEY, whitelist={IP}, key_rate=None, **kw)


def client(emu: NettsEmulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=emu.app), base_url="http://n")


def same_shape(actual: Any, name: str) -> None:
    assert shapes.shape_errors(actual, shapes.load("netts", name)) == [], name


async def test_shapes_and_a_synchronous_delegation(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    emu = emulator(clock, delegator)
    async with client(emu) as http:
        body = {"amount": 131_000, "receiveAddress": RECEIVER}
        created = (await http.post("/apiv2/order1h", json=body, headers=HEADERS)).json()
        order_id = created["detail"]["data"]["orderId"]
        checked = await http.get(
            "/apiv2/order_check", params={"order_id": order_id}, headers={"X-API-KEY": KEY}
        )  # the key alone, as documented
        info = (await http.get("/apiv2/userinfo", headers=HEADERS)).json()
        price = (await http.get("/apiv2/pricing?services=energy_1h", headers=HEADERS)).json()
    same_shape(created, "create_order.response.json")
    same_shape(checked.json(), "order_check.response.json")
    same_shape(price, "pricing.response.json")
    assert (
        shapes.shape_errors(info["stats"], shapes.load("netts", "userinfo.response.json")["stats"])
        == []
    )
    assert created["detail"]["data"]["hash"] in checked.json()["order"]["tx_hashes"]
    assert delegator.energy_of(RECEIVER) == 131_000  # before the answer


async def test_key_and_whitelisted_ip(clock: VirtualClock, delegator: RecordingDelegator) -> None:
    emu = emulator(clock, delegator)
    async with client(emu) as http:
        other_ip = await http.get("/apiv2/userinfo", headers={**HEADERS, "X-Real-IP": "10.0.0.1"})
        no_ip = await http.get("/apiv2/userinfo", headers={"X-API-KEY": KEY})
        wrong_key = await http.get("/apiv2/userinfo", headers={**HEADERS, "X-API-KEY": "x"})
    for answer in (other_ip, no_ip, wrong_key):
        assert answer.status_code == 401
        assert answer.json() == shapes.load("netts", "error_auth.response.json")
    with pytest.raises(ValueError, match="three"):
        NettsEmulator(delegator, clock=clock, whitelist={"1.1.1.1", "2.2.2.2", "3.3.3.3", IP})


@pytest.mark.parametrize(
    ("path", "amount", "status"),
    [
        ("/apiv2/order5m", 650_000, 200),
        ("/apiv2/order5m", 650_001, 400),
        ("/apiv2/order1h", 5_000_000, 200),
        ("/apiv2/order1h", 60_999, 400),
    ],
)
async def test_each_endpoint_has_its_limits(
    clock: VirtualClock, path: str, amount: int, status: int
) -> None:
    emu = emulator(clock, RecordingDelegator(capacity=10**9), balance_sun=10**12)
    async with client(emu) as http:
        answer = await http.post(
            path, json={"amount": amount, "receiveAddress": RECEIVER}, headers=HEADERS
        )
    assert answer.status_code == status


async def test_balance_and_empty_pools(clock: VirtualClock, delegator: RecordingDelegator) -> None:
    emu = emulator(clock, delegator)
    body = {"amount": 65_000, "receiveAddress": RECEIVER}
    async with client(emu) as http:
        emu.pool_empty = True
        empty = await http.post("/apiv2/order5m", json=body, headers=HEADERS)
        hour = await http.post("/apiv2/order1h", json=body, headers=HEADERS)  # the fallback
        emu.balance_sun = 0
        broke = await http.post("/apiv2/order1h", json=body, headers=HEADERS)
    assert empty.status_code == 503 and hour.status_code == 200 and broke.status_code == 403
    assert len(emu.orders) == 1


async def test_two_requests_a_second_per_key(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    emu = NettsEmulator(delegator, clock=clock, api_key=KEY, whitelist={IP})
    async with client(emu) as http:
        first = [(await http.get("/apiv2/userinfo", headers=HEADERS)).status_code for _ in range(3)]
        clock.advance(0.5)
        later = [(await http.get("/apiv2/userinfo", headers=HEADERS)).status_code for _ in range(2)]
    assert first == [200, 200, 429] and later == [200, 429]


async def test_delegation_after_the_answer(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    emu = emulator(clock, delegator, readings=Readings({"netts.sync": "later"}))
    async with client(emu) as http:
        body = {"amount": 65_000, "receiveAddress": RECEIVER}
        created = (await http.post("/apiv2/order1h", json=body, headers=HEADERS)).json()
        order_id = created["detail"]["data"]["orderId"]
        before = await http.get(f"/apiv2/order_check?order_id={order_id}", headers=HEADERS)
        clock.advance(4)
        after = await http.get(f"/apiv2/order_check?order_id={order_id}", headers=HEADERS)
    assert created["detail"]["data"]["hash"] == ""
    assert before.json()["order"]["tx_hashes"] == [] and after.json()["order"]["tx_hashes"]
