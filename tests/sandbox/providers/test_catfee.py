"""The CatFee emulator, driven with hand-built, hand-signed requests (its public API docs)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.catfee import CatFeeEmulator
from sandbox.providers.readings import Readings
from tests.sandbox.providers import shapes
from tests.sandbox.providers.conftest import OTHER, RECEIVER

KEY, SECRET = "cf-key", "cf-secret"
ORDER = f"/v1/order?quantity=65000&receiver={RECEIVER}&duration=1h"


def sign(secret: str, ts: str, method: str, path: str) -> str:
    mac = hmac.new(secret.encode(), (ts + method + path).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def test_signer_matches_the_signing_vectors() -> None:
    pinned = shapes.load("catfee", "signing_vectors.json")
    for vector in pinned["vectors"]:
        got = sign(pinned["secret"], pinned["timestamp"], vector["method"], vector["path"])
        assert got == vector["sign"]


class Client:
    def __init__(self, emu: CatFeeEmulator, clock: VirtualClock) -> None:
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=emu.app), base_url="https://api.catfee.io"
        )
        self.clock = clock

    def ts(self) -> str:
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"

    async def call(
        self, method: str, path: str, *, ts: str | None = None, signed: str | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:  # fmt: skip
        ts = ts or self.ts()
        headers = {
            "Content-Type": "application/json",
            "CF-ACCESS-KEY": KEY,
            "CF-ACCESS-TIMESTAMP": ts,
            "CF-ACCESS-SIGN": sign(SECRET, ts, method, signed if signed is not None else path),
        }
        return await self.http.request(method, path, headers=headers, content=content)


def make(
    clock: VirtualClock, delegator: RecordingDelegator, **kw: Any
) -> tuple[CatFeeEmulator, Client]:
    emu = CatFeeEmulator(delegator, clock=clock, api_key=KEY, api_secret=SECRET, **kw)
    return emu, Client(emu, clock)


def same_shape(actual: Any, name: str) -> None:
    assert shapes.shape_errors(actual, shapes.load("catfee", name)) == [], name


async def test_lifecycle_and_shapes(clock: VirtualClock, delegator: RecordingDelegator) -> None:
    _, client = make(clock, delegator)
    async with client.http:
        same_shape((await client.call("GET", "/v1/account")).json(), "account.response.json")
        created = (await client.call("POST", ORDER + "&client_order_id=c1")).json()
        assert created["code"] == 0
        order = created["data"]
        assert (order["status"], order["confirm_status"], order["duration"]) == (
            "PAYMENT_SUCCESS", "UNCONFIRMED", 60
        )  # fmt: skip
        assert order["pay_amount_sun"] == 32 * 65_000
        clock.advance(3.5)
        got = (await client.call("GET", "/v1/order/" + order["id"])).json()["data"]
        assert (got["status"], got["confirm_status"]) == ("DELEGATE_SUCCESS", "UNCONFIRMED")
        clock.advance(3)
        detail = (await client.call("GET", "/v1/order/" + order["id"])).json()
        same_shape(detail, "order_detail.response.json")
        assert detail["data"]["confirm_status"] == "DELEGATION_CONFIRMED"
        assert delegator.energy_of(RECEIVER) == 65_000
        clock.advance(3600)
        ended = (await client.call("GET", "/v1/order/" + order["id"])).json()["data"]
        assert ended["confirm_status"] == "RECLAIM_CONFIRMED" and "reclaim_hash" in ended
        account = (await client.call("GET", "/v1/account")).json()["data"]
        assert account["balance"] == 1_000_000_000 - 32 * 65_000


@pytest.mark.parametrize("replay", ["snapshot", "current"])
async def test_client_order_id_returns_the_first_order(
    clock: VirtualClock, delegator: RecordingDelegator, replay: str
) -> None:
    emu, client = make(clock, delegator, readings=Readings({"catfee.replay": replay}))
    async with client.http:
        first = (await client.call("POST", ORDER + "&client_order_id=c1")).json()["data"]
        clock.advance(10)
        again = (await client.call("POST", ORDER + "&client_order_id=c1")).json()["data"]
    assert again["id"] == first["id"] and len(emu.orders) == 1
    assert emu.balance_sun == 1_000_000_000 - first["pay_amount_sun"]
    expected = "PAYMENT_SUCCESS" if replay == "snapshot" else "DELEGATE_SUCCESS"
    assert again["status"] == expected


async def test_auth_window_body_and_query(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    emu, client = make(clock, delegator)
    async with client.http:
        assert (await client.call("POST", ORDER, signed="/v1/order")).status_code == 401
        old = datetime.fromtimestamp(clock.now() - 6, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        stale = await client.call("GET", "/v1/account", ts=old)
        assert stale.status_code == 401 and stale.json()["sub_code"] == "TIMESTAMP_EXPIRED"
        emu.readings = Readings({"catfee.window": "30"})
        assert (await client.call("GET", "/v1/account", ts=old)).status_code == 200
        body = await client.call("POST", ORDER, content=b'{"quantity": 65000}')
        assert body.status_code == 400
        small = await client.call("POST", ORDER.replace("65000", "64999"))
        assert small.status_code == 400 and small.json()["code"] == 400
        day = await client.call("POST", ORDER.replace("1h", "24h"))
        assert day.status_code == 400
    assert emu.orders == {}


@pytest.mark.parametrize("failure", ["status", "code"])
async def test_insufficient_balance_and_inactive_receiver(
    clock: VirtualClock, failure: str
) -> None:
    delegator = RecordingDelegator(capacity=50_000_000, inactive={OTHER})
    emu, client = make(
        clock, delegator, balance_sun=1_000, readings=Readings({"catfee.failure": failure})
    )
    async with client.http:
        broke = (await client.call("POST", ORDER + "&client_order_id=c1")).json()
        emu.balance_sun = 1_000_000_000
        inactive = ORDER.replace(RECEIVER, OTHER)
        refused = (await client.call("POST", inactive + "&activate=false")).json()
        activated = (await client.call("POST", inactive + "&activate=true")).json()
    if failure == "status":
        assert broke["code"] == 0 and broke["data"]["status"] == "INSUFFICIENT_BALANCE"
        assert refused["data"]["status"] == "ADDRESS_NOT_ACTIVATED"
        assert len(emu.refused) == 2
    else:
        assert (broke["code"], broke["sub_code"]) == (1, "INSUFFICIENT_BALANCE")
        assert refused["sub_code"] == "ADDRESS_NOT_ACTIVATED" and emu.refused == {}
    assert activated["data"]["activate_status"] == "ACTIVATED"
    assert activated["data"]["activate_amount_sun"] == 1_000_000
    assert len(emu.orders) == 1 and delegator.activations == [OTHER]


async def test_refused_delegation_fails_and_refunds(clock: VirtualClock) -> None:
    delegator = RecordingDelegator(capacity=50_000_000)
    delegator.refuse_next(3)
    emu, client = make(clock, delegator)
    async with client.http:
        order = (await client.call("POST", ORDER)).json()["data"]
        clock.advance(40)
        got = (await client.call("GET", "/v1/order/" + order["id"])).json()["data"]
    assert (got["status"], got["confirm_status"]) == ("DELEGATE_FAIL", "DELEGATION_CONFIRMED_FAIL")
    assert emu.balance_sun == 1_000_000_000
