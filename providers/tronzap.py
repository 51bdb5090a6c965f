"""TronZap (api.tronzap.com) adapter: body signature, services list, lookup by external id.

Facts from https://docs.tronzap.com/api/ (authentication, services, transaction-create,
transaction-check, transaction-statuses, balance, error-codes) and the official SDKs
(github.com/tron-energy-market); tags: [C] vendor docs, [S] official SDK, [I] inference,
[?] uncertain:

- Auth [C]: `Authorization: Bearer <token>` and `X-Signature` = lowercase hex of
  SHA-256 over the raw request body followed by the API secret (a plain hash, not an
  HMAC; no timestamp). `TronZapAuth` hashes the bytes httpx sends, so the two cannot
  drift apart. Every endpoint is a POST with a JSON body, reads included.
- Envelope [C]: `{code: 0, request_id, result}`; errors `{code, key, request_id, error}`,
  normally with HTTP 200; SDKs also accept them with 4xx/5xx and `code` as a string [S].
- Services [C][S]: `/v1/services` lists, per duration (hours), `min_amount`,
  `max_amount` and `price` (TRX per 1,000 energy). The docs disagree on durations ("1 or
  24" hours, "currently only 1") and on the minimum (32,000 or 60,000) [?], so the list is
  read at start (`Provider.start`, when the engine opens its providers) and again before a
  quote or an order once an hour old: it is what the adapter sells.
  Until then the class's capabilities hold: one hour, 60,000..5,000,000.
- Create [C]: `/v1/transaction/new` `{service: "energy", external_id, params: {address,
  amounts: {energy}, duration, activate_address}}`. The amount is also sent as the
  older `energy_amount` (older SDKs sent both [S]), so a server reading either finds it.
  `external_id` is our client order id. It is a lookup key, **not** documented to
  de-duplicate [C][?]: a create is never retried, and an unclear answer is resolved by
  `lookup` (`/v1/transaction/check {external_id}`), `capabilities.lookup_by_client_id`.
- Status [C]: `new -> pending -> success | failed`; `hash` is the delegation txid.
  Unknown values keep an order in progress. `failed` is FAILED with the charge the
  transaction reports: refunds are not documented ("purchases are not refundable").
- Errors [C]: codes 1 (auth), 2 (params), 5 (wallet), 6 (funds), 10 (address), 11
  (amount), 12 (duration), 20 (not found), 24/25 (activation), 35 (service unavailable,
  retry), 50 (bandwidth) are refusals made before anything was bought [I]; 500 and any
  undocumented code prove nothing (ambiguous on a create).

Neighbours: `providers/base.py`, `providers/adapter.py`, `providers/http.py`, `providers/wire.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr

from policies.base import SecretRef
from policies.vendors import ProviderSettings
from providers.adapter import JSON_CONTENT, HttpProvider
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
    get_decimal,
    get_id,
    get_int,
    get_object,
    get_str,
    non_negative,
    opt_str,
    to_int,
    trx_to_sun,
)

BASE_URL = "https://api.tronzap.com"
HOUR = 3600
#: how long a services list is trusted before it is read again (seconds)
SERVICES_TTL = 3600.0

P, T = PermanentError, TemporaryError
R = ErrorReason
#: documented code -> (error class, reason, a refusal made before anything was bought)
ERRORS: Mapping[int, tuple[type[ProviderError], ErrorReason, bool]] = {
    1: (P, R.AUTH, True),  # auth: "Incorrect token or signature"
    2: (P, R.INVALID_REQUEST, True),  # invalid_service_or_params
    5: (P, R.AUTH, True),  # wallet_not_found: the account's internal wallet
    6: (P, R.BALANCE, True),  # insufficient_funds
    10: (P, R.RECEIVER, True),  # invalid_tron_address
    11: (P, R.INVALID_REQUEST, True),  # invalid_energy_amount
    12: (P, R.INVALID_REQUEST, True),  # invalid_duration
    20: (P, R.NOT_FOUND, True),  # "Transaction not found"
    21: (P, R.INVALID_REQUEST, True),  # cannot_stop_subscription
    24: (P, R.RECEIVER, True),  # address_not_activated
    25: (P, R.RECEIVER, True),  # address_already_activated
    30: (P, R.NOT_FOUND, True),  # aml_check_not_found
    35: (T, R.UNAVAILABLE, True),  # service_unavailable: "temporarily unavailable; retry"
    50: (P, R.INVALID_REQUEST, True),  # invalid_bandwidth_amount
    500: (T, R.UNKNOWN, False),  # internal_server_error: may follow a debit
}
NOT_FOUND_CODE = 20

#: transaction status -> state [C]; anything else keeps the order in progress
STATES: Mapping[str, OrderState] = {
    "new": OrderState.PENDING,
    "pending": OrderState.DELEGATING,
    "success": OrderState.DELEGATED,
    "failed": OrderState.FAILED,
}


# --------------------------------------------------------------------------- signing


def sign(body: bytes, secret: str) -> str:
    """`X-Signature`: lowercase hex SHA-256 of the raw body followed by the secret [C]."""
    return hashlib.sha256(body + secret.encode()).hexdigest()


class TronZapAuth(httpx.Auth):
    """The bearer token and the signature of the body exactly as sent; `repr` hides both."""

    requires_request_body = True

    def __init__(self, token: SecretStr, secret: SecretStr) -> None:
        self._token, self._secret = token, secret

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        request.headers["X-Signature"] = sign(request.content, self._secret.get_secret_value())
        yield request

    def __repr__(self) -> str:
        return "<TronZapAuth>"


# --------------------------------------------------------------------------- pure


def encode(body: Mapping[str, Any]) -> bytes:
    """Compact JSON, the body of every call (signed as these bytes)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _code(value: Any) -> int | None:
    try:
        return to_int(value, "code", text=True)
    except PayloadError:
        return None


