"""TronSave emulator: the v2 API-key flow of `api.tronsave.io` (reference section 4).

- `apikey` header: missing -> 401 `TSAS:106 API_KEY_REQUIRED`, wrong -> 401
  `TSAS:107 INVALID_API_KEY` (`/v2/estimate-buy-resource` needs none).
- Envelope `{error, message, data}`; application errors are HTTP 400 with
  `message: "TSAS:<n> <CODE> [detail]"` and `data: null`; body validation fails the
  Fastify way (`{statusCode, code: "FST_ERR_VALIDATION", error, message}`); more than
  `rate_limit_per_s` (15) requests per emulated second -> 429 `{error, message}`.
- `POST /v2/buy-resource` -> HTTP 201 `{orderId}`; options `onlyCreateWhenFulfilled`,
  `maxPriceAccepted`, `preventDuplicateIncompleteOrders`, `allowPartialFill` behave as
  documented; prices come from `tronsave_market.py` (per day, FAST/MEDIUM/SLOW).
- The market fills orders from the delegator's free stake (`ChainView`): the order's
  `fulfilledPercent`, `remainAmount` and `delegates[]` progress as delegations land; an
  order that cannot be matched stays open (no failure, no refund).
- Readings (`readings.py`): `tronsave.minimum` (smallest `resourceAmount` accepted,
  32,000 as in the docs' examples; 64001 as the official SDK) and
  `tronsave.max_price=below` (a price equal to `maxPriceAccepted` is refused too).
- `GET /v2/user-info` (balance: string of sun), `/v2/order/:id`, `/v2/orders`,
  `/v2/order-book`. The Nile testnet is the same app under another base URL.

Operation names for `Faults(on=...)`: "create", "status", "price", "balance".
Construct: `TronSaveEmulator(delegator, clock=clock, api_key="K")`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.core.clock import Clock
from sandbox.providers.base import ChainView, Delegator, is_tron_address
from sandbox.providers.delivery import Delivery
from sandbox.providers.emulating import EmulatorBase, Handler
from sandbox.providers.faults import Faults
from sandbox.providers.readings import Readings
from sandbox.providers.tronsave_market import (
    TronSavePrices,
    cost_sun,
    quote,
    validate_body,
)

REPRESENT_ADDRESS = "TLx8h8fjv5pyuxCu292ZgjbU14XZSiLGg4"  # emulated internal account
DEPOSIT_ADDRESS = "TWZEhq5JuUVvGtutNgnRBATbF8BnHGyn4S"
TSAS = {
    "MISSING_PARAMS": 407, "INVALID_PARAMS": 408, "MIN_PRICE_INVALID": 409,
    "INTERNAL_ACCOUNT_NOT_FOUND": 410, "INTERNAL_BALANCE_ACCOUNT_TOO_LOW": 411,
    "CANNOT_FULFILLED": 412, "MUST_BE_WAIT_PREVIOUS_ORDER_FILLED": 413,
    "PRICE_EXCEED_MAX_PRICE_REQUIRED": 414, "API_KEY_REQUIRED": 106, "INVALID_API_KEY": 107,
}  # fmt: skip


@dataclass
class TronSaveOrder:
    id: str
    receiver: str
    resource_amount: int
    duration_sec: int
    price: int
    payout_amount: int
    allow_partial_fill: bool
    created_at: float
    delivery: Delivery


class TronSaveEmulator(EmulatorBase):
    """TronSave's HTTP API over a `Delegator`; inspect `.orders` and `.balance_sun`."""

    vendor = "tronsave"

    default_delivery_delay = 6.0  # "within seconds to minutes" of matching

    def __init__(
        self,
        delegator: Delegator,
        *,
        clock: Clock,
        api_key: str = "tronsave-sandbox-key",
        balance_sun: int = 1_000_000_000,
        prices: TronSavePrices | None = None,
        faults: Faults | None = None,
        seed: int = 4,
        delivery_delay: float | None = None,
        rate_limit_per_s: int | None = 15,
        readings: Readings | None = None,
    ) -> None:
        self.api_key = api_key
        self.prices = prices or TronSavePrices()
        self.orders: dict[str, TronSaveOrder] = {}
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
        self.book.max_attempts = 10**9  # an unmatched market order stays open

    def _routes(self) -> list[tuple[str, Handler, list[str], str]]:
        return [
            ("/v2/user-info", self._user_info, ["GET"], "balance"),
            ("/v2/order-book", self._order_book, ["GET"], "price"),
            ("/v2/estimate-buy-resource", self._estimate, ["POST"], "price"),
            ("/v2/buy-resource", self._create, ["POST"], "create"),
            ("/v2/order/{order_id}", self._order, ["GET"], "status"),
            ("/v2/orders", self._orders, ["GET"], "status"),
        ]

    # ------------------------------------------------------------------ wire helpers

    @staticmethod
    def _ok(data: Any, status: int = 200) -> JSONResponse:
        return JSONResponse({"error": False, "message": "Success", "data": data}, status)

    @staticmethod
    def _fail(code: str, detail: str = "", status: int = 400) -> JSONResponse:
        message = f"TSAS:{TSAS[code]} {code}" + (f" {detail}" if detail else "")
        return JSONResponse({"error": True, "message": message, "data": None}, status)

    def _refusal(self, message: str) -> Response:
        return self._fail("INVALID_PARAMS", message)

    def _rate_limited(self) -> Response:
        return JSONResponse({"error": True, "message": "Rate limit reached"}, 429)

    def _server_error(self, status: int) -> Response:
        if status == 500:
            body = {"statusCode": 500, "error": "Internal Server Error", "message": "Internal"}
            return JSONResponse(body, 500)
        return super()._server_error(status)

    def _not_found(self, request: Request, status: int) -> Response:
        message = f"Route {request.method}:{request.url.path} not found"
        return JSONResponse({"message": message, "error": "Not Found", "statusCode": 404}, 404)

    def _auth(self, request: Request) -> Response | None:
        key = request.headers.get("apikey")
        if not key:
            return self._fail("API_KEY_REQUIRED", status=401)
        if key != self.api_key:
            return self._fail("INVALID_API_KEY", status=401)
        return None

    async def _body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return _fastify("FST_ERR_CTP_INVALID_JSON_BODY", "Body is not valid JSON")
        if not isinstance(body, dict):
            return _fastify("FST_ERR_VALIDATION", "body must be object")
        problem = validate_body(body)
        return _fastify("FST_ERR_VALIDATION", problem) if problem else body

    def _available(self) -> int:
        if isinstance(self.delegator, ChainView):
            return max(0, self.delegator.available_energy())
        return 10**12

    # ------------------------------------------------------------------ endpoints

    async def _user_info(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        return self._ok(
            {
                "id": "sandbox-internal-account",
                "balance": str(self.balance_sun),
                "representAddress": REPRESENT_ADDRESS,
                "depositAddress": DEPOSIT_ADDRESS,
            }
        )

    async def _order_book(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        duration = int(request.query_params.get("durationSec") or 259_200)
        q = quote(self.prices, "SLOW", 1, duration, self._available())
        levels = [{"price": q.slow + self.prices.medium_premium,
                   "availableResourceAmount": self._available()}]  # fmt: skip
        return self._ok(levels)

    async def _estimate(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        duration = int(body.get("durationSec", 259_200))
        amount = int(body["resourceAmount"])
        q = quote(self.prices, body.get("unitPrice", "MEDIUM"), amount, duration, self._available())
        return self._ok(
            {
                "unitPrice": q.price,
                "durationSec": duration,
                "estimateTrx": cost_sun(q.price, amount, duration),
                "availableResource": min(amount, self._available()),
            }
        )

    async def _create(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        options: dict[str, Any] = body.get("options") or {}
        receiver = str(body["receiver"])
        amount, duration = int(body["resourceAmount"]), int(body.get("durationSec", 259_200))
        if body.get("resourceType", "ENERGY") != "ENERGY":
            return self._fail("INVALID_PARAMS", "only ENERGY is emulated")
        if not is_tron_address(receiver):
            return self._fail("INVALID_PARAMS", "Invalid receiver")
        if amount <= 0 or not 0 < duration <= 30 * 86_400:
            return self._fail("INVALID_PARAMS", "resourceAmount or durationSec out of range")
        minimum = self.readings.number("tronsave", "minimum")
        if amount < minimum:
            return self._fail("INVALID_PARAMS", f"resourceAmount must be >= {minimum:.0f}")
        available = self._available()
        q = quote(self.prices, body.get("unitPrice", "MEDIUM"), amount, duration, available)
        if q.price < q.slow:
            return self._fail("MIN_PRICE_INVALID")
        if self.faults.markup:  # the market moved since the estimate
            q = dataclasses.replace(q, price=self.faults.charged(q.price))
        cap = options.get("maxPriceAccepted")
        below = self.reading("max_price") == "below"  # "less than": equal is refused too
        if cap is not None and (q.price > cap or (below and q.price == cap)):
            return self._fail("PRICE_EXCEED_MAX_PRICE_REQUIRED")
        if options.get("onlyCreateWhenFulfilled") and available < amount:
            return self._fail("CANNOT_FULFILLED")
        if options.get("preventDuplicateIncompleteOrders") and any(
            o.receiver == receiver
            and o.resource_amount == amount
            and o.duration_sec == duration
            and o.delivery.delivered < o.resource_amount
            and not self._completed(o)
            for o in self.orders.values()
        ):
            return self._fail("MUST_BE_WAIT_PREVIOUS_ORDER_FILLED")
        payout = cost_sun(q.price, amount, duration)
        if payout > self.balance_sun:
            return self._fail("INTERNAL_BALANCE_ACCOUNT_TOO_LOW")
        now = self.clock.now()
        self.balance_sun -= payout
        partial = bool(options.get("allowPartialFill", False))
        delivery = self.book.schedule(
            receiver,
            amount,
            duration,
            now,
            self.faults,
            wait_for_capacity=True,
            partial_fill=partial,
        )
        order_id = f"{int(now):08x}{self._new_hex(16)}"
        self.orders[order_id] = TronSaveOrder(
            order_id, receiver, amount, duration, q.price, payout, partial, now, delivery
        )
        return self._ok({"orderId": order_id}, status=201)

    async def _order(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        order = self.orders.get(request.path_params["order_id"])
        if order is None:
            return self._fail("INVALID_PARAMS", "Invalid orderId")
        return self._ok(self._render(order))

    async def _orders(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        q = request.query_params
        try:
            page, size = int(q.get("page", 0)), int(q.get("pageSize", 10))
        except ValueError:
            return _fastify("FST_ERR_VALIDATION", "querystring/page must be number")
        wanted = q.get("status")
        chosen = [o for o in self.orders.values() if wanted in (None, self._status(o))]
        chosen.sort(key=lambda o: o.id, reverse=True)  # newest first (ids start with time)
        rows = [self._render(o, with_status=True) for o in chosen[page * size : (page + 1) * size]]
        return self._ok({"data": rows, "total": len(chosen)})

    # ------------------------------------------------------------------ state

    def _completed(self, order: TronSaveOrder) -> bool:
        d = order.delivery
        over = self.clock.now() >= order.created_at + order.duration_sec
        return d.delivered >= order.resource_amount or over

    def _render(self, order: TronSaveOrder, *, with_status: bool = False) -> dict[str, Any]:
        d = order.delivery
        delivered = min(d.delivered, order.resource_amount)
        provider = str(getattr(self.delegator, "provider_address", REPRESENT_ADDRESS))
        row: dict[str, Any] = {
            "id": order.id,
            "requester": REPRESENT_ADDRESS,
            "receiver": order.receiver,
            "resourceAmount": order.resource_amount,
            "resourceType": "ENERGY",
            "remainAmount": order.resource_amount - delivered,
            "price": order.price,
            "durationSec": order.duration_sec,
            "orderType": "NORMAL",
            "allowPartialFill": order.allow_partial_fill,
            "payoutAmount": order.payout_amount,
            "fulfilledPercent": delivered * 100 // order.resource_amount,
            "delegates": [
                {"delegator": provider, "amount": x.energy, "txid": x.txid} for x in d.delegations
            ],
        }
        if with_status:
            row["status"] = self._status(order)
        return row

    def _status(self, order: TronSaveOrder) -> str:
        return "Completed" if self._completed(order) else "Active"


def _fastify(code: str, message: str) -> JSONResponse:
    body = {"statusCode": 400, "code": code, "error": "Bad Request", "message": message}
    return JSONResponse(body, 400)
