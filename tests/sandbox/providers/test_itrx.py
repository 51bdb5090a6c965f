"""The itrx emulator, driven with hand-built, hand-signed requests (reference section 2)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.itrx import ItrxEmulator
from sandbox.providers.itrx_callbacks import RETRY_SCHEDULE
from tests.sandbox.providers.conftest import OTHER, RECEIVER

KEY = "B433BFF1CDE7450AA38A56BEAC690DD4"  # the docs' sample credentials
SECRET = "0285A2741D0E76E2E187260EB23E51851D48403A756333E7D0CF845406ABF3E8"
BASE = "https://itrx.io/api/v1/frontend"
DOC_BODY = (
    '{"callback_url":"http://{mydomain}/callback","energy_amount":32000,"out_trade_no":"123456",'
    '"period":"1D","receive_address":"TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw"}'
)
DOC_SIGNATURE = "07c125cabfe006614a02131f927cca9e7a654f7644a817b155fad591e1c50f7b"


def sign(ts: str, body: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{ts}&{body}".encode(), hashlib.sha256).hexdigest()


def test_signer_matches_the_doc_vector() -> None:
    assert sign("1686796826", DOC_BODY) == DOC_SIGNATURE


class Client:
    def __init__(self, emu: ItrxEmulator, clock: VirtualClock) -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emu.app))
        self.clock = clock

    async def post(self, path: str, data: dict[str, Any], **over: str) -> httpx.Response:
        body = json.dumps(data, sort_keys=True, separators=(",", ":"))
        ts = str(int(self.clock.now()))
        headers = {"API-KEY": KEY, "TIMESTAMP": ts, "SIGNATURE": sign(ts, body)} | over
        headers["Content-Type"] = "application/json"
        return await self.http.post(BASE + path, content=body, headers=headers)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(BASE + path, params=params, headers={"API-KEY": KEY})

    async def order(self, **fields: Any) -> dict[str, Any]:
        data = {"energy_amount": 65_000, "period": "1H", "receive_address": RECEIVER} | fields
        resp = await self.post("/order", data)
        assert resp.status_code == 200 and resp.json()["errno"] == 0, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def query(self, serial: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self.get("/order/query", serial=serial)).json()
        return body


@pytest.fixture
def emu(clock: VirtualClock, delegator: RecordingDelegator) -> ItrxEmulator:
    return ItrxEmulator(delegator, clock=clock, api_key=KEY, api_secret=SECRET)


@pytest.fixture
async def client(emu: ItrxEmulator, clock: VirtualClock) -> AsyncIterator[Client]:
    c = Client(emu, clock)
    async with c.http:
        yield c


async def test_doc_vector_is_accepted_and_a_wrong_signature_is_not(emu: ItrxEmulator) -> None:
    headers = {"API-KEY": KEY, "TIMESTAMP": "1686796826", "Content-Type": "application/json"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emu.app)) as http:
        ok = await http.post(
            BASE + "/order", content=DOC_BODY, headers=headers | {"SIGNATURE": DOC_SIGNATURE}
        )
        bad = await http.post(
            BASE + "/order", content=DOC_BODY, headers=headers | {"SIGNATURE": "0" * 64}
        )
    assert ok.status_code == 200 and ok.json()["errno"] == 0
    assert set(ok.json()) == {"errno", "serial", "amount", "balance"}
    assert bad.status_code == 400 and "detail" in bad.json()


async def test_body_must_be_the_signed_canonical_bytes(client: Client) -> None:
    spaced = json.dumps({"energy_amount": 65000, "period": "1H", "receive_address": RECEIVER})
    ts = str(int(client.clock.now()))
    headers = {"API-KEY": KEY, "TIMESTAMP": ts, "Content-Type": "application/json"}
    # signed over the canonical form but sent spaced: the raw bytes do not match
    canonical = json.dumps(json.loads(spaced), sort_keys=True, separators=(",", ":"))
    resp = await client.http.post(
        BASE + "/order", content=spaced, headers=headers | {"SIGNATURE": sign(ts, canonical)}
    )
    assert resp.status_code == 400
    # signed over the spaced bytes and sent spaced: not the documented canonical form
    resp = await client.http.post(
        BASE + "/order", content=spaced, headers=headers | {"SIGNATURE": sign(ts, spaced)}
    )
    assert resp.status_code == 400


async def test_api_key_is_required(client: Client) -> None:
    resp = await client.post("/order", {"energy_amount": 65000}, **{"API-KEY": "nope"})
    assert resp.status_code == 400 and resp.json() == {"detail": "API not found"}
    resp = await client.http.get(BASE + "/index-data", headers={"API-KEY": "nope"})
    assert resp.status_code == 200 and resp.json() == {}


async def test_drf_validation_errors(client: Client) -> None:
    resp = await client.post(
        "/order", {"energy_amount": 9_999, "period": "1X", "receive_address": RECEIVER}
    )
    assert resp.status_code == 400
    assert resp.json() == {
        "energy_amount": ["Please make sure the value is greater than or equal to 10000."],
        "period": ["'1X' is not a legal option."],
    }
    resp = await client.post("/order", {"period": "1D"})
    assert set(resp.json()) == {"energy_amount", "receive_address"}


async def test_inactive_address_and_insufficient_funds(
    clock: VirtualClock, emu: ItrxEmulator, client: Client
) -> None:
    inactive = ItrxEmulator(
        RecordingDelegator(inactive={OTHER}), clock=clock, api_key=KEY, api_secret=SECRET
    )
    client.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=inactive.app))
    async with client.http:
        data = {"energy_amount": 65_000, "period": "1H", "receive_address": OTHER}
        resp = await client.post("/order", data)
        assert resp.json() == {"detail": f"{OTHER} is the inactive address."}
        activated = await client.order(receive_address=OTHER, active=1)
        assert activated["amount"] == 40 * 65_000 + 1_500_000
        inactive.faults.set_balance(10)
        resp = await client.post("/order", data)
        assert resp.status_code == 400 and resp.json() == {"detail": "Insufficient funds"}


async def test_prices_differ_by_period_and_small_orders_pay_addition(client: Client) -> None:
    small = (await client.get("/order/price", period="1D", energy_amount=32_000)).json()
    assert small == {
        "period": "1D",
        "energy_amount": 32_000,
        "price": 90,
        "total_price": 90 * 32_000 + 600_000,
        "addition": 600_000,
    }
    big = (await client.get("/order/price", period="3D", energy_amount=65_000)).json()
    assert big["total_price"] == 60 * 65_000 * 3 and big["addition"] == 0
    index = (await client.get("/index-data")).json()
    assert index["small_addition"] == 0.6 and index["minimum_order_energy"] == 10_000
    assert [t["period"] for t in index["tiered_pricing"]] == [0, 1, 3, 7, 30]


async def test_status_progression_and_details(
    client: Client, emu: ItrxEmulator, clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    serial = (await client.order())["serial"]
    assert (await client.query(serial))["status"] == 20
    clock.advance(1)
    assert (await client.query(serial))["status"] == 30
    clock.advance(2)
    got = await client.query(serial)
    assert got["status"] == 40 and got["pay_amount"] == 65_000.0
    assert got["details"][0]["status"] == 20 and got["period"] == 0
    assert delegator.energy_of(RECEIVER) == 65_000
    clock.advance(3600)
    got = await client.query(serial)
    assert got["status"] == 40 and got["details"][0]["status"] == 30
    assert got["details"][0]["reclaim_time_real"] is not None
    assert delegator.energy_of(RECEIVER) == 0
    missing = await client.query("0" * 32)
    assert missing == {"errno": 404, "message": "Order not found"}


async def test_refused_delegation_retries_then_refunds(
    client: Client, emu: ItrxEmulator, clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    delegator.refuse_next(3)
    serial = (await client.order())["serial"]
    balance_after_order = emu.balance_sun
    clock.advance(3)
    assert (await client.query(serial))["status"] == 32
    clock.advance(30)
    got = await client.query(serial)
    assert got["status"] == 41 and got["refund_amount"] == got["amount"]
    assert emu.balance_sun == balance_after_order + got["amount"]


async def test_partial_delivery_ends_43_with_part_refund(
    client: Client, emu: ItrxEmulator, clock: VirtualClock
) -> None:
    emu.faults.partial_delivery(0.5)
    serial = (await client.order(energy_amount=100_000))["serial"]
    clock.advance(3)
    got = await client.query(serial)
    assert got["status"] == 31 and got["pay_amount"] == 50_000.0
    clock.advance(3600)
    got = await client.query(serial)
    assert got["status"] == 43 and got["refund_amount"] == got["amount"] // 2


async def test_exclusive_reclaims_earlier_delegations_first(
    client: Client, emu: ItrxEmulator, clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    first = (await client.order(energy_amount=20_000, period="1D"))["serial"]
    clock.advance(3)
    emu.tick()
    second = (await client.order(exclusive=1))["serial"]
    clock.advance(3)
    emu.tick()
    assert emu.orders[second].exclusive_reclaimed == [
        emu.orders[first].delivery.delegations[0].txid
    ]
    assert delegator.energy_of(RECEIVER) == 65_000
    assert (await client.query(first))["details"][0]["status"] == 30


async def test_reclaim_endpoint(client: Client, emu: ItrxEmulator, clock: VirtualClock) -> None:
    serial = (await client.order(period="3D"))["serial"]
    clock.advance(3)
    resp = await client.post("/order/reclaim", {"serial": serial})
    assert resp.json() == {"errno": 0, "message": "request accept"}
    assert (await client.query(serial))["details"][0]["status"] == 30
    resp = await client.post("/order/reclaim", {"serial": "f" * 32})
    assert resp.json()["errno"] == 404


class Receiver:
    """A callback endpoint that fails `fail` times, then acknowledges."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.app = Starlette(routes=[Route("/cb", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        self.seen.append((dict(request.headers), await request.body()))
        if len(self.seen) <= self.fail:
            return JSONResponse({"ok": False}, status_code=500)
        return JSONResponse({"ok": True})


