"""itrx (itrx.io) adapter: signing, order options, statuses, prices, errors.

Facts from https://develop.itrx.io and the docs repo itrxio/Tron-energy-API-of-itrx.io
(tags as in `providers/mefree.py`):

- Signing [C][V]: POSTs carry `TIMESTAMP` (Unix seconds) and `SIGNATURE` = hex
  HMAC-SHA256 over `"{ts}&{sorted compact JSON body}"`; every call carries `API-KEY`.
  The body is serialised once here (`canonical_json`) and those exact bytes are both
  signed (by `ItrxAuth`, from `request.content`) and sent. Values are kept ASCII so that
  a server re-serialising the body with any common JSON library gets the same string.
- Periods [C][?]: `1H`, `1D`, `3D`, `30D`. A newer page says "1D-30D"; whether any `nD`
  is accepted is unproven, so only the four documented values are offered (safer).
- Create [C]: `POST /api/v1/frontend/order` with `energy_amount`, `period`,
  `receive_address`, `out_trade_no` (our client order id, only echoed back: no
  idempotency [?]), `exclusive=1`, `callback_url`, `active=1`. No create retry.
- Status [C][?]: 0 closed, 10/20/30/32 in progress, 31 partial so far, 40 done, 41 refund
  terminated, 43 abnormal termination. The doc sample calls 30 "fully delegated", which
  contradicts the table: 30 is never read as delivered (safer).
- Errors [C]: HTTP 400 with DRF field lists or `{"detail": ...}`; HTTP 200 with
  `errno` 1 (+`message`) or 404 (unknown serial). No numeric catalogue exists. On a
  create, errno 1 is a refusal only when its message names what was refused; any other
  errno or wording proves nothing and is ambiguous [?].

Neighbours: `providers/base.py`, `providers/adapter.py`, `providers/http.py`,
`providers/wire.py`, and `providers/itrx_callbacks.py` (signed delivery callbacks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr

from policies.base import SecretRef
from policies.vendors import ProviderSettings
from providers.adapter import JSON_CONTENT, HttpProvider, SigningAuth
from providers.base import (
    CallbackUnverifiable,
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
    as_list,
    as_object,
    floor_int,
    get_id,
    get_int,
    get_str,
    non_negative,
    opt_int,
    opt_non_negative,
    opt_str,
    to_decimal,
)

DEFAULT_BASE_URL = "https://itrx.io"  # the 2023 docs said https://api.itrx.io [?]
API = "/api/v1/frontend"
HOUR, DAY = 3600, 86400
PERIODS: Mapping[int, str] = {HOUR: "1H", DAY: "1D", 3 * DAY: "3D", 30 * DAY: "30D"}


def canonical_json(data: Mapping[str, Any]) -> str:
    """Keys sorted, compact separators: the string itrx signs."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign(secret: str, timestamp: str, body: str) -> str:
    """Lower-case hex HMAC-SHA256 of `"{timestamp}&{body}"`."""
    message = f"{timestamp}&{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class ItrxAuth(SigningAuth):
    """`API-KEY` on every call; `TIMESTAMP` and `SIGNATURE` over the exact body sent."""

    key_header = "API-KEY"

    def _sign(self, request: httpx.Request) -> None:
        if request.method != "GET":
            timestamp = str(int(self._clock.now()))
            body = request.content.decode("utf-8")
            request.headers["TIMESTAMP"] = timestamp
            request.headers["SIGNATURE"] = sign(self._secret.get_secret_value(), timestamp, body)


# --------------------------------------------------------------------------- pure


@dataclass(frozen=True)
class ItrxOrder:
    serial: str
    status: int
    energy: int
    delegated: int
    amount_sun: int | None
    refund_sun: int
    txids: tuple[str, ...]


@dataclass(frozen=True)
class ItrxAccount:
    balance_sun: int
    min_order_energy: int | None
    max_order_energy: int | None


def _period(duration: int) -> str:
    try:
        return PERIODS[duration]
    except KeyError:
        raise ValueError(f"itrx sells 1H, 1D, 3D or 30D, not {duration} s") from None


def _build_order_body(order: OrderRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "energy_amount": order.energy,
        "period": _period(order.duration),
        "receive_address": order.receiver,
        "out_trade_no": order.client_order_id,
    }
    if order.exclusive:
        body["exclusive"] = 1
    if order.activate:
        body["active"] = 1
    if order.callback_url:
        body["callback_url"] = order.callback_url
    return body


