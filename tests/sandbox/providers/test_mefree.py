"""The Mefree emulator, driven with hand-built, hand-signed requests (reference section 1)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.mefree import MefreeEmulator, MefreePrices
from tests.sandbox.providers.conftest import RECEIVER

KEY, SECRET = "mf-key", "mf-secret"


def sign(secret: str, ts: str, method: str, path: str) -> str:
    mac = hmac.new(secret.encode(), (ts + method + path).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def test_signer_matches_the_reference_vectors() -> None:
    ts = "2020-12-08T09:08:57.715Z"
    assert sign("test_secret", ts, "GET", "/api/config") == (
        "Y4azjVNQRanfz9T8owJQp4nQxzDyphoV9EBkHU887go="
    )
    path = "/api/order?quantity=65000&target_address=TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw&period=1"
    assert sign("test_secret", ts, "POST", path) == "l/XYNOK0s0eIJRT/RAsMzRUxTNuIoSad/8cyqOBPW64="


class Client:
    """Signs like Mefree's docs say: ts + METHOD + path-with-query, Base64 HMAC-SHA256."""

    def __init__(self, emu: MefreeEmulator, clock: VirtualClock) -> None:
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=emu.app), base_url="https://api.mefree.net"
        )
        self.clock = clock
        self.secret = SECRET

    def ts(self) -> str:
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"

    async def call(self, method: str, path: str, *, ts: str | None = None) -> httpx.Response:
        ts = ts or self.ts()
        headers = {
            "Content-Type": "application/json",
            "MF-ACCESS-KEY": KEY,
            "MF-ACCESS-TIMESTAMP": ts,
            "MF-ACCESS-SIGN": sign(self.secret, ts, method, path),
        }
        return await self.http.request(method, path, headers=headers)

    async def order(self, query: str) -> httpx.Response:
        return await self.call("POST", "/api/order?" + query)


@pytest.fixture
def emu(clock: VirtualClock, delegator: RecordingDelegator) -> MefreeEmulator:
    return MefreeEmulator(delegator, clock=clock, api_key=KEY, api_secret=SECRET)


@pytest.fixture
async def client(emu: MefreeEmulator, clock: VirtualClock) -> AsyncIterator[Client]:
    c = Client(emu, clock)
    async with c.http:
        yield c


ORDER = f"quantity=65000&target_address={RECEIVER}&period=1"


def data(resp: httpx.Response) -> Any:
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == 0, resp.text
    return body["data"]


async def test_reference_vector_is_accepted_by_the_emulator() -> None:
    clock = VirtualClock(datetime(2020, 12, 8, 9, 8, 57, 715000, UTC).timestamp())
    emu = MefreeEmulator(RecordingDelegator(), clock=clock, api_key=KEY, api_secret="test_secret")
    headers = {
        "MF-ACCESS-KEY": KEY,
        "MF-ACCESS-TIMESTAMP": "2020-12-08T09:08:57.715Z",
        "MF-ACCESS-SIGN": "Y4azjVNQRanfz9T8owJQp4nQxzDyphoV9EBkHU887go=",
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app), base_url="https://api.mefree.net"
    ) as http:
        ok = await http.get("/api/config", headers=headers)
        bad = await http.get("/api/config", headers={**headers, "MF-ACCESS-SIGN": "x" + "A" * 43})
    assert ok.status_code == 200 and ok.json()["data"]["account_balance"] == emu.balance_sun
    assert bad.status_code == 401 and bad.json()["sub_code"] == "INVALID_SIGNATURE"


async def test_signature_covers_the_query_string(client: Client) -> None:
    ts = client.ts()
    path = "/api/order?" + ORDER
    headers = {
        "MF-ACCESS-KEY": KEY,
        "MF-ACCESS-TIMESTAMP": ts,
        # signed over a different query order than the one sent
        "MF-ACCESS-SIGN": sign(SECRET, ts, "POST", "/api/order?period=1&quantity=65000"),
    }
    resp = await client.http.post(path, headers=headers)
    assert resp.status_code == 401


