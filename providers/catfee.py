"""CatFee (api.catfee.io) adapter: signing, the one-hour order, statuses, errors.

Facts from https://docs.catfee.io/en/getting-started/buy-energy-via-api-on-catfee/api-overview,
https://docs.catfee.io/en/api-reference/create-order, `.../order-detail`,
`.../api-supports-idempotent-requests` and `.../getting-started/faq`, and third-party
clients; tags: [C] vendor docs, [3P] third party, [I] inference, [?] uncertain:

- Signing [C]: Mefree's scheme with CatFee's header names: `CF-ACCESS-SIGN =
  Base64(HMAC-SHA256(secret, ts + METHOD + pathWithQuery))`, `ts` ISO-8601 UTC with
  milliseconds and `Z`, also sent as `CF-ACCESS-TIMESTAMP`; `CF-ACCESS-KEY` is the key.
  The idempotency page says the query is not signed; the overview (EN and ZH) signs it,
  and so does every third-party client, one of which logged a real success [?]: the query
  is signed, exactly as httpx sends it (`request.url.raw_path`). The FAQ allows 5 s of
  clock difference.
- Create order [C]: `POST /v1/order?quantity=&receiver=&duration=1h&client_order_id=&activate=`,
  parameters in the query string, no body. `quantity` >= 65,000; `duration` "1h" is the
  only documented value (third-party clients send others, undocumented [3P]): only one hour
  is sold. `client_order_id` (<= 64) is an idempotency key: a repeat "returns the previous
  order response without charging or creating a new order", so creates are retried.
- Order [C][3P]: `id` (a UUID), `status`, `confirm_status`, `pay_amount_sun` (sun),
  `quantity`, `duration` in minutes, `delegate_hash`. Delivered only at `confirm_status =
  DELEGATION_CONFIRMED` (the docs: "treat an order as delivered only at
  DELEGATION_CONFIRMED"), and after it `RECLAIM_CONFIRMED`/`_FAIL` (the hour is over)
  [3P]; `DELEGATION_CONFIRMED_FAIL` is failed [3P]; `DELEGATE_SUCCESS`
  unconfirmed is delegating; anything else in progress (never success or failure on a
  value we do not know).
- Refusal statuses [3P][?]: `INSUFFICIENT_BALANCE`, `QUANTITY_TOO_HIGH`/`_LOW`,
  `ADDRESS_NOT_ACTIVATED` and `INVALID_ADDRESS` name an order that was never paid. The
  docs do not say whether a create answers them as the order's `status` (code 0) or as a
  non-zero `code`; either is read as the same refusal (`_open`): on a first create it is
  definite, on a retried one ambiguous (`providers.http.on_create`).
- Errors [C]: HTTP 400 (parameters), 401 (key, signature, or a timestamp off by > 5 s),
  429, 500. No `code` list is published [?]: a non-zero `code` is a refusal only when its
  words name the balance, the address or a parameter; any other (a third-party client
  reads 9999 as "unknown": retry with the same `client_order_id`) is ambiguous on a create.
- Quote [3P][?]: `GET /v1/estimate?quantity=&duration=` (the docs have an "Estimated Order
  Amount" page; path from two third-party clients); its answer is not documented. It is
  read as the order object's price field, `pay_amount_sun`; another shape is a PROTOCOL
  error (the quote fails, nothing is bought on a guess).
- Nile testnet [C]: `network="nile"` selects `https://nile.catfee.io` (its own account and
  keys).

Neighbours: `providers/base.py` (interface), `providers/adapter.py` (the shared adapter
plumbing), `providers/mefree.py` (the same signature), `providers/http.py`, `providers/wire.py`.
"""

from __future__ import annotations

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
from providers.mefree import format_timestamp as format_timestamp  # the same scheme as Mefree
from providers.mefree import sign as sign
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

MAINNET_BASE_URL = "https://api.catfee.io"
NILE_BASE_URL = "https://nile.catfee.io"
BASE_URLS: Mapping[str, str] = {"mainnet": MAINNET_BASE_URL, "nile": NILE_BASE_URL}
HOUR = 3600
#: the only documented `duration` [C]
DURATIONS: Mapping[int, str] = {HOUR: "1h"}
MIN_QUANTITY = 65_000

R = ErrorReason
#: order statuses that name an order never paid for [3P]: a refusal, with its reason
REFUSED_STATUSES: Mapping[str, ErrorReason] = {
    "INSUFFICIENT_BALANCE": R.BALANCE,
    "QUANTITY_TOO_HIGH": R.INVALID_REQUEST,
    "QUANTITY_TOO_LOW": R.INVALID_REQUEST,
    "ADDRESS_NOT_ACTIVATED": R.RECEIVER,
    "INVALID_ADDRESS": R.RECEIVER,
}
#: words of an error's `msg`/`sub_code`/`sub_msg` naming a refusal made before anything
#: was bought [I]; checked in this order
_REFUSAL_WORDS: tuple[tuple[tuple[str, ...], ErrorReason], ...] = (
    (("balance", "insufficient"), R.BALANCE),
    (("address", "receiver", "activat"), R.RECEIVER),
    (("param", "invalid", "quantity", "duration"), R.INVALID_REQUEST),
)
#: `confirm_status` values of a delivered order: confirmed, then (the hour over) reclaimed [C][3P]
_DELIVERED = ("DELEGATION_CONFIRMED", "RECLAIM_CONFIRMED", "RECLAIM_CONFIRMED_FAIL")
#: words saying an order with our client_order_id exists already [?]
_EXISTS = ("already exist", "duplicate", "repeat", "client_order_id exist")