def _encode_body(body: Mapping[str, Any]) -> bytes:
    """The bytes to sign and send. Refuses non-ASCII text, whose escaping differs between
    JSON libraries and would make the server's signature check fail [I]."""
    text = canonical_json(body)
    if not text.isascii():
        raise ValueError("itrx order fields must be ASCII")
    return text.encode("ascii")


def _message_reason(text: str) -> ErrorReason:
    """Reason for an itrx `detail`/`message` string (no code catalogue exists [C])."""
    low = text.lower()
    if "insufficient" in low or "balance" in low or "funds" in low:
        return ErrorReason.BALANCE
    if "inactive" in low or "activat" in low or "address" in low:
        return ErrorReason.RECEIVER
    if "api not found" in low or "api key" in low or "api-key" in low or "signature" in low:
        return ErrorReason.AUTH
    if "not found" in low:
        return ErrorReason.NOT_FOUND
    return ErrorReason.INVALID_REQUEST


def _map_http_error(provider: str, status: int, body: Any) -> ProviderError | None:
    """HTTP 4xx bodies: `{"detail": "..."}` or DRF per-field lists."""
    if not isinstance(body, Mapping) or not body:
        return None
    detail = body.get("detail")
    if isinstance(detail, str):
        reason = ErrorReason.AUTH if status in (401, 403) else _message_reason(detail)
        return PermanentError(provider, detail[:200], reason=reason, vendor_code="detail")
    fields = sorted(str(k) for k in body)
    messages = [
        f"{key}: {'; '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in body.items()
    ]
    reason = ErrorReason.RECEIVER if fields == ["receive_address"] else ErrorReason.INVALID_REQUEST
    return PermanentError(
        provider,
        " | ".join(messages)[:300],
        reason=reason,
        vendor_code="field:" + ",".join(fields),
    )


def _check_errno(provider: str, body: Any) -> Mapping[str, Any]:
    """The HTTP 200 envelope: `errno` 0 is success; 1 (+message) and 404 are errors."""
    obj = as_object(body)
    errno = opt_int(obj, "errno")
    if errno in (None, 0):
        return obj
    message = obj.get("message")
    text = message[:200] if isinstance(message, str) else f"errno {errno}"
    reason = ErrorReason.NOT_FOUND if errno == 404 else _message_reason(text)
    # errno 1 is a refusal only when its message names what was refused (balance,
    # address, key); a bare "problem" or an undocumented errno proves nothing [?].
    named = reason is not ErrorReason.INVALID_REQUEST or _names_a_field(text)
    refusal = errno == 404 or (errno == 1 and named)
    raise PermanentError(provider, text, reason=reason, vendor_code=str(errno), refusal=refusal)


def _names_a_field(text: str) -> bool:
    """Whether an errno-1 message names a request field (a validation refusal)."""
    low = text.lower()
    return any(f in low for f in ("energy_amount", "period", "receive_address", "valid"))


def _parse_create(body: Mapping[str, Any]) -> tuple[str, int | None]:  # (serial, cost)
    return get_id(body, "serial"), opt_non_negative(opt_int(body, "amount"), "amount")


def _parse_order(body: Mapping[str, Any]) -> ItrxOrder:
    details = as_list(body.get("details") or [], "details")
    txids = tuple(
        h for d in details if (h := opt_str(as_object(d, "detail"), "delegate_hash")) is not None
    )
    pay = body.get("pay_amount")
    return ItrxOrder(
        serial=get_str(body, "order_no"),
        status=get_int(body, "status"),
        energy=get_int(body, "energy_amount"),
        delegated=0 if pay is None else floor_int(to_decimal(pay, "pay_amount")),
        amount_sun=opt_non_negative(opt_int(body, "amount"), "amount"),
        refund_sun=opt_int(body, "refund_amount") or 0,
        txids=txids,
    )


def _order_state(status: int, delegated: int, refund_sun: int) -> OrderState:
    if status == 40:
        return OrderState.DELEGATED
    if status in (41, 43):
        if refund_sun > 0 or status == 41:
            return OrderState.REFUNDED
        return OrderState.PARTIAL if delegated > 0 else OrderState.FAILED
    if status == 0:  # timeout closed
        return OrderState.PARTIAL if delegated > 0 else OrderState.FAILED
    if status == 31 or delegated > 0:
        return OrderState.DELEGATING
    # 10, 20, 30, 32 and unknown codes: in progress, never terminal
    return OrderState.PENDING


