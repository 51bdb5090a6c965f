"""feee.io adapter: duration encodings, build/parse on the doc payloads, statuses, errors."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr

from providers import feee
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

KEY = "feee-key-123456"
DAY = 86_400


def provider(rec: Recorder, clock: RecordingClock) -> feee.FeeeProvider:
    return feee.FeeeProvider(
        "fe", api_key=SecretStr(KEY), clock=clock, transport=rec.transport, retry=NO_WAIT
    )


@pytest.mark.parametrize(
    ("seconds", "path", "fields"),
    [
        (300, "/v3/order/create", {}),
        (600, "/v2/order/submit", {"rent_duration": 10, "rent_time_unit": "m"}),
        (3600, "/v2/order/submit", {"rent_duration": 1, "rent_time_unit": "h"}),
        (3 * 3600, "/v2/order/submit", {"rent_duration": 3, "rent_time_unit": "h"}),
        (DAY, "/v2/order/submit", {"rent_duration": 1, "rent_time_unit": "d"}),
        (30 * DAY, "/v2/order/submit", {"rent_duration": 30, "rent_time_unit": "d"}),
    ],
)
def test_duration_encodings(seconds: int, path: str, fields: dict[str, Any]) -> None:
    got_path, body = feee._body(make_order(duration=seconds))
    assert got_path == path
    assert body["resource_type"] == 1 and body["receive_address"] == RECEIVER
    for key, value in fields.items():
        assert body[key] == value
    if path.startswith("/v3"):
        assert set(body) == set(load("feee", "create_v3.request.json"))
    else:
        assert set(body) == set(load("feee", "submit_order.request.json"))
        assert body["rent_time_second"] == 0  # the unit form decides


def test_only_documented_durations_are_sold() -> None:
    caps = feee.FeeeProvider.capabilities
    assert caps.durations is not None and caps.durations[:4] == (300, 600, 3600, 10_800)
    assert not caps.accepts_duration(7200) and not caps.accepts_duration(31 * DAY)
    assert not caps.idempotency_key and not caps.lookup_by_client_id
    with pytest.raises(ValueError):
        feee._body(make_order(duration=7200))


async def test_create_sends_the_key_and_json(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("feee", "order.response.json")))
    receipt = await provider(rec, clock).place(make_order(duration=DAY, energy=32_000))
    sent = rec.requests[0]
    assert sent.method == "POST" and sent.url.path == "/open/v2/order/submit"
    assert sent.headers["key"] == KEY and "energyctl" in sent.headers["user-agent"]
    assert json.loads(sent.content) == load("feee", "submit_order.request.json")
    assert receipt.provider_order_id == "2024091012345678901234"
    assert receipt.cost_sun == 4_400_000  # 4.4 TRX, through Decimal


def _order(**fields: Any) -> feee.FeeeOrder:
    data = load("feee", "order_query.response.json")["data"] | fields
    return feee._parse_order(data)


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({"status": 4, "business_status": 1, "frozen_resource_value": 0}, OrderState.PENDING),
        ({"status": 5, "business_status": 1, "frozen_resource_value": 0}, OrderState.DELEGATING),
        ({"status": 15, "frozen_resource_value": 16_000}, OrderState.DELEGATING),
        ({"status": 6, "business_status": 2}, OrderState.DELEGATED),
        ({"status": 9, "business_status": 3}, OrderState.DELEGATED),
        ({"status": 9, "frozen_resource_value": 16_000}, OrderState.PARTIAL),
        ({"status": 6, "frozen_resource_value": 16_000}, OrderState.DELEGATING),
        ({"status": 2, "frozen_resource_value": 0, "frozen_tx_id": ""}, OrderState.FAILED),
        ({"status": 7, "frozen_resource_value": 0, "frozen_tx_id": ""}, OrderState.PENDING),
        ({"status": 13, "frozen_resource_value": 0, "frozen_tx_id": ""}, OrderState.PENDING),
        ({"status": 14, "business_status": 4, "refund_amount": 4.4, "frozen_resource_value": 0},
         OrderState.REFUNDED),
        ({"status": 12, "business_status": 4, "refund_amount": 4.4, "frozen_resource_value": 0},
         OrderState.REFUNDED),
        ({"status": 16, "business_status": 4, "refund_amount": 1, "frozen_resource_value": 0},
         OrderState.REFUNDED),
        ({"status": 99, "business_status": 1, "frozen_resource_value": 0, "frozen_tx_id": ""},
         OrderState.PENDING),
    ],
)  # fmt: skip
def test_status_mapping(fields: dict[str, Any], state: OrderState) -> None:
    assert feee._order_state(_order(**fields)) is state


def test_split_orders_collect_the_children_txids() -> None:
    child = {"frozen_tx_id": "c" * 64}
    order = _order(is_split=1, frozen_tx_id="", sub_order=[child, {"frozen_tx_id": "d" * 64}])
    assert order.txids == ("c" * 64, "d" * 64)


async def test_status_of_the_query_payload(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("feee", "order_query.response.json")))
    receipt = Receipt(
        provider="fe",
        client_order_id="c",
        provider_order_id="2024091012345678901234",
        receiver=RECEIVER,
        energy=32_000,
        duration=DAY,
    )
    status = await provider(rec, clock).status(receipt)
    assert status.state is OrderState.DELEGATED and status.delegated_energy == 32_000
    assert status.cost_sun == 4_400_000 and len(status.txids) == 1
    sent = rec.requests[0]
    assert sent.url.path == "/open/v2/order/query"
    assert dict(parse_qsl(sent.url.query.decode())) == {"order_no": "2024091012345678901234"}


async def test_quote_v2_and_v3_and_balance(clock: RecordingClock) -> None:
    price = load("feee", "price.response.json")
    rec = Recorder(
        reply(200, price), reply(200, price), reply(200, load("feee", "api_query.response.json"))
    )
    p = provider(rec, clock)
    day = await p.quote(QuoteRequest(receiver=RECEIVER, energy=32_000, duration=DAY))
    assert day.total_sun == 4_400_000  # 32,000 x 120 sun + 0.56 TRX service
    await p.quote(QuoteRequest(receiver=RECEIVER, energy=65_000, duration=300))
    assert await p.balance() == 123_456_789
    first, second = (dict(parse_qsl(r.url.query.decode())) for r in rec.requests[:2])
    assert rec.requests[0].url.path == "/open/v2/order/price"
    assert first == {"resource_value": "32000", "rent_duration": "1", "rent_time_unit": "d"}
    assert rec.requests[1].url.path == "/open/v3/order/price"
    assert second == {"resource_value": "65000"}
    assert rec.requests[2].url.path == "/open/v2/api/query"


@pytest.mark.parametrize("status", [200, 400])
@pytest.mark.parametrize(
    ("msg", "reason", "refusal"),
    [
        ("insufficient balance", ErrorReason.BALANCE, True),
        ("receive_address is not a valid address", ErrorReason.RECEIVER, True),
        ("resource_value must be at least 32000", ErrorReason.INVALID_REQUEST, True),
        ("invalid key", ErrorReason.AUTH, True),
        ("order does not exist", ErrorReason.NOT_FOUND, True),
        ("system busy", ErrorReason.UNKNOWN, False),
    ],
)
async def test_errors_by_their_words(
    clock: RecordingClock, status: int, msg: str, reason: ErrorReason, refusal: bool
) -> None:
    body = {"code": 1, "msg": msg, "request_id": "r", "data": None}
    rec = Recorder(reply(status, body))
    cls = PermanentError if refusal else AmbiguousError
    with pytest.raises(cls) as info:
        await provider(rec, clock).place(make_order())
    assert info.value.reason is reason  # type: ignore[attr-defined]
    assert len(rec.requests) == 1


async def test_a_create_is_never_retried(clock: RecordingClock) -> None:
    for failure in (fail(httpx.ReadTimeout), reply(502, None)):
        rec = Recorder(failure, reply(200, load("feee", "order.response.json")))
        with pytest.raises(AmbiguousError):
            await provider(rec, clock).place(make_order())
        assert len(rec.requests) == 1


async def test_too_small_or_unsold_is_refused_before_sending(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {}))
    for order in (make_order(energy=31_999), make_order(duration=7200)):
        with pytest.raises(PermanentError):
            await provider(rec, clock).place(order)
    assert rec.requests == []


async def test_the_key_stays_out_of_repr_and_errors(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {"code": 1, "msg": f"invalid key {KEY}", "data": None}))
    p = provider(rec, clock)
    with pytest.raises(PermanentError) as info:
        await p.balance()
    assert info.value.reason is ErrorReason.AUTH
    for text in (repr(p), repr(p._api.client.auth)):
        assert KEY not in text
