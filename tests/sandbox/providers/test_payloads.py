"""Every emulator answer has the keys and value types of the pinned vendor payloads.

Pinned payloads: `tests/providers/payloads/<vendor>/` (from the vendor docs). Values such
as ids, times and amounts differ by design; `shapes.shape_errors` compares structure only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.eopen import EopenEmulator
from sandbox.providers.itrx import ItrxEmulator
from sandbox.providers.mefree import MefreeEmulator
from sandbox.providers.tronsave import TronSaveEmulator
from tests.sandbox.providers import shapes
from tests.sandbox.providers.conftest import RECEIVER
from tests.sandbox.providers.test_mefree import Client as MefreeClient

VENDORS = ("catfee", "eopen", "feee", "itrx", "mefree", "netts", "tronsave", "tronzap")


def test_the_pinned_payloads_are_where_the_shape_checks_read_them() -> None:
    """A moved or missing payload directory fails here (it used to skip every check)."""
    assert shapes.PAYLOADS.is_dir(), f"no pinned payloads at {shapes.PAYLOADS}"
    for vendor in VENDORS:
        assert sorted((shapes.PAYLOADS / vendor).glob("*.json")), f"no {vendor} payloads"


def same_shape(actual: Any, vendor: str, name: str) -> None:
    errors = shapes.shape_errors(actual, shapes.load(vendor, name))
    assert errors == [], f"{vendor}/{name}: {errors}"


def test_shape_check_catches_differences() -> None:
    assert shapes.shape_errors({"a": 1, "b": "x"}, {"a": 2, "b": "y"}) == []
    assert shapes.shape_errors({"a": "1"}, {"a": 1}) == ["$.a: str where the vendor has number"]
    assert shapes.shape_errors({"a": 1}, {"a": 1, "c": 2}) == ["$: missing keys ['c']"]


async def test_mefree(clock: VirtualClock, delegator: RecordingDelegator) -> None:
    emu = MefreeEmulator(delegator, clock=clock, api_key="mf-key", api_secret="mf-secret")
    client = MefreeClient(emu, clock)
    async with client.http:
        same_shape(
            (await client.call("GET", "/api/config")).json(), "mefree", "config.response.json"
        )
        created = (await client.order(f"quantity=65000&target_address={RECEIVER}&period=1")).json()
        same_shape(created, "mefree", "order_object.response.json")
        clock.advance(10)
        got = (await client.call("GET", "/api/order/" + created["data"]["pay_hash"])).json()
    same_shape(got, "mefree", "order_object.response.json")
    # the docs' short examples show only three fields of the order object
    for name in ("create_order.response.json", "order_query.response.json"):
        assert set(shapes.load("mefree", name)) <= set(got["data"])


async def test_eopen(clock: VirtualClock, delegator: RecordingDelegator) -> None:
    emu = EopenEmulator(delegator, clock=clock, api_key="k")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app),
        base_url="https://api.eopen.io/api",
        headers={"API-KEY": "k"},
    ) as http:
        same_shape((await http.get("/v1/account")).json(), "eopen", "account.response.json")
        price = await http.get("/v1/tron/price", params={"rentalCount": 65000, "period": "1h"})
        same_shape(price.json(), "eopen", "price.response.json")
        query = shapes.load("eopen", "create_order.request.json")["query"]
        created = await http.post("/v1/tron/order", params={**query, "pledgeAddress": RECEIVER})
        same_shape(created.json(), "eopen", "create_order.response.json")
        clock.advance(5)
        history = await http.get(
            "/v1/tron/history", params={"orderId": created.json()["data"]["id"]}
        )
        same_shape(history.json(), "eopen", "history.response.json")
        emu.faults.set_balance(0)
        broke = await http.post("/v1/tron/order", params={**query, "pledgeAddress": RECEIVER})
        same_shape(broke.json(), "eopen", "error_insufficient_balance.response.json")
        pinned = shapes.load("eopen", "error_insufficient_balance.response.json")
        assert broke.json()["code"] == pinned["code"]


async def test_itrx(clock: VirtualClock, delegator: RecordingDelegator) -> None:
    secret = "S"
    emu = ItrxEmulator(delegator, clock=clock, api_key="K", api_secret=secret)
    base = "https://itrx.io/api/v1/frontend"

    async def post(http: httpx.AsyncClient, path: str, data: dict[str, Any]) -> Any:
        body = json.dumps(data, sort_keys=True, separators=(",", ":"))
        ts = str(int(clock.now()))
        sig = hmac.new(secret.encode(), f"{ts}&{body}".encode(), hashlib.sha256).hexdigest()
        headers = {"API-KEY": "K", "TIMESTAMP": ts, "SIGNATURE": sig}
        return (await http.post(base + path, content=body, headers=headers)).json()

    request = shapes.load("itrx", "create_order.request.json")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app), headers={"API-KEY": "K"}
    ) as http:
        same_shape(
            (await http.get(base + "/index-data")).json(), "itrx", "index_data.response.json"
        )
        price = await http.get(
            base + "/order/price", params={"period": "3D", "energy_amount": 32000}
        )
        same_shape(price.json(), "itrx", "order_price.response.json")
        created = await post(http, "/order", {**request, "callback_url": "http://127.0.0.1:9/cb"})
        same_shape(created, "itrx", "create_order.response.json")
        clock.advance(4000)
        emu.tick()
        query = await http.get(base + "/order/query", params={"serial": created["serial"]})
        same_shape(query.json(), "itrx", "order_query.response.json")
        missing = await http.get(base + "/order/query", params={"serial": "0"})
        assert missing.json() == shapes.load("itrx", "error_order_not_found.response.json")
        fields = await post(http, "/order", {**request, "energy_amount": 9999, "period": "1X"})
        assert fields == shapes.load("itrx", "error_fields.response.json")
        bad_key = await http.get(base + "/order/price", headers={"API-KEY": "nope"})
        assert bad_key.json() == shapes.load("itrx", "error_detail.response.json")
    same_shape(emu.callbacks.jobs[0].payload, "itrx", "callback.request.json")


async def test_tronsave(clock: VirtualClock, delegator: RecordingDelegator) -> None:
    emu = TronSaveEmulator(delegator, clock=clock, api_key="k")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app),
        base_url="https://api.tronsave.io",
        headers={"apikey": "k"},
    ) as http:
        same_shape((await http.get("/v2/user-info")).json(), "tronsave", "user_info.response.json")
        estimate = {**shapes.load("tronsave", "estimate.request.json"), "receiver": RECEIVER}
        est = await http.post("/v2/estimate-buy-resource", json=estimate)
        same_shape(est.json(), "tronsave", "estimate.response.json")
        request = {**shapes.load("tronsave", "create_order.request.json"), "receiver": RECEIVER}
        created = await http.post("/v2/buy-resource", json=request)
        assert created.status_code == 201
        same_shape(created.json(), "tronsave", "create_order.response.json")
        clock.advance(10)
        order = await http.get(f"/v2/order/{created.json()['data']['orderId']}")
        same_shape(order.json(), "tronsave", "order_details.response.json")
        no_key = await http.get("/v2/user-info", headers={"apikey": ""})
        assert no_key.json() == shapes.load("tronsave", "error_api_key_required.response.json")
        wrong = await http.get("/v2/user-info", headers={"apikey": "x"})
        assert wrong.json() == shapes.load("tronsave", "error_invalid_api_key.response.json")
        unknown = await http.get("/v2/order/6819c7578729a45600f740d1")
        assert unknown.json() == shapes.load("tronsave", "error_invalid_order_id.response.json")
        invalid = {k: v for k, v in request.items() if k != "receiver"}
        bad = await http.post("/v2/buy-resource", json=invalid)
        assert bad.json() == shapes.load("tronsave", "error_validation.response.json")
        route = await http.post("/v2/...")
        assert route.json() == shapes.load("tronsave", "error_route_not_found.response.json")
        emu.faults.set_balance(0)
        broke = await http.post("/v2/buy-resource", json={**request, "options": {}})
        pinned = shapes.load("tronsave", "error_insufficient_balance.response.json")
        same_shape(broke.json(), "tronsave", "error_insufficient_balance.response.json")
        assert broke.json()["message"].split()[1] == pinned["message"].split()[1]
        emu.faults.rate_limit(0)
        limited = await http.get("/v2/user-info")
        assert limited.json() == shapes.load("tronsave", "error_rate_limit.response.json")
