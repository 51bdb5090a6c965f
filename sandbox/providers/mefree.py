"""Mefree emulator: `api.mefree.net`'s wire format (https://docs.mefree.net/api/create-order).

- Auth on every call: `MF-ACCESS-KEY`, `MF-ACCESS-TIMESTAMP` (ISO-8601 UTC with ms and
  `Z`), `MF-ACCESS-SIGN` = Base64(HMAC-SHA256(secret, ts + METHOD + path?query [+ body])),
  checked against the raw path and query string as sent. Bad key, bad signature, or a
  timestamp further than the window from the clock -> HTTP 401. The window is the
  `mefree.window` reading (5 s, the Java guide's "not older than 5 seconds") unless
  `timestamp_tolerance` is given; on a sped-up clock (`--speed 60`) it is judged in real
  seconds, and a timestamp within the window of the wall clock is accepted too (a signer
  outside the sandbox's clock, e.g. an engine run against `--world-only`).
- Envelope `{code, msg, sub_code, sub_msg, data}`, `code: 0` on success; errors repeat the
  HTTP status in `code` (400, 401, 404, 429) with a `sub_code` word (an assumption).
- `POST /api/order?quantity|count&target_address&period[&client_order_id]` (query string,
  no body); `GET /api/order/{pay_hash}`; `GET /api/config` (prices and balance).
- Orders: `status` TRANSFER_SUCCESS -> DELEGATE_SUCCESS when delegated, `confirm_status`
  UNCONFIRMED -> DELEGATION_CONFIRMED `confirm_delay` seconds later; a refused delegation
  ends DELEGATE_FAILED and is refunded (assumption). Reusing `client_order_id` charges
  nothing and returns the existing order unchanged (reading `mefree.duplicate=existing`,
  the default) or `{code: 1, msg: INVALID_PARAMETERS, sub_msg: "client_order_id already
  exists"}` with HTTP 200 (`mefree.duplicate=error`) or the same as a 400
  (`mefree.duplicate=error400`). `mefree.envelope=bare` answers successes without the
  envelope, as the create-order page shows.

Operation names for `Faults(on=...)`: "create", "status", "balance".
Construct: `MefreeEmulator(delegator, clock=clock, api_key="mf-key", api_secret="mf-secret")`.
"""

from __future__ import annotations

import base64
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
from sandbox.providers.base import Delegator, is_tron_address
from sandbox.providers.delivery import Delivery, DeliveryState
from sandbox.providers.emulating import EmulatorBase, Handler, refund_failed
from sandbox.providers.faults import Faults
from sandbox.providers.readings import Readings

PAY_ADDRESS = "TWZEhq5JuUVvGtutNgnRBATbF8BnHGyn4S"  # the emulated platform address
MIN_QUANTITY = 65_000


@dataclass(frozen=True)
class MefreePrices:
    """Sun per energy unit, as `/api/config` reports them."""

    flash_price_sun: int = 48  # period 0, "fast charge" (emulated as one hour)
    hour_price_sun: int = 45  # period 1
    day_price_sun: int = 56  # period 2 (the cheapest day in the sandbox's market)
    multi_day_price_sun: int = 58  # periods 3..30, per day
    activate_price_sun: int = 1_500_000
    subscribe_price_sun: int = 3_500_000
    bandwidth_price_sun: int = 1_000

    def cost(self, quantity: int, period: int) -> int:
        if period == 0:
            return self.flash_price_sun * quantity
        if period == 1:
            return self.hour_price_sun * quantity
        if period == 2:
            return self.day_price_sun * quantity
        return self.multi_day_price_sun * quantity * period


def period_seconds(period: int) -> int:
    """0 (fast charge) and 1 -> one hour; 2 -> one day; n >= 3 -> n days."""
    return 3600 if period <= 1 else 86_400 * (1 if period == 2 else period)