async def test_signed_callbacks_follow_the_retry_schedule(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    receiver = Receiver(fail=2)
    emu = ItrxEmulator(
        delegator,
        clock=clock,
        api_key=KEY,
        api_secret=SECRET,
        callback_transport=httpx.ASGITransport(app=receiver.app),
    )
    client = Client(emu, clock)
    async with client.http:
        serial = (await client.order(callback_url="http://127.0.0.1:9/cb", out_trade_no="o-1"))[
            "serial"
        ]
    clock.advance(3)
    await emu.step()
    assert len(receiver.seen) == 1
    clock.advance(RETRY_SCHEDULE[0] - 1)
    await emu.step()
    assert len(receiver.seen) == 1  # not yet due
    clock.advance(1)
    await emu.step()
    clock.advance(RETRY_SCHEDULE[1])
    await emu.step()
    clock.advance(10_000)
    await emu.step()
    assert len(receiver.seen) == 3 and emu.callbacks.jobs[0].delivered
    headers, body = receiver.seen[-1]
    assert headers["signature"] == sign(headers["timestamp"], body.decode())
    payload = json.loads(body)
    assert body.decode() == json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert payload["serial"] == serial and payload["status"] == 40
    assert payload["out_trade_no"] == "o-1" and payload["pay_amount"] == 65_000.0


async def test_callbacks_stop_after_the_last_retry(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    receiver = Receiver(fail=100)
    emu = ItrxEmulator(
        delegator,
        clock=clock,
        api_key=KEY,
        api_secret=SECRET,
        callback_url="http://localhost/cb",
        callback_transport=httpx.ASGITransport(app=receiver.app),
    )
    client = Client(emu, clock)
    async with client.http:
        await client.order()
    for _ in range(40):
        clock.advance(300)
        await emu.step()
    assert len(receiver.seen) == 1 + len(RETRY_SCHEDULE)
    assert emu.callbacks.jobs[0].abandoned


async def test_non_loopback_callbacks_are_never_sent(
    client: Client, emu: ItrxEmulator, clock: VirtualClock
) -> None:
    await client.order(callback_url="http://example.com/cb")
    clock.advance(3)
    await emu.step()
    attempt = emu.callbacks.jobs[0].attempts[0]
    assert attempt.status is None and "loopback" in attempt.error


async def test_faults_use_djangos_shapes(client: Client, emu: ItrxEmulator) -> None:
    emu.faults.fail_next(1, on="create")
    resp = await client.post("/order", {"energy_amount": 65_000, "period": "1H",
                                        "receive_address": RECEIVER})  # fmt: skip
    assert resp.status_code == 500 and len(emu.orders) == 1
    emu.faults.rate_limit(1)
    await client.get("/index-data")
    resp = await client.get("/index-data")
    assert resp.status_code == 429 and "throttled" in resp.json()["detail"]
