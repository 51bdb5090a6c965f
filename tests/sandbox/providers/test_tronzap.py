"""TronZap emulator: the signature over the bytes received, envelopes, readings, shapes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.readings import Readings
from sandbox.providers.tronzap import TronZapEmulator
from tests.sandbox.providers import shapes
from tests.sandbox.providers.conftest import RECEIVER

TOKEN, SECRET = "tz-token", "tz-secret"


class Client:
    def __init__(self, emu: TronZapEmulator) -> None:
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=emu.app), base_url="http://tronzap.test"
        )

    async def call(self, path: str, body: Any = None, *, raw: bytes | None = None,
                   secret: str = SECRET) -> httpx.Response:  # fmt: skip
        content = raw if raw is not None else json.dumps(body or {}).encode()
        signature = hashlib.sha256(content + secret.encode()).hexdigest()
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Signature": signature}
        return await self.http.post(path, content=content, headers=headers)


def emulator(clock: VirtualClock, delegator: RecordingDelegator, **readings: str) -> Any:
    chosen = Readings({f"tronzap.{k}": v for k, v in readings.items()})
    return TronZapEmulator(
        delegator, clock=clock, api_key=TOKEN, api_secret=SECRET, readings=chosen
    )


def order(external_id: str = "order-42", **params: Any) -> dict[str, Any]:
    values = {"address": RECEIVER, "amounts": {"energy": 65_000}, "duration": 1, **params}
    return {"service": "energy", "external_id": external_id, "params": values}


async def test_the_signature_covers_the_bytes_as_received(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    client = Client(emulator(clock, delegator))
    async with client.http:
        spaced = await client.call("/v1/balance", raw=b'{ "x" : 1 }')  # Python SDK spacing
        php = await client.call("/v1/balance", raw=b"[]")  # PHP's empty body
        wrong = await client.call("/v1/balance", {}, secret="other")
    assert spaced.json()["code"] == 0 and php.json()["code"] == 0
    assert wrong.status_code == 200 and wrong.json()["code"] == 1
    assert wrong.json()["key"] == "auth" and wrong.json()["request_id"]


async def test_shapes_of_the_pinned_payloads(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    client = Client(emulator(clock, delegator))
    async with client.http:
        services = (await client.call("/v1/services")).json()
        shapes_ok(services["result"]["energy"][0], "services.response.json", "energy")
        created = (await client.call("/v1/transaction/new", order(activate_address=True))).json()
        clock.advance(10)
        tx_id = created["result"]["id"]
        checked = (await client.call("/v1/transaction/check", {"id": tx_id})).json()
        balance = (await client.call("/v1/balance")).json()
        calc = await client.call("/v1/calculate", {"address": RECEIVER, "amount": 65_000,
                                                   "duration": 1})  # fmt: skip
        missing = (await client.call("/v1/transaction/check", {"id": "nope"})).json()
    assert created["result"]["status"] == "new"
    assert checked["result"]["status"] == "success" and checked["result"]["hash"]
    for got, name in ((checked, "transaction.response.json"), (balance, "balance.response.json"),
                      (calc.json(), "calculate.response.json")):  # fmt: skip
        errors = shapes.shape_errors(got, shapes.load("tronzap", name))
        assert errors == [], (name, errors)
    assert set(missing) == set(shapes.load("tronzap", "error_not_found.response.json"))
    assert missing["code"] == 20


def shapes_ok(row: Any, name: str, key: str) -> None:
    pinned = shapes.load("tronzap", name)["result"][key][0]
    assert shapes.shape_errors(row, pinned) == []


@pytest.mark.parametrize(
    ("reading", "orders", "code"), [("second", 2, 0), ("existing", 1, 0), ("refused", 1, 2)]
)
async def test_a_repeated_external_id(
    clock: VirtualClock, delegator: RecordingDelegator, reading: str, orders: int, code: int
) -> None:
    emu = emulator(clock, delegator, duplicate=reading)
    client = Client(emu)
    async with client.http:
        first = (await client.call("/v1/transaction/new", order())).json()
        clock.advance(1)
        again = (await client.call("/v1/transaction/new", order())).json()
        found = (await client.call("/v1/transaction/check", {"external_id": "order-42"})).json()
    assert len(emu.orders) == orders and again["code"] == code
    latest = max(emu.orders.values(), key=lambda t: t.created_at)
    assert found["result"]["id"] == latest.id
    assert first["code"] == 0


async def test_services_and_validation_follow_the_readings(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    client = Client(emulator(clock, delegator, minimum="60000", durations="1,24"))
    async with client.http:
        rows = (await client.call("/v1/services")).json()["result"]["energy"]
        small = await client.call("/v1/transaction/new", order(amounts={"energy": 59_000}))
        day = await client.call("/v1/transaction/new", order("d", duration=24))
        week = await client.call("/v1/transaction/new", order("w", duration=168))
    assert [(r["duration"], r["min_amount"]) for r in rows] == [(1, 60_000), (24, 60_000)]
    assert small.json()["code"] == 11 and small.json()["key"].startswith("invalid_energy_amount")
    assert day.json()["code"] == 0
    assert week.json()["code"] == 12 and week.json()["key"] == "invalid_duration.duration"


async def test_legacy_reading_reads_only_energy_amount(
    clock: VirtualClock, delegator: RecordingDelegator
) -> None:
    client = Client(emulator(clock, delegator, amount_field="legacy", error_status="400"))
    async with client.http:
        current = await client.call("/v1/transaction/new", order())
        both = await client.call("/v1/transaction/new", order("b", energy_amount=65_000))
    assert current.status_code == 400 and current.json()["code"] == 11
    assert both.json()["code"] == 0


async def test_unactivated_receiver_and_funds(clock: VirtualClock) -> None:
    delegator = RecordingDelegator(capacity=50_000_000, inactive={RECEIVER})
    emu = emulator(clock, delegator)
    client = Client(emu)
    async with client.http:
        refused = (await client.call("/v1/transaction/new", order())).json()
        activated = (await client.call("/v1/transaction/new",
                                       order("a", activate_address=True))).json()  # fmt: skip
        emu.balance_sun = 0
        broke = (await client.call("/v1/transaction/new", order("b"))).json()
    assert refused["code"] == 24 and activated["code"] == 0 and broke["code"] == 6
