"""TronSave (api.tronsave.io, API v2 with an API key) adapter.

Facts from https://docs.tronsave.io/developers and the official SDKs:

- Auth [C]: an `apikey` header. Mainnet `https://api.tronsave.io`; Nile testnet
  `https://api-dev.tronsave.io` (`network="nile"`). 15 requests a second [C], enforced
  here by a client-side token bucket shared by every call of one instance.
- Create [C]: `POST /v2/buy-resource` -> HTTP 201 `{orderId}`, with `unitPrice`
  ("MEDIUM" unless told), `options.allowPartialFill`, `onlyCreateWhenFulfilled`,
  `maxPriceAccepted`, `preventDuplicateIncompleteOrders`,
  `minResourceDelegateRequiredAmount`. No idempotency key: never retried after the
  request may have been sent (the duplicate guard only covers *incomplete* orders).
- Price cap [I]: `maxPriceAccepted` is a unit price, read as sun per unit per day with
  `total = price x amount x max(1, days)`. Our cap is a total, so it is converted with
  that formula and rounded down (stricter). The engine also checks the quote.
- Durations [?]: any number of seconds; the API gives no bounds. 300 s is the shortest in
  the docs' examples and the website says orders run up to 30 days: we offer 300 s..30 d.
  No minimum amount is documented [?]: the docs' examples order 32,000, but the official
  SDK (`tronsave` 2.0 on PyPI and npm) refuses 64,000 or less, so 64,001 is used: a plan
  never depends on an order the vendor may refuse.
- `maxPriceAccepted` [?]: "reject if the estimated price is above" it; a server reading
  it as "less than" would refuse a price equal to it. With a numeric `unit_price`, an
  order whose cap (in unit price) is not above that price is refused here, before any
  call: the cap is never sent equal to the expected price.
- Status [C]: `fulfilledPercent` 0 -> PENDING, 1..99 -> DELEGATING, 100 -> DELEGATED; when
  the list view says `Completed` below 100 % the order is PARTIAL (or FAILED at 0 %) [I].
  Delegated energy is the sum of `delegates[].amount`.
- One consistent state: "Completed" is judged on a detail read after the list (see
  `status`). `payoutAmount` (taken from the balance at creation) is reported whatever the
  fill: https://docs.tronsave.io documents refunds only of unused duration and of the
  unmatched part of smart orders, none for an order completed unfilled, so tracking books
  it (never 0 for an order the vendor charged).
- Errors [C]: `{error:true, message:"TSAS:<n> <CODE> [detail]"}`; Fastify validation
  `{statusCode, code:"FST_ERR_VALIDATION"}`; 429 `{"message":"Rate limit reached"}`.

Neighbours: `providers/base.py`, `providers/adapter.py`, `providers/http.py`, `providers/wire.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from policies.vendors import ProviderSettings
from providers.adapter import JSON_CONTENT, HttpProvider, KeyAuth
from providers.base import (
    Capabilities,
    ErrorReason,
    NotFoundShape,
    OrderRequest,
    OrderState,
    OrderStatus,
    PermanentError,
    ProviderError,
    Quote,
    QuoteRequest,
    Receipt,
    TemporaryError,
)
from providers.http import DEFAULT_TIMEOUT, Clock, JsonResponse, RetryPolicy
from providers.wire import (
    PayloadError,
    as_list,
    as_object,
    floor_int,
    get_id,
    get_int,
    non_negative,
    opt_int,
    opt_non_negative,
    opt_str,
)

MAINNET_BASE_URL = "https://api.tronsave.io"
NILE_BASE_URL = "https://api-dev.tronsave.io"
BASE_URLS: Mapping[str, str] = {"mainnet": MAINNET_BASE_URL, "nile": NILE_BASE_URL}
REQUESTS_PER_SECOND = 15
DAY = 86400

P, T = PermanentError, TemporaryError
R = ErrorReason
#: error name -> (error class, reason) for every documented name [C]
ERRORS: Mapping[str, tuple[type[ProviderError], ErrorReason]] = {
    "MISSING_PARAMS": (P, R.INVALID_REQUEST),
    "INVALID_PARAMS": (P, R.INVALID_REQUEST),
    "MIN_PRICE_INVALID": (P, R.PRICE),
    "INTERNAL_ACCOUNT_NOT_FOUND": (P, R.AUTH),
    "INTERNAL_BALANCE_ACCOUNT_TOO_LOW": (P, R.BALANCE),
    "CANNOT_FULFILLED": (T, R.UNFULFILLABLE),
    "MUST_BE_WAIT_PREVIOUS_ORDER_FILLED": (P, R.DUPLICATE),
    "PRICE_EXCEED_MAX_PRICE_REQUIRED": (P, R.PRICE),
    "SOME_DELEGATE_CANNOT_EXTEND": (P, R.INVALID_REQUEST),
    "API_KEY_REQUIRED": (P, R.AUTH),
    "INVALID_API_KEY": (P, R.AUTH),
    "FORBIDDEN": (P, R.AUTH),
    "RATE_LIMIT": (T, R.RATE_LIMITED),
    "FST_ERR_VALIDATION": (P, R.INVALID_REQUEST),
}
_TSAS = re.compile(r"^\s*TSAS:\s*(\S+)\s+([A-Z_]+)\s*(.*)$")


class TronsaveAuth(KeyAuth):
    """The `apikey` header."""

    key_header = "apikey"


# --------------------------------------------------------------------------- pure


def _error_name(status: int, body: Any) -> tuple[str | None, str]:
    """(error name, detail) from any TronSave error body."""
    if not isinstance(body, Mapping):
        return None, ""
    code, message = body.get("code"), body.get("message")
    text = message if isinstance(message, str) else ""
    if isinstance(code, str):  # Fastify: {statusCode, code, error, message}
        return code, text
    if match := _TSAS.match(text):
        return match.group(2), match.group(3)
    if status == 429 or text.lower().startswith("rate limit"):
        return "RATE_LIMIT", text
    if status == 404 and text.startswith("Route "):
        return "ROUTE_NOT_FOUND", text
    return None, text


def _map_error(provider: str, status: int, body: Any) -> ProviderError | None:
    name, detail = _error_name(status, body)
    if name is None:
        return None
    if name == "ROUTE_NOT_FOUND":
        return PermanentError(provider, detail[:200], reason=R.PROTOCOL, vendor_code=name)
    cls, reason = ERRORS.get(name, (PermanentError, R.UNKNOWN))
    text = name + (f": {detail[:200]}" if detail else "")
    # Only the documented names are refusals made before any order [C]; another name
    # proves nothing (ambiguous on a create).
    return cls(provider, text, reason=reason, vendor_code=name, refusal=name in ERRORS)


def _envelope_data(provider: str, status: int, body: Any) -> Any:
    obj = as_object(body)
    if not isinstance(obj.get("error"), bool):
        raise PayloadError("answer has no boolean 'error' field")
    if obj["error"]:
        raise _map_error(provider, status, obj) or PermanentError(
            provider, "error answer without a code", reason=R.UNKNOWN, refusal=False
        )
    return obj.get("data")


def _day_factor(duration: int) -> Decimal:
    return max(Decimal(1), Decimal(duration) / DAY)


def _max_unit_price(max_total_sun: int, energy: int, duration: int) -> int:
    """Our total cap as TronSave's unit price cap (formula [I] in the module docstring)."""
    return floor_int(Decimal(max_total_sun) / (energy * _day_factor(duration)))