async def test_wrong_key_secret_and_stale_timestamp_are_401(
    client: Client, clock: VirtualClock
) -> None:
    client.secret = "not-the-secret"
    assert (await client.call("GET", "/api/config")).status_code == 401
    client.secret = SECRET
    stale = datetime.fromtimestamp(clock.now() - 301, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    resp = await client.call("GET", "/api/config", ts=stale)
    assert resp.status_code == 401 and resp.json()["sub_code"] == "TIMESTAMP_EXPIRED"
    local = datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert (await client.call("GET", "/api/config", ts=local)).status_code == 401
    assert (await client.call("GET", "/api/config")).status_code == 200


async def test_order_lifecycle_in_emulated_time(
    client: Client, emu: MefreeEmulator, clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    created = data(await client.order(ORDER))
    assert created["status"] == "TRANSFER_SUCCESS"
    assert created["confirm_status"] == "UNCONFIRMED"
    assert created["amount_sun"] == 45 * 65_000
    assert created["balance"] == emu.balance_sun == 1_000_000_000 - 45 * 65_000
    assert delegator.energy_of(RECEIVER) == 0
    path = "/api/order/" + created["pay_hash"]

    clock.advance(3)
    got = data(await client.call("GET", path))
    assert (got["status"], got["confirm_status"]) == ("DELEGATE_SUCCESS", "UNCONFIRMED")
    assert len(got["delegate_hash"]) == 64
    assert delegator.energy_of(RECEIVER) == 65_000

    clock.advance(3)
    got = data(await client.call("GET", path))
    assert got["confirm_status"] == "DELEGATION_CONFIRMED"

    clock.advance(3600)
    emu.tick()
    assert delegator.energy_of(RECEIVER) == 0  # reclaimed after the period (1 h)


async def test_parameter_rules(client: Client) -> None:
    bad = [
        f"quantity=64999&target_address={RECEIVER}&period=1",
        f"quantity=65000&count=1&target_address={RECEIVER}&period=1",
        f"target_address={RECEIVER}&period=1",
        f"quantity=65000&target_address={RECEIVER}&period=31",
        "quantity=65000&target_address=TNotAnAddress&period=1",
        f"quantity=65000&target_address={RECEIVER}&period=1&client_order_id={'x' * 65}",
    ]
    for query in bad:
        resp = await client.order(query)
        assert resp.status_code == 400, query
        assert resp.json()["code"] != 0 and set(resp.json()) >= {"msg", "sub_code", "sub_msg"}
    counted = data(await client.order(f"count=2&target_address={RECEIVER}&period=2"))
    assert counted["energy_quantity"] == 130_000
    assert counted["amount_sun"] == 56 * 130_000


async def test_client_order_id_dedupes(
    client: Client, emu: MefreeEmulator, delegator: RecordingDelegator, clock: VirtualClock
) -> None:
    first = data(await client.order(ORDER + "&client_order_id=intent-1"))
    balance = emu.balance_sun
    again = data(await client.order(ORDER + "&client_order_id=intent-1"))
    assert again["pay_hash"] == first["pay_hash"]
    assert emu.balance_sun == balance and len(emu.orders) == 1
    clock.advance(5)
    emu.tick()
    assert delegator.energy_of(RECEIVER) == 65_000


async def test_insufficient_balance_and_unknown_order(client: Client, emu: MefreeEmulator) -> None:
    emu.faults.set_balance(1_000)
    resp = await client.order(ORDER)
    assert resp.status_code == 400 and resp.json()["sub_code"] == "INSUFFICIENT_BALANCE"
    resp = await client.call("GET", "/api/order/does-not-exist")
    assert resp.status_code == 404 and resp.json()["code"] == 404


async def test_refused_delegation_fails_and_refunds(
    client: Client, emu: MefreeEmulator, clock: VirtualClock
) -> None:
    inactive = MefreeEmulator(
        RecordingDelegator(inactive={RECEIVER}), clock=clock, api_key=KEY, api_secret=SECRET
    )
    client.http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=inactive.app), base_url="https://api.mefree.net"
    )
    async with client.http:
        created = data(await client.order(ORDER))
        clock.advance(60)
        got = data(await client.call("GET", "/api/order/" + created["pay_hash"]))
    assert got["status"] == "DELEGATE_FAILED"
    assert inactive.balance_sun == 1_000_000_000


async def test_fail_after_accept_is_ambiguous_and_dedupe_resolves_it(
    client: Client, emu: MefreeEmulator
) -> None:
    emu.faults.fail_next(1, status=502, after_accept=True, on="create")
    resp = await client.order(ORDER + "&client_order_id=c-1")
    assert resp.status_code == 502
    assert len(emu.orders) == 1  # accepted although the client saw an error
    retry = data(await client.order(ORDER + "&client_order_id=c-1"))
    assert retry["client_order_id"] == "c-1" and len(emu.orders) == 1


async def test_fail_before_accept_creates_nothing(client: Client, emu: MefreeEmulator) -> None:
    emu.faults.fail_next(2, status=500, after_accept=False)
    assert (await client.order(ORDER)).status_code == 500
    assert (await client.call("GET", "/api/config")).status_code == 500
    assert emu.orders == {} and emu.faults.pending == 0
    assert data(await client.order(ORDER))["status"] == "TRANSFER_SUCCESS"


async def test_hang_holds_the_answer_on_the_clock(
    client: Client, emu: MefreeEmulator, clock: VirtualClock
) -> None:
    emu.faults.hang_next(1, seconds=600, on="create")
    task = asyncio.create_task(client.order(ORDER))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done() and len(emu.orders) == 1
    clock.advance(600)
    resp = await asyncio.wait_for(task, 5)
    assert resp.status_code == 200


async def test_rate_limit_is_429_in_the_envelope(client: Client, emu: MefreeEmulator) -> None:
    emu.faults.rate_limit(2)
    codes = [(await client.call("GET", "/api/config")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


async def test_delivery_faults(
    client: Client, emu: MefreeEmulator, clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    emu.faults.slow_delivery(120)
    slow = data(await client.order(ORDER))
    clock.advance(119)
    emu.tick()
    assert delegator.energy_of(RECEIVER) == 0
    clock.advance(1)
    emu.tick()
    assert delegator.energy_of(RECEIVER) == 65_000
    emu.faults.reset()
    emu.faults.partial_delivery(0.5)
    data(await client.order(ORDER))
    clock.advance(3)
    emu.tick()
    assert delegator.energy_of(RECEIVER) == 65_000 + 32_500
    emu.faults.reset()
    emu.faults.no_delivery()
    never = data(await client.order(ORDER))
    clock.advance(3000)
    got = data(await client.call("GET", "/api/order/" + never["pay_hash"]))
    assert got["status"] == "TRANSFER_SUCCESS"
    assert slow["pay_hash"] != never["pay_hash"]


async def test_prices_are_configurable(clock: VirtualClock, delegator: RecordingDelegator) -> None:
    emu = MefreeEmulator(
        delegator,
        clock=clock,
        api_key=KEY,
        api_secret=SECRET,
        prices=MefreePrices(hour_price_sun=7),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app), base_url="https://api.mefree.net"
    ) as http:
        c = Client(emu, clock)
        c.http = http
        config = data(await c.call("GET", "/api/config"))
        created = data(await c.order(ORDER))
    assert config["hour_price_sun"] == 7 and created["amount_sun"] == 7 * 65_000
