"""Mefree adapter: signing vectors, build/parse on the doc payloads, errors, retries."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr

from providers import mefree
from providers.base import (
    ErrorReason,
    OrderState,
    PermanentError,
    QuoteRequest,
    Receipt,
    TemporaryError,
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

KEY, SECRET = "mf-key-123456", "mf-secret-abcdef"


def provider(rec: Recorder, clock: RecordingClock) -> mefree.MefreeProvider:
    return mefree.MefreeProvider(
        "mf",
        api_key=SecretStr(KEY),
        api_secret=SecretStr(SECRET),
        clock=clock,
        transport=rec.transport,
        retry=NO_WAIT,
    )


@pytest.mark.parametrize("vector", load("mefree", "signing_vectors.json")["vectors"])
def test_signature_matches_reference_vectors(vector: dict[str, str]) -> None:
    pinned = load("mefree", "signing_vectors.json")
    got = mefree.sign(pinned["secret"], pinned["timestamp"], vector["method"], vector["path"])
    assert got == vector["sign"]


def test_timestamp_is_utc_with_milliseconds() -> None:
    epoch = dt.datetime(2020, 12, 8, 9, 8, 57, 715000, tzinfo=dt.UTC).timestamp()
    assert mefree.format_timestamp(epoch) == "2020-12-08T09:08:57.715Z"
    assert mefree.format_timestamp(0.0) == "1970-01-01T00:00:00.000Z"


async def test_create_signs_the_path_and_query_as_sent(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("mefree", "order_object.response.json")))
    receipt = await provider(rec, clock).place(make_order(duration=86400))
    sent = rec.requests[0]
    assert sent.method == "POST" and sent.content == b""
    path = sent.url.raw_path.decode()
    ts = sent.headers["MF-ACCESS-TIMESTAMP"]
    assert ts == mefree.format_timestamp(clock.now())
    assert sent.headers["MF-ACCESS-KEY"] == KEY
    assert sent.headers["MF-ACCESS-SIGN"] == mefree.sign(SECRET, ts, "POST", path)
    assert dict(parse_qsl(sent.url.query.decode())) == {
        "quantity": "65000",
        "target_address": RECEIVER,
        "period": "2",
        "client_order_id": "ord-0001",
    }
    assert receipt.provider_order_id == "8d3f2a4e-0c1b-4e8a-9f7d-6b5c4a3e2d1f"
    assert receipt.cost_sun == 3_000_000


@pytest.mark.parametrize(
    ("seconds", "period"), [(3600, 1), (86400, 2), (3 * 86400, 3), (30 * 86400, 30)]
)
def test_periods(seconds: int, period: int) -> None:
    assert mefree._build_order_params(make_order(duration=seconds))["period"] == period


def test_fast_charge_and_odd_durations_are_not_offered() -> None:
    assert 0 not in mefree.PERIODS.values()
    assert not mefree.MefreeProvider.capabilities.accepts_duration(7200)
    with pytest.raises(ValueError):
        mefree._build_order_params(make_order(duration=7200))


def test_doc_create_response_parses_bare_and_enveloped() -> None:
    bare = mefree._parse_order(
        mefree._envelope_data("mf", load("mefree", "create_order.response.json"))
    )
    assert (bare.pay_hash, bare.status, bare.confirm_status) == (
        "abcd1234",
        "DELEGATE_SUCCESS",
        "UNCONFIRMED",
    )
    wrapped = mefree._envelope_data("mf", load("mefree", "order_object.response.json"))
    assert mefree._parse_order(wrapped).energy == 32000


@pytest.mark.parametrize(
    ("status", "confirm", "state"),
    [
        ("TRANSFER_SUCCESS", "UNCONFIRMED", OrderState.PENDING),
        ("DELEGATE_SUCCESS", "UNCONFIRMED", OrderState.DELEGATING),
        ("DELEGATE_SUCCESS", "DELEGATION_CONFIRMED", OrderState.DELEGATED),
        ("SOMETHING_NEW", None, OrderState.PENDING),
        ("DELEGATE_FAILED", "UNCONFIRMED", OrderState.PENDING),
        (None, None, OrderState.PENDING),
    ],
)
def test_status_mapping_never_guesses_success(
    status: str | None, confirm: str | None, state: OrderState
) -> None:
    assert mefree._order_state(status, confirm) is state


async def test_status_of_doc_query_is_delegated(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("mefree", "order_query.response.json")))
    receipt = Receipt(
        provider="mf",
        client_order_id="c",
        provider_order_id="abcd1234",
        receiver=RECEIVER,
        energy=65000,
        duration=3600,
    )
    status = await provider(rec, clock).status(receipt)
    assert status.state is OrderState.DELEGATED and status.delegated_energy == 65000
    assert rec.requests[0].url.path == "/api/order/abcd1234"


def test_quote_formula_from_config() -> None:
    config = mefree._parse_config(
        mefree._envelope_data("mf", load("mefree", "config.response.json"))
    )
    assert config.balance_sun == 100_000_000
    assert mefree._quote_total(config, 65000, 3600) == 90 * 65000
    assert mefree._quote_total(config, 65000, 86400) == 100 * 65000
    assert mefree._quote_total(config, 65000, 3 * 86400) == 80 * 65000 * 3


async def test_quote_and_balance_read_config(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("mefree", "config.response.json")))
    p = provider(rec, clock)
    quote = await p.quote(QuoteRequest(receiver=RECEIVER, energy=65000, duration=3600))
    assert quote.total_sun == 5_850_000
    assert await p.balance() == 100_000_000
    assert all(r.url.path == "/api/config" for r in rec.requests)


@pytest.mark.parametrize(
    ("status", "cls", "reason"),
    [
        (400, PermanentError, ErrorReason.INVALID_REQUEST),
        (401, PermanentError, ErrorReason.AUTH),
        (429, TemporaryError, ErrorReason.RATE_LIMITED),
    ],
)
async def test_documented_http_errors(
    clock: RecordingClock, status: int, cls: type[Exception], reason: ErrorReason
) -> None:
    rec = Recorder(reply(status, {"code": status, "msg": "refused"}))
    with pytest.raises(cls) as info:
        await provider(rec, clock).place(make_order())
    assert info.value.reason is reason  # type: ignore[attr-defined]


async def test_nonzero_code_is_a_definite_refusal(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {"code": 1, "msg": "insufficient balance", "data": None}))
    with pytest.raises(PermanentError) as info:
        await provider(rec, clock).place(make_order())
    assert info.value.reason is ErrorReason.BALANCE and info.value.vendor_code == "1"


async def test_create_is_retried_with_the_same_client_order_id(clock: RecordingClock) -> None:
    created = reply(200, load("mefree", "order_object.response.json"))
    rec = Recorder(fail(httpx.ReadTimeout), created)
    await provider(rec, clock).place(make_order())
    assert len(rec.requests) == 2
    ids = [dict(parse_qsl(r.url.query.decode()))["client_order_id"] for r in rec.requests]
    assert ids == ["ord-0001", "ord-0001"]


async def test_too_small_amount_is_refused_before_sending(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {}))
    with pytest.raises(PermanentError):
        await provider(rec, clock).place(make_order(energy=64_999))
    assert rec.requests == []


async def test_secrets_stay_out_of_repr_and_errors(clock: RecordingClock) -> None:
    rec = Recorder(reply(401, {"code": 401, "msg": "bad sign"}))
    p = provider(rec, clock)
    with pytest.raises(PermanentError) as info:
        await p.balance()
    for text in (repr(p), str(info.value), repr(info.value), repr(p._api.client.auth)):
        assert KEY not in text and SECRET not in text
