"""eopen emulator: `api.eopen.io/api/v1/...` as documented (reference section 3).

- `API-KEY` header only (no signing); optional IP whitelist (code 20012).
- Envelope `{code, msg, time, data}` with `time` the Unix seconds as a string; every
  answer is HTTP 200 with a `code` (0 = success) except injected 5xx (code 11000).
- Parameters are read from the query string and from the body (JSON or form), the body
  winning; `/v1/tron/order` answers POST and GET (the docs' curl examples use `-G`).
  Reading `eopen.params=query` / `=body` reads only that one on a POST (`readings.py`).
- Reading `eopen.error_status=400`: error codes come with HTTP 400 instead of 200.
- Readings `eopen.history=completed` (history finds only delegated orders: 12002 before)
  and `eopen.completed=ended` (PROCESSING while delegated, COMPLETED once the rental
  ended).
- `POST /v1/tron/order` {pledgeAddress, rentalCount >= 64,000, period in 10min/1h/1d/3d/
  7d/14d/30d} -> `{id, amount (decimal number), currency}`; paid in TRX when the TRX
  balance allows, else USDT at `sun_per_usdt`; unactivated receivers are activated.
- `GET /v1/tron/price` -> `{sun (string), trxPrice (string, 2 decimals), period,
  resourceType, rentalCount}`; `GET /v1/tron/history?orderId=` -> the order (shape from
  the docs' example) with status PENDING -> PROCESSING -> COMPLETED, or REFUNDED when the
  delegation failed for good; `GET /v1/account` -> balances as decimal strings.

Operation names for `Faults(on=...)`: "create", "status", "price", "balance".
Construct: `EopenEmulator(delegator, clock=clock, api_key="K")`; its base URL is the
server URL + `base_path` ("/api"), like `https://api.eopen.io/api`.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.core.clock import Clock
from sandbox.providers.base import ChainView, Delegator, is_tron_address
from sandbox.providers.delivery import Delivery, DeliveryState
from sandbox.providers.emulating import EmulatorBase, Handler
from sandbox.providers.faults import Faults
from sandbox.providers.readings import Readings

MIN_RENTAL = 64_000
PERIODS = {"10min": 600, "1h": 3600, "1d": 86_400, "3d": 259_200, "7d": 604_800,
           "14d": 1_209_600, "30d": 2_592_000}  # fmt: skip
_PERIOD_SHAPE = re.compile(r"^(\d+)([a-z]+)$")
WALLET_ADDRESS = "TATT1UzHRikft98bRFqApFTsaSw73ycfoS"  # emulated deposit address

MESSAGES = {
    0: "success",
    100: "request parameter error",
    11000: "operation failed, please retry later",
    11003: "missing required parameters",
    12002: "order does not exist",
    20001: "invalid API key",
    20002: "insufficient account balance",
    20004: "request frequency limited",
    20005: "invalid receiving address",
    20006: "invalid energy parameter",
    20008: "invalid rental duration",
    20009: "insufficient remaining resources",
    20010: "invalid time unit, only h/d supported",
    20011: "invalid parameter",
    20012: "IP not in whitelist",
}


@dataclass(frozen=True)
class EopenPrices:
    """Sun per energy unit for the whole period (what `/v1/tron/price` calls `sun`)."""

    per_period: tuple[tuple[str, int], ...] = (
        ("10min", 38), ("1h", 30), ("1d", 75), ("3d", 165),
        ("7d", 378), ("14d", 742), ("30d", 1560),
    )  # fmt: skip

    def unit(self, period: str) -> int:
        return dict(self.per_period)[period]


@dataclass
class EopenOrder:
    id: str
    pledge_address: str
    rental_count: int
    period: str
    amount: Decimal  # in `currency`
    currency: str
    created_at: float
    delivery: Delivery
    refunded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class EopenEmulator(EmulatorBase):
    """eopen's HTTP API over a `Delegator`; inspect `.orders`, `.balance_sun`, `.usdt_micros`."""

    vendor = "eopen"

    default_delivery_delay = 4.0  # the docs: "generally 3-6 seconds"

    def __init__(
        self,
        delegator: Delegator,
        *,
        clock: Clock,
        api_key: str = "eopen-sandbox-key",
        balance_sun: int = 1_000_000_000,
        usdt_micros: int = 0,
        sun_per_usdt: int = 3_500_000,
        prices: EopenPrices | None = None,
        faults: Faults | None = None,
        ip_whitelist: set[str] | None = None,
        base_path: str = "/api",
        seed: int = 3,
        delivery_delay: float | None = None,
        rate_limit_per_s: int | None = None,
        readings: Readings | None = None,
    ) -> None:
        self.api_key = api_key
        self.usdt_micros = usdt_micros
        self.sun_per_usdt = sun_per_usdt
        self.prices = prices or EopenPrices()
        self.ip_whitelist = ip_whitelist
        self.base_path = base_path.rstrip("/")
        self.orders: dict[str, EopenOrder] = {}
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

    def _routes(self) -> list[tuple[str, Handler, list[str], str]]:
        b = self.base_path
        return [
            (f"{b}/v1/tron/order", self._create, ["POST", "GET"], "create"),
            (f"{b}/v1/tron/price", self._price, ["GET", "POST"], "price"),
            (f"{b}/v1/tron/history", self._history, ["GET", "POST"], "status"),
            (f"{b}/v1/account", self._account, ["GET"], "balance"),
        ]

    # ------------------------------------------------------------------ wire helpers

    def _reply(
        self, code: int, data: Any = None, msg: str | None = None, status: int = 200
    ) -> Response:
        body = {
            "code": code,
            "msg": msg or MESSAGES.get(code, "error"),
            "time": str(int(self.clock.now())),
            "data": data,
        }
        if code != 0 and status == 200 and self.reading("error_status") == "400":
            status = 400  # the HTTP status of an error code is undocumented
        return JSONResponse(body, status_code=status)

    def _rate_limited(self) -> Response:
        return self._reply(20004)

    def _server_error(self, status: int) -> Response:
        return self._reply(11000, status=status)

    async def _params(self, request: Request) -> dict[str, str] | Response:
        """Query string and body merged, or the error answer (bad key, IP, body)."""
        if self.ip_whitelist is not None:
            host = request.client.host if request.client else ""
            if host not in self.ip_whitelist:
                return self._reply(20012)
        if request.headers.get("API-KEY", "") != self.api_key:
            return self._reply(20001)
        where = self.reading("params")  # a GET has no body: its query is always read
        query = where != "body" or request.method == "GET"
        params = {k: v for k, v in request.query_params.items()} if query else {}
        raw = await request.body()
        if raw and where != "query":
            ctype = request.headers.get("content-type", "")
            if "json" in ctype:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._reply(100)
                if not isinstance(body, dict):
                    return self._reply(100)
                params.update({k: str(v) for k, v in body.items() if v is not None})
            else:  # form-encoded
                params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        return params

    def _validate(self, p: dict[str, str], *, need_address: bool) -> tuple[int, str] | Response:
        required = ["rentalCount", "period"] + (["pledgeAddress"] if need_address else [])
        if any(not p.get(name) for name in required):
            return self._reply(11003)
        if not p["rentalCount"].isdigit():
            return self._reply(100)
        count = int(p["rentalCount"])
        if count < MIN_RENTAL:
            return self._reply(20006, msg=f"invalid energy parameter, minimum {MIN_RENTAL}")
        shape = _PERIOD_SHAPE.match(p["period"])
        if shape is None or shape.group(2) not in ("min", "h", "d"):
            return self._reply(20010)
        if p["period"] not in PERIODS:
            return self._reply(20008)
        if p.get("resourceType", "ENERGY") != "ENERGY":
            return self._reply(20011)
        if need_address and not is_tron_address(p["pledgeAddress"]):
            return self._reply(20005)
        return count, p["period"]

    # ------------------------------------------------------------------ endpoints

    async def _price(self, request: Request) -> Response:
        p = await self._params(request)
        if isinstance(p, Response):
            return p
        checked = self._validate(p, need_address=False)
        if isinstance(checked, Response):
            return checked
        count, period = checked
        unit = self.prices.unit(period)
        trx = (Decimal(unit * count) / 1_000_000).quantize(Decimal("0.01"), ROUND_HALF_UP)
        data = {"sun": str(unit), "trxPrice": str(trx), "period": period,
                "resourceType": "ENERGY", "rentalCount": count}  # fmt: skip
        return self._reply(0, data, "Get price successfully")

    async def _create(self, request: Request) -> Response:
        p = await self._params(request)
        if isinstance(p, Response):
            return p
        checked = self._validate(p, need_address=True)
        if isinstance(checked, Response):
            return checked
        count, period = checked
        receiver = p["pledgeAddress"]
        cost_sun = self.faults.charged(self.prices.unit(period) * count, count)
        if count > self._platform_energy():
            return self._reply(20009)
        usdt_cost = -(-cost_sun * 1_000_000 // self.sun_per_usdt)  # micro-USDT, rounded up
        if cost_sun <= self.balance_sun:
            self.balance_sun -= cost_sun
            amount, currency = Decimal(cost_sun) / 1_000_000, "TRX"
        elif usdt_cost <= self.usdt_micros:
            self.usdt_micros -= usdt_cost
            amount, currency = Decimal(usdt_cost) / 1_000_000, "USDT"
        else:
            return self._reply(20002)
        if isinstance(self.delegator, ChainView) and not self.delegator.is_activated(receiver):
            self.delegator.activate(receiver)  # "automatically activated"
        now = self.clock.now()
        delivery = self.book.schedule(receiver, count, PERIODS[period], now, self.faults)
        order_id = "OR" + datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S")
        order_id += "".join(self.rng.choices(string.ascii_uppercase + string.digits, k=8))
        order = EopenOrder(order_id, receiver, count, period, amount, currency, now, delivery)
        self.orders[order_id] = order
        return self._reply(
            0,
            {"id": order_id, "amount": float(amount), "currency": currency},
            "Order generated successfully, please check order processing status later",
        )

    async def _history(self, request: Request) -> Response:
        p = await self._params(request)
        if isinstance(p, Response):
            return p
        if not p.get("orderId"):
            return self._reply(11003)
        order = self.orders.get(p["orderId"])
        if order is None:
            return self._reply(12002)
        if self.reading("history") == "completed" and not order.delivery.delegations:
            return self._reply(12002)  # "recently completed orders" only
        d = order.delivery
        data = {
            "orderId": order.id,
            "amount": _decimal(order.amount),
            "currency": order.currency,
            "status": self.status_of(order),
            "txId": d.delegations[0].txid if d.delegations else "",
            "pledgeAddress": order.pledge_address,
            "createdAt": int(order.created_at),
            "rentalCount": str(order.rental_count),
            "period": order.period,
            "resourceType": "ENERGY",
        }
        return self._reply(0, data, "Get order details successfully")

    async def _account(self, request: Request) -> Response:
        p = await self._params(request)
        if isinstance(p, Response):
            return p
        data = {
            "name": "sandbox",
            "walletAddress": WALLET_ADDRESS,
            "balance": {
                "available": {
                    "trx": _decimal(Decimal(self.balance_sun) / 1_000_000),
                    "usdt": _decimal(Decimal(self.usdt_micros) / 1_000_000),
                },
                "frozen": {"trx": "0"},
            },
            "referralCount": 0,
        }
        return self._reply(0, data, "Get account successfully")

    # ------------------------------------------------------------------ state

    def _platform_energy(self) -> int:
        if isinstance(self.delegator, ChainView):
            return max(0, self.delegator.available_energy())
        return 10**12

    def status_of(self, order: EopenOrder) -> str:
        d = order.delivery
        if d.state is DeliveryState.FAILED:
            return "REFUNDED"
        if d.delegations:
            ended = d.state is DeliveryState.EXPIRED
            if self.reading("completed") == "ended" and not ended:
                return "PROCESSING"
            return "COMPLETED"
        return "PENDING" if self.clock.now() < d.accepted_at + 1.0 else "PROCESSING"

    def _delivery_changed(self, delivery: Delivery, now: float) -> None:
        if delivery.state is not DeliveryState.FAILED:
            return
        for order in self.orders.values():
            if order.delivery is delivery and not order.refunded:
                order.refunded = True
                micros = int(order.amount * 1_000_000)
                if order.currency == "TRX":
                    self.balance_sun += micros
                else:
                    self.usdt_micros += micros


def _decimal(value: Decimal) -> str:
    """A decimal string without exponent or trailing zeros ("4.225", "12", "0")."""
    return format(value.normalize(), "f")
