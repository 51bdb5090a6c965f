"""feee.io (feee.io/open) adapter: the key header, V2 and V3 orders, statuses, errors.

Facts from https://feee.io/doc/en-US/api/orderv2/submit.html, `.../orderv3/create.html`,
`.../orderv2/query.html`, `.../order/price.html`, `.../orderv3/price.html`,
`.../intro/structure.html` (BuyOrderDetail) and third-party clients; tags: [C] vendor docs,
[3P] third party, [I] inference, [?] uncertain:

- Transport [C]: base `https://feee.io/open`; header `key: <apikey>` on every call, no
  signature, no timestamp; JSON bodies on POST, query strings on GET. Envelope `{code,
  msg, request_id, data}`, `code == 0` is success.
- Create (V2) [C]: `POST /v2/order/submit` `{resource_type: 1, receive_address,
  resource_value, rent_duration, rent_time_unit, rent_time_second}`. The duration is
  `(n, unit)`: `d` 1..30 days, `h` 1 or 3 hours, `m` 10 minutes; `rent_time_second`
  (> 600, a multiple of 3) overrides it when set, from the values the API key's details
  allow (per account [?]): never sent (0), so only the documented units are sold.
- Create (V3) [C]: `POST /v3/order/create` `{resource_type, receive_address,
  resource_value}`, a fixed five-minute rental: the 300 s duration. (The page's curl posts
  to `/v3/order/submit`; the header and third-party clients say `create` [?].)
- No idempotency key exists [C]: a create is never retried, and an answer that does not
  prove nothing was bought is ambiguous: held, resolved from the chain only (there is no
  order list to look an order up by).
- Order [C]: `order_no`, `status` 1..17, `business_status` 1 pending, 2 filled, 3 finished,
  4 closed; `frozen_resource_value` (delegated so far), `frozen_tx_id` (empty on a split
  parent: the children in `sub_order[]`), `pay_amount`/`refund_amount` in TRX. Delivered
  [I]: status 6 (delegated), 8 and 9 (reclaimed), 10 (reclaim failed), 17 (delayed
  reclaim), with the whole amount delegated; less than the amount is DELEGATING, or
  PARTIAL once reclaimed. 5 and 15 (partly delegated) are DELEGATING; 2 (never paid) is
  FAILED; 12 (cancelled) and 14 (refunded) are REFUNDED; 7 (delegation failed), 13
  (refund pending), 1, 3, 4, 11 and anything else are in progress (a refund is waited
  for, never assumed). By `business_status`: 4 (closed) with a `refund_amount` is
  REFUNDED, 2 or 3 (filled, finished) with the whole amount and a txid DELEGATED.
- Money [C]: `pay_amount` TRX decimals (`Decimal`, never float), costs rounded up to the
  sun; `price_in_sun` sun per energy.
- Quote [C]: `GET /v2/order/price?resource_value=&rent_duration=&rent_time_unit=` (V3:
  `GET /v3/order/price?resource_value=`), `pay_amount` (TRX, service fee included).
- Balance [C name][3P path and field]: `GET /v2/api/query` ("query APIKEY details"),
  `trx_money` in TRX, rounded down.
- Errors [?]: no code list is published; failures are `code != 0` with a `msg`, and the
  HTTP status that goes with them is unknown (both are read the same way). A refusal only
  when the words name the key, the balance, the address or a parameter; any other answer
  to a create is ambiguous.

Neighbours: `providers/base.py`, `providers/adapter.py`, `providers/http.py`, `providers/wire.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal

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
)
from providers.http import DEFAULT_TIMEOUT, Clock, JsonResponse, RetryPolicy
from providers.wire import (
    PayloadError,
    as_list,
    as_object,
    get_decimal,
    get_id,
    get_int,
    non_negative,
    opt_int,
    opt_str,
    to_decimal,
    trx_to_sun,
)

DEFAULT_BASE_URL = "https://feee.io/open"
USER_AGENT = "energyctl Feee.io client (https://feee.io)"
MINUTE, HOUR, DAY = 60, 3600, 86_400
#: the V3 order's fixed duration [C]
FIVE_MINUTES = 5 * MINUTE
#: seconds -> (rent_duration, rent_time_unit) of a V2 order [C]
UNITS: Mapping[int, tuple[int, str]] = {
    10 * MINUTE: (10, "m"),
    HOUR: (1, "h"),
    3 * HOUR: (3, "h"),
    **{n * DAY: (n, "d") for n in range(1, 31)},
}
#: the smallest `resource_value` in the docs' examples [I]: no minimum is documented [?]
MIN_AMOUNT = 32_000

R = ErrorReason
#: words of an error's `msg` naming a refusal made before anything was bought [I]; in order
_REFUSAL_WORDS: tuple[tuple[tuple[str, ...], ErrorReason], ...] = (
    (("apikey", "api key", "key", "auth", "whitelist"), R.AUTH),
    (("balance", "insufficient", "trx_money"), R.BALANCE),
    (("address",), R.RECEIVER),
    (("order does not exist", "order not found", "no such order"), R.NOT_FOUND),
    (("param", "invalid", "resource_value", "rent_", "resource_type", "duration"),
     R.INVALID_REQUEST),
)  # fmt: skip

#: order statuses [C] and their reading [I] (module docstring)
DELIVERED_STATUSES = frozenset({6, 8, 9, 10, 17})
RECLAIMED_STATUSES = frozenset({8, 9, 10})
REFUNDED_STATUSES = frozenset({12, 14})
DELEGATING_STATUSES = frozenset({5, 15})
NEVER_PAID = 2


class FeeeAuth(KeyAuth):
    """The `key` header."""

    key_header = "key"


# --------------------------------------------------------------------------- pure


@dataclass(frozen=True)
class FeeeOrder:
    order_no: str
    status: int
    business_status: int | None
    resource_value: int
    frozen_resource_value: int
    pay_sun: int | None
    refund_sun: int
    txids: tuple[str, ...]


def _body(order: OrderRequest) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) of the create for `order`'s duration."""
    common = {
        "resource_type": 1,
        "receive_address": order.receiver,
        "resource_value": order.energy,
    }
    if order.duration == FIVE_MINUTES:
        return "/v3/order/create", common
    try:
        rent_duration, unit = UNITS[order.duration]
    except KeyError:
        sold = "5 or 10 min, 1 or 3 h, 1..30 days"
        raise ValueError(f"feee.io sells {sold}, not {order.duration} s") from None
    return "/v2/order/submit", {
        **common,
        "rent_duration": rent_duration,
        "rent_time_unit": unit,
        "rent_time_second": 0,  # 0: the unit form decides [C]
    }


