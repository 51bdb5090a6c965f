"""Netts (netts.io, API v2) adapter: API key and whitelisted IP, two durations, 2 requests/s.

Facts from https://doc.netts.io/api/ (overview: auth, rate limit) and the v2 endpoint pages
https://doc.netts.io/api/v2/endpoints/{order1h,order5m,prices,order-check}.html; tags:
[C] vendor docs, [3P] third-party clients, [I] inference, [?] uncertain:

- Auth [C]: `X-API-KEY` and `X-Real-IP`, an address on the account's whitelist (up to
  three, set in the dashboard). The IP is a setting of the Provider document (`realIp`),
  sent on every call (`order_check` documents only the key; the extra header is harmless).
  No signing. A bad key or an IP off the list is refused with an auth error (HTTP 401).
- Rate [C]: 2 requests a second per API key (429 beyond), kept here by a token bucket
  shared by every call of one instance: 2 a second, bursts of 2.
- Create [C]: `POST /apiv2/order1h` (1 hour; 61,000..5,000,000 energy) or
  `POST /apiv2/order5m` (5 minutes; 61,000..650,000), body `{amount, receiveAddress}`.
  Each duration has its own limits: an order outside them is refused before any call.
  Success `{detail: {code: 10000, msg, data: {orderId, paidTRX, hash, delegateAddress,
  energy}}}`: the answer may already carry the delegation `hash` (delivery is synchronous
  [C][I]), kept on the receipt. No client order id exists: a create is never retried.
- Refusals [C]: HTTP 400 (parameters, out of range), 401 (key or IP), 403 (balance). An
  undocumented `detail.code` and every 5xx (order5m answers 503 when its pools are empty,
  but a proxy's 5xx cannot be told from it) prove nothing: ambiguous on a create.
- Status [C][3P]: `GET /apiv2/order_check?order_id=` -> `{success, code, order: {id, cost,
  target_address, energy, duration, tx_hashes[]}}`. No status enum is documented: non-empty
  `tx_hashes` is DELEGATED, empty PENDING [I] (the chain has the last word).
- Quote [C per 3P][3P shape]: `GET /apiv2/pricing?services=energy_1h|energy_5m` ->
  `data.services.<name>.periods[]`, the one `is_current`, `price` in sun per energy when
  `unit` says sun (any other unit is refused: we never guess a price's unit). Orders of
  300,000 energy or more may be charged more than quoted (the vendor's failover) [C].
- Balance [3P]: `GET /apiv2/userinfo` -> `stats.balance` (TRX).

Neighbours: `providers/base.py`, `providers/adapter.py`, `providers/http.py`, `providers/wire.py`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr, field_validator

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
from providers.http import DEFAULT_TIMEOUT, Clock, JsonResponse, RateLimiter, RetryPolicy
from providers.wire import (
    PayloadError,
    as_list,
    as_object,
    ceil_int,
    get_decimal,
    get_id,
    get_int,
    get_object,
    non_negative,
    opt_str,
    to_decimal,
    trx_to_sun,
)

BASE_URL = "https://netts.io"
MINUTES_5, HOUR = 300, 3600
REQUESTS_PER_SECOND = 2
SUCCESS = 10000
#: duration (s) -> (create path, pricing service name, smallest, largest amount) [C]
OFFERS: Mapping[int, tuple[str, str, int, int]] = {
    MINUTES_5: ("/apiv2/order5m", "energy_5m", 61_000, 650_000),
    HOUR: ("/apiv2/order1h", "energy_1h", 61_000, 5_000_000),
}
R = ErrorReason
#: documented HTTP refusals of a create [C]: nothing was bought
HTTP_REFUSALS: Mapping[int, ErrorReason] = {
    400: R.INVALID_REQUEST,
    401: R.AUTH,
    403: R.BALANCE,
}


_ACCESS = re.compile(r"\b(ip|api key|key|whitelist)\b")


class NettsAuth(KeyAuth):
    """`X-API-KEY` and the whitelisted `X-Real-IP` on every request."""

    key_header = "X-API-KEY"

    def __init__(self, api_key: SecretStr, real_ip: str) -> None:
        super().__init__(api_key)
        self._real_ip = real_ip

    def _sign(self, request: httpx.Request) -> None:
        request.headers["X-Real-IP"] = self._real_ip


# --------------------------------------------------------------------------- pure


def _message(body: Any) -> tuple[int | None, str]:
    """(code, message) of any Netts error shape: `{detail: {code, msg}}`, the older
    `{status: "error", code, message}`, FastAPI's `{detail: "text"}`, `{success: false, msg}`."""
    if not isinstance(body, Mapping):
        return None, ""
    detail = body.get("detail")
    source: Mapping[str, Any] = detail if isinstance(detail, Mapping) else body
    code = source.get("code")
    text = next(
        (v for v in (source.get("msg"), source.get("message"), detail) if isinstance(v, str)), ""
    )
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), text


