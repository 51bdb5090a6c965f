"""TronZap adapter: signing vectors, the services list, build/parse on the payloads, lookup."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from providers import tronzap
from providers.base import (
    AmbiguousError,
    ErrorReason,
    OrderState,
    PermanentError,
    QuoteRequest,
    Receipt,
)
from providers.http import NO_WAIT
from tests.providers.conftest import RECEIVER, Recorder, RecordingClock, load, make_order, reply

TOKEN, SECRET = "tz-token-123", "tz-secret-456"


def provider(rec: Recorder, clock: RecordingClock | None = None) -> tronzap.TronZapProvider:
    return tronzap.TronZapProvider(
        "tz",
        api_key=SecretStr(TOKEN),
        api_secret=SecretStr(SECRET),
        clock=clock or RecordingClock(),
        transport=rec.transport,
        retry=NO_WAIT,
    )


def services() -> Any:
    return reply(200, load("tronzap", "services.response.json"))


@pytest.mark.parametrize("vector", load("tronzap", "signing_vectors.json")["vectors"])
def test_signature_matches_reference_vectors(vector: dict[str, str]) -> None:
    assert tronzap.sign(vector["body"].encode(), vector["secret"]) == vector["signature"]


async def test_every_call_is_a_signed_post_of_the_bytes_sent() -> None:
    rec = Recorder(services(), reply(200, load("tronzap", "transaction.response.json")))
    p = provider(rec)
    await p.place(make_order(client_order_id="order-42"))
    for request in rec.requests:
        assert request.method == "POST"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        expected = hashlib.sha256(request.content + SECRET.encode()).hexdigest()
        assert request.headers["x-signature"] == expected
    assert rec.requests[0].url.path == "/v1/services"
    assert rec.requests[0].content == b"{}"


async def test_create_body_carries_external_id_and_both_amount_fields() -> None:
    rec = Recorder(services(), reply(200, load("tronzap", "transaction.response.json")))
    receipt = await provider(rec).place(make_order(client_order_id="order-42", activate=True))
    sent = json.loads(rec.requests[1].content)
    pinned = load("tronzap", "create_transaction.request.json")
    assert sent["external_id"] == "order-42" and sent["service"] == "energy"
    assert sent["params"]["amounts"] == pinned["params"]["amounts"]
    assert sent["params"]["energy_amount"] == 65_000  # for a server that reads the old name
    assert sent["params"]["duration"] == 1 and sent["params"]["activate_address"] is True
    assert set(pinned["params"]) <= set(sent["params"])
    assert receipt.provider_order_id == "tx_8d1c3b2a"
    assert receipt.cost_sun == 5_815_000


async def test_the_services_list_sets_what_is_sold() -> None:
    rows = load("tronzap", "services.response.json")
    rows["result"]["energy"] = [
        {"duration": 1, "min_amount": 80000, "max_amount": 3000000, "price": 0.05},
        {"duration": 24, "min_energy": 90000, "max_energy": 2000000, "price": 0.09},
    ]
    rec = Recorder(reply(200, rows), reply(200, load("tronzap", "calculate.response.json")))
    p = provider(rec)
    assert p.capabilities.durations == (3600,)  # the documented fallback until read
    await p.quote(QuoteRequest(receiver=RECEIVER, energy=100_000, duration=86_400))
    caps = p.capabilities
    assert caps.durations == (3600, 86_400) and caps.min_amount == 90_000
    assert caps.max_amount == 2_000_000 and caps.lookup_by_client_id
    assert tronzap.TronZapProvider.capabilities.min_amount == 60_000  # the class is unchanged
    with pytest.raises(PermanentError) as info:  # below the listed minimum: never sent
        await p.place(make_order(energy=70_000))
    assert info.value.reason is ErrorReason.INVALID_REQUEST
    assert [r.url.path for r in rec.requests] == ["/v1/services", "/v1/calculate"]


async def test_the_services_list_is_read_again_after_an_hour() -> None:
    clock = RecordingClock()
    calc = reply(200, load("tronzap", "calculate.response.json"))
    rec = Recorder(services(), calc, calc, services(), calc)
    p = provider(rec, clock)
    request = QuoteRequest(receiver=RECEIVER, energy=65_000, duration=3600)
    await p.quote(request)
    await p.quote(request)
    clock.t += tronzap.SERVICES_TTL + 1
    await p.quote(request)
    paths = [r.url.path for r in rec.requests]
    assert paths.count("/v1/services") == 2


async def test_quote_is_the_calculated_total() -> None:
    rec = Recorder(services(), reply(200, load("tronzap", "calculate.response.json")))
    quote = await provider(rec).quote(QuoteRequest(receiver=RECEIVER, energy=65_000, duration=3600))
    assert quote.total_sun == 5_466_500
    assert json.loads(rec.requests[1].content) == {
        "address": RECEIVER,
        "amount": 65_000,
        "duration": 1,
    }


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("new", OrderState.PENDING),
        ("pending", OrderState.DELEGATING),
        ("success", OrderState.DELEGATED),
        ("failed", OrderState.FAILED),
        ("refunded", OrderState.PENDING),  # undocumented: in progress, never an outcome
    ],
)
async def test_statuses(status: str, state: OrderState) -> None:
    body = load("tronzap", "transaction.response.json")
    body["result"]["status"] = status
    rec = Recorder(reply(200, body))
    receipt = Receipt(
        provider="tz",
        client_order_id="order-42",
        provider_order_id="tx_8d1c3b2a",
        receiver=RECEIVER,
        energy=65_000,
        duration=3600,
    )
    got = await provider(rec).status(receipt)
    assert got.state is state
    assert json.loads(rec.requests[0].content) == {"id": "tx_8d1c3b2a"}
    assert got.cost_sun == 5_815_000  # a failed one still books what it charged
    if state is OrderState.DELEGATED:
        assert got.delegated_energy == 65_000 and got.txids


async def test_lookup_finds_the_order_by_external_id() -> None:
    rec = Recorder(reply(200, load("tronzap", "transaction.response.json")))
    receipt = await provider(rec).lookup("order-42")
    assert receipt is not None and receipt.provider_order_id == "tx_8d1c3b2a"
    assert receipt.receiver == RECEIVER and receipt.energy == 65_000 and receipt.duration == 3600
    assert json.loads(rec.requests[0].content) == {"external_id": "order-42"}


async def test_lookup_of_an_unknown_id_is_none() -> None:
    rec = Recorder(reply(200, load("tronzap", "error_not_found.response.json")))
    assert await provider(rec).lookup("order-404") is None


async def test_lookup_answered_with_another_order_proves_nothing() -> None:
    rec = Recorder(reply(200, load("tronzap", "transaction.response.json")))
    with pytest.raises(Exception) as info:
        await provider(rec).lookup("order-43")
    assert not isinstance(info.value, PermanentError)  # never "no such order"


async def test_a_create_is_never_retried() -> None:
    rec = Recorder(services(), reply(502, None), reply(200, {}))
    p = provider(rec)
    with pytest.raises(AmbiguousError):
        await p.place(make_order())
    assert [r.url.path for r in rec.requests] == ["/v1/services", "/v1/transaction/new"]


async def test_balance_is_trx_text_rounded_down() -> None:
    rec = Recorder(reply(200, load("tronzap", "balance.response.json")))
    assert await provider(rec).balance() == 12_345_678


def test_the_documented_codes_are_mapped() -> None:
    codes = {int(c) for c in load("tronzap", "error_codes.json")} - {0}
    assert codes == set(tronzap.ERRORS)


async def test_a_code_as_text_is_read() -> None:
    rec = Recorder(reply(200, {"code": "6", "key": "insufficient_funds", "error": "x"}))
    with pytest.raises(PermanentError) as info:
        await provider(rec).balance()
    assert info.value.reason is ErrorReason.BALANCE


def test_auth_repr_hides_the_secrets() -> None:
    auth = tronzap.TronZapAuth(SecretStr(TOKEN), SecretStr(SECRET))
    request = httpx.Request("POST", "http://x/v1/balance", content=b"{}")
    signed = next(auth.auth_flow(request))
    assert TOKEN not in repr(auth) and SECRET not in repr(auth)
    assert signed.headers["x-signature"] == tronzap.sign(b"{}", SECRET)