def map_error(provider: str, body: Any) -> ProviderError | None:
    """The error of a TronZap error envelope; None when `body` is not one."""
    if not isinstance(body, Mapping) or "code" not in body:
        return None
    code = _code(body.get("code"))
    if code is None or code == 0:
        return None
    key = body.get("key") if isinstance(body.get("key"), str) else ""
    text = body.get("error") if isinstance(body.get("error"), str) else ""
    message = f"code {code}" + (f" {key}" if key else "") + (f": {text[:200]}" if text else "")
    known = ERRORS.get(code)
    if known is None:  # undocumented: proves nothing
        return PermanentError(
            provider, message, reason=R.UNKNOWN, vendor_code=str(code), refusal=False
        )
    cls, reason, refusal = known
    return cls(provider, message, reason=reason, vendor_code=str(code), refusal=refusal)


def _map_http_error(provider: str, status: int, body: Any) -> ProviderError | None:
    return map_error(provider, body)


def open_envelope(provider: str, body: Any) -> Any:
    """`result` of a success; the mapped error of a refusal."""
    obj = as_object(body)
    if "code" not in obj:
        raise PayloadError("answer has no 'code' field")
    code = _code(obj["code"])
    if code is None:
        raise PayloadError("field 'code' is not an integer")
    if code != 0:
        error = map_error(provider, obj)
        assert error is not None
        raise error
    if "result" not in obj:
        raise PayloadError("success without a 'result' field")
    return obj["result"]


@dataclass(frozen=True)
class Service:
    """One row of the energy services list."""

    hours: int
    min_amount: int
    max_amount: int
    #: TRX per 1,000 energy (text, as sent), for reports only
    price: str


def parse_services(result: Any) -> tuple[Service, ...]:
    """The energy rows of `/v1/services`, shortest first. `min_energy`/`max_energy` are
    the deprecated spellings of `min_amount`/`max_amount` [S]."""
    rows = as_list(as_object(result, "result").get("energy"), "energy")
    out: list[Service] = []
    for item in rows:
        row = as_object(item, "energy service")
        lo = row.get("min_amount", row.get("min_energy"))
        hi = row.get("max_amount", row.get("max_energy"))
        hours = to_int(row.get("duration"), "duration", text=True)
        low, high = to_int(lo, "min_amount", text=True), to_int(hi, "max_amount", text=True)
        if hours <= 0 or low <= 0 or high < low:
            raise PayloadError("an energy service with an empty range")
        out.append(Service(hours, low, high, str(row.get("price", ""))))
    if not out:
        raise PayloadError("no energy service listed")
    return tuple(sorted(out, key=lambda s: s.hours))


