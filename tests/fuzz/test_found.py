"""What the fuzzers found, pinned as plain regression tests (no hypothesis needed).

Each case is the smallest answer that made an adapter let something other than a
`ProviderError` escape, or return a receipt or quote the engine cannot use:

- a JSON integer past Python's int-from-text digit limit raised a bare ValueError from
  `json.loads` (providers/http.py `_decode` caught only JSONDecodeError);
- a Retry-After of non-ASCII digits ("²") passed `str.isdigit()` and `float()` raised;
  a Retry-After of 400 digits gave an infinite delay;
- a negative price or delivered amount reached the pydantic models (`Quote.total_sun`,
  `OrderStatus.delegated_energy` are >= 0) and raised ValidationError;
- an empty order id on a create gave a `Receipt` that could never be looked up again;
- a negative cost on a create would have been settled into the spend ledger.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest

from providers.base import AmbiguousError, ErrorReason, ProviderError, TemporaryError
from providers.http import retry_after_seconds
from tests.fuzz.test_provider_responses_fuzz import _adapter, _call
from tests.providers.conftest import load


def _run(vendor: str, operation: str, status: int, content: bytes, **headers: str) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers=headers)

    return asyncio.run(_call(_adapter(vendor, httpx.MockTransport(handle)), operation))


def _json(vendor: str, operation: str, body: Any) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body)

    return asyncio.run(_call(_adapter(vendor, httpx.MockTransport(handle)), operation))


BIG = b'{"code": 0, "errno": 0, "balance": ' + b"9" * 5_000 + b"}"


@pytest.mark.parametrize("vendor", ["itrx", "mefree", "eopen", "tronsave"])
def test_an_integer_past_the_digit_limit_is_an_unreadable_answer(vendor: str) -> None:
    with pytest.raises(TemporaryError) as read:
        _run(vendor, "balance", 200, BIG)
    assert read.value.reason is ErrorReason.PROTOCOL
    with pytest.raises(AmbiguousError):  # on a create: an order may exist
        _run(vendor, "place", 200, BIG)


@pytest.mark.parametrize("value", ["²", "١٢", "9" * 400, "Fri, 31 Dec 9999 23:59:59 +9999"])
def test_retry_after_that_is_not_a_finite_number_is_ignored(value: str) -> None:
    delay = retry_after_seconds(value, 0.0)
    assert delay is None or (math.isfinite(delay) and delay >= 0)


def test_a_429_with_a_non_ascii_retry_after_is_rate_limited() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers=[(b"retry-after", "²".encode())])

    with pytest.raises(TemporaryError) as limited:
        asyncio.run(_call(_adapter("itrx", httpx.MockTransport(handle)), "balance"))
    assert limited.value.reason is ErrorReason.RATE_LIMITED and limited.value.delay is None


NEGATIVE_QUOTES = {
    "itrx": {"errno": 0, "total_price": -10_192_001},
    "mefree": {**load("mefree", "config.response.json")},
    "eopen": {"code": 0, "data": {"sun": "-1", "trxPrice": "-1"}},
    "tronsave": {"error": False, "data": {"estimateTrx": -1}},
}
NEGATIVE_QUOTES["mefree"]["data"] = {**NEGATIVE_QUOTES["mefree"]["data"], "hour_price_sun": -1}


@pytest.mark.parametrize("vendor", sorted(NEGATIVE_QUOTES))
def test_a_negative_price_is_a_protocol_error(vendor: str) -> None:
    with pytest.raises(TemporaryError) as error:
        _json(vendor, "quote", NEGATIVE_QUOTES[vendor])
    assert error.value.reason is ErrorReason.PROTOCOL


EMPTY_IDS = {
    "itrx": {"errno": 0, "serial": "", "amount": 1},
    "mefree": {"code": 0, "data": {"pay_hash": " "}},
    "eopen": {"code": 0, "data": {"id": ""}},
    "tronsave": {"error": False, "data": {"orderId": ""}},
}


@pytest.mark.parametrize("vendor", sorted(EMPTY_IDS))
def test_a_create_without_a_usable_order_id_is_ambiguous(vendor: str) -> None:
    with pytest.raises(AmbiguousError) as error:
        _json(vendor, "place", EMPTY_IDS[vendor])
    assert error.value.reason is ErrorReason.PROTOCOL
    too_long = {k: v for k, v in EMPTY_IDS[vendor].items()}
    with pytest.raises(AmbiguousError):
        _json(vendor, "place", _with_id(vendor, too_long, "x" * 10_000))


def _with_id(vendor: str, body: dict[str, Any], value: str) -> dict[str, Any]:
    key = {"itrx": "serial", "mefree": "pay_hash", "eopen": "id", "tronsave": "orderId"}[vendor]
    if vendor == "itrx":
        return {**body, key: value}
    return {**body, "data": {**body["data"], key: value}}


def test_a_negative_cost_on_a_create_is_ambiguous() -> None:
    with pytest.raises(AmbiguousError):
        _json("itrx", "place", {"errno": 0, "serial": "s-1", "amount": -3_800_000})
    with pytest.raises(AmbiguousError):
        _json("eopen", "place", {"code": 0, "data": {"id": "e-1", "amount": "-1",
                                                      "currency": "TRX"}})  # fmt: skip


NEGATIVE_DELIVERIES = {
    "mefree": {"code": 0, "data": {"pay_hash": "h", "energy_quantity": -1,
                                   "confirm_status": "DELEGATION_CONFIRMED"}},
    "eopen": {"code": 0, "data": {"orderId": "58b451473d290f92443eabf0322b9907",
                                  "status": "COMPLETED", "rentalCount": -5}},
    "tronsave": {"error": False, "data": {"fulfilledPercent": 100, "resourceAmount": 65_000,
                                          "delegates": [{"amount": -1, "txid": "t"}]}},
}  # fmt: skip


@pytest.mark.parametrize("vendor", sorted(NEGATIVE_DELIVERIES))
def test_a_negative_delivered_amount_is_a_protocol_error(vendor: str) -> None:
    with pytest.raises(ProviderError) as error:
        _json(vendor, "status", NEGATIVE_DELIVERIES[vendor])
    assert isinstance(error.value, TemporaryError)
    assert error.value.reason is ErrorReason.PROTOCOL