def _price_params(request: QuoteRequest) -> tuple[str, dict[str, str | int]]:
    if request.duration == FIVE_MINUTES:
        return "/v3/order/price", {"resource_value": request.energy}
    rent_duration, unit = UNITS[request.duration]
    return "/v2/order/price", {
        "resource_value": request.energy,
        "rent_duration": rent_duration,
        "rent_time_unit": unit,
    }


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _classify(text: str) -> tuple[ErrorReason, bool]:
    """(reason, refusal) of an error's words; no code list is published [?]."""
    low = text.lower()
    for words, reason in _REFUSAL_WORDS:
        if any(word in low for word in words):
            return reason, True
    return R.UNKNOWN, False


def _code_error(provider: str, code: Any, body: Mapping[str, Any]) -> ProviderError:
    msg = body.get("msg")
    words = msg[:200] if isinstance(msg, str) else ""
    reason, refusal = _classify(words)
    return PermanentError(
        provider,
        f"refused (code {code}): {words}",
        reason=reason,
        vendor_code=str(code),
        refusal=refusal,
    )


def _envelope_data(provider: str, body: Any) -> Any:
    obj = as_object(body)
    code = get_int(obj, "code")
    if code != 0:
        raise _code_error(provider, code, obj)
    if obj.get("data") is None:
        raise PayloadError("answer has no 'data'")
    return obj["data"]


def _map_http_error(provider: str, status: int, body: Any) -> ProviderError | None:
    """An error envelope under a 4xx is read like one under a 200 (the status is not
    documented [?]); a 404 without one is a route the vendor does not have."""
    if isinstance(body, Mapping) and isinstance(body.get("code"), int) and body["code"] != 0:
        error = _code_error(provider, body["code"], body)
        if status in (401, 403):
            return PermanentError(
                provider, str(error), reason=R.AUTH, vendor_code=error.vendor_code
            )
        return error
    if status == 404:
        return PermanentError(provider, "no such endpoint (HTTP 404)", reason=R.PROTOCOL)
    return None


def _txids(obj: Mapping[str, Any]) -> tuple[str, ...]:
    own = opt_str(obj, "frozen_tx_id")
    children = as_list(obj.get("sub_order") or [], "sub_order")
    found = [own] if own else []
    found += [
        t for child in children if (t := opt_str(as_object(child, "sub_order"), "frozen_tx_id"))
    ]
    return tuple(found)


def _parse_order(data: Any) -> FeeeOrder:
    obj = as_object(data, "data")
    refund = obj.get("refund_amount")
    return FeeeOrder(
        order_no=get_id(obj, "order_no"),
        status=get_int(obj, "status"),
        business_status=opt_int(obj, "business_status"),
        resource_value=non_negative(get_int(obj, "resource_value"), "resource_value"),
        frozen_resource_value=non_negative(
            opt_int(obj, "frozen_resource_value") or 0, "frozen_resource_value"
        ),
        pay_sun=trx_to_sun(get_decimal(obj, "pay_amount"))
        if obj.get("pay_amount") is not None
        else None,
        refund_sun=0
        if refund is None
        else trx_to_sun(to_decimal(refund, "refund_amount"), round_up=False),
        txids=_txids(obj),
    )