def capabilities_of(services: Sequence[Service]) -> Capabilities:
    """What the listed services sell: their durations, and the amounts every one takes."""
    return Capabilities(
        durations=tuple(s.hours * HOUR for s in services),
        min_duration=services[0].hours * HOUR,
        max_duration=services[-1].hours * HOUR,
        min_amount=max(s.min_amount for s in services),
        max_amount=min(s.max_amount for s in services),
        lookup_by_client_id=True,
        activates_receiver=True,
    )


def build_create(order: OrderRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "address": order.receiver,
        "amounts": {"energy": order.energy},
        "energy_amount": order.energy,
        "duration": order.duration // HOUR,
    }
    if order.activate:
        params["activate_address"] = True
    return {"service": "energy", "external_id": order.client_order_id, "params": params}


def build_calculate(request: QuoteRequest) -> dict[str, Any]:
    return {
        "address": request.receiver,
        "amount": request.energy,
        "duration": request.duration // HOUR,
    }


def parse_calculate(result: Any) -> int:
    """`total` (price plus any activation fee), TRX, to sun rounded up."""
    return trx_to_sun(non_negative_decimal(as_object(result, "result"), "total"))


def non_negative_decimal(data: Mapping[str, Any], key: str) -> Decimal:
    value = get_decimal(data, key)
    if value < 0:
        raise PayloadError(f"field {key!r} is negative")
    return value


@dataclass(frozen=True)
class Transaction:
    id: str
    external_id: str | None
    status: str
    receiver: str
    energy: int
    hours: int
    cost_sun: int | None
    hash: str | None
    raw: Mapping[str, Any]


def parse_transaction(result: Any) -> Transaction:
    obj = as_object(result, "result")
    params = get_object(obj, "params")
    amounts = params.get("amounts")
    if isinstance(amounts, Mapping) and amounts.get("energy") is not None:
        energy = to_int(amounts["energy"], "amounts.energy", text=True)
    elif params.get("amount") is not None:
        energy = get_int(params, "amount", text=True)
    else:
        energy = get_int(params, "energy_amount", text=True)
    cost = None
    if obj.get("amount") is not None:
        cost = trx_to_sun(non_negative_decimal(obj, "amount"))
    return Transaction(
        id=get_id(obj, "id"),
        external_id=opt_str(obj, "external_id") or None,
        status=get_str(obj, "status"),
        receiver=get_str(params, "address"),
        energy=non_negative(energy, "energy"),
        hours=get_int(params, "duration", text=True),
        cost_sun=cost,
        hash=opt_str(obj, "hash") or None,
        raw=dict(obj),
    )


def order_status(tx: Transaction) -> OrderStatus:
    state = STATES.get(tx.status, OrderState.PENDING)
    return OrderStatus(
        state=state,
        delegated_energy=tx.energy if state is OrderState.DELEGATED else 0,
        txids=(tx.hash,) if tx.hash else (),
        cost_sun=tx.cost_sun,
        raw=tx.raw,
    )


def parse_balance(result: Any) -> int:
    """`balance`: TRX as a decimal string [S], to sun rounded down."""
    return trx_to_sun(get_decimal(as_object(result, "result"), "balance"), round_up=False)


# --------------------------------------------------------------------------- adapter


class TronZapSpec(ProviderSettings):
    """TronZap (api.tronzap.com): bearer token and a signed body; orders found by our id."""

    type: Literal["tronzap"] = Field(description="Vendor type.")
    api_secret: SecretRef = Field(description="The API secret the request bodies are signed with.")


