"""Netts emulator: `netts.io/apiv2`'s wire format (https://doc.netts.io/api/).

- Auth: `X-API-KEY` and `X-Real-IP`, which must be on the account's whitelist (up to
  three addresses; `whitelist=`); the documented `order_check` needs only the key. A bad
  key or an IP off the list -> HTTP 401 `{detail: {code: -1, msg: "Invalid API key or IP
  not in whitelist"}}`.
- 2 requests a second per API key (the docs' number), kept as a token bucket (2 a second,
  bursts of 2: an assumption, the docs give no window) -> HTTP 429 `{detail: {code: 429,
  msg: ...}}`. `rate_limit_per_s` (the generic knob) is off unless set.
- `POST /apiv2/order1h` (61,000..5,000,000) and `/apiv2/order5m` (61,000..650,000), body
  `{amount, receiveAddress}`: out of range or a bad address -> 400, short balance -> 403,
  order5m with its pools empty (`pool_empty`) -> 503. Delivery is synchronous: the answer
  carries `hash` (reading `netts.sync=hash`, the docs' example) or, under `netts.sync=later`
  (the docs do not promise it), an empty `hash` with the delegation a few seconds later.
  `energy` in the answer is the amount delegated (reading `netts.energy=more`: a little
  more than ordered, as a third-party sample shows 131,050 for 131,000).
- `GET /apiv2/order_check?order_id=` -> `{success, code, order: {..., tx_hashes}}`;
  unknown -> `{success: false, msg: "Order not found"}` (HTTP 404).
- `GET /apiv2/userinfo` (`stats.balance` TRX), `GET /apiv2/pricing?services=energy_1h,
  energy_5m` (the current period's price, sun per energy), `GET /apiv2/prices` (the
  deprecated table).

Operation names for `Faults(on=...)`: "create", "status", "price", "balance".
Construct: `NettsEmulator(delegator, clock=clock, api_key="K", whitelist={"127.0.0.1"})`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.core.clock import Clock
from sandbox.providers.base import Delegator, is_tron_address
from sandbox.providers.delivery import Delivery
from sandbox.providers.emulating import EmulatorBase, Handler, refund_failed
from sandbox.providers.faults import Faults
from sandbox.providers.readings import Readings

DELEGATE_ADDRESS = "TLx8h8fjv5pyuxCu292ZgjbU14XZSiLGg4"  # the emulated delegating pool
DEPOSIT_ADDRESS = "TWZEhq5JuUVvGtutNgnRBATbF8BnHGyn4S"
SANDBOX_IP = "127.0.0.1"
#: path -> (duration seconds, smallest, largest amount) [the v2 endpoint pages]
ENDPOINTS = {
    "/apiv2/order1h": (3600, 61_000, 5_000_000),
    "/apiv2/order5m": (300, 61_000, 650_000),
}
RATE, BURST = 2.0, 2.0
#: under `netts.sync=later`, seconds from the answer to the delegation (at least)
LATER_S = 3.0


@dataclass(frozen=True)
class NettsPrices:
    """Sun per energy unit for the whole rental."""

    hour_sun: int = 36  # "17 sun" in the docs' 2025-09 example; the 2026 market ~25-75
    five_min_sun: int = 58  # minutes are dearer per unit than an hour

    def unit(self, duration: int) -> int:
        return self.hour_sun if duration == 3600 else self.five_min_sun

    def scaled(self, factor: float) -> NettsPrices:
        """This table with every energy price times `factor` (the market's drift)."""
        return dataclasses.replace(
            self,
            hour_sun=max(1, round(self.hour_sun * factor)),
            five_min_sun=max(1, round(self.five_min_sun * factor)),
        )


@dataclass
class NettsOrder:
    order_id: str
    receiver: str
    energy: int
    duration: int
    amount_sun: int
    created_at: float
    delivery: Delivery
    refunded: bool = False


def _trx(sun: int) -> float:
    return float(Decimal(sun) / 1_000_000)


class NettsEmulator(EmulatorBase):
    """Netts' HTTP API over a `Delegator`; inspect `.orders` and `.balance_sun`."""

    vendor = "netts"
    default_delivery_delay = 0.0  # the create answers with the delegation made

    def __init__(
        self,
        delegator: Delegator,
        *,
        clock: Clock,
        api_key: str = "netts-sandbox-key",
        whitelist: Iterable[str] = (SANDBOX_IP,),
        balance_sun: int = 1_000_000_000,
        prices: NettsPrices | None = None,
        faults: Faults | None = None,
        seed: int = 6,
        delivery_delay: float | None = None,
        rate_limit_per_s: int | None = None,
        key_rate: float | None = RATE,
        readings: Readings | None = None,
    ) -> None:
        self.api_key = api_key
        self.whitelist = set(whitelist)
        if len(self.whitelist) > 3:
            raise ValueError("Netts whitelists at most three IP addresses")
        self.prices = prices or NettsPrices()
        self.orders: dict[str, NettsOrder] = {}
        #: order5m's pools are empty: its creates answer 503
        self.pool_empty = False
        #: requests a second per key (None: unlimited, for tests that freeze time)
        self.key_rate = key_rate
        self._buckets: dict[str, tuple[float, float]] = {}
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

    def charge_for(self, energy: int, seconds: int) -> int | None:
        """What an order of `energy` for `seconds` costs (sun), None if not sold."""
        sold = {duration for duration, _, _ in ENDPOINTS.values()}
        return energy * self.prices.unit(seconds) if seconds in sold else None

    def market_offers(self, prices: NettsPrices, max_days: int) -> list[tuple[int, float, int]]:
        """(seconds, sun per unit for the whole duration, smallest order) of every rental
        sold, at `prices` (`sandbox.market.catalogue`): one per order endpoint."""
        longest = max_days * 86_400
        return [(seconds, float(prices.unit(seconds)), low)
                for seconds, low, _ in ENDPOINTS.values() if seconds <= longest]  # fmt: skip

    def _routes(self) -> list[tuple[str, Handler, list[str], str]]:
        return [
            ("/apiv2/order1h", self._create, ["POST"], "create"),
            ("/apiv2/order5m", self._create, ["POST"], "create"),
            ("/apiv2/order_check", self._check, ["GET"], "status"),
            ("/apiv2/userinfo", self._userinfo, ["GET"], "balance"),
            ("/apiv2/pricing", self._pricing, ["GET"], "price"),
            ("/apiv2/prices", self._prices, ["GET"], "price"),
        ]

    # ------------------------------------------------------------------ wire helpers

    @staticmethod
    def _detail(code: int, msg: str, status: int, data: Any = None) -> JSONResponse:
        detail: dict[str, Any] = {"code": code, "msg": msg}
        if data is not None:
            detail["data"] = data
        return JSONResponse({"detail": detail}, status)

    def _refusal(self, message: str) -> Response:
        return self._detail(-1, message, 401)

    def _rate_limited(self) -> Response:
        return self._detail(429, "Rate limit exceeded: 2 requests per second", 429)

    def _server_error(self, status: int) -> Response:
        if status == 503:
            return self._detail(503, "Service temporarily unavailable", 503)
        return super()._server_error(status)

    def _auth(self, request: Request, *, ip: bool = True) -> Response | None:
        key = request.headers.get("x-api-key", "")
        real_ip = request.headers.get("x-real-ip", "")
        if key != self.api_key or (ip and real_ip not in self.whitelist):
            return self._detail(-1, "Invalid API key or IP not in whitelist", 401)
        if not self._admit(key):
            return self._rate_limited()
        return None

    def _admit(self, key: str) -> bool:
        """The key's token bucket: `key_rate` a second, `BURST` at once."""
        if self.key_rate is None:
            return True
        now = self.clock.now()
        tokens, stamp = self._buckets.get(key, (BURST, now))
        tokens = min(BURST, tokens + (now - stamp) * self.key_rate)
        if tokens < 1.0 - 1e-3:  # the same tolerance as a client's bucket on this clock
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True

    # ------------------------------------------------------------------ endpoints

    async def _create(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        duration, low, high = ENDPOINTS[request.url.path]
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return self._detail(400, "Invalid JSON body", 400)
        if not isinstance(body, dict):
            return self._detail(400, "Body must be an object", 400)
        amount, receiver = body.get("amount"), body.get("receiveAddress")
        if not isinstance(receiver, str) or not is_tron_address(receiver):
            return self._detail(400, "Invalid receiveAddress", 400)
        if isinstance(amount, bool) or not isinstance(amount, int) or not low <= amount <= high:
            return self._detail(400, f"amount must be between {low} and {high}", 400)
        if duration == 300 and self.pool_empty:
            return self._detail(503, "No energy available in Netts pools, use order1h", 503)
        cost = self.faults.charged(amount * self.prices.unit(duration), amount)
        if cost > self.balance_sun:
            return self._detail(403, "Insufficient balance", 403)
        now = self.clock.now()
        energy = amount + (50 if self.reading("energy") == "more" else 0)
        self.balance_sun -= cost
        delivery = self.book.schedule(receiver, energy, duration, now, self.faults)
        if self.reading("sync") == "hash":
            self.tick()  # delegated before the answer: the hash is in it
        elif delivery.due_at is not None:
            delivery.due_at = max(delivery.due_at, now + LATER_S)
        order = NettsOrder(
            f"1H{self._new_hex(10)}", receiver, energy, duration, cost, now, delivery
        )
        self.orders[order.order_id] = order
        paid = _trx(cost)
        return self._detail(
            10000,
            f"Successful, {paid} TRX deducted",
            200,
            {
                "orderId": order.order_id,
                "paidTRX": paid,
                "hash": self._hash(order) or "",
                "delegateAddress": DELEGATE_ADDRESS,
                "energy": energy,
            },
        )

    def _delivery_changed(self, delivery: Delivery, now: float) -> None:
        # an assumption: nothing is documented
        self.balance_sun += refund_failed(self.orders.values(), delivery)

    def _hash(self, order: NettsOrder) -> str | None:
        d = order.delivery
        return d.delegations[0].txid if d.delegations else None

    async def _check(self, request: Request) -> Response:
        if (denied := self._auth(request, ip=False)) is not None:
            return denied
        order = self.orders.get(request.query_params.get("order_id", ""))
        if order is None:
            return JSONResponse({"success": False, "msg": "Order not found"}, 404)
        hashes = [x.txid for x in order.delivery.delegations]
        return JSONResponse(
            {
                "success": True,
                "code": 10000,
                "order": {
                    "id": order.order_id,
                    "cost": _trx(order.amount_sun),
                    "target_address": order.receiver,
                    "energy": order.energy,
                    "rate_sun": self.prices.unit(order.duration),
                    "duration": order.duration // 60,
                    "tx_hashes": hashes,
                    "timestamp": datetime.fromtimestamp(order.created_at, UTC).isoformat(),
                    "comments": "",
                },
                "activation": None,
            }
        )

    async def _userinfo(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        spent = sum(o.amount_sun for o in self.orders.values())
        return JSONResponse(
            {
                "status": "success",
                "timestamp": datetime.fromtimestamp(self.clock.now(), UTC).isoformat(),
                "user_id": 1,
                "user_info": {
                    "email": "sandbox@example.invalid",
                    "name": "sandbox",
                    "deposit_address": DEPOSIT_ADDRESS,
                },
                "stats": {
                    "balance": _trx(self.balance_sun),
                    "total_delegations": len(self.orders),
                    "total_energy_delegated": sum(o.energy for o in self.orders.values()),
                    "total_trx_spent": _trx(spent),
                },
            }
        )

    async def _pricing(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        names = request.query_params.get("services", "energy_1h").split(",")
        durations = {"energy_1h": 3600, "energy_5m": 300}
        services = {
            name: {
                "unit": "sun",
                "periods": [
                    {"id": 1, "is_current": True, "price": self.prices.unit(durations[name])}
                ],
            }
            for name in names
            if name in durations
        }
        return JSONResponse({"success": True, "data": {"services": services}})

    async def _prices(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        unit = self.prices.hour_sun
        tiers = {
            "less_than_200k": {"price_sun": unit},
            "equal_131k": {"price_sun": unit},
            "more_than_200k": {"price_sun": unit},
        }
        return JSONResponse(
            {
                "status": "success",
                "current_utc_time": now.strftime("%H:%M:%S"),
                "current_utc_hour": now.hour,
                "active_period": "00:00-23:59",
                "periods": [
                    {
                        "label": "all day",
                        "period": "00:00-23:59",
                        "is_active": True,
                        "prices": tiers,
                    }
                ],
            }
        )