def map_http_error(provider: str, status: int, body: Any) -> ProviderError | None:
    """A 4xx: the documented statuses are refusals; any other proves nothing."""
    code, text = _message(body)
    what = f"HTTP {status}" + (f" code {code}" if code is not None else "")
    message = what + (f": {text[:200]}" if text else "")
    reason = HTTP_REFUSALS.get(status)
    if reason is None:
        return None  # the generic mapping by status
    words = text.lower()
    if status == 403 and "balance" not in words and _ACCESS.search(words):
        reason = R.AUTH  # a 403 that names the key or the IP, not the balance
    return PermanentError(provider, message, reason=reason, vendor_code=str(status))


def open_detail(provider: str, body: Any) -> Mapping[str, Any]:
    """`detail.data` of a create's success; an undocumented code proves nothing."""
    detail = get_object(as_object(body), "detail")
    code = get_int(detail, "code")
    if code != SUCCESS:
        text = opt_str(detail, "msg") or ""
        raise PermanentError(
            provider,
            f"code {code}: {text[:200]}",
            reason=R.UNKNOWN,
            vendor_code=str(code),
            refusal=False,
        )
    return get_object(detail, "data")


def open_success(provider: str, body: Any) -> Mapping[str, Any]:
    """The body of a read (`success: true`); `success: false` is the vendor's refusal."""
    obj = as_object(body)
    if obj.get("success") is False or obj.get("status") == "error":
        code, text = _message(obj)
        reason = R.NOT_FOUND if "not found" in text.lower() else R.UNKNOWN
        raise PermanentError(
            provider,
            (f"code {code}: " if code is not None else "") + (text[:200] or "refused"),
            reason=reason,
            vendor_code=None if code is None else str(code),
            refusal=False,  # documented for reads only: after a create it proves nothing
        )
    return obj


def open_body(provider: str, body: Any) -> Mapping[str, Any]:
    """A create's `{detail: ...}` (its `data`) or a read's body, refusals raised."""
    obj = as_object(body)
    if "detail" in obj:
        return open_detail(provider, obj)
    return open_success(provider, obj)


def build_create(order: OrderRequest) -> dict[str, Any]:
    return {"amount": order.energy, "receiveAddress": order.receiver}


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def parse_create(data: Mapping[str, Any]) -> tuple[str, int, str | None, int]:
    """(orderId, cost in sun, delegation hash or None, energy delegated)."""
    order_id = get_id(data, "orderId")
    paid = get_decimal(data, "paidTRX")
    if paid < 0:
        raise PayloadError("field 'paidTRX' is negative")
    energy = non_negative(get_int(data, "energy", text=True), "energy")
    return order_id, trx_to_sun(paid), opt_str(data, "hash") or None, energy


def parse_price(body: Mapping[str, Any], service: str) -> Decimal:
    """The current period's price of `service`, sun per energy."""
    services = get_object(get_object(body, "data"), "services")
    entry = get_object(services, service)
    unit = opt_str(entry, "unit") or ""
    if "sun" not in unit.lower():
        raise PayloadError(f"price unit {unit!r} is not sun")
    periods = [as_object(p, "period") for p in as_list(entry.get("periods"), "periods")]
    current = [p for p in periods if p.get("is_current") is True]
    if len(current) != 1:
        raise PayloadError("not exactly one current price period")
    price = to_decimal(current[0].get("price"), "price")
    if price <= 0:
        raise PayloadError("field 'price' is not positive")
    return price


def parse_order(body: Mapping[str, Any]) -> OrderStatus:
    order = get_object(body, "order")
    hashes = tuple(
        h for h in as_list(order.get("tx_hashes") or [], "tx_hashes") if isinstance(h, str) and h
    )
    energy = non_negative(get_int(order, "energy", text=True), "energy")
    cost = order.get("cost")
    cost_sun = None if cost is None else trx_to_sun(to_decimal(cost, "cost"))
    if cost_sun is not None and cost_sun < 0:
        raise PayloadError("field 'cost' is negative")
    delivered = bool(hashes)
    return OrderStatus(
        state=OrderState.DELEGATED if delivered else OrderState.PENDING,
        delegated_energy=energy if delivered else 0,
        txids=hashes,
        cost_sun=cost_sun,
        raw=dict(body),
    )