def _build_order_body(
    order: OrderRequest,
    *,
    unit_price: str | int = "MEDIUM",
    min_delegate_amount: int | None = None,
    sponsor: str | None = None,
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "allowPartialFill": order.allow_partial and not order.fill_or_nothing,
        "onlyCreateWhenFulfilled": order.fill_or_nothing,
        "preventDuplicateIncompleteOrders": order.prevent_duplicates,
    }
    if order.max_total_sun is not None:
        options["maxPriceAccepted"] = _max_unit_price(
            order.max_total_sun, order.energy, order.duration
        )
    if min_delegate_amount is not None:
        options["minResourceDelegateRequiredAmount"] = min_delegate_amount
    body: dict[str, Any] = {
        "resourceType": "ENERGY",
        "unitPrice": unit_price,
        "resourceAmount": order.energy,
        "receiver": order.receiver,
        "durationSec": order.duration,
        "options": options,
    }
    if sponsor:
        body["sponsor"] = sponsor
    return body


def _encode_body(body: Mapping[str, Any]) -> bytes:
    """Compact JSON, the body of a POST."""
    return json.dumps(body, separators=(",", ":")).encode()


def _build_estimate_body(request: QuoteRequest, unit_price: str | int = "MEDIUM") -> dict[str, Any]:
    return {
        "resourceType": "ENERGY",
        "unitPrice": unit_price,
        "resourceAmount": request.energy,
        "receiver": request.receiver,
        "durationSec": request.duration,
        "options": {"allowPartialFill": True},
    }


