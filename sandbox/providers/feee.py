"""feee.io emulator: `feee.io/open`'s wire format (https://feee.io/doc/en-US/api/orderv2/submit.html,
`.../orderv3/create.html`, `.../orderv2/query.html`, `.../order/price.html`,
`.../orderv3/price.html`, `.../order/cancel.html`, `.../intro/structure.html`).

- Mounted at `/open` (`base_path`). Auth: the `key` header must match, else `{code: 1,
  msg: "invalid key", request_id, data: null}` (the shape is an assumption).
- Envelope `{code, msg, request_id, data}`, `code: 0` / `msg: "ok"` on success, a fresh
  `request_id` UUID on every answer; errors `code != 0` with HTTP 200, or HTTP 400 under
  the `feee.error_status=400` reading.
- `POST /v2/order/submit` (JSON): `resource_type` 1 (0 is refused: "only 1 is allowed"),
  `receive_address`, `resource_value` (>= the `feee.minimum` reading), `rent_duration` +
  `rent_time_unit` (`d` 1..30, `h` 1 or 3, `m` 10), or `rent_time_second` (> 600, a
  multiple of 3, one of `allowed_seconds`) which overrides them. `POST /v3/order/create`
  (`/v3/order/submit` under `feee.v3_path=submit`, both under `both`): the fixed
  five-minute order. `GET /v2/order/query?order_no=`, `POST /v2/order/cancel {order_no}`
  (only an order not delegated, 300 s after its creation), `GET /v2/order/price`,
  `GET /v3/order/price`, `GET /v2/api/query` (`trx_money` in TRX, allowed durations).
- Price [C formula]: `pay_amount = resource_value x price_in_sun / 1e6 + service_amount`,
  TRX as JSON numbers; `service_amount` 0.56 TRX below 65,000 energy (assumption: the
  docs' examples disagree on when it is due).
- Lifecycle: created `status 4, business_status 1` -> delegated `6, 2` (`freeze_time`,
  `frozen_tx_id`, `frozen_resource_value`; `15` while partly delegated) -> `9, 3` when the
  rental is over. A delegation refused for good: `7` -> `13` (refund pending, 60 s) ->
  `14, 4` with `refund_amount`. Cancelled: `12, 4`, refunded in full.

Operation names for `Faults(on=...)`: "create", "status", "price", "balance", "cancel".
Construct: `FeeeEmulator(delegator, clock=clock, api_key="K")`.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.core.clock import Clock
from sandbox.providers.base import Delegator, is_tron_address
from sandbox.providers.delivery import Delivery, DeliveryState
from sandbox.providers.emulating import EmulatorBase, Handler
from sandbox.providers.faults import Faults
from sandbox.providers.readings import Readings

FIVE_MINUTES = 300
SERVICE_SUN, SERVICE_BELOW = 560_000, 65_000
REFUND_DELAY = 60.0  # seconds in "refund pending" (the docs: within 15 minutes)
UNIT_SECONDS = {"d": 86_400, "h": 3600, "m": 60}
UNIT_VALUES = {"d": range(1, 31), "h": (1, 3), "m": (10,)}


@dataclass(frozen=True)
class FeeePrices:
    """Sun per energy unit for the whole rental, by duration."""

    five_minutes: int = 50  # V3
    ten_minutes: int = 52
    hour: int = 47
    three_hours: int = 58
    day: int = 95
    per_day: int = 57  # 2..30 days, per day

    def unit(self, seconds: int) -> int:
        """The price of the shortest documented rental at least `seconds` long."""
        if seconds <= FIVE_MINUTES:
            return self.five_minutes
        if seconds <= 600:
            return self.ten_minutes
        if seconds <= 3600:
            return self.hour
        if seconds <= 3 * 3600:
            return self.three_hours
        if seconds <= 86_400:
            return self.day
        days = -(-seconds // 86_400)
        return self.per_day * days

    def scaled(self, factor: float) -> FeeePrices:
        def scale(value: int) -> int:
            return max(1, round(value * factor))

        return FeeePrices(*(scale(getattr(self, f.name)) for f in dataclasses.fields(self)))


@dataclass
class FeeeOrder:
    order_no: str
    receive_address: str
    resource_value: int
    rent_duration: int
    rent_time_unit: str
    rent_time_second: int
    seconds: int
    price_in_sun: int
    amount_sun: int  # charged, sun (pay_amount in TRX)
    created_at: float
    delivery: Delivery
    version: int = 2
    refunded: bool = False
    failed_at: float | None = None
    cancelled_at: float | None = None


def _trx(sun: int) -> float:
    """Sun as a TRX JSON number (at most six decimals)."""
    return float(Decimal(sun) / 1_000_000)


class FeeeEmulator(EmulatorBase):
    """feee.io's HTTP API over a `Delegator`; inspect `.orders` and `.balance_sun`."""

    vendor = "feee"

    def __init__(
        self,
        delegator: Delegator,
        *,
        clock: Clock,
        api_key: str = "feee-sandbox-key",
        balance_sun: int = 1_000_000_000,
        prices: FeeePrices | None = None,
        faults: Faults | None = None,
        allowed_seconds: tuple[int, ...] = (1200, 1800, 7200),
        base_path: str = "/open",
        seed: int = 6,
        delivery_delay: float | None = None,
        rate_limit_per_s: int | None = None,
        readings: Readings | None = None,
    ) -> None:
        self.api_key = api_key
        self.prices = prices or FeeePrices()
        self.allowed_seconds = allowed_seconds
        self.base_path = base_path.rstrip("/")
        self.orders: dict[str, FeeeOrder] = {}
        self._sequence = 0
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
        if seconds != FIVE_MINUTES and seconds not in self._unit_durations():
            return None
        return self._cost(energy, self.prices.unit(seconds))

    def market_offers(self, prices: FeeePrices, max_days: int) -> list[tuple[int, float, int]]:
        """(seconds, sun per unit for the whole duration, smallest order) of every rental
        sold, at `prices`, without the small-order service fee (`sandbox.market.catalogue`)."""
        minimum = int(self.readings.number("feee", "minimum"))
        durations = sorted({FIVE_MINUTES, *self._unit_durations()})
        return [(d, float(prices.unit(d)), minimum) for d in durations if d <= max_days * 86_400]

    @staticmethod
    def _unit_durations() -> set[int]:
        return {n * UNIT_SECONDS[u] for u, values in UNIT_VALUES.items() for n in values}

    def _cost(self, energy: int, price: int) -> int:
        return energy * price + (SERVICE_SUN if energy < SERVICE_BELOW else 0)

    # ------------------------------------------------------------------ wire helpers

    def _routes(self) -> list[tuple[str, Handler, list[str], str]]:
        v3 = self.reading("v3_path")
        routes: list[tuple[str, Handler, list[str], str]] = [
            ("/v2/order/submit", self._submit_v2, ["POST"], "create"),
            ("/v2/order/query", self._query, ["GET"], "status"),
            ("/v2/order/cancel", self._cancel, ["POST"], "cancel"),
            ("/v2/order/price", self._price_v2, ["GET"], "price"),
            ("/v3/order/price", self._price_v3, ["GET"], "price"),
            ("/v2/api/query", self._api_query, ["GET"], "balance"),
        ]
        if v3 in ("create", "both"):
            routes.append(("/v3/order/create", self._submit_v3, ["POST"], "create"))
        if v3 in ("submit", "both"):
            routes.append(("/v3/order/submit", self._submit_v3, ["POST"], "create"))
        return [
            (self.base_path + path, handler, methods, op) for path, handler, methods, op in routes
        ]

    def _request_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _ok(self, data: Any) -> JSONResponse:
        return JSONResponse(
            {"code": 0, "msg": "ok", "request_id": self._request_id(), "data": data}
        )

    def _error(self, message: str, code: int = 1) -> JSONResponse:
        status = 400 if self.reading("error_status") == "400" else 200
        body = {"code": code, "msg": message, "request_id": self._request_id(), "data": None}
        return JSONResponse(body, status_code=status)

    def _refusal(self, message: str) -> Response:
        return self._error(message)

    def _rate_limited(self) -> Response:
        body = {"code": 429, "msg": "too many requests", "request_id": self._request_id()}
        return JSONResponse({**body, "data": None}, status_code=429)

    def _authenticated(self, request: Request) -> bool:
        return request.headers.get("key", "") == self.api_key

    async def _json(self, request: Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # ------------------------------------------------------------------ endpoints

    async def _api_query(self, request: Request) -> Response:
        if not self._authenticated(request):
            return self._error("invalid key")
        return self._ok(
            {
                "trx_money": _trx(self.balance_sun),
                "rent_time_unit": ["d", "h", "m"],
                "rent_time_second": list(self.allowed_seconds),
            }
        )

    def _amount(self, value: Any) -> int | str:
        """A valid `resource_value`, or the refusal's message."""
        if isinstance(value, bool) or not isinstance(value, int):
            return "resource_value must be an integer"
        minimum = int(self.readings.number("feee", "minimum"))
        if value < minimum:
            return f"resource_value must be at least {minimum}"
        return value

    def _duration(self, body: dict[str, Any]) -> tuple[int, int, str, int] | str:
        """(seconds, rent_duration, rent_time_unit, rent_time_second), or the refusal."""
        second = body.get("rent_time_second", 0) or 0
        if isinstance(second, bool) or not isinstance(second, int):
            return "rent_time_second must be an integer"
        if second:
            if second <= 600 or second % 3 or second not in self.allowed_seconds:
                return "rent_time_second is not allowed for this APIKEY"
            return second, 0, "", second
        n, unit = body.get("rent_duration"), body.get("rent_time_unit")
        if unit not in UNIT_VALUES:
            return "rent_time_unit must be d, h or m"
        if isinstance(n, bool) or not isinstance(n, int) or n not in UNIT_VALUES[unit]:
            return "rent_duration is not valid for this rent_time_unit"
        return n * UNIT_SECONDS[unit], n, unit, 0

    def _quote(self, energy: int, seconds: int, n: int, unit: str, second: int) -> dict[str, Any]:
        price = self.prices.unit(seconds)
        service = SERVICE_SUN if energy < SERVICE_BELOW else 0
        return {
            "resource_value": energy,
            "pay_amount": _trx(energy * price + service),
            "service_amount": _trx(service),
            "rent_duration": n,
            "rent_time_unit": unit,
            "rent_time_second": second,
            "price_in_sun": price,
        }

    async def _price_v2(self, request: Request) -> Response:
        if not self._authenticated(request):
            return self._error("invalid key")
        q = request.query_params
        try:
            body: dict[str, Any] = {
                "rent_duration": int(q.get("rent_duration", "0")),
                "rent_time_unit": q.get("rent_time_unit", ""),
                "rent_time_second": int(q.get("rent_time_second", "0")),
            }
            energy = self._amount(int(q.get("resource_value", "")))
        except ValueError:
            return self._error("invalid parameters")
        duration = self._duration(body)
        if isinstance(energy, str) or isinstance(duration, str):
            return self._error(energy if isinstance(energy, str) else str(duration))
        return self._ok(self._quote(energy, *duration))

    async def _price_v3(self, request: Request) -> Response:
        if not self._authenticated(request):
            return self._error("invalid key")
        try:
            energy = self._amount(int(request.query_params.get("resource_value", "")))
        except ValueError:
            return self._error("invalid parameters")
        if isinstance(energy, str):
            return self._error(energy)
        return self._ok(self._quote(energy, FIVE_MINUTES, 0, "", FIVE_MINUTES))

    async def _submit_v2(self, request: Request) -> Response:
        return await self._submit(request, version=2)

    async def _submit_v3(self, request: Request) -> Response:
        return await self._submit(request, version=3)

    async def _submit(self, request: Request, *, version: int) -> Response:
        if not self._authenticated(request):
            return self._error("invalid key")
        body = await self._json(request)
        if body is None:
            return self._error("invalid parameters")
        if body.get("resource_type", 1) != 1:
            return self._error("resource_type: only 1 is allowed")
        address = body.get("receive_address")
        if not isinstance(address, str) or not is_tron_address(address):
            return self._error("receive_address is not a valid address")
        energy = self._amount(body.get("resource_value"))
        if isinstance(energy, str):
            return self._error(energy)
        if version == 3:
            duration: tuple[int, int, str, int] | str = (FIVE_MINUTES, 0, "", FIVE_MINUTES)
        else:
            duration = self._duration(body)
        if isinstance(duration, str):
            return self._error(duration)
        seconds, n, unit, second = duration
        price = self.prices.unit(seconds)
        cost = self.faults.charged(self._cost(energy, price), energy)
        if cost > self.balance_sun:
            return self._error("insufficient balance")
        now = self.clock.now()
        self.balance_sun -= cost
        self._sequence += 1
        order = FeeeOrder(
            order_no=f"{int(now):010d}{self._sequence:012d}"[-22:].rjust(22, "0"),
            receive_address=address,
            resource_value=energy,
            rent_duration=n,
            rent_time_unit=unit,
            rent_time_second=second,
            seconds=seconds,
            price_in_sun=price,
            amount_sun=cost,
            created_at=now,
            delivery=self.book.schedule(address, energy, seconds, now, self.faults),
            version=version,
        )
        self.orders[order.order_no] = order
        return self._ok(self._render(order))

    async def _query(self, request: Request) -> Response:
        if not self._authenticated(request):
            return self._error("invalid key")
        order = self.orders.get(request.query_params.get("order_no", ""))
        if order is None:
            return self._error("order does not exist")
        return self._ok(self._render(order))

    async def _cancel(self, request: Request) -> Response:
        if not self._authenticated(request):
            return self._error("invalid key")
        body = await self._json(request)
        order = self.orders.get(str((body or {}).get("order_no", "")))
        if order is None:
            return self._error("order does not exist")
        now = self.clock.now()
        d = order.delivery
        if d.delegations or d.state is DeliveryState.FAILED or order.cancelled_at is not None:
            return self._error("the order cannot be cancelled")
        if now - order.created_at < 300:
            return self._error("an order can be cancelled 5 minutes after its creation")
        d.due_at = None  # nothing more will be delegated
        order.cancelled_at = now
        self._refund(order)
        return JSONResponse(
            {"code": 0, "msg": "ok", "request_id": self._request_id(),
             "data": self._render(order), "pagination": None}
        )  # fmt: skip

    # ------------------------------------------------------------------ state

    def _refund(self, order: FeeeOrder) -> None:
        if not order.refunded:
            order.refunded = True
            self.balance_sun += order.amount_sun

    def tick(self) -> None:
        """Advance every order; a failed one is refunded `REFUND_DELAY` after it failed."""
        super().tick()
        now = self.clock.now()
        for order in self.orders.values():
            if order.failed_at is not None and now >= order.failed_at + REFUND_DELAY:
                self._refund(order)

    def _delivery_changed(self, delivery: Delivery, now: float) -> None:
        if delivery.state is not DeliveryState.FAILED:
            return
        for order in self.orders.values():
            if order.delivery is delivery and order.failed_at is None:
                order.failed_at = now if delivery.failed_at is None else delivery.failed_at

    def status_of(self, order: FeeeOrder) -> tuple[int, int]:
        """(status, business_status) of `order` at the clock's now."""
        d = order.delivery
        if order.cancelled_at is not None:
            return 12, 4
        if order.failed_at is not None:
            if order.refunded:
                return 14, 4
            pending = self.clock.now() >= order.failed_at + 1
            return (13 if pending else 7), 1
        if d.state is DeliveryState.EXPIRED:
            return 9, 3
        if d.state is DeliveryState.DELEGATED:
            return 6, 2
        if d.state is DeliveryState.PARTIAL:
            return 15, 1
        return 4, 1

    def _render(self, order: FeeeOrder) -> dict[str, Any]:
        status, business = self.status_of(order)
        d = order.delivery
        first = d.delegations[0] if d.delegations else None
        refunded = order.refunded
        return {
            "order_no": order.order_no,
            "order_type": 0,
            "resource_type": 1,
            "receive_address": order.receive_address,
            "price_in_sun": order.price_in_sun,
            "resource_value": order.resource_value,
            "frozen_resource_value": d.delivered,
            "freeze_time": int(first.delegated_at) if first else 0,
            "create_time": int(order.created_at),
            "pay_time": int(order.created_at),
            "refund_time": int(order.cancelled_at or order.failed_at or 0) if refunded else 0,
            "rent_duration": order.rent_duration,
            "rent_time_unit": order.rent_time_unit,
            "rent_time_second": order.rent_time_second,
            "rent_expire_time": int(first.expires_at) if first else 0,
            "frozen_tx_id": first.txid if first else "",
            "pay_amount": _trx(order.amount_sun),
            "refund_amount": _trx(order.amount_sun) if refunded else 0,
            "is_split": 0,
            "is_lock": 0,
            "lock_period": 0,
            "status": status,
            "business_status": business,
            "sub_order": [],
        }


__all__ = ["FIVE_MINUTES", "FeeeEmulator", "FeeeOrder", "FeeePrices"]
