"""Mefree (api.mefree.net) adapter: signing, order options, statuses, prices, errors.

Facts from https://docs.mefree.net (create order, config, language guides) and third-party
clients; tags: [C] vendor docs, [3P] third party, [I] inference, [?] uncertain:

- Signing [C]: `MF-ACCESS-SIGN = Base64(HMAC-SHA256(secret, ts + METHOD + pathWithQuery))`
  with `ts` ISO-8601 UTC with milliseconds and `Z`. `MefreeAuth` signs the path and query
  exactly as httpx sends them (`request.url.raw_path`), so they cannot drift apart.
- Create order [C]: `POST /api/order?quantity=&target_address=&period=&client_order_id=`,
  no body. `client_order_id` is an idempotency key: a create may be retried safely.
- Status [C]: `status` (TRANSFER_SUCCESS, DELEGATE_SUCCESS, ...; full enum unknown [?]) and
  `confirm_status` (UNCONFIRMED -> DELEGATION_CONFIRMED). Only DELEGATION_CONFIRMED counts
  as delivered; an unknown value keeps the order in progress (never success, never failure).
- Quote [I]: no quote endpoint; the `/api/config` price fields are read as sun per energy
  unit: 1 h -> `hour_price_sun`, 1 day -> `day_price_sun`, N days (3..30) ->
  `multi_day_price_sun` x N. Trust the order's `amount_sun` over this estimate.
- Errors [C]: HTTP 400 (bad path or parameters), 401 (signature or key), 429 (rate).
  The numeric `code` list is unknown [?]: a non-zero `code` is a refusal only when its
  message names the balance, the address or a parameter; 9999 UNKNOWN, any other
  wording, and a message saying the client order id exists prove nothing, so they are
  ambiguous on a create (`_classify`).
- Reused `client_order_id` [C][?]: the docs say a repeat "will not create a new order"
  but not what it answers. The existing order is the likely answer; an error envelope
  is the other reading, so after a create attempt that may have been accepted every
  refusal is ambiguous (`providers.http.on_create`) and tracking re-places with
  `OrderRequest.retry` set: never a failure that lets another provider buy.

Neighbours: `providers/base.py` (interface), `providers/adapter.py` (the shared adapter
plumbing), `providers/http.py` (calls), `providers/wire.py`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from policies.base import SecretRef
from policies.vendors import ProviderSettings
from providers.adapter import JSON_CONTENT, HttpProvider, SigningAuth
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
    as_object,
    get_id,
    get_int,
    get_object,
    non_negative,
    opt_int,
    opt_non_negative,
    opt_str,
)

DEFAULT_BASE_URL = "https://api.mefree.net"
HOUR, DAY = 3600, 86400

# period codes [C]: 1 = 1 h, 2 = 1 day, 3..30 = N days. Period 0 ("fast charge") is not
# offered: its duration is undocumented [?], so we cannot promise a duration with it.
PERIODS: Mapping[int, int] = {HOUR: 1, DAY: 2, **{n * DAY: n for n in range(3, 31)}}


def format_timestamp(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds and `Z`: `2020-12-08T09:08:57.715Z` (always UTC)."""
    millis = round(epoch * 1000)  # whole milliseconds, so 57.7149999 reads as .715
    when = dt.datetime.fromtimestamp(millis // 1000, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def sign(secret: str, timestamp: str, method: str, path_with_query: str) -> str:
    """`Base64(HMAC-SHA256(secret, timestamp + METHOD + path_with_query))`."""
    prehash = f"{timestamp}{method.upper()}{path_with_query}".encode()
    digest = hmac.new(secret.encode(), prehash, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class MefreeAuth(SigningAuth):
    """Adds `MF-ACCESS-KEY`, `MF-ACCESS-TIMESTAMP` and `MF-ACCESS-SIGN` to each request."""

    key_header = "MF-ACCESS-KEY"

    def _sign(self, request: httpx.Request) -> None:
        timestamp = format_timestamp(self._clock.now())
        # The path and query exactly as they go on the wire. A body is appended when
        # present [3P]; no documented Mefree call has one.
        signed = request.url.raw_path.decode("ascii") + request.content.decode()
        request.headers["MF-ACCESS-TIMESTAMP"] = timestamp
        request.headers["MF-ACCESS-SIGN"] = sign(
            self._secret.get_secret_value(), timestamp, request.method, signed
        )


# --------------------------------------------------------------------------- pure


@dataclass(frozen=True)
class MefreeOrder:
    pay_hash: str
    status: str | None
    confirm_status: str | None
    energy: int | None
    amount_sun: int | None
    delegate_hash: str | None
    client_order_id: str | None


@dataclass(frozen=True)
class MefreeConfig:
    balance_sun: int
    hour_price_sun: int | None
    day_price_sun: int | None
    multi_day_price_sun: int | None


def _period(duration: int) -> int:
    try:
        return PERIODS[duration]
    except KeyError:
        raise ValueError(f"Mefree sells 1 h, 1 day or 3..30 days, not {duration} s") from None


def _build_order_params(order: OrderRequest) -> dict[str, str | int]:
    """Query parameters of `POST /api/order` (there is no body)."""
    return {
        "quantity": order.energy,
        "target_address": order.receiver,
        "period": _period(order.duration),
        "client_order_id": order.client_order_id,
    }


def _envelope_data(provider: str, body: Any) -> Mapping[str, Any]:
    """`data` of a `{code, msg, data}` envelope; a bare order object is accepted too (the
    create-order page shows one [C]). A non-zero `code` is raised as a vendor error."""
    obj = as_object(body)
    if "code" not in obj:
        return obj
    code = get_int(obj, "code")
    if code != 0:
        raise _code_error(provider, code, obj)
    return get_object(obj, "data")


#: message words that name a refusal made before anything was bought [I]
_REFUSALS: tuple[tuple[tuple[str, ...], ErrorReason], ...] = (
    (("balance", "insufficient"), ErrorReason.BALANCE),
    (("address",), ErrorReason.RECEIVER),
    (("param", "invalid", "quantity", "period", "count"), ErrorReason.INVALID_REQUEST),
)
#: message words saying an order with our client_order_id exists already [?] (not "does
#: not exist", TRON's wording for an unactivated address)
_EXISTS = ("already exist", "duplicate", "repeat", "client_order_id exist")


def _classify(text: str) -> tuple[ErrorReason, bool]:
    """(reason, refusal) for a Mefree error message; the code list is undocumented [?].

    Only a message naming the balance, the address or a parameter is a refusal; a
    message saying the client order id exists, 9999 UNKNOWN, or any other wording does
    not prove that nothing was bought (ambiguous on a create)."""
    low = text.lower()
    if any(word in low for word in _EXISTS):
        return ErrorReason.DUPLICATE, False
    for words, reason in _REFUSALS:
        if any(word in low for word in words):
            return reason, True
    return ErrorReason.UNKNOWN, False


def _code_error(provider: str, code: int, body: Mapping[str, Any]) -> ProviderError:
    message = " ".join(
        str(body.get(k)) for k in ("msg", "sub_code", "sub_msg") if isinstance(body.get(k), str)
    )[:200]
    reason, refusal = _classify(message)
    return PermanentError(
        provider,
        f"refused (code {code}): {message}",
        reason=reason,
        vendor_code=str(code),
        refusal=refusal,
    )


def _map_http_error(provider: str, status: int, body: Any) -> ProviderError | None:
    """Mefree's documented HTTP errors: 400 parameters, 401 signature or key [C]. A 400 is
    a refusal, with its reason from the message, unless the message says the client
    order id exists (`_classify`)."""
    if status == 400:
        msg = body.get("msg") if isinstance(body, Mapping) else None
        keys = ("msg", "sub_code", "sub_msg")
        texts = [body.get(k) for k in keys] if isinstance(body, Mapping) else []
        words = " ".join(t for t in texts if isinstance(t, str))
        reason, refusal = _classify(words)
        if reason is ErrorReason.UNKNOWN:  # a documented 400: the parameters were refused
            reason, refusal = ErrorReason.INVALID_REQUEST, True
        detail = f": {msg[:200]}" if isinstance(msg, str) else ""
        return PermanentError(
            provider, f"bad request{detail}", reason=reason, vendor_code="400", refusal=refusal
        )
    if status == 401:
        return PermanentError(
            provider, "signature or key refused", reason=ErrorReason.AUTH, vendor_code="401"
        )
    return None


def _parse_order(data: Mapping[str, Any]) -> MefreeOrder:
    return MefreeOrder(
        pay_hash=get_id(data, "pay_hash"),
        status=opt_str(data, "status"),
        confirm_status=opt_str(data, "confirm_status"),
        energy=opt_non_negative(opt_int(data, "energy_quantity"), "energy_quantity"),
        amount_sun=opt_non_negative(opt_int(data, "amount_sun"), "amount_sun"),
        delegate_hash=opt_str(data, "delegate_hash") or None,
        client_order_id=opt_str(data, "client_order_id"),
    )


def _order_state(status: str | None, confirm_status: str | None) -> OrderState:
    """Never reports success on a value we do not know."""
    if confirm_status == "DELEGATION_CONFIRMED":
        return OrderState.DELEGATED
    if status == "DELEGATE_SUCCESS":
        return OrderState.DELEGATING
    return OrderState.PENDING  # TRANSFER_SUCCESS, UNCONFIRMED alone, unknown values


def _order_status(order: MefreeOrder, ordered_energy: int, raw: Mapping[str, Any]) -> OrderStatus:
    state = _order_state(order.status, order.confirm_status)
    delegated = (order.energy or ordered_energy) if state is OrderState.DELEGATED else 0
    return OrderStatus(
        state=state,
        delegated_energy=delegated,
        txids=(order.delegate_hash,) if order.delegate_hash else (),
        cost_sun=order.amount_sun,
        raw=raw,
    )


def _parse_config(data: Mapping[str, Any]) -> MefreeConfig:
    return MefreeConfig(
        balance_sun=get_int(data, "account_balance", text=True),
        hour_price_sun=opt_int(data, "hour_price_sun", text=True),
        day_price_sun=opt_int(data, "day_price_sun", text=True),
        multi_day_price_sun=opt_int(data, "multi_day_price_sun", text=True),
    )


def _quote_total(config: MefreeConfig, energy: int, duration: int) -> int:
    """Estimated total in sun from the config prices (formula [I], module docstring)."""
    period = _period(duration)
    if period == 1:
        unit, days = config.hour_price_sun, 1
    elif period == 2:
        unit, days = config.day_price_sun, 1
    else:
        unit, days = config.multi_day_price_sun, period
    if unit is None:
        raise PayloadError(f"no price for period {period} in /api/config")
    return non_negative(unit, f"price of period {period}") * energy * days


# --------------------------------------------------------------------------- adapter


class MefreeSpec(ProviderSettings):
    """Mefree (api.mefree.net): HMAC-signed requests, idempotent on our client order id."""

    type: Literal["mefree"] = Field(description="Vendor type.")
    api_secret: SecretRef = Field(description="The API secret used to sign requests.")


class MefreeProvider(HttpProvider[Mapping[str, Any]]):
    type_name: ClassVar[str] = "mefree"
    settings: ClassVar[type[ProviderSettings]] = MefreeSpec
    unknown_order_id: ClassVar[str] = "00000000-0000-4000-8000-000000000000"
    not_found: ClassVar[NotFoundShape | None] = NotFoundShape(
        frozenset(),
        "none, Mefree documents no answer for it (https://docs.mefree.net/api/create-order): "
        "any refusal will do",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        durations=tuple(sorted(PERIODS)),
        min_duration=HOUR,
        max_duration=30 * DAY,
        min_amount=65_000,
        idempotency_key=True,
        lookup_by_client_id=False,  # no documented lookup by client_order_id
    )
    unsold: ClassVar[str] = "amount or duration not sold by Mefree"

    def __init__(
        self,
        name: str,
        *,
        api_key: SecretStr,
        api_secret: SecretStr,
        base_url: str = DEFAULT_BASE_URL,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            name,
            base_url=base_url,
            auth=lambda clock: MefreeAuth(api_key, api_secret, clock),
            map_error=_map_http_error,
            clock=clock,
            transport=transport,
            timeout=timeout,
            retry=retry,
            headers=JSON_CONTENT,
        )

    def _open(self, response: JsonResponse) -> Mapping[str, Any]:
        return _envelope_data(self.name, response.body)

    async def _config(self) -> MefreeConfig:
        return self._parsed(_parse_config, await self._data("GET", "/api/config"))

    async def quote(self, request: QuoteRequest) -> Quote:
        if request.duration not in PERIODS:  # the amount is not checked for a quote
            raise PermanentError(
                self.name, "duration not sold by Mefree", reason=ErrorReason.INVALID_REQUEST
            )
        config = await self._config()
        total = self._parsed(_quote_total, config, request.energy, request.duration)
        return self._quote(request, total, {})

    async def place(self, order: OrderRequest) -> Receipt:
        self._check(order.energy, order.duration)
        # client_order_id makes the create idempotent [C]: retried after ambiguous failures.
        params = _build_order_params(order)
        data = await self._data(
            "POST", "/api/order", params=params, create=True, idempotent=True, retried=order.retry
        )
        parsed = self._parsed(_parse_order, data, create=True)
        return self._receipt(order, parsed.pay_hash, cost_sun=parsed.amount_sun, raw=dict(data))

    async def status(self, receipt: Receipt) -> OrderStatus:
        data = await self._data("GET", f"/api/order/{quote(receipt.provider_order_id, safe='')}")
        parsed = self._parsed(_parse_order, data)
        return self._parsed(_order_status, parsed, receipt.energy, dict(data))

    async def balance(self) -> int:
        return (await self._config()).balance_sun
