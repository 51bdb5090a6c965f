"""eopen (api.eopen.io) adapter: periods, statuses, prices, the 19 error codes.

Facts from https://docs.eopen.io (order, errors, account):

- Auth [C]: an `API-KEY` header; no signing. Base `https://api.eopen.io/api`.
- Parameters [?]: the docs head the create "POST", every curl example sends the
  parameters as a query string (`curl -G`), and the migration notes show a JSON body. A
  server reading only the body would refuse a query-only order (11003), one reading only
  the query would refuse a body-only one, so the create sends the same parameters in
  both: every reading finds them (`_build_order_params`, `_encode_body`).
- Envelope [C]: `{code, msg, time, data}`; `code` 0 is success, the 18 others are mapped
  in `ERRORS`. The HTTP status that goes with them is undocumented (200 assumed [I]).
- Periods [C]: 10min, 1h, 1d, 3d, 7d, 14d, 30d. Minimum 64,000 energy. Orders activate
  an unactivated receiver on their own.
- Money [C]: order `amount` is a decimal in the payment currency (TRX or USDT); the
  price answer has `sun` (unit price, a string) and `trxPrice` (TRX, rounded to 2
  places). The quote is the larger of `sun x rentalCount` and `trxPrice` in sun, in
  integers via Decimal: which one holds for multi-day periods is unknown [I].
- History [C/?]: `GET /v1/tron/history?orderId=` answers one object (the vendor page's
  example); the reference could not retrieve it, so a list is also accepted and searched
  for our order id [I]. Statuses COMPLETED, PENDING, PROCESSING, FAILED, REFUNDED.
  The docs call it "recently completed orders": an order still in progress may answer
  12002 (not found), which `status` reads as PENDING (never failed), and COMPLETED may
  mean "rental ended" rather than "delegated"; either way tracking's chain reading
  decides whether the energy arrived.
- On a create [?]: 11000 ("operation failed, retry later") and an unknown code do not
  prove that nothing was bought, so they are ambiguous (`refusal=False`); the other
  documented codes are refusals made before any order.

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
    TemporaryError,
)
from providers.http import DEFAULT_TIMEOUT, Clock, JsonResponse, RetryPolicy
from providers.wire import (
    PayloadError,
    as_object,
    ceil_int,
    get_decimal,
    get_id,
    get_int,
    get_object,
    get_str,
    non_negative,
    opt_str,
    trx_to_sun,
)

DEFAULT_BASE_URL = "https://api.eopen.io/api"
MINUTE, HOUR, DAY = 60, 3600, 86400
PERIODS: Mapping[int, str] = {
    10 * MINUTE: "10min",
    HOUR: "1h",
    DAY: "1d",
    3 * DAY: "3d",
    7 * DAY: "7d",
    14 * DAY: "14d",
    30 * DAY: "30d",
}

P, T = PermanentError, TemporaryError
R = ErrorReason
#: codes that do not prove that nothing was bought (ambiguous on a create) [?]
NOT_REFUSALS = frozenset({11000})
#: code -> (error class, reason, vendor wording) for every documented non-zero code [C]
ERRORS: Mapping[int, tuple[type[ProviderError], ErrorReason, str]] = {
    100: (P, R.INVALID_REQUEST, "request parameter error"),
    11000: (T, R.UNAVAILABLE, "operation failed, retry later"),
    11001: (T, R.RATE_LIMITED, "operations too frequent"),
    11003: (P, R.INVALID_REQUEST, "missing required parameters"),
    12002: (P, R.NOT_FOUND, "order does not exist"),
    20000: (P, R.AUTH, "application does not exist"),
    20001: (P, R.AUTH, "invalid API key"),
    20002: (P, R.BALANCE, "insufficient account balance"),
    20003: (P, R.BALANCE, "insufficient quota"),  # [?] read as the account's quota
    20004: (T, R.RATE_LIMITED, "request frequency limited"),
    20005: (P, R.RECEIVER, "invalid receiving address"),
    20006: (P, R.INVALID_REQUEST, "invalid energy parameter"),
    20007: (P, R.INVALID_REQUEST, "invalid staking amount"),
    20008: (P, R.INVALID_REQUEST, "invalid rental duration"),
    20009: (T, R.UNFULFILLABLE, "insufficient remaining resources"),
    20010: (P, R.INVALID_REQUEST, "invalid time unit"),
    20011: (P, R.INVALID_REQUEST, "invalid parameter"),
    20012: (P, R.AUTH, "IP not in whitelist"),
}

ORDER_NOT_FOUND = 12002

STATES: Mapping[str, OrderState] = {
    "COMPLETED": OrderState.DELEGATED,
    "PENDING": OrderState.PENDING,
    "PROCESSING": OrderState.DELEGATING,
    "FAILED": OrderState.FAILED,
    "REFUNDED": OrderState.REFUNDED,
}


class EopenAuth(KeyAuth):
    """The `API-KEY` header (eopen documents no signature)."""

    key_header = "API-KEY"


# --------------------------------------------------------------------------- pure


@dataclass(frozen=True)
class EopenOrder:
    order_id: str
    status: str
    rental_count: int | None
    txid: str | None
    amount: Decimal | None
    currency: str | None


def _period(duration: int) -> str:
    try:
        return PERIODS[duration]
    except KeyError:
        raise ValueError(f"eopen sells 10min..30d periods, not {duration} s") from None


def _code_error(provider: str, code: int, msg: str | None) -> ProviderError:
    cls, reason, wording = ERRORS.get(code, (PermanentError, ErrorReason.UNKNOWN, "unknown code"))
    text = f"{wording} (code {code})" + (f": {msg[:200]}" if msg else "")
    refusal = code in ERRORS and code not in NOT_REFUSALS
    return cls(provider, text, reason=reason, vendor_code=str(code), refusal=refusal)


def _envelope_data(provider: str, body: Any) -> Any:
    """`data` of `{code, msg, time, data}`; a non-zero code raises the mapped error."""
    obj = as_object(body)
    code = get_int(obj, "code")
    if code != 0:
        raise _code_error(provider, code, opt_str(obj, "msg"))
    return obj.get("data")


def _map_http_error(provider: str, status: int, body: Any) -> ProviderError | None:
    """A 4xx that still carries the envelope is mapped by its code."""
    if isinstance(body, Mapping) and isinstance(body.get("code"), int) and body["code"] != 0:
        msg = body.get("msg")
        return _code_error(provider, body["code"], msg if isinstance(msg, str) else None)
    return None


def _build_order_params(order: OrderRequest) -> dict[str, str | int]:
    return {
        "pledgeAddress": order.receiver,
        "rentalCount": order.energy,
        "period": _period(order.duration),
    }


def _encode_body(params: Mapping[str, str | int]) -> bytes:
    """The create's parameters as a JSON body too (see the module docstring)."""
    return json.dumps(dict(params), separators=(",", ":")).encode()