def _order_status(order: ItrxOrder, raw: Mapping[str, Any]) -> OrderStatus:
    state = _order_state(order.status, order.delegated, order.refund_sun)
    delegated = order.energy if state is OrderState.DELEGATED else order.delegated
    return OrderStatus(
        state=state,
        delegated_energy=max(0, delegated),
        txids=order.txids,
        cost_sun=order.amount_sun,
        refund_sun=order.refund_sun,
        raw=raw,
    )


def _parse_price(body: Mapping[str, Any]) -> int:
    """`total_price` in sun; the examples show it includes the small-order `addition`."""
    return non_negative(get_int(body, "total_price"), "total_price")


def _parse_index(body: Mapping[str, Any]) -> ItrxAccount:
    """index-data; a wrong API key gives empty data instead of an error [C]."""
    return ItrxAccount(
        balance_sun=get_int(body, "balance"),
        min_order_energy=opt_int(body, "minimum_order_energy"),
        max_order_energy=opt_int(body, "maximum_order_energy"),
    )


# --------------------------------------------------------------------------- adapter


class ItrxSpec(ProviderSettings):
    """itrx (itrx.io): POSTs signed with the API secret; supports `exclusive`."""

    type: Literal["itrx"] = Field(description="Vendor type.")
    api_secret: SecretRef = Field(description="The API secret used to sign requests.")


class ItrxProvider(HttpProvider[Mapping[str, Any]]):
    type_name: ClassVar[str] = "itrx"
    settings: ClassVar[type[ProviderSettings]] = ItrxSpec
    unknown_order_id: ClassVar[str] = "0" * 32
    not_found: ClassVar[NotFoundShape | None] = NotFoundShape(
        frozenset({"404"}),
        'HTTP 200 {errno: 404, message: "Order not found"} '
        "(https://develop.itrx.io/api/order-query.html)",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        durations=tuple(sorted(PERIODS)),
        min_duration=HOUR,
        max_duration=30 * DAY,
        min_amount=10_000,  # validation floor; the account minimum may be higher (limits())
        exclusive=True,
        partial_fill=True,
        callbacks=True,
        activates_receiver=True,
    )
    unsold: ClassVar[str] = "amount or duration not sold by itrx"

    @classmethod
    def verify_callback(
        cls, settings: ProviderSettings, headers: Mapping[str, str], body: bytes, now: float
    ) -> None:
        """A delivery callback signed with the document's `apiSecret`
        (`providers/itrx_callbacks.py`)."""
        from providers.itrx_callbacks import verify_callback  # it imports this module

        secret = getattr(settings, "api_secret", None)
        if not isinstance(secret, SecretRef) or not secret.resolved:
            raise CallbackUnverifiable("its apiSecret is not set")
        verify_callback(headers, body, secret.get(), now)

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
            auth=lambda clock: ItrxAuth(api_key, api_secret, clock),
            map_error=_map_http_error,
            clock=clock,
            transport=transport,
            timeout=timeout,
            retry=retry,
            headers=JSON_CONTENT,
        )

    def _open(self, response: JsonResponse) -> Mapping[str, Any]:
        return _check_errno(self.name, response.body)

    async def quote(self, request: QuoteRequest) -> Quote:
        self._check(request.energy, request.duration)
        params: dict[str, str | int] = {
            "period": _period(request.duration),
            "energy_amount": request.energy,
        }
        body = await self._data("GET", f"{API}/order/price", params=params)
        return self._quote(request, self._parsed(_parse_price, body), dict(body))

    async def place(self, order: OrderRequest) -> Receipt:
        self._check(order.energy, order.duration)
        try:
            content = _encode_body(_build_order_body(order))
        except ValueError as exc:
            raise PermanentError(self.name, str(exc), reason=ErrorReason.INVALID_REQUEST) from exc
        # No idempotency key at itrx: never retried after the request may have been sent.
        body = await self._data(
            "POST", f"{API}/order", content=content, create=True, retried=order.retry
        )
        serial, cost = self._parsed(_parse_create, body, create=True)
        return self._receipt(order, serial, cost_sun=cost, raw=dict(body))

    async def status(self, receipt: Receipt) -> OrderStatus:
        params = {"serial": receipt.provider_order_id}
        body = await self._data("GET", f"{API}/order/query", params=params)
        return self._parsed(_order_status, self._parsed(_parse_order, body), dict(body))

    async def limits(self) -> ItrxAccount:  # balance and this account's order size limits
        body = await self._data("GET", f"{API}/index-data")
        if not body:
            raise PermanentError(self.name, "API key not recognised", reason=ErrorReason.AUTH)
        return self._parsed(_parse_index, body)

    async def balance(self) -> int:
        return (await self.limits()).balance_sun