class TronZapProvider(HttpProvider[Any]):
    type_name: ClassVar[str] = "tronzap"
    settings: ClassVar[type[ProviderSettings]] = TronZapSpec
    unknown_order_id: ClassVar[str] = "energyctl-check-no-such-transaction"
    not_found: ClassVar[NotFoundShape | None] = NotFoundShape(
        frozenset({str(NOT_FOUND_CODE)}),
        'code 20 "Transaction not found" (https://docs.tronzap.com/api/error-codes.html)',
    )
    #: until the services list is read: one hour, the SDK README's "from 60000" and the
    #: services fixture's 5,000,000 (https://docs.tronzap.com/api/services.html)
    capabilities: ClassVar[Capabilities] = Capabilities(
        durations=(HOUR,),
        min_duration=HOUR,
        max_duration=HOUR,
        min_amount=60_000,
        max_amount=5_000_000,
        lookup_by_client_id=True,
        activates_receiver=True,
    )
    unsold: ClassVar[str] = "amount or duration not in TronZap's services list"

    def __init__(
        self,
        name: str,
        *,
        api_key: SecretStr,
        api_secret: SecretStr,
        base_url: str | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        requests_per_second: float | None = None,
    ) -> None:
        super().__init__(
            name,
            base_url=base_url or BASE_URL,
            auth=lambda _clock: TronZapAuth(api_key, api_secret),
            map_error=_map_http_error,
            clock=clock,
            transport=transport,
            timeout=timeout,
            retry=retry,
            headers=JSON_CONTENT,
            requests_per_second=requests_per_second,
        )
        self.services: tuple[Service, ...] | None = None
        self._services_at = 0.0

    def _open(self, response: JsonResponse) -> Any:
        return open_envelope(self.name, response.body)

    async def _post(self, path: str, body: Mapping[str, Any], **kw: Any) -> Any:
        return await self._data("POST", path, content=encode(body), **kw)

    async def read_services(self) -> tuple[Service, ...]:
        """The services list, read when missing or older than `SERVICES_TTL`; the
        instance's capabilities become what it lists."""
        now = self._clock.now()
        if self.services is None or now - self._services_at > SERVICES_TTL:
            result = await self._post("/v1/services", {})
            self.services = self._parsed(parse_services, result)
            self._services_at = now
            # the class holds the documented fallback; this account sells what it lists
            self.capabilities = capabilities_of(self.services)  # type: ignore[misc]
        return self.services

    async def start(self) -> None:
        """The services list, read when the engine opens its providers."""
        await self.read_services()

    async def _sold(self, energy: int, duration: int) -> None:
        services = await self.read_services()
        fits = any(
            s.hours * HOUR == duration and s.min_amount <= energy <= s.max_amount for s in services
        )
        if not fits:
            raise PermanentError(self.name, self.unsold, reason=R.INVALID_REQUEST)

    async def quote(self, request: QuoteRequest) -> Quote:
        await self._sold(request.energy, request.duration)
        result = await self._post("/v1/calculate", build_calculate(request))
        total = self._parsed(parse_calculate, result)
        return self._quote(request, total, dict(result) if isinstance(result, Mapping) else {})

    async def place(self, order: OrderRequest) -> Receipt:
        await self._sold(order.energy, order.duration)
        result = await self._post(
            "/v1/transaction/new", build_create(order), create=True, retried=order.retry
        )
        tx = self._parsed(parse_transaction, result, create=True)
        return self._receipt(order, tx.id, cost_sun=tx.cost_sun, raw=tx.raw)

    async def status(self, receipt: Receipt) -> OrderStatus:
        result = await self._post("/v1/transaction/check", {"id": receipt.provider_order_id})
        return order_status(self._parsed(parse_transaction, result))

    async def lookup(self, client_order_id: str) -> Receipt | None:
        """The transaction created with `external_id` = our client order id, or None."""
        try:
            result = await self._post("/v1/transaction/check", {"external_id": client_order_id})
        except PermanentError as exc:
            if exc.vendor_code == str(NOT_FOUND_CODE):
                return None
            raise
        tx = self._parsed(parse_transaction, result)
        if tx.external_id not in (None, client_order_id):
            raise TemporaryError(
                self.name,
                f"lookup of {client_order_id!r} answered transaction {tx.id} of another id",
                reason=R.PROTOCOL,
            )
        return Receipt(
            provider=self.name,
            client_order_id=client_order_id,
            provider_order_id=tx.id,
            receiver=tx.receiver,
            energy=tx.energy,
            duration=tx.hours * HOUR,
            cost_sun=tx.cost_sun,
            raw=tx.raw,
        )

    async def balance(self) -> int:
        return self._parsed(parse_balance, await self._post("/v1/balance", {}))
