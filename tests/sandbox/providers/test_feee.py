"""The feee.io emulator, driven with hand-built requests (its public API docs)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.feee import FeeeEmulator
from sandbox.providers.readings import Readings
from tests.sandbox.providers import shapes
from tests.sandbox.providers.conftest import RECEIVER

KEY = "fe-key"


def make(delegator: RecordingDelegator, clock: VirtualClock, **kw: Any) -> FeeeEmulator:
    return FeeeEmulator(delegator, clock=clock, api_key=KEY, **kw)


def client(emu: FeeeEmulator, key: str = KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app),
        base_url="https://feee.io/open",
        headers={"key": key, "User-Agent": "Feee.io Python Client/1.0.0 (https://feee.io)"},
    )


def same_shape(actual: Any, name: str) -> None:
    assert shapes.shape_errors(actual, shapes.load("feee", name)) == [], name


def submit(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = shapes.load("feee", "submit_order.request.json")
    return body | {"receive_address": RECEIVER} | fields


async def test_v2_lifecycle_and_shapes(clock: VirtualClock, delegator: RecordingDelegator) -> None:
    emu = make(delegator, clock)
    async with client(emu) as http:
        same_shape((await http.get("/v2/api/query")).json(), "api_query.response.json")
        query: dict[str, str | int] = {
            "resource_value": 32000,
            "rent_duration": 1,
            "rent_time_unit": "d",
        }
        price = (await http.get("/v2/order/price", params=query)).json()
        same_shape(price, "price.response.json")
        assert price["data"]["pay_amount"] == pytest.approx(32000 * 95 / 1e6 + 0.56)
        created = (await http.post("/v2/order/submit", json=submit())).json()
        same_shape(created, "order.response.json")
        order = created["data"]
        assert (order["status"], order["business_status"]) == (4, 1)
        assert len(order["order_no"]) == 22 and order["pay_amount"] == price["data"]["pay_amount"]
        clock.advance(4)
        got = (await http.get("/v2/order/query", params={"order_no": order["order_no"]})).json()
        same_shape(got, "order_query.response.json")
        assert (got["data"]["status"], got["data"]["business_status"]) == (6, 2)
        assert got["data"]["frozen_resource_value"] == 32000 and got["data"]["frozen_tx_id"]
        clock.advance(86_400)
        ended = (await http.get("/v2/order/query", params={"order_no": order["order_no"]})).json()
        assert (ended["data"]["status"], ended["data"]["business_status"]) == (9, 3)
    assert delegator.energy_of(RECEIVER) == 0


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"rent_duration": 3, "rent_time_unit": "h"}, True),
        ({"rent_duration": 2, "rent_time_unit": "h"}, False),
        ({"rent_duration": 10, "rent_time_unit": "m"}, True),
        ({"rent_duration": 5, "rent_time_unit": "m"}, False),
        ({"rent_duration": 31, "rent_time_unit": "d"}, False),
        ({"rent_time_second": 1200, "rent_duration": 99}, True),  # the seconds win
        ({"rent_time_second": 1201}, False),
        ({"rent_time_second": 900}, False),  # not an allowed value for this key
        ({"resource_type": 0}, False),
        ({"resource_value": 31_999}, False),
        ({"receive_address": "T123"}, False),
    ],
)
async def test_v2_validation(
    clock: VirtualClock, delegator: RecordingDelegator, fields: dict[str, Any], ok: bool
) -> None:
    emu = make(delegator, clock)
    async with client(emu) as http:
        answer = (await http.post("/v2/order/submit", json=submit(**fields))).json()
    assert (answer["code"] == 0) is ok, answer
    assert len(emu.orders) == (1 if ok else 0)


@pytest.mark.parametrize("v3", ["create", "submit", "both"])
async def test_v3_five_minutes_and_its_path(
    clock: VirtualClock, delegator: RecordingDelegator, v3: str
) -> None:
    emu = make(delegator, clock, readings=Readings({"feee.v3_path": v3}))
    body = {"resource_type": 1, "receive_address": RECEIVER, "resource_value": 65000}
    async with client(emu) as http:
        create = await http.post("/v3/order/create", json=body)
        submitted = await http.post("/v3/order/submit", json=body)
    assert (create.status_code == 200) is (v3 != "submit")
    assert (submitted.status_code == 200) is (v3 != "create")
    assert all(o.seconds == 300 and o.version == 3 for o in emu.orders.values())


async def test_errors_key_status_balance_and_cancel(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    emu = make(delegator, clock, readings=Readings({"feee.error_status": "400"}))
    async with client(emu, key="wrong") as http:
        denied = await http.get("/v2/api/query")
    assert denied.status_code == 400 and denied.json()["code"] != 0
    emu.faults.no_delivery()
    async with client(emu) as http:
        order = (await http.post("/v2/order/submit", json=submit())).json()["data"]
        early = await http.post("/v2/order/cancel", json={"order_no": order["order_no"]})
        assert early.json()["code"] != 0
        clock.advance(300)
        cancelled = (
            await http.post("/v2/order/cancel", json={"order_no": order["order_no"]})
        ).json()
        assert cancelled["pagination"] is None
        assert (cancelled["data"]["status"], cancelled["data"]["business_status"]) == (12, 4)
        assert cancelled["data"]["refund_amount"] == cancelled["data"]["pay_amount"]
        emu.balance_sun = 0
        broke = await http.post("/v2/order/submit", json=submit())
    assert broke.status_code == 400 and "balance" in broke.json()["msg"]
    assert emu.balance_sun == 0 and len(emu.orders) == 1


async def test_refused_delegation_is_refunded_after_refund_pending(clock: VirtualClock) -> None:
    delegator = RecordingDelegator(capacity=50_000_000)
    delegator.refuse_next(3)
    emu = make(delegator, clock)
    async with client(emu) as http:
        order = (await http.post("/v2/order/submit", json=submit())).json()["data"]
        seen = []
        for step in (3.5, 20.0, 10.0, 60.0):
            clock.advance(step)
            data = (
                await http.get("/v2/order/query", params={"order_no": order["order_no"]})
            ).json()
            seen.append(data["data"]["status"])
    assert seen == [4, 7, 13, 14]  # failed at 23 s: 7, refund pending, refunded at 83 s
    assert emu.balance_sun == 1_000_000_000