class CatFeeAuth(SigningAuth):
    """Adds `CF-ACCESS-KEY`, `CF-ACCESS-TIMESTAMP` and `CF-ACCESS-SIGN` to each request."""

    key_header = "CF-ACCESS-KEY"

    def _sign(self, request: httpx.Request) -> None:
        timestamp = format_timestamp(self._clock.now())
        signed = request.url.raw_path.decode("ascii")  # path and query as sent; no body
        request.headers["CF-ACCESS-TIMESTAMP"] = timestamp
        request.headers["CF-ACCESS-SIGN"] = sign(
            self._secret.get_secret_value(), timestamp, request.method, signed
        )


# --------------------------------------------------------------------------- pure


@dataclass(frozen=True)
class CatFeeOrder:
    id: str
    status: str | None
    confirm_status: str | None
    quantity: int | None
    pay_amount_sun: int | None
    delegate_hash: str | None


def _duration(seconds: int) -> str:
    try:
        return DURATIONS[seconds]
    except KeyError:
        raise ValueError(f"CatFee sells one hour, not {seconds} s") from None


def _build_order_params(order: OrderRequest) -> dict[str, str | int]:
    """Query parameters of `POST /v1/order` (there is no body)."""
    return {
        "quantity": order.energy,
        "receiver": order.receiver,
        "duration": _duration(order.duration),
        "client_order_id": order.client_order_id,
        # default true at CatFee [C]: activation is paid only when the order asks for it
        "activate": "true" if order.activate else "false",
    }


def _classify(text: str) -> tuple[ErrorReason, bool]:
    """(reason, refusal) of an error's words; the code list is unpublished [?]."""
    low = text.lower()
    if any(word in low for word in _EXISTS):
        return R.DUPLICATE, False
    for words, reason in _REFUSAL_WORDS:
        if any(word in low for word in words):
            return reason, True
    return R.UNKNOWN, False


