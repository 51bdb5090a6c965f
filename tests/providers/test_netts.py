"""Netts adapter: headers, the two durations, build/parse on the payloads, errors, pacing."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr, ValidationError

from providers import netts
from providers.base import (
    AmbiguousError,
    ErrorReason,
    OrderState,
    PermanentError,
    QuoteRequest,
    Receipt,
    TemporaryError,
)
from providers.http import NO_WAIT
from tests.providers.conftest import RECEIVER, Recorder, RecordingClock, load, make_order, reply

KEY, IP = "netts-key-1", "198.51.100.7"


def provider(rec: Recorder, clock: RecordingClock | None = None) -> netts.NettsProvider:
    return netts.NettsProvider(
        "nt",
        api_key=SecretStr(KEY),
        real_ip=IP,
        clock=clock or RecordingClock(),
        transport=rec.transport,
        retry=NO_WAIT,
    )


def receipt(order_id: str = "1H123456", energy: int = 131_000) -> Receipt:
    return Receipt(
        provider="nt",
        client_order_id="ord-1",
        provider_order_id=order_id,
        receiver=RECEIVER,
        energy=energy,
        duration=3600,
    )


async def test_create_sends_key_ip_and_the_documented_body() -> None:
    rec = Recorder(reply(200, load("netts", "create_order.response.json")))
    got = await provider(rec).place(make_order(energy=131_000))
    request = rec.requests[0]
    assert request.method == "POST" and request.url.path == "/apiv2/order1h"
    assert request.headers["x-api-key"] == KEY and request.headers["x-real-ip"] == IP
    assert json.loads(request.content) == load("netts", "create_order.request.json")
    assert got.provider_order_id == "1H123456" and got.cost_sun == 2_230_000
    assert got.raw["hash"]  # the delegation was made before the answer


async def test_five_minutes_go_to_order5m_within_its_own_limits() -> None:
    rec = Recorder(reply(200, load("netts", "create_order.response.json")))
    p = provider(rec)
    await p.place(make_order(energy=650_000, duration=300))
    assert rec.requests[0].url.path == "/apiv2/order5m"
    for energy, duration in ((650_001, 300), (60_999, 3600), (5_000_001, 3600), (65_000, 600)):
        with pytest.raises(PermanentError) as info:
            await p.place(make_order(energy=energy, duration=duration))
        assert info.value.reason is ErrorReason.INVALID_REQUEST
    assert len(rec.requests) == 1  # refused before any call


async def test_status_is_delegated_once_tx_hashes_are_listed() -> None:
    body = load("netts", "order_check.response.json")
    rec = Recorder(reply(200, body))
    status = await provider(rec).status(receipt())
    assert rec.requests[0].url.params["order_id"] == "1H123456"
    assert status.state is OrderState.DELEGATED and status.txids
    assert status.delegated_energy == 131_000  # 131,050 delegated; what was bought counts
    assert status.cost_sun == 2_230_000
    body["order"]["tx_hashes"] = []
    pending = await provider(Recorder(reply(200, body))).status(receipt())
    assert pending.state is OrderState.PENDING and pending.delegated_energy == 0


async def test_quote_is_the_current_period_price() -> None:
    rec = Recorder(reply(200, load("netts", "pricing.response.json")))
    q = await provider(rec).quote(QuoteRequest(receiver=RECEIVER, energy=100_000, duration=3600))
    assert q.total_sun == 1_700_000
    assert rec.requests[0].url.params["services"] == "energy_1h"


async def test_a_price_in_another_unit_is_not_guessed() -> None:
    body = load("netts", "pricing.response.json")
    body["data"]["services"]["energy_1h"]["unit"] = "TRX"
    with pytest.raises(TemporaryError) as info:
        await provider(Recorder(reply(200, body))).quote(
            QuoteRequest(receiver=RECEIVER, energy=100_000, duration=3600)
        )
    assert info.value.reason is ErrorReason.PROTOCOL


async def test_balance_is_trx_rounded_down() -> None:
    rec = Recorder(reply(200, load("netts", "userinfo.response.json")))
    assert await provider(rec).balance() == 11_000_000


@pytest.mark.parametrize("name", ["error_auth.response.json", "error_auth_legacy.response.json"])
async def test_auth_errors(name: str) -> None:
    rec = Recorder(reply(401, load("netts", name)))
    with pytest.raises(PermanentError) as info:
        await provider(rec).balance()
    assert info.value.reason is ErrorReason.AUTH


async def test_a_create_is_never_retried() -> None:
    rec = Recorder(reply(503, {"detail": {"code": 503, "msg": "pools empty"}}))
    with pytest.raises(AmbiguousError):
        await provider(rec).place(make_order(duration=300))
    assert len(rec.requests) == 1


async def test_calls_are_paced_at_two_a_second() -> None:
    clock = RecordingClock()
    rec = Recorder(reply(200, load("netts", "userinfo.response.json")))
    p = provider(rec, clock)
    for _ in range(6):
        await p.balance()
    assert clock.t - RecordingClock().t == pytest.approx(2.0)  # 2 at once, 4 x 0.5 s


def test_real_ip_must_be_an_address() -> None:
    with pytest.raises(ValueError, match="IPv4 or IPv6"):
        provider_with_ip("not-an-ip")
    with pytest.raises(ValidationError):
        netts.NettsSpec.model_validate(
            {"type": "netts", "apiKey": {"fromEnv": "K"}, "realIp": "300.1.1.1"}
        )
    spec = netts.NettsSpec.model_validate(
        {"type": "netts", "apiKey": {"fromEnv": "K"}, "realIp": "2001:db8::1"}
    )
    assert spec.real_ip == "2001:db8::1"


def provider_with_ip(ip: str) -> netts.NettsProvider:
    return netts.NettsProvider("nt", api_key=SecretStr(KEY), real_ip=ip)
