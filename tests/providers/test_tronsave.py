"""TronSave adapter: options, price cap, fill states, every error name, Nile, 15 req/s."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import SecretStr

from engine.core.clock import VirtualClock
from providers import tronsave
from providers.base import (
    AmbiguousError,
    ErrorReason,
    OrderState,
    PermanentError,
    ProviderError,
    QuoteRequest,
    Receipt,
    TemporaryError,
)
from providers.http import NO_WAIT, Clock
from tests.providers.conftest import RECEIVER, Recorder, RecordingClock, load, make_order, reply

KEY = "ts-key-777"
P, T, R = PermanentError, TemporaryError, ErrorReason


def provider(rec: Recorder, clock: Clock, **kw: object) -> tronsave.TronsaveProvider:
    return tronsave.TronsaveProvider(
        "ts",
        api_key=SecretStr(KEY),
        clock=clock,
        transport=rec.transport,
        retry=NO_WAIT,
        **kw,  # type: ignore[arg-type]
    )


def test_order_body_has_every_option() -> None:
    order = make_order(energy=32000, duration=300, max_total_sun=2_880_000, fill_or_nothing=True)
    body = tronsave._build_order_body(order, min_delegate_amount=100000, sponsor="abc")
    pinned = load("tronsave", "create_order.request.json")
    assert set(body) == set(pinned) | {"sponsor"}
    assert set(body["options"]) == set(pinned["options"])
    assert body["options"] == {
        "allowPartialFill": False,
        "onlyCreateWhenFulfilled": True,
        "preventDuplicateIncompleteOrders": True,
        "maxPriceAccepted": 90,  # 2,880,000 / 32,000 for a sub-day order
        "minResourceDelegateRequiredAmount": 100000,
    }


@pytest.mark.parametrize(
    ("total", "energy", "duration", "unit"),
    [
        (6_144_000, 32000, 3 * 86400, 64),
        (6_143_999, 32000, 3 * 86400, 63),
        (2_880_000, 32000, 900, 90),
    ],
)
def test_price_cap_rounds_down(total: int, energy: int, duration: int, unit: int) -> None:
    assert tronsave._max_unit_price(total, energy, duration) == unit


def test_partial_fill_only_when_allowed() -> None:
    body = tronsave._build_order_body(make_order(allow_partial=True))
    assert body["options"]["allowPartialFill"] is True
    assert "maxPriceAccepted" not in body["options"]


async def test_create_is_201_and_sends_apikey(clock: RecordingClock) -> None:
    rec = Recorder(reply(201, load("tronsave", "create_order.response.json")))
    receipt = await provider(rec, clock).place(make_order())
    sent = rec.requests[0]
    assert (sent.url.host, sent.url.path) == ("api.tronsave.io", "/v2/buy-resource")
    assert sent.headers["apikey"] == KEY
    assert json.loads(sent.content)["resourceAmount"] == 65000
    assert receipt.provider_order_id == "6818426a65fa8ea36d119d2c"


async def test_nile_base_url_is_selectable(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("tronsave", "user_info.response.json")))
    assert await provider(rec, clock, network="nile").balance() == 306773887
    assert rec.requests[0].url.host == "api-dev.tronsave.io"


async def test_estimate_is_the_quote(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("tronsave", "estimate.response.json")))
    quote = await provider(rec, clock).quote(
        QuoteRequest(receiver=RECEIVER, energy=65_000, duration=259200)
    )
    assert quote.total_sun == 6144000
    sent = json.loads(rec.requests[0].content)
    assert set(sent) <= set(load("tronsave", "estimate.request.json"))


def test_order_details_doc_example() -> None:
    status = tronsave._parse_order(load("tronsave", "order_details.response.json")["data"])
    assert status.state is OrderState.DELEGATED
    assert status.delegated_energy == 32000 and status.cost_sun == 2880000
    assert status.txids == ("19d3fa76a722d6d6e671e6141eb8057760d38d42b353153a3825f19a7d34326f",)


@pytest.mark.parametrize(
    ("percent", "list_status", "state"),
    [
        (0, None, OrderState.PENDING),
        (1, None, OrderState.DELEGATING),
        (99, "Active", OrderState.DELEGATING),
        (100, None, OrderState.DELEGATED),
        (40, "Completed", OrderState.PARTIAL),
        (0, "Completed", OrderState.FAILED),
    ],
)
def test_fill_states(percent: int, list_status: str | None, state: OrderState) -> None:
    assert tronsave._order_state(percent, list_status) is state


def test_delegated_energy_is_the_sum_of_delegates() -> None:
    data = load("tronsave", "order_details.response.json")["data"] | {
        "fulfilledPercent": 50,
        "delegates": [{"delegator": "T1", "amount": 10000, "txid": "a"}, {"amount": 6000}],
    }
    status = tronsave._parse_order(data)
    assert (status.state, status.delegated_energy, status.txids) == (
        OrderState.DELEGATING,
        16000,
        ("a",),
    )


NAMES = [
    ("MISSING_PARAMS", P, R.INVALID_REQUEST),
    ("INVALID_PARAMS", P, R.INVALID_REQUEST),
    ("MIN_PRICE_INVALID", P, R.PRICE),
    ("INTERNAL_ACCOUNT_NOT_FOUND", P, R.AUTH),
    ("INTERNAL_BALANCE_ACCOUNT_TOO_LOW", P, R.BALANCE),
    ("CANNOT_FULFILLED", T, R.UNFULFILLABLE),
    ("MUST_BE_WAIT_PREVIOUS_ORDER_FILLED", P, R.DUPLICATE),
    ("PRICE_EXCEED_MAX_PRICE_REQUIRED", P, R.PRICE),
    ("SOME_DELEGATE_CANNOT_EXTEND", P, R.INVALID_REQUEST),
    ("API_KEY_REQUIRED", P, R.AUTH),
    ("INVALID_API_KEY", P, R.AUTH),
    ("FORBIDDEN", P, R.AUTH),
]


def test_every_documented_name_is_mapped() -> None:
    assert set(load("tronsave", "error_names.json")) <= set(tronsave.ERRORS)
    assert {n for n, _, _ in NAMES} <= set(tronsave.ERRORS)


@pytest.mark.parametrize(("name", "cls", "reason"), NAMES)
async def test_error_names_on_create(
    clock: RecordingClock, name: str, cls: type[ProviderError], reason: ErrorReason
) -> None:
    status = 401 if name in {"API_KEY_REQUIRED", "INVALID_API_KEY"} else 400
    body = {"error": True, "message": f"TSAS:123 {name} some detail", "data": None}
    rec = Recorder(reply(status, body))
    with pytest.raises(cls) as info:
        await provider(rec, clock).place(make_order())
    assert type(info.value) is cls
    assert (info.value.reason, info.value.vendor_code) == (reason, name)
    assert len(rec.requests) == 1


@pytest.mark.parametrize(
    ("file", "status", "cls", "reason"),
    [
        ("error_api_key_required.response.json", 401, P, R.AUTH),
        ("error_invalid_api_key.response.json", 401, P, R.AUTH),
        ("error_invalid_order_id.response.json", 400, P, R.INVALID_REQUEST),
        ("error_insufficient_balance.response.json", 400, P, R.BALANCE),
        ("error_validation.response.json", 400, P, R.INVALID_REQUEST),
        ("error_route_not_found.response.json", 404, P, R.PROTOCOL),
        ("error_rate_limit.response.json", 429, T, R.RATE_LIMITED),
    ],
)
async def test_doc_error_bodies(
    clock: RecordingClock, file: str, status: int, cls: type[ProviderError], reason: ErrorReason
) -> None:
    rec = Recorder(reply(status, load("tronsave", file)))
    with pytest.raises(cls) as info:
        await provider(rec, clock).balance()
    assert info.value.reason is reason


async def test_2xx_error_envelope_is_mapped_and_missing_envelope_is_ambiguous(
    clock: RecordingClock,
) -> None:
    refused = {"error": True, "message": "TSAS:1 CANNOT_FULFILLED", "data": None}
    with pytest.raises(TemporaryError):
        await provider(Recorder(reply(200, refused)), clock).place(make_order())
    with pytest.raises(AmbiguousError):
        await provider(Recorder(reply(201, {"orderId": "x"})), clock).place(make_order())


async def test_status_path_escapes_the_id(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, load("tronsave", "order_details.response.json")))
    receipt = Receipt(
        provider="ts",
        client_order_id="c",
        provider_order_id="../user-info",
        receiver=RECEIVER,
        energy=32000,
        duration=300,
    )
    await provider(rec, clock).status(receipt)
    assert rec.requests[0].url.raw_path == b"/v2/order/..%2Fuser-info"


async def test_client_side_rate_limit_is_15_per_second() -> None:
    vclock = VirtualClock()
    rec = Recorder(reply(200, load("tronsave", "user_info.response.json")))
    p = provider(rec, vclock)
    tasks = [asyncio.create_task(p.balance()) for _ in range(20)]
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(rec.requests) == 15
    vclock.advance(1.0)
    assert await asyncio.gather(*tasks) == [306773887] * 20
    assert len(rec.requests) == 20


async def test_an_order_filled_between_the_detail_and_the_list_read_is_delegated(
    clock: RecordingClock,
) -> None:
    """The detail view says 0 % filled; by the time the list is read the order has filled
    and is listed Completed. Merging the two reads called a delivered order failed (the
    engine then released its money and would buy again); the adapter reads it again."""
    filled = load("tronsave", "order_details.response.json")
    pending = {**filled, "data": filled["data"] | {"fulfilledPercent": 0, "delegates": []}}
    order_id = filled["data"]["id"]
    listed = {"error": False, "message": "Success", "data": {"data": [{"id": order_id}]}}
    rec = Recorder(reply(200, pending), reply(200, listed), reply(200, filled))
    receipt = Receipt(
        provider="ts", client_order_id="c", provider_order_id=order_id,
        receiver=RECEIVER, energy=32000, duration=300,
    )  # fmt: skip
    status = await provider(rec, clock).status(receipt)
    assert (status.state, status.delegated_energy) == (OrderState.DELEGATED, 32000)
    detail = f"/v2/order/{order_id}"
    assert [r.url.path for r in rec.requests] == [detail, "/v2/orders", detail]