def _words(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    texts = (body.get(k) for k in ("msg", "sub_code", "sub_msg"))
    return " ".join(t for t in texts if isinstance(t, str))[:200]


def _code_error(provider: str, code: int, body: Mapping[str, Any]) -> ProviderError:
    words = _words(body)
    reason, refusal = _classify(words)
    return PermanentError(
        provider, f"refused (code {code}): {words}", reason=reason, vendor_code=str(code),
        refusal=refusal,
    )  # fmt: skip


def _status_refusal(provider: str, status: str) -> ProviderError:
    return PermanentError(
        provider, f"order refused: {status}", reason=REFUSED_STATUSES[status], vendor_code=status
    )


def _envelope_data(provider: str, body: Any) -> Mapping[str, Any]:
    """`data` of the `{code, msg, sub_code, sub_msg, data}` envelope (`code == 0` is
    success [3P]); a non-zero code, or an order whose `status` is a refusal, is raised."""
    obj = as_object(body)
    code = get_int(obj, "code")
    if code != 0:
        raise _code_error(provider, code, obj)
    data = get_object(obj, "data")
    status = data.get("status")
    if isinstance(status, str) and status in REFUSED_STATUSES:
        raise _status_refusal(provider, status)
    return data


def _map_http_error(provider: str, status: int, body: Any) -> ProviderError | None:
    """The FAQ's HTTP errors [C]: 400 parameters (a refusal, unless its words say the client
    order id exists), 401 key, signature or timestamp."""
    if status == 400:
        words = _words(body)
        reason, refusal = _classify(words)
        if reason is R.UNKNOWN:  # a documented 400: the parameters were refused
            reason, refusal = R.INVALID_REQUEST, True
        detail = f": {words}" if words else ""
        return PermanentError(
            provider, f"bad request{detail}", reason=reason, vendor_code="400", refusal=refusal
        )
    if status == 401:
        return PermanentError(
            provider, "key, signature or timestamp refused", reason=R.AUTH, vendor_code="401"
        )
    return None


def _parse_order(data: Mapping[str, Any]) -> CatFeeOrder:
    return CatFeeOrder(
        id=get_id(data, "id"),
        status=opt_str(data, "status"),
        confirm_status=opt_str(data, "confirm_status"),
        quantity=opt_non_negative(opt_int(data, "quantity"), "quantity"),
        pay_amount_sun=opt_non_negative(opt_int(data, "pay_amount_sun"), "pay_amount_sun"),
        delegate_hash=opt_str(data, "delegate_hash") or None,
    )


def _order_state(status: str | None, confirm_status: str | None) -> OrderState:
    """Never reports success or failure on a value we do not know."""
    if confirm_status in _DELIVERED:
        return OrderState.DELEGATED
    if confirm_status == "DELEGATION_CONFIRMED_FAIL" or status in REFUSED_STATUSES:
        return OrderState.FAILED
    if status == "DELEGATE_SUCCESS":
        return OrderState.DELEGATING
    return OrderState.PENDING  # PAYMENT_SUCCESS, DELEGATE_FAIL, UNKNOWN, unknown values


def _order_status(order: CatFeeOrder, ordered: int, raw: Mapping[str, Any]) -> OrderStatus:
    state = _order_state(order.status, order.confirm_status)
    delegated = (order.quantity or ordered) if state is OrderState.DELEGATED else 0
    return OrderStatus(
        state=state,
        delegated_energy=delegated,
        txids=(order.delegate_hash,) if order.delegate_hash else (),
        cost_sun=order.pay_amount_sun,
        raw=raw,
    )


def _parse_estimate(data: Mapping[str, Any]) -> int:
    """The estimate's total in sun, read as the order's `pay_amount_sun` [?]."""
    if "pay_amount_sun" not in data:
        raise PayloadError("estimate has no 'pay_amount_sun'")
    return non_negative(get_int(data, "pay_amount_sun", text=True), "pay_amount_sun")


def _parse_account(data: Mapping[str, Any]) -> int:
    """`balance` in sun [3P: the create answer's `balance` is sun]."""
    return get_int(data, "balance", text=True)


# --------------------------------------------------------------------------- adapter


class CatFeeSpec(ProviderSettings):
    """CatFee (api.catfee.io): HMAC-signed requests, idempotent on our client order id."""

    type: Literal["catfee"] = Field(description="Vendor type.")
    api_secret: SecretRef = Field(description="The API secret used to sign requests.")
    network: Literal["mainnet", "nile"] = Field(
        default="mainnet",
        description="mainnet (api.catfee.io) or the nile testnet (nile.catfee.io; its own "
        "account and keys).",
    )


class CatFeeProvider(HttpProvider[Mapping[str, Any]]):
    type_name: ClassVar[str] = "catfee"
    settings: ClassVar[type[ProviderSettings]] = CatFeeSpec
    unknown_order_id: ClassVar[str] = "00000000-0000-4000-8000-000000000000"
    not_found: ClassVar[NotFoundShape | None] = NotFoundShape(
        frozenset(),
        "none, CatFee documents no answer for it "
        "(https://docs.catfee.io/en/api-reference/order-detail): any refusal will do",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        durations=tuple(sorted(DURATIONS)),
        min_duration=HOUR,
        max_duration=HOUR,
        min_amount=MIN_QUANTITY,
        idempotency_key=True,
        lookup_by_client_id=False,  # no documented lookup by client_order_id
        activates_receiver=True,
    )
    unsold: ClassVar[str] = "amount or duration not sold by CatFee"

    def __init__(
        self,
        name: str,
        *,
        api_key: SecretStr,
        api_secret: SecretStr,
        network: Literal["mainnet", "nile"] = "mainnet",
        base_url: str | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            name,
            base_url=base_url or BASE_URLS[network],
            auth=lambda clock: CatFeeAuth(api_key, api_secret, clock),
            map_error=_map_http_error,
            clock=clock,
            transport=transport,
            timeout=timeout,
            retry=retry,
            headers=JSON_CONTENT,
        )

    def _open(self, response: JsonResponse) -> Mapping[str, Any]:
        return _envelope_data(self.name, response.body)

    async def quote(self, request: QuoteRequest) -> Quote:
        if request.duration not in DURATIONS:  # the amount is not checked for a quote
            raise PermanentError(self.name, "duration not sold by CatFee", reason=R.INVALID_REQUEST)
        params: dict[str, str | int] = {
            "quantity": request.energy,
            "duration": _duration(request.duration),
        }
        data = await self._data("GET", "/v1/estimate", params=params)
        return self._quote(request, self._parsed(_parse_estimate, data), dict(data))

    async def place(self, order: OrderRequest) -> Receipt:
        self._check(order.energy, order.duration)
        # client_order_id makes the create idempotent [C]: retried after ambiguous failures.
        data = await self._data(
            "POST",
            "/v1/order",
            params=_build_order_params(order),
            create=True,
            idempotent=True,
            retried=order.retry,
        )
        parsed = self._parsed(_parse_order, data, create=True)
        return self._receipt(order, parsed.id, cost_sun=parsed.pay_amount_sun, raw=dict(data))

    async def status(self, receipt: Receipt) -> OrderStatus:
        path = f"/v1/order/{quote(receipt.provider_order_id, safe='')}"
        try:
            data = await self._data("GET", path)
        except PermanentError as exc:
            if exc.vendor_code in REFUSED_STATUSES:  # an order never paid for: failed
                return OrderStatus(state=OrderState.FAILED, raw={"status": exc.vendor_code})
            raise
        parsed = self._parsed(_parse_order, data)
        return self._parsed(_order_status, parsed, receipt.energy, dict(data))

    async def balance(self) -> int:
        return self._parsed(_parse_account, await self._data("GET", "/v1/account"))
