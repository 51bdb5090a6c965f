"""CatFee emulator: `api.catfee.io`'s wire format
(https://docs.catfee.io/en/getting-started/buy-energy-via-api-on-catfee/api-overview,
https://docs.catfee.io/en/api-reference/create-order, `.../order-detail`,
`.../api-supports-idempotent-requests`, `.../getting-started/faq`).

- Auth on every call: `CF-ACCESS-KEY`, `CF-ACCESS-TIMESTAMP` (ISO-8601 UTC with ms and
  `Z`), `CF-ACCESS-SIGN` = Base64(HMAC-SHA256(secret, ts + METHOD + path?query)), checked
  against the raw path and query string as sent. Bad key, bad signature, or a timestamp
  further than the window from the emulator's clock -> HTTP 401. The window is the
  `catfee.window` reading (5 s, the FAQ's) unless `timestamp_tolerance` is given; judged
  like Mefree's (real seconds on a sped-up clock; the wall clock is accepted too).
- Parameters only in the query string, also for POST; a POST with a body is HTTP 400.
- Envelope `{code, msg, sub_code, sub_msg, data}`, `code: 0` on success; errors repeat the
  HTTP status in `code` (400, 401, 429) with a `sub_code` word (an assumption).
- `POST /v1/order?quantity&receiver&duration[&client_order_id][&activate]`: quantity >=
  65,000, duration `1h` (`durations=` widens it), `client_order_id` <= 64, `activate`
  true (default) or false. `GET /v1/order/{id}`; `GET /v1/account` (balance in sun);
  `GET /v1/estimate?quantity&duration` (`{quantity, duration, pay_amount_sun}`: the
  answer's shape is an assumption).
- Orders: `status` PAYMENT_SUCCESS -> DELEGATE_SUCCESS when delegated (with
  `delegate_hash`, `delegate_timestamp`), `confirm_status` UNCONFIRMED ->
  DELEGATION_CONFIRMED `confirm_delay` seconds later -> RECLAIM_CONFIRMED when the hour
  is over. A delegation refused for good ends DELEGATE_FAIL / DELEGATION_CONFIRMED_FAIL
  and is refunded (assumption).
- A balance too low, or an unactivated receiver with `activate=false`: by the
  `catfee.failure` reading, an order (id, nothing charged, kept in `.refused`, never
  delivered) whose `status` says it (`status`, the default), or `{code: 1, sub_code:
  INSUFFICIENT_BALANCE | ADDRESS_NOT_ACTIVATED}` with HTTP 200 (`code`).
- A repeated `client_order_id` charges nothing and answers the first order: as it was
  answered then (`catfee.replay=snapshot`, the default: "returns the previous order
  response") or as it is now (`catfee.replay=current`).

Operation names for `Faults(on=...)`: "create", "status", "balance", "price".
Construct: `CatFeeEmulator(delegator, clock=clock, api_key="cf-key", api_secret="cf-secret")`.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.core.clock import Clock
from sandbox.providers.base import ChainView, Delegator, is_tron_address
from sandbox.providers.delivery import Delivery, DeliveryState
from sandbox.providers.emulating import EmulatorBase, Handler, refund_failed
from sandbox.providers.faults import Faults
from sandbox.providers.readings import Readings

MIN_QUANTITY = 65_000
#: duration words -> seconds; the docs allow "1h" only
DURATIONS: dict[str, int] = {"1h": 3600}


@dataclass(frozen=True)
class CatFeePrices:
    """Sun per energy unit for the hour, and the activation fee."""

    hour_price_sun: int = 32
    activate_price_sun: int = 1_000_000

    def cost(self, quantity: int) -> int:
        return self.hour_price_sun * quantity

    def scaled(self, factor: float) -> CatFeePrices:
        """This table with the energy price times `factor` (the market's drift)."""
        return dataclasses.replace(self, hour_price_sun=max(1, round(self.hour_price_sun * factor)))


@dataclass
class CatFeeOrder:
    id: str
    client_order_id: str
    receiver: str
    quantity: int
    duration: int  # seconds
    amount_sun: int  # charged for the energy (the activation fee apart)
    activate_sun: int
    balance_after: int
    created_at: float
    delivery: Delivery | None  # None: refused (never paid, never delivered)
    status: str = "PAYMENT_SUCCESS"  # a refusal's status when `delivery` is None
    activate_status: str = "ALREADY_ACTIVATED"
    refunded: bool = False
    answered: dict[str, Any] = field(default_factory=dict)  # the create's answer


class CatFeeEmulator(EmulatorBase):
    """CatFee's HTTP API over a `Delegator`; inspect `.orders`, `.refused`, `.balance_sun`."""

    vendor = "catfee"

    def __init__(
        self,
        delegator: Delegator,
        *,
        clock: Clock,
        api_key: str = "catfee-sandbox-key",
        api_secret: str = "catfee-sandbox-secret",  # noqa: S107 (sandbox credential)
        balance_sun: int = 1_000_000_000,
        prices: CatFeePrices | None = None,
        faults: Faults | None = None,
        timestamp_tolerance: float | None = None,
        confirm_delay: float = 3.0,
        durations: dict[str, int] | None = None,
        seed: int = 5,
        delivery_delay: float | None = None,
        rate_limit_per_s: int | None = None,
        readings: Readings | None = None,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.prices = prices or CatFeePrices()
        self.timestamp_tolerance = timestamp_tolerance
        self.confirm_delay = confirm_delay
        self.durations = dict(durations or DURATIONS)
        #: orders sold (paid, delivered or being delivered)
        self.orders: dict[str, CatFeeOrder] = {}
        #: orders refused with a failure status (`catfee.failure=status`): never paid
        self.refused: dict[str, CatFeeOrder] = {}
        self._by_client_id: dict[str, CatFeeOrder] = {}
        super().__init__(
            delegator,
            clock=clock,
            balance_sun=balance_sun,
            faults=faults,
            seed=seed,
            delivery_delay=delivery_delay,
            rate_limit_per_s=rate_limit_per_s,
            readings=readings,
        )

    # ------------------------------------------------------------------ the market

    def charge_for(self, energy: int, seconds: int) -> int | None:
        """What an order of `energy` for `seconds` costs (sun), None if not sold."""
        return self.prices.cost(energy) if seconds in self.durations.values() else None

    def market_offers(self, prices: CatFeePrices, max_days: int) -> list[tuple[int, float, int]]:
        """(seconds, sun per unit for the whole duration, smallest order) of every rental
        sold, at `prices` (`sandbox.market.catalogue`)."""
        return [(seconds, float(prices.cost(1)), MIN_QUANTITY)
                for seconds in sorted(set(self.durations.values()))
                if seconds <= max_days * 86_400]  # fmt: skip

    # ------------------------------------------------------------------ wire helpers

    def _routes(self) -> list[tuple[str, Handler, list[str], str]]:
        return [
            ("/v1/account", self._account, ["GET"], "balance"),
            ("/v1/estimate", self._estimate, ["GET"], "price"),
            ("/v1/order", self._create, ["POST"], "create"),
            ("/v1/order/{order_id}", self._status, ["GET"], "status"),
        ]

    @staticmethod
    def _ok(data: dict[str, Any]) -> JSONResponse:
        return JSONResponse(
            {"code": 0, "msg": "success", "sub_code": "", "sub_msg": "", "data": data}
        )

    @staticmethod
    def _error(status: int, sub_code: str, message: str, code: int | None = None) -> JSONResponse:
        body = {
            "code": status if code is None else code,
            "msg": message,
            "sub_code": sub_code,
            "sub_msg": message,
            "data": None,
        }
        return JSONResponse(body, status_code=status)

    def _refusal(self, message: str) -> Response:
        return self._error(400, "INVALID_PARAMETER", message)

    def _rate_limited(self) -> Response:
        return self._error(429, "TOO_MANY_REQUESTS", "Too Many Requests")

    def sign(self, timestamp: str, method: str, path_with_query: str) -> str:
        """The signature CatFee expects (exposed for tests)."""
        prehash = (timestamp + method.upper() + path_with_query).encode()
        digest = hmac.new(self.api_secret.encode(), prehash, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    @property
    def window(self) -> float:
        if self.timestamp_tolerance is not None:
            return self.timestamp_tolerance
        return self.readings.number("catfee", "window")

    def fresh(self, signed_at: float) -> bool:
        """Within the window of the emulator's clock (real seconds on a sped-up clock) or
        of the wall clock (a signer outside the sandbox's clock)."""
        window = self.window
        speed = max(1.0, float(getattr(self.clock, "speed", 1.0)))
        if abs(self.now() - signed_at) <= window * speed:
            return True
        return abs(time.time() + self.clock_offset_s - signed_at) <= window

    async def _authenticate(self, request: Request) -> Response | None:
        key = request.headers.get("CF-ACCESS-KEY", "")
        ts = request.headers.get("CF-ACCESS-TIMESTAMP", "")
        sign = request.headers.get("CF-ACCESS-SIGN", "")
        if not hmac.compare_digest(key, self.api_key):
            return self._error(401, "INVALID_ACCESS_KEY", "Invalid CF-ACCESS-KEY")
        try:
            when = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            return self._error(401, "INVALID_TIMESTAMP", "CF-ACCESS-TIMESTAMP is not ISO-8601 UTC")
        if not self.fresh(when.timestamp()):
            return self._error(401, "TIMESTAMP_EXPIRED", "CF-ACCESS-TIMESTAMP expired")
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        path = bytes(raw_path).split(b"?", 1)[0].decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        signed = path + ("?" + query if query else "")
        if not hmac.compare_digest(sign, self.sign(ts, request.method, signed)):
            return self._error(401, "INVALID_SIGNATURE", "Invalid CF-ACCESS-SIGN")
        return None

    # ------------------------------------------------------------------ endpoints

    async def _account(self, request: Request) -> Response:
        if (denied := await self._authenticate(request)) is not None:
            return denied
        consumed = sum(o.amount_sun for o in self.orders.values() if not o.refunded)
        activated = sum(o.activate_sun for o in self.orders.values())
        return self._ok(
            {
                "wallet": "",
                "api_key": self.api_key,
                "api_secret": self.api_secret,
                "email": "sandbox@catfee.invalid",
                "telegram_id": "",
                "recharge_address": "TCatFeeSandboxRechargeAddress1111",
                "total_recharge": self.balance_sun + consumed + activated,
                "total_hour_consume": consumed,
                "total_day_consume": 0,
                "total_multiday_consume": 0,
                "total_flash_consume": 0,
                "total_activate_consume": activated,
                "total_permission_consume": 0,
                "total_subscribe_consume": 0,
                "total_bandwidth_consume": 0,
                "total_recharge_usdt": 0,
                "total_premium_consume": 0,
                "whitelist": "",
                "balance": self.balance_sun,
                "balance_usdt": 0,
            }
        )

    def _params(self, request: Request) -> tuple[int, int] | Response:
        """(quantity, seconds) from the query string, or the 400 refusing them."""
        q = request.query_params
        try:
            quantity = int(q.get("quantity", ""))
        except ValueError:
            return self._error(400, "INVALID_PARAMETER", "quantity is an integer")
        if quantity < MIN_QUANTITY:
            return self._error(400, "INVALID_PARAMETER", f"quantity must be >= {MIN_QUANTITY}")
        duration = q.get("duration", "")
        if duration not in self.durations:
            allowed = ", ".join(self.durations)
            return self._error(400, "INVALID_PARAMETER", f"duration must be one of {allowed}")
        return quantity, self.durations[duration]

    async def _estimate(self, request: Request) -> Response:
        if (denied := await self._authenticate(request)) is not None:
            return denied
        params = self._params(request)
        if isinstance(params, Response):
            return params
        quantity, seconds = params
        return self._ok(
            {
                "quantity": quantity,
                "duration": seconds // 60,
                "pay_amount_sun": self.prices.cost(quantity),
            }
        )

    async def _create(self, request: Request) -> Response:
        if (denied := await self._authenticate(request)) is not None:
            return denied
        if await request.body():
            return self._error(400, "INVALID_PARAMETER", "parameters go in the query string")
        q = request.query_params
        client_order_id = q.get("client_order_id", "")
        if len(client_order_id) > 64:
            return self._error(400, "INVALID_PARAMETER", "client_order_id longer than 64")
        if client_order_id and client_order_id in self._by_client_id:
            first = self._by_client_id[client_order_id]
            if self.reading("replay") == "snapshot":
                return self._ok(copy.deepcopy(first.answered))
            return self._ok(self._render(first))
        params = self._params(request)
        if isinstance(params, Response):
            return params
        quantity, seconds = params
        receiver = q.get("receiver", "")
        if not is_tron_address(receiver):
            return self._error(400, "INVALID_PARAMETER", "invalid receiver")
        activate = q.get("activate", "true").lower()
        if activate not in ("true", "false"):
            return self._error(400, "INVALID_PARAMETER", "activate is true or false")
        view = self.delegator if isinstance(self.delegator, ChainView) else None
        inactive = view is not None and not view.is_activated(receiver)
        activate_sun = self.prices.activate_price_sun if inactive and activate == "true" else 0
        cost = self.faults.charged(self.prices.cost(quantity), quantity)
        refusal = None
        if inactive and activate == "false":
            refusal = ("ADDRESS_NOT_ACTIVATED", "receiver is not activated")
        elif cost + activate_sun > self.balance_sun:
            refusal = ("INSUFFICIENT_BALANCE", "insufficient balance")
        now = self.clock.now()
        order = CatFeeOrder(
            id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            client_order_id=client_order_id,
            receiver=receiver,
            quantity=quantity,
            duration=seconds,
            amount_sun=0 if refusal else cost,
            activate_sun=0 if refusal else activate_sun,
            balance_after=self.balance_sun,
            created_at=now,
            delivery=None,
        )
        if refusal is not None:
            status, message = refusal
            if self.reading("failure") == "code":
                return self._error(200, status, message, code=1)
            order.status = status
            self.refused[order.id] = order
        else:
            if activate_sun:
                assert view is not None
                view.activate(receiver)
                order.activate_status = "ACTIVATED"
            self.balance_sun -= cost + activate_sun
            order.balance_after = self.balance_sun
            order.delivery = self.book.schedule(receiver, quantity, seconds, now, self.faults)
            self.orders[order.id] = order
        order.answered = self._render(order)
        if client_order_id:
            self._by_client_id[client_order_id] = order
        return self._ok(order.answered)

    async def _status(self, request: Request) -> Response:
        if (denied := await self._authenticate(request)) is not None:
            return denied
        order_id = request.path_params["order_id"]
        order = self.orders.get(order_id) or self.refused.get(order_id)
        if order is None:
            return self._error(400, "ORDER_NOT_FOUND", "order not found")
        return self._ok(self._render(order))

    # ------------------------------------------------------------------ state

    def _delivery_changed(self, delivery: Delivery, now: float) -> None:
        self.balance_sun += refund_failed(self.orders.values(), delivery)

    def status_of(self, order: CatFeeOrder) -> tuple[str, str]:
        """(status, confirm_status) of `order` at the clock's now."""
        d = order.delivery
        if d is None:
            return order.status, "UNCONFIRMED"
        if d.state is DeliveryState.FAILED:
            return "DELEGATE_FAIL", "DELEGATION_CONFIRMED_FAIL"
        first = d.first_delegated_at
        if first is None:
            return "PAYMENT_SUCCESS", "UNCONFIRMED"
        if d.state is DeliveryState.EXPIRED:
            return "DELEGATE_SUCCESS", "RECLAIM_CONFIRMED"
        confirmed = self.clock.now() >= first + self.confirm_delay
        return "DELEGATE_SUCCESS", "DELEGATION_CONFIRMED" if confirmed else "UNCONFIRMED"

    def _render(self, order: CatFeeOrder) -> dict[str, Any]:
        status, confirm_status = self.status_of(order)
        d = order.delivery
        out: dict[str, Any] = {
            "id": order.id,
            "resource_type": "ENERGY",
            "billing_type": "API",
            "source_type": "API",
            "pay_timestamp": int(order.created_at * 1000),
            "receiver": order.receiver,
            "pay_amount_sun": order.amount_sun,
            "activate_amount_sun": order.activate_sun,
            "quantity": order.quantity,
            "staked_sun": 0,
            "duration": order.duration // 60,
            "status": status,
            "activate_status": order.activate_status,
            "confirm_status": confirm_status,
            "balance": order.balance_after,
        }
        if d is not None and d.delegations:
            first = d.delegations[0]
            out["delegate_hash"] = first.txid
            out["delegate_timestamp"] = int(first.delegated_at * 1000)
            out["expired_timestamp"] = int(first.expires_at * 1000)
            if first.reclaimed_at is not None:
                out["reclaim_hash"] = hashlib.sha256(f"reclaim|{first.txid}".encode()).hexdigest()
                out["reclaim_timestamp"] = int(first.reclaimed_at * 1000)
        return out


__all__ = ["DURATIONS", "MIN_QUANTITY", "CatFeeEmulator", "CatFeeOrder", "CatFeePrices"]