@dataclass
class MefreeOrder:
    pay_hash: str
    client_order_id: str
    target: str
    quantity: int
    period: int
    amount_sun: int
    balance_after: int
    created_at: float
    delivery: Delivery
    refunded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class MefreeEmulator(EmulatorBase):
    """Mefree's HTTP API over a `Delegator`; inspect `.orders` and `.balance_sun`."""

    vendor = "mefree"

    def __init__(
        self,
        delegator: Delegator,
        *,
        clock: Clock,
        api_key: str = "mefree-sandbox-key",
        api_secret: str = "mefree-sandbox-secret",  # noqa: S107 (sandbox credential)
        balance_sun: int = 1_000_000_000,
        prices: MefreePrices | None = None,
        faults: Faults | None = None,
        timestamp_tolerance: float | None = None,
        confirm_delay: float = 3.0,
        energy_per_transfer: int = 65_000,
        seed: int = 1,
        delivery_delay: float | None = None,
        rate_limit_per_s: int | None = None,
        readings: Readings | None = None,
    ) -> None:
        """`timestamp_tolerance`: seconds a signed timestamp may be off; None: the
        `mefree.window` reading (5 s unless chosen)."""
        self.api_key = api_key
        self.api_secret = api_secret
        self.prices = prices or MefreePrices()
        self.timestamp_tolerance = timestamp_tolerance
        self.confirm_delay = confirm_delay
        self.energy_per_transfer = energy_per_transfer
        self.orders: dict[str, MefreeOrder] = {}
        self._by_client_id: dict[str, str] = {}
        self._created_at = clock.now()
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

    # ------------------------------------------------------------------ wire helpers

    def _routes(self) -> list[tuple[str, Handler, list[str], str]]:
        return [
            ("/api/config", self._config, ["GET"], "balance"),
            ("/api/order", self._create, ["POST"], "create"),
            ("/api/order/{pay_hash}", self._status, ["GET"], "status"),
        ]

    def _ok(self, data: dict[str, Any]) -> JSONResponse:
        if self.reading("envelope") == "bare":  # the create-order page shows a bare object
            return JSONResponse(data)
        return JSONResponse(
            {"code": 0, "msg": "success", "sub_code": "", "sub_msg": "", "data": data}
        )

    @staticmethod
    def _error(status: int, sub_code: str, message: str) -> JSONResponse:
        body = {
            "code": status,
            "msg": message,
            "sub_code": sub_code,
            "sub_msg": message,
            "data": None,
        }
        return JSONResponse(body, status_code=status)

    def _refusal(self, message: str) -> Response:
        return self._error(400, "INVALID_PARAMETER", message)

    def _rate_limited(self) -> Response:
        return self._error(429, "TOO_MANY_REQUESTS", "Too many requests")

    def sign(self, timestamp: str, method: str, path_with_query: str, body: str = "") -> str:
        """The signature Mefree expects (exposed for tests and for the docs)."""
        prehash = (timestamp + method.upper() + path_with_query + body).encode()
        digest = hmac.new(self.api_secret.encode(), prehash, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    @property
    def window(self) -> float:
        """Seconds a signed timestamp may be off (real seconds on a sped-up clock)."""
        if self.timestamp_tolerance is not None:
            return self.timestamp_tolerance
        return self.readings.number("mefree", "window")

    def fresh(self, signed_at: float) -> bool:
        """Whether a request signed at `signed_at` (epoch seconds) is within the window.

        Against the emulator's clock, with the window in real seconds: at `--speed 60` a
        request that takes 0.1 s is 6 emulated seconds old. Or against the wall clock: a
        signer that does not share the sandbox's clock (`--world-only`, a served world on
        a virtual clock) signs with the real time.
        """
        window = self.window
        speed = max(1.0, float(getattr(self.clock, "speed", 1.0)))
        if abs(self.now() - signed_at) <= window * speed:
            return True
        return abs(self.wall_now() + self.clock_offset_s - signed_at) <= window

    def wall_now(self) -> float:
        """The real time a signer outside the sandbox's clock uses (a seam for tests)."""
        return time.time()

    async def _authenticate(self, request: Request) -> Response | None:
        key = request.headers.get("MF-ACCESS-KEY", "")
        ts = request.headers.get("MF-ACCESS-TIMESTAMP", "")
        sign = request.headers.get("MF-ACCESS-SIGN", "")
        if not hmac.compare_digest(key, self.api_key):
            return self._error(401, "INVALID_ACCESS_KEY", "Invalid MF-ACCESS-KEY")
        try:
            when = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            return self._error(401, "INVALID_TIMESTAMP", "MF-ACCESS-TIMESTAMP is not ISO-8601 UTC")
        if not self.fresh(when.timestamp()):
            return self._error(401, "TIMESTAMP_EXPIRED", "MF-ACCESS-TIMESTAMP expired")
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        path = bytes(raw_path).split(b"?", 1)[0].decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        signed_path = path + ("?" + query if query else "")
        body = (await request.body()).decode("utf-8", "replace")
        candidates = {self.sign(ts, request.method, signed_path, body)}
        if body:  # a body is appended when present (third-party note); also accept without
            candidates.add(self.sign(ts, request.method, signed_path))
        if not any(hmac.compare_digest(sign, c) for c in candidates):
            return self._error(401, "INVALID_SIGNATURE", "Invalid MF-ACCESS-SIGN")
        return None

    # ------------------------------------------------------------------ endpoints

    async def _config(self, request: Request) -> Response:
        if (denied := await self._authenticate(request)) is not None:
            return denied
        p = self.prices
        consumed = sum(o.amount_sun for o in self.orders.values() if not o.refunded)
        return self._ok(
            {
                "api_key": self.api_key,
                "api_secret": self.api_secret,
                "recharge_address": PAY_ADDRESS,
                "activate_price_sun": p.activate_price_sun,
                "hour_price_sun": p.hour_price_sun,
                "day_price_sun": p.day_price_sun,
                "subscribe_price_sun": p.subscribe_price_sun,
                "multi_day_price_sun": p.multi_day_price_sun,
                "flash_price_sun": p.flash_price_sun,
                "bandwidth_price_sun": p.bandwidth_price_sun,
                "total_recharge": self.balance_sun + consumed,
                "total_normal_consume": consumed,
                **{
                    f"total_{k}_consume": 0
                    for k in ("batch", "subscribe", "host", "activate", "realtime", "flash")
                },
                "total_bandwidth_consume": 0,
                "total_permission_consume": 0,
                "whitelist": "",
                "created_at": _iso(self._created_at),
                "updated_at": _iso(self.clock.now()),
                "account_balance": self.balance_sun,
            }
        )

    async def _create(self, request: Request) -> Response:
        if (denied := await self._authenticate(request)) is not None:
            return denied
        q = request.query_params
        client_order_id = q.get("client_order_id", "")
        if len(client_order_id) > 64:
            return self._error(400, "INVALID_PARAMETER", "client_order_id longer than 64")
        if client_order_id and client_order_id in self._by_client_id:
            if self.reading("duplicate") == "error":
                return JSONResponse(
                    {
                        "code": 1,
                        "msg": "INVALID_PARAMETERS",
                        "sub_code": "INVALID_PARAMETERS",
                        "sub_msg": "client_order_id already exists",
                        "data": None,
                    }
                )
            if self.reading("duplicate") == "error400":
                return self._error(400, "INVALID_PARAMETERS", "client_order_id already exists")
            return self._ok(self._render(self.orders[self._by_client_id[client_order_id]]))
        if ("quantity" in q) == ("count" in q):
            return self._error(400, "INVALID_PARAMETER", "exactly one of quantity, count")
        try:
            quantity = (
                int(q["quantity"])
                if "quantity" in q
                else int(q["count"]) * self.energy_per_transfer
            )
            period = int(q.get("period", ""))
        except ValueError:
            return self._error(400, "INVALID_PARAMETER", "quantity, count and period are integers")
        if "count" in q and quantity <= 0:
            return self._error(400, "INVALID_PARAMETER", "count must be >= 1")
        if quantity < MIN_QUANTITY:
            return self._error(400, "INVALID_PARAMETER", f"quantity must be >= {MIN_QUANTITY}")
        if not 0 <= period <= 30:
            return self._error(400, "INVALID_PARAMETER", "period must be 0..30")
        target = q.get("target_address", "")
        if not is_tron_address(target):
            return self._error(400, "INVALID_PARAMETER", "invalid target_address")
        cost = self.faults.charged(self.prices.cost(quantity, period), quantity)
        if cost > self.balance_sun:
            return self._error(400, "INSUFFICIENT_BALANCE", "Insufficient balance")
        now = self.clock.now()
        self.balance_sun -= cost
        delivery = self.book.schedule(target, quantity, period_seconds(period), now, self.faults)
        order = MefreeOrder(
            pay_hash=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            client_order_id=client_order_id,
            target=target,
            quantity=quantity,
            period=period,
            amount_sun=cost,
            balance_after=self.balance_sun,
            created_at=now,
            delivery=delivery,
        )
        self.orders[order.pay_hash] = order
        if client_order_id:
            self._by_client_id[client_order_id] = order.pay_hash
        return self._ok(self._render(order))

    async def _status(self, request: Request) -> Response:
        if (denied := await self._authenticate(request)) is not None:
            return denied
        order = self.orders.get(request.path_params["pay_hash"])
        if order is None:
            return self._error(404, "ORDER_NOT_FOUND", "Order not found")
        return self._ok(self._render(order))

    # ------------------------------------------------------------------ state

    def _delivery_changed(self, delivery: Delivery, now: float) -> None:
        self.balance_sun += refund_failed(self.orders.values(), delivery)

    def status_of(self, order: MefreeOrder) -> tuple[str, str]:
        """(status, confirm_status) of `order` at the clock's now."""
        d = order.delivery
        if d.state is DeliveryState.FAILED:
            return "DELEGATE_FAILED", "UNCONFIRMED"
        first = d.first_delegated_at
        if first is None:
            return "TRANSFER_SUCCESS", "UNCONFIRMED"
        confirmed = self.clock.now() >= first + self.confirm_delay
        return "DELEGATE_SUCCESS", "DELEGATION_CONFIRMED" if confirmed else "UNCONFIRMED"

    def _render(self, order: MefreeOrder) -> dict[str, Any]:
        status, confirm_status = self.status_of(order)
        d = order.delivery
        return {
            "client_order_id": order.client_order_id,
            "pay_hash": order.pay_hash,
            "timestamp": int(order.created_at),
            "pay_address": PAY_ADDRESS,
            "delegate_hash": d.delegations[0].txid if d.delegations else "",
            "amount_sun": order.amount_sun,
            "energy_to_address": order.target,
            "energy_quantity": order.quantity,
            "energy_period": order.period,
            "energy_expired_timestamp": int(d.delegations[0].expires_at) if d.delegations else 0,
            "status": status,
            "confirm_status": confirm_status,
            "activate_status": "DEACTIVATE",
            "balance": order.balance_after,
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