def _parse_create(data: Any) -> tuple[str, int | None]:
    """`{id, amount, currency}` -> (order id, cost in sun when paid in TRX, else None)."""
    obj = as_object(data, "data")
    order_id = get_id(obj, "id")
    if opt_str(obj, "currency") == "TRX" and obj.get("amount") is not None:
        return order_id, non_negative(trx_to_sun(get_decimal(obj, "amount")), "amount")
    return order_id, None


def _parse_price(data: Any, rental_count: int) -> int:
    """Total sun: the larger of unit price x count and `trxPrice` (see module docstring)."""
    obj = as_object(data, "data")
    by_unit = get_decimal(obj, "sun") * rental_count
    by_trx = get_decimal(obj, "trxPrice") * 1_000_000
    return non_negative(ceil_int(max(by_unit, by_trx)), "sun")


def _parse_history(data: Any, order_id: str) -> EopenOrder:
    """The history answer for one order: an object, or (defensively) a list of them."""
    if isinstance(data, list):
        matches = [
            d for d in data if isinstance(d, Mapping) and d.get("orderId", d.get("id")) == order_id
        ]
        if not matches:
            raise PayloadError(f"order {order_id!r} not in the history answer")
        data = matches[0]
    obj = as_object(data, "data")
    amount = obj.get("amount")
    return EopenOrder(
        order_id=opt_str(obj, "orderId") or order_id,
        status=get_str(obj, "status").upper(),
        rental_count=non_negative(get_int(obj, "rentalCount", text=True), "rentalCount")
        if obj.get("rentalCount") is not None
        else None,
        txid=opt_str(obj, "txId") or None,
        amount=None if amount is None else get_decimal(obj, "amount"),
        currency=opt_str(obj, "currency"),
    )