def _parse_estimate(data: Any) -> int:
    """`estimateTrx` is in sun despite its name [C]."""
    return non_negative(get_int(as_object(data, "data"), "estimateTrx", text=True), "estimateTrx")


def _parse_create(data: Any) -> str:
    return get_id(as_object(data, "data"), "orderId")


def _order_state(percent: int, list_status: str | None) -> OrderState:
    if percent >= 100:
        return OrderState.DELEGATED
    if list_status == "Completed":
        return OrderState.PARTIAL if percent > 0 else OrderState.FAILED
    return OrderState.DELEGATING if percent > 0 else OrderState.PENDING


def _parse_order(data: Any) -> OrderStatus:
    obj = as_object(data, "data")
    percent = get_int(obj, "fulfilledPercent")
    delegates = [as_object(d, "delegate") for d in as_list(obj.get("delegates") or [], "delegates")]
    delegated = sum(non_negative(get_int(d, "amount", text=True), "amount") for d in delegates)
    txids = tuple(t for d in delegates if (t := opt_str(d, "txid")))
    state = _order_state(percent, opt_str(obj, "status"))
    if state is OrderState.DELEGATED and not delegates:
        delegated = non_negative(get_int(obj, "resourceAmount"), "resourceAmount")
    return OrderStatus(
        state=state,
        delegated_energy=delegated,
        txids=txids,
        cost_sun=opt_non_negative(opt_int(obj, "payoutAmount", text=True), "payoutAmount"),
        raw=dict(obj),
    )


def _parse_listed_ids(data: Any) -> list[str | None]:
    """The order ids of one page of `GET /v2/orders` (one per row, None when absent)."""
    rows = as_list(as_object(data, "data").get("data") or [], "data")
    return [opt_str(as_object(row, "order"), "id") for row in rows]


def _parse_user_info(data: Any) -> int:
    """`balance` is a string of sun [C]."""
    return get_int(as_object(data, "data"), "balance", text=True)


# --------------------------------------------------------------------------- adapter


#: how far back `status` looks in the list of completed orders (pages x page size); the
#: page size is the documented example's (10), as no maximum is documented [?]
COMPLETED_PAGES, COMPLETED_PAGE_SIZE = 10, 10


class TronSaveSpec(ProviderSettings):
    """TronSave (api.tronsave.io), API v2 key flow: price cap and duplicate guard on its side."""

    type: Literal["tronsave"] = Field(description="Vendor type.")
    network: Literal["mainnet", "nile"] = Field(
        default="mainnet",
        description="mainnet (api.tronsave.io) or the nile testnet (api-dev.tronsave.io).",
    )


