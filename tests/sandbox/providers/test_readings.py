"""Readings of the vendors' open points in the emulators (sandbox/providers/readings.py),
driven with hand-built requests: each reading changes the answer as its name says."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from engine.core.clock import ScaledClock, VirtualClock
from sandbox.providers.base import RecordingDelegator
from sandbox.providers.eopen import EopenEmulator
from sandbox.providers.itrx import ItrxEmulator
from sandbox.providers.mefree import MefreeEmulator
from sandbox.providers.readings import READINGS, ReadingError, Readings, all_single
from sandbox.providers.tronsave import TronSaveEmulator
from tests.sandbox.providers import test_itrx as itrx_wire
from tests.sandbox.providers.conftest import RECEIVER
from tests.sandbox.providers.test_mefree import KEY, SECRET, sign

ORDER = f"/api/order?quantity=65000&target_address={RECEIVER}&period=1&client_order_id=c-1"


# --------------------------------------------------------------------------- parsing


def test_parse_comma_separated_and_repeated() -> None:
    r = Readings.parse(["mefree.duplicate=error,eopen.params=body", "mefree.window=300"])
    assert r.value("mefree", "duplicate") == "error"
    assert r.value("eopen", "params") == "body"
    assert r.number("mefree", "window") == 300.0
    assert r.value("eopen", "history") == "all"  # a default
    assert r.chosen() == {
        "mefree.duplicate": "error",
        "eopen.params": "body",
        "mefree.window": "300",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mefree.dup=error", "unknown reading 'mefree.dup'; valid: "),
        (
            "mefree.duplicate=maybe",
            "mefree.duplicate is one of existing, error, error400, not 'maybe'",
        ),
        ("mefree.window=soon", "mefree.window takes a number, not 'soon'"),
        ("mefree.window=-1", "mefree.window must be >= 0"),
        ("mefree.duplicate", "a reading is written vendor.key=value"),
    ],
)
def test_unknown_names_and_values_are_refused_with_the_valid_ones(spec: str, message: str) -> None:
    with pytest.raises(ReadingError, match=message.replace(".", r"\.").replace("(", r"\(")):
        Readings.parse(spec)


def test_every_reading_has_words_a_default_and_an_alternative() -> None:
    for reading in READINGS:
        assert reading.words and reading.check(reading.default) == reading.default
        assert reading.alternatives(), reading.name
    names = [name for name, _ in all_single()]
    assert names[0] == "defaults" and len(names) == len(set(names))


# --------------------------------------------------------------------------- Mefree


def _ts(epoch: float) -> str:
    when = datetime.fromtimestamp(epoch, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


async def _mefree(emu: MefreeEmulator, path: str, signed_at: float) -> httpx.Response:
    ts = _ts(signed_at)
    headers = {"MF-ACCESS-KEY": KEY, "MF-ACCESS-TIMESTAMP": ts}
    headers["MF-ACCESS-SIGN"] = sign(SECRET, ts, "GET" if path == "/api/config" else "POST", path)
    method = "GET" if path == "/api/config" else "POST"
    transport = httpx.ASGITransport(app=emu.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.mefree.net") as c:
        return await c.request(method, path, headers=headers)


def _mefree_emu(clock: Any, readings: Readings | None = None) -> MefreeEmulator:
    return MefreeEmulator(
        RecordingDelegator(), clock=clock, api_key=KEY, api_secret=SECRET, readings=readings
    )


async def test_mefree_duplicate_reading() -> None:
    clock = VirtualClock()
    existing = _mefree_emu(clock)
    first = (await _mefree(existing, ORDER, clock.now())).json()
    again = (await _mefree(existing, ORDER, clock.now())).json()
    assert again["code"] == 0 and again["data"]["pay_hash"] == first["data"]["pay_hash"]
    erring = _mefree_emu(clock, Readings({"mefree.duplicate": "error"}))
    await _mefree(erring, ORDER, clock.now())
    refused = await _mefree(erring, ORDER, clock.now())
    assert refused.status_code == 200
    assert refused.json()["code"] == 1
    assert refused.json()["sub_msg"] == "client_order_id already exists"
    assert len(erring.orders) == 1  # never a second order


async def test_mefree_window_is_five_seconds_by_default_and_a_reading() -> None:
    clock = VirtualClock()
    emu = _mefree_emu(clock)
    assert emu.window == 5.0
    assert (await _mefree(emu, "/api/config", clock.now() - 4)).status_code == 200
    stale = await _mefree(emu, "/api/config", clock.now() - 6)
    assert stale.status_code == 401 and stale.json()["sub_code"] == "TIMESTAMP_EXPIRED"
    assert (await _mefree(emu, "/api/config", clock.now() + 6)).status_code == 401  # ahead
    lenient = _mefree_emu(clock, Readings({"mefree.window": "300"}))
    assert (await _mefree(lenient, "/api/config", clock.now() - 250)).status_code == 200


async def test_mefree_window_on_a_sped_up_clock_is_in_real_seconds() -> None:
    # --speed 60: a request 0.1 real seconds in flight is 6 emulated seconds old
    clock = ScaledClock(start=1_000_000_000.0, speed=60)
    emu = _mefree_emu(clock)
    assert (await _mefree(emu, "/api/config", clock.now() - 250)).status_code == 200
    assert (await _mefree(emu, "/api/config", clock.now() - 400)).status_code == 401


async def test_mefree_accepts_a_signer_on_the_wall_clock() -> None:
    # an engine outside the sandbox (--world-only at --speed 60) signs with the real time
    clock = ScaledClock(start=time.time() + 3600, speed=60)
    emu = _mefree_emu(clock)
    assert (await _mefree(emu, "/api/config", time.time())).status_code == 200
    assert (await _mefree(emu, "/api/config", time.time() - 30)).status_code == 401


# --------------------------------------------------------------------------- eopen

EOPEN_KEY = {"API-KEY": "eopen-sandbox-key"}
EOPEN_ORDER = {"pledgeAddress": RECEIVER, "rentalCount": 65_000, "period": "1h"}


async def _eopen(emu: EopenEmulator, method: str, path: str, **kw: Any) -> Any:
    transport = httpx.ASGITransport(app=emu.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://eopen.test/api") as c:
        return (await c.request(method, path, headers=EOPEN_KEY, **kw)).json()


@pytest.mark.parametrize(
    ("where", "query_ok", "body_ok"),
    [("both", True, True), ("query", True, False), ("body", False, True)],
)
async def test_eopen_params_reading(where: str, query_ok: bool, body_ok: bool) -> None:
    emu = EopenEmulator(
        RecordingDelegator(), clock=VirtualClock(), readings=Readings({"eopen.params": where})
    )
    by_query = await _eopen(emu, "POST", "/v1/tron/order", params=EOPEN_ORDER)
    by_body = await _eopen(emu, "POST", "/v1/tron/order", json=EOPEN_ORDER)
    assert (by_query["code"] == 0, by_body["code"] == 0) == (query_ok, body_ok)
    assert {by_query["code"], by_body["code"]} <= {0, 11003}


async def test_eopen_history_and_completed_readings() -> None:
    clock = VirtualClock()
    readings = Readings({"eopen.history": "completed", "eopen.completed": "ended"})
    emu = EopenEmulator(RecordingDelegator(), clock=clock, readings=readings)
    created = await _eopen(emu, "POST", "/v1/tron/order", params=EOPEN_ORDER)
    order_id = {"orderId": created["data"]["id"]}
    assert (await _eopen(emu, "GET", "/v1/tron/history", params=order_id))["code"] == 12002
    clock.advance(10)
    delegated = await _eopen(emu, "GET", "/v1/tron/history", params=order_id)
    assert delegated["data"]["status"] == "PROCESSING"  # delegated, the rental not ended
    clock.advance(3600)
    ended = await _eopen(emu, "GET", "/v1/tron/history", params=order_id)
    assert ended["data"]["status"] == "COMPLETED"


# --------------------------------------------------------------------------- TronSave

TS_KEY = {"apikey": "tronsave-sandbox-key"}


async def _tronsave(emu: TronSaveEmulator, amount: int, cap: int | None = None) -> Any:
    options = {} if cap is None else {"maxPriceAccepted": cap}
    body = {"resourceAmount": amount, "receiver": RECEIVER, "durationSec": 3600,
            "unitPrice": 60, "options": options}  # fmt: skip
    transport = httpx.ASGITransport(app=emu.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tronsave.test") as c:
        return (await c.post("/v2/buy-resource", headers=TS_KEY, json=body)).json()


async def test_tronsave_minimum_and_max_price_readings() -> None:
    clock = VirtualClock()
    docs = TronSaveEmulator(RecordingDelegator(capacity=10**9), clock=clock)
    assert (await _tronsave(docs, 32_000))["error"] is False
    assert (await _tronsave(docs, 70_000, cap=60))["error"] is False  # equal: accepted
    strict = TronSaveEmulator(
        RecordingDelegator(capacity=10**9),
        clock=clock,
        readings=Readings({"tronsave.minimum": "64001", "tronsave.max_price": "below"}),
    )
    small = await _tronsave(strict, 64_000)
    assert small["error"] is True and "INVALID_PARAMS" in small["message"]
    equal = await _tronsave(strict, 70_000, cap=60)
    assert equal["error"] is True and "PRICE_EXCEED_MAX_PRICE_REQUIRED" in equal["message"]
    assert (await _tronsave(strict, 70_000, cap=61))["error"] is False


# --------------------------------------------------------------------------- itrx


async def test_itrx_status30_and_out_trade_no_readings() -> None:
    clock = VirtualClock()
    readings = Readings({"itrx.status30": "delegated", "itrx.out_trade_no": "unique"})
    emu = ItrxEmulator(
        RecordingDelegator(),
        clock=clock,
        api_key=itrx_wire.KEY,
        api_secret=itrx_wire.SECRET,
        readings=readings,
    )
    client = itrx_wire.Client(emu, clock)
    async with client.http:
        serial = (await client.order(out_trade_no="ref-1"))["serial"]
        clock.advance(5)
        assert (await client.query(serial))["status"] == 30  # "30 means fully delegated"
        assert (await client.query(serial))["pay_amount"] == 65_000.0
        clock.advance(3600)
        assert (await client.query(serial))["status"] == 40  # the rental ended
        again = await client.post(
            "/order",
            {"energy_amount": 65_000, "period": "1H", "receive_address": RECEIVER,
             "out_trade_no": "ref-1"},
        )  # fmt: skip
        assert again.json() == {"errno": 1, "message": "out_trade_no already exists"}
        assert len(emu.orders) == 1