def _order_status(order: EopenOrder, ordered_energy: int, raw: Mapping[str, Any]) -> OrderStatus:
    # Unknown statuses keep the order open: never success on a word we do not know.
    state = STATES.get(order.status, OrderState.PENDING)
    delegated = (order.rental_count or ordered_energy) if state is OrderState.DELEGATED else 0
    cost = None
    if order.currency == "TRX" and order.amount is not None:
        cost = non_negative(trx_to_sun(order.amount), "amount")
    return OrderStatus(
        state=state,
        delegated_energy=delegated,
        txids=(order.txid,) if order.txid else (),
        cost_sun=cost,
        raw=raw,
    )


def _parse_account(data: Any) -> int:
    """Available TRX balance in sun (rounded down). USDT balances are not counted."""
    obj = as_object(data, "data")
    available = get_object(get_object(obj, "balance"), "available")
    return trx_to_sun(get_decimal(available, "trx"), round_up=False)


# --------------------------------------------------------------------------- adapter


class EopenSpec(ProviderSettings):
    """eopen (api.eopen.io): API key only."""

    type: Literal["eopen"] = Field(description="Vendor type.")


class EopenProvider(HttpProvider[tuple[Any, Mapping[str, Any]]]):
    """Each call yields the envelope's `data` and the whole answer (kept as `raw`)."""

    type_name: ClassVar[str] = "eopen"
    settings: ClassVar[type[ProviderSettings]] = EopenSpec
    unknown_order_id: ClassVar[str] = "OR19700101000000CHECK0"
    not_found: ClassVar[NotFoundShape | None] = NotFoundShape(
        frozenset({"12002"}), 'code 12002 "order does not exist" (https://docs.eopen.io/errors)'
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        durations=tuple(sorted(PERIODS)),
        min_duration=10 * MINUTE,
        max_duration=30 * DAY,
        min_amount=64_000,
        activates_receiver=True,
    )
    unsold: ClassVar[str] = "amount or duration not sold by eopen"

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
            auth=lambda _clock: EopenAuth(api_key),
            map_error=_map_http_error,
            clock=clock,
            transport=transport,
            timeout=timeout,
            retry=retry,
        )

    def _open(self, response: JsonResponse) -> tuple[Any, Mapping[str, Any]]:
        return _envelope_data(self.name, response.body), response.body

    async def quote(self, request: QuoteRequest) -> Quote:
        self._check(request.energy, request.duration)
        params: dict[str, str | int] = {
            "rentalCount": request.energy,
            "period": _period(request.duration),
        }
        data, raw = await self._data("GET", "/v1/tron/price", params=params)
        return self._quote(request, self._parsed(_parse_price, data, request.energy), raw)

    async def place(self, order: OrderRequest) -> Receipt:
        self._check(order.energy, order.duration)
        # No idempotency key at eopen: never retried after the request may have been sent.
        # The parameters go in the query string and in a JSON body (module docstring).
        params = _build_order_params(order)
        data, raw = await self._data(
            "POST",
            "/v1/tron/order",
            params=params,
            content=_encode_body(params),
            headers=JSON_CONTENT,
            create=True,
            retried=order.retry,
        )
        order_id, cost = self._parsed(_parse_create, data, create=True)
        return self._receipt(order, order_id, cost_sun=cost, raw=raw)

    async def status(self, receipt: Receipt) -> OrderStatus:
        order_id = receipt.provider_order_id
        try:
            data, raw = await self._data("GET", "/v1/tron/history", params={"orderId": order_id})
        except PermanentError as exc:
            if exc.vendor_code != str(ORDER_NOT_FOUND):
                raise
            # "recently completed orders": an order in progress may not be listed yet.
            return OrderStatus(state=OrderState.PENDING, raw={"code": ORDER_NOT_FOUND})
        parsed = self._parsed(_parse_history, data, order_id)
        return self._parsed(_order_status, parsed, receipt.energy, raw)

    async def balance(self) -> int:
        data, _ = await self._data("GET", "/v1/account")
        return self._parsed(_parse_account, data)