def _order_state(order: FeeeOrder) -> OrderState:
    """Never reports success or failure on a value we do not know."""
    whole = order.frozen_resource_value >= order.resource_value
    if order.status in DELIVERED_STATUSES:
        if whole:
            return OrderState.DELEGATED
        if order.status in RECLAIMED_STATUSES and order.frozen_resource_value > 0:
            return OrderState.PARTIAL  # the rental is over with part delegated
        return OrderState.DELEGATING if order.frozen_resource_value > 0 else OrderState.PENDING
    if order.status in REFUNDED_STATUSES or (order.business_status == 4 and order.refund_sun):
        return OrderState.REFUNDED  # business status 4 (closed) with money returned
    if order.status == NEVER_PAID:
        return OrderState.FAILED
    if order.business_status in (2, 3) and whole and order.txids:  # filled, finished [I]
        return OrderState.DELEGATED
    if order.status in DELEGATING_STATUSES or order.frozen_resource_value > 0:
        return OrderState.DELEGATING
    return OrderState.PENDING  # 1, 3, 4, 7, 11, 13, unknown


def _order_status(order: FeeeOrder, raw: Mapping[str, Any]) -> OrderStatus:
    state = _order_state(order)
    return OrderStatus(
        state=state,
        delegated_energy=min(order.frozen_resource_value, order.resource_value),
        txids=order.txids,
        cost_sun=0 if state is OrderState.FAILED else order.pay_sun,
        refund_sun=order.refund_sun if state is OrderState.REFUNDED else 0,
        raw=raw,
    )


def _parse_price(data: Any) -> int:
    """`pay_amount` (TRX, the service fee included) in sun, rounded up."""
    pay = get_decimal(as_object(data, "data"), "pay_amount")
    if pay < 0:
        raise PayloadError("field 'pay_amount' is negative")
    return trx_to_sun(pay)


def _parse_balance(data: Any) -> int:
    """`trx_money` (TRX) in sun, rounded down [3P]."""
    money: Decimal = get_decimal(as_object(data, "data"), "trx_money")
    return trx_to_sun(money, round_up=False)


# --------------------------------------------------------------------------- adapter


class FeeeSpec(ProviderSettings):
    """feee.io (feee.io/open): an API key header; no idempotency key (creates never retried)."""

    type: Literal["feee"] = Field(description="Vendor type.")


class FeeeProvider(HttpProvider[Any]):
    type_name: ClassVar[str] = "feee"
    settings: ClassVar[type[ProviderSettings]] = FeeeSpec
    unknown_order_id: ClassVar[str] = "0" * 22
    not_found: ClassVar[NotFoundShape | None] = None  # undocumented
    capabilities: ClassVar[Capabilities] = Capabilities(
        durations=tuple(sorted({FIVE_MINUTES, *UNITS})),
        min_duration=FIVE_MINUTES,
        max_duration=30 * DAY,
        min_amount=MIN_AMOUNT,
    )
    unsold: ClassVar[str] = "amount or duration not sold by feee.io"

    def __init__(
        self,
        name: str,
        *,
        api_key: SecretStr,
        base_url: str = DEFAULT_BASE_URL,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            name,
            base_url=base_url,
            auth=lambda _clock: FeeeAuth(api_key),
            map_error=_map_http_error,
            clock=clock,
            transport=transport,
            timeout=timeout,
            retry=retry,
            headers={**JSON_CONTENT, "User-Agent": USER_AGENT},
        )

    def _open(self, response: JsonResponse) -> Any:
        return _envelope_data(self.name, response.body)

    async def quote(self, request: QuoteRequest) -> Quote:
        if not self.capabilities.accepts_duration(request.duration):
            raise PermanentError(
                self.name, "duration not sold by feee.io", reason=R.INVALID_REQUEST
            )
        path, params = _price_params(request)
        data = await self._data("GET", path, params=params)
        return self._quote(request, self._parsed(_parse_price, data), dict(as_object(data)))

    async def place(self, order: OrderRequest) -> Receipt:
        self._check(order.energy, order.duration)
        path, body = _body(order)
        # no idempotency key [C]: never retried; an unclear answer is held (on_create)
        data = await self._data(
            "POST", path, content=_encode(body), create=True, retried=order.retry
        )
        parsed = self._parsed(_parse_order, data, create=True)
        raw = dict(data) if isinstance(data, Mapping) else {}
        return self._receipt(order, parsed.order_no, cost_sun=parsed.pay_sun, raw=raw)

    async def status(self, receipt: Receipt) -> OrderStatus:
        params: dict[str, str | int] = {"order_no": receipt.provider_order_id}
        data = await self._data("GET", "/v2/order/query", params=params)
        parsed = self._parsed(_parse_order, data)
        return self._parsed(_order_status, parsed, dict(as_object(data)))

    async def balance(self) -> int:
        return self._parsed(_parse_balance, await self._data("GET", "/v2/api/query"))