class TronsaveProvider(HttpProvider[Any]):
    type_name: ClassVar[str] = "tronsave"
    settings: ClassVar[type[ProviderSettings]] = TronSaveSpec
    unknown_order_id: ClassVar[str] = "0" * 24
    not_found: ClassVar[NotFoundShape | None] = NotFoundShape(
        frozenset({"INVALID_PARAMS"}),
        'HTTP 400 "TSAS:408 INVALID_PARAMS Invalid orderId" '
        "(https://docs.tronsave.io/developers/errors-and-rate-limits)",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        durations=None,
        min_duration=300,
        max_duration=30 * DAY,
        min_amount=64_001,
        duplicate_guard=True,
        partial_fill=True,
        fill_or_nothing=True,
        price_cap=True,
    )
    unsold: ClassVar[str] = "amount or duration outside TronSave's range"

    def __init__(
        self,
        name: str,
        *,
        api_key: SecretStr,
        network: Literal["mainnet", "nile"] = "mainnet",
        base_url: str | None = None,
        unit_price: str | int = "MEDIUM",
        min_delegate_amount: int | None = None,
        sponsor: str | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        requests_per_second: float = REQUESTS_PER_SECOND,
    ) -> None:
        super().__init__(
            name,
            base_url=base_url or BASE_URLS[network],
            auth=lambda _clock: TronsaveAuth(api_key),
            map_error=_map_error,
            clock=clock,
            transport=transport,
            timeout=timeout,
            retry=retry,
            headers=JSON_CONTENT,
            requests_per_second=requests_per_second,
        )
        self._unit_price = unit_price
        self._min_delegate_amount = min_delegate_amount
        self._sponsor = sponsor

    def _open(self, response: JsonResponse) -> Any:
        return _envelope_data(self.name, response.status, response.body)

    async def quote(self, request: QuoteRequest) -> Quote:
        self._check(request.energy, request.duration)
        content = _encode_body(_build_estimate_body(request, self._unit_price))
        data = await self._data("POST", "/v2/estimate-buy-resource", content=content)
        total = self._parsed(_parse_estimate, data)
        return self._quote(request, total, dict(data) if isinstance(data, Mapping) else {})

    async def place(self, order: OrderRequest) -> Receipt:
        self._check(order.energy, order.duration)
        body = _build_order_body(
            order,
            unit_price=self._unit_price,
            min_delegate_amount=self._min_delegate_amount,
            sponsor=self._sponsor,
        )
        cap = body["options"].get("maxPriceAccepted")
        if cap is not None and cap < 1:
            raise PermanentError(self.name, "price cap below 1 sun per unit", reason=R.PRICE)
        if cap is not None and isinstance(self._unit_price, int) and cap <= self._unit_price:
            raise PermanentError(
                self.name,
                f"unit price {self._unit_price} sun is not below the cap's {cap} sun per unit; "
                "TronSave may refuse a price equal to maxPriceAccepted",
                reason=R.PRICE,
            )
        content = _encode_body(body)
        data = await self._data(
            "POST", "/v2/buy-resource", content=content, create=True, retried=order.retry
        )
        order_id = self._parsed(_parse_create, data, create=True)
        return self._receipt(order, order_id, raw=dict(data) if isinstance(data, Mapping) else {})

    async def status(self, receipt: Receipt) -> OrderStatus:
        order_id = receipt.provider_order_id
        data = await self._data("GET", f"/v2/order/{quote(order_id, safe='')}")
        status = self._parsed(_parse_order, data)
        # The detail view has no `status`; only the list view says `Completed`, which is
        # what ends a partial fill [C 4.7]. Look for the order among the newest completed
        # ones (bounded: an order unmatched for longer is for the engine's deadline).
        if status.state in (OrderState.PENDING, OrderState.DELEGATING) and (
            await self._listed_completed(order_id)
        ):
            # The order may have filled between the two reads: the detail read above is
            # older than "Completed", so read it again (a completed order no longer moves)
            # rather than call a filled order failed or partial.
            data = await self._data("GET", f"/v2/order/{quote(order_id, safe='')}")
            fresh = self._parsed(_parse_order, data)
            return self._parsed(_parse_order, dict(fresh.raw) | {"status": "Completed"})
        return status

    async def _listed_completed(self, order_id: str) -> bool:
        for page in range(COMPLETED_PAGES):
            data = await self._data(
                "GET", f"/v2/orders?page={page}&pageSize={COMPLETED_PAGE_SIZE}&status=Completed"
            )
            ids = self._parsed(_parse_listed_ids, data)
            if order_id in ids:
                return True
            if len(ids) < COMPLETED_PAGE_SIZE:
                return False
        return False

    async def balance(self) -> int:
        return self._parsed(_parse_user_info, await self._data("GET", "/v2/user-info"))
