"""CatFee adapter: signing vectors, build/parse on the doc payloads, statuses, errors, retries."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr

from providers import catfee
from providers.base import (
    AmbiguousError,
    ErrorReason,
    OrderState,
    PermanentError,
    QuoteRequest,
    Receipt,
)
from providers.http import NO_WAIT
from tests.providers.conftest import (
    RECEIVER,
    Recorder,
    RecordingClock,
    fail,
    load,
    make_order,
    reply,
)

KEY, SECRET = "cf-key-123456", "cf-secret-abcdef"
VECTORS = load("catfee", "signing_vectors.json")


def provider(rec: Recorder, clock: RecordingClock, **kw: object) -> catfee.CatFeeProvider:
    return catfee.CatFeeProvider(
        "cf",
        api_key=SecretStr(KEY),
        api_secret=SecretStr(SECRET),
        clock=clock,
        transport=rec.transport,
        retry=NO_WAIT,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["path"][:30])
def test_signature_matches_reference_vectors(vector: dict[str, str]) -> None:
    got = catfee.sign(VECTORS["secret"], VECTORS["timestamp"], vector["method"], vector["path"])
    assert got == vector["sign"]


def test_the_query_is_part_of_what_is_signed() -> None:
    signed = VECTORS["vectors"][0]
    left_out = VECTORS["query_left_out"]
    assert (
        catfee.sign(VECTORS["secret"], VECTORS["timestamp"], "POST", "/v1/order")
        == (left_out["sign"])
    )
    assert left_out["sign"] != signed["sign"]


async def test_create_signs_the_path_and_query_as_sent(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("catfee", "create_order.response.json")))
    receipt = await provider(rec, clock).place(make_order())
    sent = rec.requests[0]
    assert sent.method == "POST" and sent.content == b""
    assert sent.url.path == "/v1/order"
    ts = sent.headers["CF-ACCESS-TIMESTAMP"]
    assert ts == catfee.format_timestamp(clock.now())
    assert sent.headers["CF-ACCESS-KEY"] == KEY
    path = sent.url.raw_path.decode()
    assert "?" in path and sent.headers["CF-ACCESS-SIGN"] == catfee.sign(SECRET, ts, "POST", path)
    assert dict(parse_qsl(sent.url.query.decode())) == {
        "quantity": "65000",
        "receiver": RECEIVER,
        "duration": "1h",
        "client_order_id": "ord-0001",
        "activate": "false",
    }
    assert receipt.provider_order_id == "2671ba7b-a323-49e6-b4a4-19adca27ebbf"
    assert receipt.cost_sun == 1_105_000  # 17 sun per energy for the hour


def test_the_request_payload_names_the_parameters_we_send() -> None:
    pinned = load("catfee", "create_order.request.json")
    built = catfee._build_order_params(make_order(activate=True))
    assert set(pinned["query"]) < set(built) and built["activate"] == "true"
    assert built["duration"] == pinned["query"]["duration"]


def test_only_the_documented_hour_is_sold() -> None:
    caps = catfee.CatFeeProvider.capabilities
    assert caps.durations == (3600,) and caps.min_amount == 65_000 and caps.idempotency_key
    with pytest.raises(ValueError):
        catfee._build_order_params(make_order(duration=86400))


@pytest.mark.parametrize(
    ("status", "confirm", "state"),
    [
        ("PAYMENT_SUCCESS", "UNCONFIRMED", OrderState.PENDING),
        ("DELEGATE_SUCCESS", "UNCONFIRMED", OrderState.DELEGATING),
        ("DELEGATE_SUCCESS", "DELEGATION_CONFIRMED", OrderState.DELEGATED),
        ("DELEGATE_SUCCESS", "RECLAIM_CONFIRMED", OrderState.DELEGATED),
        ("DELEGATE_FAIL", "DELEGATION_CONFIRMED_FAIL", OrderState.FAILED),
        ("INSUFFICIENT_BALANCE", "UNCONFIRMED", OrderState.FAILED),
        ("DELEGATE_FAIL", "UNCONFIRMED", OrderState.PENDING),
        ("UNKNOWN", None, OrderState.PENDING),
        ("SOMETHING_NEW", None, OrderState.PENDING),
        (None, None, OrderState.PENDING),
    ],
)
def test_status_mapping_never_guesses(
    status: str | None, confirm: str | None, state: OrderState
) -> None:
    assert catfee._order_state(status, confirm) is state


async def test_status_of_the_detail_payload(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("catfee", "order_detail.response.json")))
    receipt = Receipt(
        provider="cf",
        client_order_id="c",
        provider_order_id="2671ba7b-a323-49e6-b4a4-19adca27ebbf",
        receiver=RECEIVER,
        energy=65000,
        duration=3600,
    )
    status = await provider(rec, clock).status(receipt)
    assert status.state is OrderState.DELEGATED and status.delegated_energy == 65000
    assert status.cost_sun == 1_105_000 and len(status.txids) == 1
    assert rec.requests[0].url.path == "/v1/order/2671ba7b-a323-49e6-b4a4-19adca27ebbf"


async def test_status_of_a_refused_order_is_failed(clock: RecordingClock) -> None:
    body = load("catfee", "order_detail.response.json")
    body["data"] |= {"status": "INSUFFICIENT_BALANCE", "confirm_status": "UNCONFIRMED"}
    rec = Recorder(reply(200, body))
    receipt = Receipt(
        provider="cf",
        client_order_id="c",
        provider_order_id="x",
        receiver=RECEIVER,
        energy=65000,
        duration=3600,
    )
    assert (await provider(rec, clock).status(receipt)).state is OrderState.FAILED


async def test_balance_and_quote(clock: RecordingClock) -> None:
    estimate = {"code": 0, "data": {"quantity": 65000, "duration": 60, "pay_amount_sun": 2080000}}
    rec = Recorder(reply(200, load("catfee", "account.response.json")), reply(200, estimate))
    p = provider(rec, clock)
    assert await p.balance() == 84_595_000
    quote = await p.quote(QuoteRequest(receiver=RECEIVER, energy=65000, duration=3600))
    assert quote.total_sun == 2_080_000
    sent = rec.requests[1]
    assert sent.url.path == "/v1/estimate"
    assert dict(parse_qsl(sent.url.query.decode())) == {"quantity": "65000", "duration": "1h"}


async def test_an_estimate_of_another_shape_is_a_protocol_error(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {"code": 0, "data": {"price": 17}}))
    with pytest.raises(Exception) as info:
        await provider(rec, clock).quote(
            QuoteRequest(receiver=RECEIVER, energy=65000, duration=3600)
        )
    assert getattr(info.value, "reason", None) is ErrorReason.PROTOCOL


def test_nile_is_selectable() -> None:
    p = catfee.CatFeeProvider(
        "cf", api_key=SecretStr(KEY), api_secret=SecretStr(SECRET), network="nile"
    )
    assert str(p._api.client.base_url).startswith("https://nile.catfee.io")
    spec = catfee.CatFeeSpec.model_validate(
        {"type": "catfee", "apiKey": {"fromEnv": "K"}, "apiSecret": {"fromEnv": "S"},
         "network": "nile"}
    )  # fmt: skip
    assert spec.network == "nile"


async def test_create_is_retried_with_the_same_client_order_id(clock: RecordingClock) -> None:
    created = reply(200, load("catfee", "create_order.response.json"))
    rec = Recorder(fail(httpx.ReadTimeout), reply(500, None), created)
    receipt = await provider(rec, clock).place(make_order())
    assert len(rec.requests) == 3 and receipt.cost_sun == 1_105_000
    ids = [dict(parse_qsl(r.url.query.decode()))["client_order_id"] for r in rec.requests]
    assert ids == ["ord-0001"] * 3


async def test_a_refusal_after_its_own_retry_is_ambiguous(clock: RecordingClock) -> None:
    refused = {"code": 1, "msg": "insufficient balance", "sub_code": "INSUFFICIENT_BALANCE"}
    rec = Recorder(reply(502, None), reply(200, refused))
    with pytest.raises(AmbiguousError) as info:
        await provider(rec, clock).place(make_order())
    assert info.value.reason is ErrorReason.BALANCE and len(rec.requests) == 2


async def test_too_small_or_too_long_is_refused_before_sending(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {}))
    for order in (make_order(energy=64_999), make_order(duration=7200)):
        with pytest.raises(PermanentError):
            await provider(rec, clock).place(order)
    assert rec.requests == []


async def test_secrets_stay_out_of_repr_and_errors(clock: RecordingClock) -> None:
    rec = Recorder(reply(401, {"code": 401, "msg": "bad sign"}))
    p = provider(rec, clock)
    with pytest.raises(PermanentError) as info:
        await p.balance()
    assert info.value.reason is ErrorReason.AUTH
    for text in (repr(p), str(info.value), repr(info.value), repr(p._api.client.auth)):
        assert KEY not in text and SECRET not in text
