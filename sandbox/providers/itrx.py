"""itrx emulator: `itrx.io/api/v1/frontend/...` as documented (reference section 2).

- `API-KEY` on every call. POSTs also carry `TIMESTAMP` (Unix seconds) and `SIGNATURE` =
  hex HMAC-SHA256(secret, f"{ts}&{body}"). `signature_check` says what is verified:
  "both" (default) = the signature matches the raw body bytes AND those bytes are the
  compact sorted-key JSON of the parsed body (what the docs require clients to send);
  "raw" = raw bytes only; "parsed" = the re-serialised parsed body only.
- Errors in Django REST Framework's shapes: 400 `{"field": ["msg"]}` for validation,
  400 `{"detail": ...}` for "API not found" (bad key), bad signature, "Insufficient funds",
  "<addr> is the inactive address."; HTTP 200 `{"errno": 1, "message"}` when the platform
  lacks energy; `{"errno": 404, "message": "Order not found"}` for an unknown serial.
- Order statuses: 20 paid -> 30 preparing -> 40 done (31 partial, 32 retrying a refused
  delegation, 41 refunded after it failed for good, 43 ended partial with a part refund);
  `details[]` per delegation (20 delegating, 30 reclaimed). `exclusive=1` reclaims this
  emulator's other delegations to the receiver first (`order.exclusive_reclaimed`).
- Signed callbacks (`itrx_callbacks.py`) when an order ends, sent by `await step()`.
- Readings (`readings.py`): `itrx.status30=delegated` reports 30 while delegated and 40
  only when the rental ended (the sample's "30 means fully delegated");
  `itrx.out_trade_no=unique` refuses a reused `out_trade_no` with errno 1.

Operation names for `Faults(on=...)`: "create", "status", "price", "balance", "reclaim".
Construct: `ItrxEmulator(delegator, clock=clock, api_key="K", api_secret="S")`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from engine.core.clock import Clock
from sandbox.providers.base import ChainView, Delegator, fake_txid, is_tron_address
from sandbox.providers.delivery import Delivery, DeliveryState
from sandbox.providers.emulating import EmulatorBase, Handler
from sandbox.providers.faults import Faults
from sandbox.providers.itrx_callbacks import CallbackSender, compact_sorted, hex_signature
from sandbox.providers.itrx_rules import PERIOD, ItrxPrices, check_amount, period_days
from sandbox.providers.readings import Readings

_CST = timezone(timedelta(hours=8))


@dataclass
class ItrxOrder:
    serial: str
    receive_address: str
    energy_amount: int
    period: str
    amount: int
    created_at: float
    delivery: Delivery
    callback_url: str = ""
    out_trade_no: str = ""
    exclusive: bool = False
    active_hash: str = ""
    refund_amount: int = 0
    exclusive_reclaimed: list[str] = field(default_factory=list)


class ItrxEmulator(EmulatorBase):
    """itrx's HTTP API over a `Delegator`; inspect `.orders`, `.balance_sun`, `.callbacks`."""

    vendor = "itrx"

    def __init__(
        self,
        delegator: Delegator,
        *,
        clock: Clock,
        api_key: str = "ITRX-SANDBOX-KEY",
        api_secret: str = "ITRX-SANDBOX-SECRET",  # noqa: S107 (sandbox credential)
        balance_sun: int = 1_000_000_000,
        prices: ItrxPrices | None = None,
        faults: Faults | None = None,
        signature_check: Literal["both", "raw", "parsed"] = "both",
        timestamp_tolerance: float | None = None,
        min_energy: int = 10_000,
        max_energy: int = 100_000_000,
        callback_url: str = "",
        callback_transport: httpx.AsyncBaseTransport | None = None,
        seed: int = 2,
        delivery_delay: float | None = None,
        rate_limit_per_s: int | None = None,
        readings: Readings | None = None,
    ) -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.prices = prices or ItrxPrices()
        self.signature_check = signature_check
        self.timestamp_tolerance = timestamp_tolerance
        self.min_energy, self.max_energy = min_energy, max_energy
        self.callback_url = callback_url
        self.callbacks = CallbackSender(transport=callback_transport)
        self.orders: dict[str, ItrxOrder] = {}
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
        base = "/api/v1/frontend"
        return [
            (f"{base}/index-data", self._index_data, ["GET"], "balance"),
            (f"{base}/order/price", self._price, ["GET"], "price"),
            (f"{base}/order-price", self._price, ["GET"], "price"),  # the 2023 path
            (f"{base}/order", self._create, ["POST"], "create"),
            (f"{base}/order/query", self._query, ["GET"], "status"),
            (f"{base}/order/reclaim", self._reclaim, ["POST"], "reclaim"),
        ]

    # ------------------------------------------------------------------ wire helpers

    @staticmethod
    def _detail(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    def _refusal(self, message: str) -> Response:
        return self._detail(message)

    def _rate_limited(self) -> Response:
        return self._detail("Request was throttled. Expected available in 1 second.", 429)

    def _server_error(self, status: int) -> Response:
        if status == 500:
            return HTMLResponse("<h1>Server Error (500)</h1>", status_code=500)
        return super()._server_error(status)

    def _not_found(self, request: Request, status: int) -> Response:
        if status == 405:
            return self._detail(f'Method "{request.method}" not allowed.', 405)
        return self._detail("Not found.", 404)

    def _key_ok(self, request: Request) -> bool:
        return request.headers.get("API-KEY", "") == self.api_key

    async def _signed_body(self, request: Request) -> dict[str, Any] | Response:
        """The parsed JSON body of a POST whose key and signature check out, or the error."""
        if not self._key_ok(request):
            return self._detail("API not found")
        raw = await request.body()
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            return self._detail(f"JSON parse error - {exc}")
        if not isinstance(parsed, dict):
            return self._detail("Invalid data. Expected a dictionary, but got list.")
        ts = request.headers.get("TIMESTAMP", "")
        if not ts.isdigit():
            return self._detail("Invalid TIMESTAMP")
        tolerance = self.timestamp_tolerance
        if tolerance is not None and abs(self.now() - int(ts)) > tolerance:
            return self._detail("TIMESTAMP expired")
        given = request.headers.get("SIGNATURE", "").lower()
        text = raw.decode("utf-8", "replace")
        canonical = {compact_sorted(parsed), json.dumps(parsed, sort_keys=True, **_NO_ASCII)}
        raw_ok = given == hex_signature(self.api_secret, ts, text)
        parsed_ok = given == hex_signature(self.api_secret, ts, compact_sorted(parsed))
        ok = {
            "raw": raw_ok,
            "parsed": parsed_ok,
            "both": raw_ok and text in canonical,
        }[self.signature_check]
        return parsed if ok else self._detail("Signature verification failed")

    # ------------------------------------------------------------------ endpoints

    async def _index_data(self, request: Request) -> Response:
        if not self._key_ok(request):
            return JSONResponse({})  # "a wrong API key gives empty data, not an error"
        avail = self._platform_energy()
        return JSONResponse(
            {
                "platform_avail_energy": avail,
                "platform_max_energy": min(avail, self.max_energy),
                "minimum_order_energy": self.min_energy,
                "maximum_order_energy": self.max_energy,
                "small_amount": self.prices.small_amount,
                "small_addition": self.prices.small_addition_sun / 1_000_000,
                "usdt_energy_need_old": 32_000,
                "usdt_energy_need_new": 65_000,
                "tiered_pricing": [{"period": d, "price": p} for d, p in self.prices.tiers],
                "balance": self.balance_sun,
            }
        )

    async def _price(self, request: Request) -> Response:
        if not self._key_ok(request):
            return self._detail("API not found")
        q = request.query_params
        errors: dict[str, list[str]] = {}
        period = q.get("period", "")
        if not PERIOD.match(period):
            errors["period"] = [f"'{period}' is not a legal option."]
        energy = 65_000 if "to_address" in q and "energy_amount" not in q else None
        if energy is None:
            energy = check_amount(q.get("energy_amount"), errors, self.min_energy, self.max_energy)
        if errors or energy is None:
            return JSONResponse(errors, status_code=400)
        days = period_days(period)
        return JSONResponse(
            {
                "period": period,
                "energy_amount": energy,
                "price": self.prices.unit_price(days),
                "total_price": self.prices.total(energy, days),
                "addition": self.prices.addition(energy),
            }
        )

    async def _create(self, request: Request) -> Response:
        body = await self._signed_body(request)
        if isinstance(body, Response):
            return body
        errors: dict[str, list[str]] = {}
        energy = check_amount(body.get("energy_amount"), errors, self.min_energy, self.max_energy)
        period = body.get("period")
        if period is None:
            errors["period"] = ["This field is required."]
        elif not isinstance(period, str) or not PERIOD.match(period):
            errors["period"] = [f"'{period}' is not a legal option."]
        receiver = body.get("receive_address")
        if receiver is None:
            errors["receive_address"] = ["This field is required."]
        elif not isinstance(receiver, str) or not is_tron_address(receiver):
            errors["receive_address"] = ["Enter a valid TRON address."]
        if errors or energy is None:
            return JSONResponse(errors, status_code=400)
        assert isinstance(period, str) and isinstance(receiver, str)
        days = period_days(period)
        cost = self.faults.charged(self.prices.total(energy, days), energy)
        activate = int(body.get("active") or 0) > 0
        inactive = isinstance(self.delegator, ChainView) and not self.delegator.is_activated(
            receiver
        )
        if inactive and not activate:
            return self._detail(f"{receiver} is the inactive address.")
        if inactive:
            cost += self.prices.activation_sun
        if cost > self.balance_sun:
            return self._detail("Insufficient funds")
        if energy > self._platform_energy():
            return JSONResponse({"errno": 1, "message": "Insufficient platform energy"})
        reference = str(body.get("out_trade_no") or "")
        if (
            reference
            and self.reading("out_trade_no") == "unique"
            and any(o.out_trade_no == reference for o in self.orders.values())
        ):
            return JSONResponse({"errno": 1, "message": "out_trade_no already exists"})
        active_hash = ""
        if inactive and isinstance(self.delegator, ChainView):
            active_hash = self.delegator.activate(receiver)
        now = self.clock.now()
        self.balance_sun -= cost
        duration = 3600 if days == 0 else 86_400 * days
        delivery = self.book.schedule(receiver, energy, duration, now, self.faults)
        order = ItrxOrder(
            serial=self._new_hex(32),
            receive_address=receiver,
            energy_amount=energy,
            period=period,
            amount=cost,
            created_at=now,
            delivery=delivery,
            callback_url=str(body.get("callback_url") or self.callback_url),
            out_trade_no=str(body.get("out_trade_no") or ""),
            exclusive=int(body.get("exclusive") or 0) == 1,
            active_hash=active_hash,
        )
        if order.exclusive:
            delivery.before_first = lambda d, at: self._exclusive(order, at)
        self.orders[order.serial] = order
        return JSONResponse(
            {"errno": 0, "serial": order.serial, "amount": cost, "balance": self.balance_sun}
        )

    async def _query(self, request: Request) -> Response:
        if not self._key_ok(request):
            return self._detail("API not found")
        order = self.orders.get(request.query_params.get("serial", ""))
        if order is None:
            return JSONResponse({"errno": 404, "message": "Order not found"})
        return JSONResponse(self._render(order))

    async def _reclaim(self, request: Request) -> Response:
        body = await self._signed_body(request)
        if isinstance(body, Response):
            return body
        order = self.orders.get(str(body.get("serial", "")))
        if order is None:
            return JSONResponse({"errno": 404, "message": "Order not found"})
        self.book.reclaim_early(order.delivery, self.clock.now())
        return JSONResponse({"errno": 0, "message": "request accept"})

    # ------------------------------------------------------------------ state

    def _platform_energy(self) -> int:
        if isinstance(self.delegator, ChainView):
            return max(0, self.delegator.available_energy())
        return 10**12

    def _exclusive(self, order: ItrxOrder, at: float) -> None:
        for other in self.orders.values():
            if other is not order and other.receive_address == order.receive_address:
                order.exclusive_reclaimed += self.book.reclaim_early(other.delivery, at)

    def status_of(self, order: ItrxOrder) -> int:
        """The order's itrx status code at the clock's now."""
        d = order.delivery
        state = d.state
        if state is DeliveryState.FAILED:
            return 41
        if state is DeliveryState.EXPIRED:
            return 40 if d.delivered >= d.energy else 43
        if state is DeliveryState.DELEGATED:
            # reading itrx.status30=delegated: "30 means fully delegated", 40 at the end
            return 30 if self.reading("status30") == "delegated" else 40
        if state is DeliveryState.PARTIAL:
            return 31
        if d.retrying:
            return 32
        return 20 if self.clock.now() < d.accepted_at + 1.0 else 30

    def _delivery_changed(self, delivery: Delivery, now: float) -> None:
        order = next((o for o in self.orders.values() if o.delivery is delivery), None)
        if order is None:
            return
        status = self.status_of(order)
        if status in (41, 43) and order.refund_amount == 0:
            undelivered = delivery.energy - delivery.delivered
            order.refund_amount = order.amount * undelivered // delivery.energy
            self.balance_sun += order.refund_amount
        first_end = status in (40, 41, 43) and not any(
            j.payload["serial"] == order.serial for j in self.callbacks.jobs
        )
        if first_end and order.callback_url:
            payload = {
                "active_hash": order.active_hash,
                "bandwidth_hash": "",
                "energy_amount": order.energy_amount,
                "out_trade_no": order.out_trade_no,
                "pay_amount": float(delivery.delivered),
                "serial": order.serial,
                "txid": delivery.delegations[0].txid if delivery.delegations else "",
                "status": 40 if status == 40 else 41,
                "type": "energy",
                "receive_address": order.receive_address,
                "source": "api",
            }
            self.callbacks.enqueue(order.callback_url, payload, self.api_secret, now)

    async def _after_tick(self) -> None:
        await self.callbacks.send_due(self.clock.now())

    def _render(self, order: ItrxOrder) -> dict[str, Any]:
        d = order.delivery
        details = [
            {
                "delegate_hash": x.txid,
                "delegate_time": _utc(x.delegated_at),
                "reclaim_hash": fake_txid("reclaim", x.txid) if x.reclaimed_at else "",
                "reclaim_time": _utc(x.expires_at),
                "reclaim_time_real": _utc(x.reclaimed_at) if x.reclaimed_at else None,
                "status": 30 if x.reclaimed_at else 20,
            }
            for x in d.delegations
        ]
        return {
            "errno": 0,
            "receive_address": order.receive_address,
            "order_no": order.serial,
            "energy_amount": order.energy_amount,
            "pay_amount": float(d.delivered),
            "amount": order.amount,
            "details": details,
            "create_time": datetime.fromtimestamp(order.created_at, _CST).isoformat(),
            "api_name": "sandbox API",
            "period": period_days(order.period),
            "status": self.status_of(order),
            "refund_amount": order.refund_amount,
        }


_NO_ASCII: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")[:-6] + "Z"