def parse_balance(body: Mapping[str, Any]) -> int:
    """`stats.balance`, TRX, to sun rounded down."""
    return trx_to_sun(get_decimal(get_object(body, "stats"), "balance"), round_up=False)


# --------------------------------------------------------------------------- adapter


class NettsSpec(ProviderSettings):
    """Netts (netts.io): API key and the whitelisted IP the requests are made from."""

    type: Literal["netts"] = Field(description="Vendor type.")
    real_ip: str = Field(
        description="The X-Real-IP header: this host's address as whitelisted in the Netts "
        "dashboard (API tab, up to three IPv4/IPv6 addresses)."
    )

    @field_validator("real_ip")
    @classmethod
    def _an_ip(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError(f"realIp must be an IPv4 or IPv6 address, not {value!r}") from None


class NettsProvider(HttpProvider[Mapping[str, Any]]):
    type_name: ClassVar[str] = "netts"
    settings: ClassVar[type[ProviderSettings]] = NettsSpec
    unknown_order_id: ClassVar[str] = "1H000000000000"
    not_found: ClassVar[NotFoundShape | None] = NotFoundShape(
        frozenset(),
        "`success: false` with a message, no code documented "
        "(https://doc.netts.io/api/v2/endpoints/order-check.html)",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        durations=(MINUTES_5, HOUR),
        min_duration=MINUTES_5,
        max_duration=HOUR,
        min_amount=61_000,
        max_amount=5_000_000,  # order1h's; order5m takes at most 650,000 (`_check`)
    )
    unsold: ClassVar[str] = "amount or duration outside Netts' order1h/order5m limits"

    def __init__(
        self,
        name: str,
        *,
        api_key: SecretStr,
        real_ip: str,
        base_url: str | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        requests_per_second: float = REQUESTS_PER_SECOND,
    ) -> None:
        ip = NettsSpec._an_ip(real_ip)
        super().__init__(
            name,
            base_url=base_url or BASE_URL,
            auth=lambda _clock: NettsAuth(api_key, ip),
            map_error=map_http_error,
            clock=clock,
            transport=transport,
            timeout=timeout,
            retry=retry,
            headers=JSON_CONTENT,
        )
        # 2 a second per key, bursts of 2: never more than the vendor's bucket allows
        self._api.limiter = RateLimiter(
            requests_per_second, burst=max(1, int(requests_per_second)), clock=self._clock
        )

    def _open(self, response: JsonResponse) -> Mapping[str, Any]:
        return open_body(self.name, response.body)

    def _check(self, energy: int, duration: int) -> None:
        offer = OFFERS.get(duration)
        if offer is None or not offer[2] <= energy <= offer[3]:
            raise PermanentError(self.name, self.unsold, reason=R.INVALID_REQUEST)

    async def quote(self, request: QuoteRequest) -> Quote:
        self._check(request.energy, request.duration)
        service = OFFERS[request.duration][1]
        body = await self._data("GET", "/apiv2/pricing", params={"services": service})
        unit = self._parsed(parse_price, body, service)
        return self._quote(request, ceil_int(unit * request.energy), dict(body))

    async def place(self, order: OrderRequest) -> Receipt:
        self._check(order.energy, order.duration)
        path = OFFERS[order.duration][0]
        data = await self._data(
            "POST", path, content=encode(build_create(order)), create=True, retried=order.retry
        )
        order_id, cost, _, _ = self._parsed(parse_create, data, create=True)
        return self._receipt(order, order_id, cost_sun=cost, raw=dict(data))

    async def status(self, receipt: Receipt) -> OrderStatus:
        params = {"order_id": receipt.provider_order_id}
        body = await self._data("GET", "/apiv2/order_check", params=params)
        status = self._parsed(parse_order, body)
        # a little more than ordered may be delegated (131,050 for 131,000 [3P]): the
        # order is what was bought, the rest is not counted
        energy = min(status.delegated_energy, receipt.energy)
        return status.model_copy(update={"delegated_energy": energy})

    async def balance(self) -> int:
        return self._parsed(parse_balance, await self._data("GET", "/apiv2/userinfo"))
