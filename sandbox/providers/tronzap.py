"""TronZap emulator: `api.tronzap.com`'s wire format (https://docs.tronzap.com/api/).

- Every endpoint is a POST with a JSON body. Auth on every call: `Authorization: Bearer
  <token>` and `X-Signature` = hex SHA-256 of the raw body bytes as received followed by
  the secret (spaced JSON and `[]` for an empty body are fine: the bytes are hashed, not
  a re-serialisation). A wrong token or signature -> `{code: 1, key: "auth", error:
  "Incorrect token or signature"}`.
- Envelope: `{code: 0, request_id, result}`; errors `{code, key, request_id, error}`, with
  HTTP 200 (reading `tronzap.error_status=200`, the docs) or 400 (`=400`, what the SDKs
  also accept). Over `rate_limit_per_s` (none unless set) -> HTTP 429 `{code: 429, error:
  "Too Many Requests"}` and `X-RateLimit-Limit`/`-Remaining` (as probed on the public
  Orders API; no `Retry-After`).
- `/v1/services`: per duration (hours) `min_amount`, `max_amount`, `price` (TRX per 1,000
  energy) and the deprecated `min_energy`/`max_energy`. The listed durations are the
  reading `tronzap.durations` ("1": one hour, the newer docs; "1,24": one hour or a day,
  the older), the minimum `tronzap.minimum` (32,000 as the SDK fixture; 60,000 as the
  README since 2025-05).
- `/v1/transaction/new` `{service, external_id?, params: {address, amounts: {energy} |
  amount | energy_amount, duration, activate_address?}}` -> a transaction `new`, then
  `pending` (after a second), `success` with `hash` once delegated, or `failed` (refunded:
  an assumption, nothing is documented). Which amount field is read is the reading
  `tronzap.amount_field` (`precedence`: amounts, amount, energy_amount as the docs order
  them; `legacy`: only `energy_amount`, the older docs). A repeated `external_id` is the
  reading `tronzap.duplicate`: `second` (the default: nothing documents de-duplication, a
  second transaction is made and charged), `existing` (the first is answered), `refused`
  (code 2 `invalid_service_or_params.external_id`).
- `/v1/transaction/check {id | external_id}`: the transaction (by external id: the latest
  with it); neither -> code 2 `invalid_service_or_params.id`; none -> code 20.
- `/v1/calculate {address, amount, duration}`, `/v1/balance` (`balance` TRX string).

Operation names for `Faults(on=...)`: "create", "status", "price", "balance".
Construct: `TronZapEmulator(delegator, clock=clock, api_key="T", api_secret="S")`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.core.clock import Clock
from sandbox.providers.base import ChainView, Delegator, is_tron_address
from sandbox.providers.delivery import Delivery, DeliveryState
from sandbox.providers.emulating import EmulatorBase, Handler, refund_failed
from sandbox.providers.faults import Faults
from sandbox.providers.readings import Readings

DEPOSIT_ADDRESS = "TQ5pXG3u8CaCZ3tVqHBcCrPHr5vYVmQ7aJ"  # emulated deposit address
MAX_AMOUNT = 5_000_000
#: what activating a receiver costs, sun (not published: a sandbox value)
ACTIVATION_FEE_SUN = 1_000_000
KEYS = {
    1: "auth", 2: "invalid_service_or_params", 6: "insufficient_funds",
    10: "invalid_tron_address", 11: "invalid_energy_amount", 12: "invalid_duration",
    20: "subscription_not_found", 24: "address_not_activated",
}  # fmt: skip


@dataclass(frozen=True)
class TronZapPrices:
    """Sun per energy unit for the whole rental, by duration in hours (the services list
    gives TRX per 1,000 energy: the same number / 1,000)."""

    hour_sun: int = 46  # tronzap.com, 2026-08: 65,000 for about 3 TRX
    day_sun: int = 88

    def unit(self, hours: int) -> int:
        return self.hour_sun if hours == 1 else self.day_sun

    def scaled(self, factor: float) -> TronZapPrices:
        """This table with every energy price times `factor` (the market's drift)."""
        return dataclasses.replace(
            self,
            hour_sun=max(1, round(self.hour_sun * factor)),
            day_sun=max(1, round(self.day_sun * factor)),
        )


@dataclass
class TronZapTransaction:
    id: str
    external_id: str | None
    receiver: str
    energy: int
    hours: int
    amount_sun: int
    activate: bool
    created_at: float
    delivery: Delivery
    refunded: bool = False


def _trx(sun: int) -> str:
    """Sun as a TRX decimal string ("5.815", "1000")."""
    text = f"{Decimal(sun) / 1_000_000:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class TronZapEmulator(EmulatorBase):
    """TronZap's HTTP API over a `Delegator`; inspect `.orders` and `.balance_sun`."""

    vendor = "tronzap"
    default_delivery_delay = 3.0  # "within seconds"

    def __init__(
        self,
        delegator: Delegator,
        *,
        clock: Clock,
        api_key: str = "tronzap-sandbox-token",
        api_secret: str = "tronzap-sandbox-secret",  # noqa: S107 (sandbox credential)
        balance_sun: int = 1_000_000_000,
        prices: TronZapPrices | None = None,
        faults: Faults | None = None,
        seed: int = 5,
        delivery_delay: float | None = None,
        rate_limit_per_s: int | None = None,
        readings: Readings | None = None,
    ) -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.prices = prices or TronZapPrices()
        self.orders: dict[str, TronZapTransaction] = {}
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
        return [
            ("/v1/services", self._services, ["POST"], "price"),
            ("/v1/calculate", self._calculate, ["POST"], "price"),
            ("/v1/balance", self._balance, ["POST"], "balance"),
            ("/v1/transaction/new", self._create, ["POST"], "create"),
            ("/v1/transaction/check", self._check, ["POST"], "status"),
        ]

    # ------------------------------------------------------------------ wire helpers

    def _request_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _ok(self, result: Any) -> JSONResponse:
        return JSONResponse({"code": 0, "request_id": self._request_id(), "result": result})

    def _fail(self, code: int, message: str, field: str = "") -> JSONResponse:
        key = KEYS.get(code, "error") + (f".{field}" if field else "")
        body = {"code": code, "key": key, "request_id": self._request_id(), "error": message}
        return JSONResponse(body, 400 if self.reading("error_status") == "400" else 200)

    def _refusal(self, message: str) -> Response:
        return self._fail(1, message)

    def _rate_limited(self) -> Response:
        body = {"code": 429, "error": "Too Many Requests"}
        limit = str(self.faults.rate_limit_per_s or self.rate_limit_per_s or 0)
        return JSONResponse(
            body, 429, headers={"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": "0"}
        )

    def sign(self, body: bytes) -> str:
        return hashlib.sha256(body + self.api_secret.encode()).hexdigest()

    async def _body(self, request: Request) -> dict[str, Any] | Response:
        raw = await request.body()
        token = request.headers.get("authorization", "")
        signature = request.headers.get("x-signature", "")
        good_token = hmac.compare_digest(token, f"Bearer {self.api_key}")
        if not (good_token and hmac.compare_digest(signature, self.sign(raw))):
            return self._fail(1, "Incorrect token or signature")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._fail(2, "Invalid JSON body")
        if body == []:  # PHP's json_encode([]) for an empty body
            body = {}
        if not isinstance(body, dict):
            return self._fail(2, "Body must be an object")
        return body

    # ------------------------------------------------------------------ services

    def hours_sold(self) -> list[int]:
        return [int(h) for h in self.reading("durations").split(",")]

    def minimum(self) -> int:
        return int(self.readings.number("tronzap", "minimum"))

    def charge_for(self, energy: int, seconds: int) -> int | None:
        """What an order of `energy` for `seconds` costs (sun), None if not sold."""
        hours, rest = divmod(seconds, 3600)
        return None if rest or hours not in self.hours_sold() else energy * self.prices.unit(hours)

    def market_offers(self, prices: TronZapPrices, max_days: int) -> list[tuple[int, float, int]]:
        """(seconds, sun per unit for the whole duration, smallest order) of every rental
        sold, at `prices` (`sandbox.market.catalogue`)."""
        return [(hours * 3600, float(prices.unit(hours)), self.minimum())
                for hours in self.hours_sold() if hours * 3600 <= max_days * 86_400]  # fmt: skip

    def _service_rows(self) -> list[dict[str, Any]]:
        rows = []
        for hours in self.hours_sold():
            unit = self.prices.unit(hours)
            per_k = Decimal(unit) / 1000
            rows.append(
                {
                    "duration": hours,
                    "min_amount": self.minimum(),
                    "max_amount": MAX_AMOUNT,
                    "min_energy": self.minimum(),
                    "max_energy": MAX_AMOUNT,
                    "price": float(per_k),
                    "price_32k": float(per_k * 32),
                    "price_65k": float(per_k * 65),
                    "price_131k": float(per_k * 131),
                }
            )
        return rows

    def _validate(self, address: Any, amount: Any, hours: Any) -> tuple[str, int, int] | Response:
        """(address, amount, hours) when the vendor takes them, else its refusal."""
        if not isinstance(address, str) or not is_tron_address(address):
            return self._fail(10, "Invalid TRON address", "address")
        if not isinstance(hours, int) or hours not in self.hours_sold():
            sold = " or ".join(f"{h} ({h} hour{'s' if h > 1 else ''})" for h in self.hours_sold())
            return self._fail(12, f"Duration must be equal to {sold}", "duration")
        if not isinstance(amount, int) or not self.minimum() <= amount <= MAX_AMOUNT:
            return self._fail(
                11,
                f"Energy amount must be between {self.minimum()} and {MAX_AMOUNT}",
                "energy_amount",
            )
        return address, amount, hours

    def _cost(self, energy: int, hours: int) -> int:
        return self.faults.charged(energy * self.prices.unit(hours), energy)

    def _activated(self, address: str) -> bool:
        return not isinstance(self.delegator, ChainView) or self.delegator.is_activated(address)

    # ------------------------------------------------------------------ endpoints

    async def _services(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        return self._ok(
            {
                "energy": self._service_rows(),
                "bandwidth": [],
                "activate_address": {"price": _trx(ACTIVATION_FEE_SUN)},
            }
        )

    async def _balance(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        return self._ok({"balance": _trx(self.balance_sun), "address": DEPOSIT_ADDRESS})

    async def _calculate(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        checked = self._validate(
            body.get("address"), body.get("amount", body.get("energy")), body.get("duration", 1)
        )
        if isinstance(checked, Response):
            return checked
        address, amount, hours = checked
        price = amount * self.prices.unit(hours)
        fee = 0 if self._activated(address) else ACTIVATION_FEE_SUN
        return self._ok(
            {
                "address": address,
                "type": "energy",
                "amount": amount,
                "energy": amount,
                "duration": hours,
                "price": _trx(price),
                "activation_fee": _trx(fee),
                "total": _trx(price + fee),
            }
        )

    def _amount(self, params: dict[str, Any]) -> Any:
        if self.reading("amount_field") == "legacy":
            return params.get("energy_amount")
        amounts = params.get("amounts")
        if isinstance(amounts, dict) and "energy" in amounts:
            return amounts["energy"]
        return params.get("amount", params.get("energy_amount"))

    async def _create(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        params = body.get("params")
        if body.get("service") != "energy" or not isinstance(params, dict):
            return self._fail(2, "Invalid service or params")
        external = body.get("external_id")
        if external is not None and not isinstance(external, str):
            return self._fail(2, "external_id must be a string", "external_id")
        checked = self._validate(
            params.get("address"), self._amount(params), params.get("duration", 1)
        )
        if isinstance(checked, Response):
            return checked
        address, amount, hours = checked
        earlier = self._latest(external) if external else None
        duplicate = self.reading("duplicate")
        if earlier is not None and duplicate == "existing":
            return self._ok(self._render(earlier))
        if earlier is not None and duplicate == "refused":
            return self._fail(2, "external_id already used", "external_id")
        activate = bool(params.get("activate_address"))
        active = self._activated(address)
        if not active and not activate:
            return self._fail(24, "Address is not activated: set params.activate_address")
        cost = self._cost(amount, hours) + (0 if active else ACTIVATION_FEE_SUN)
        if cost > self.balance_sun:
            return self._fail(6, "Insufficient funds")
        if not active and isinstance(self.delegator, ChainView):
            self.delegator.activate(address)
        now = self.clock.now()
        self.balance_sun -= cost
        delivery = self.book.schedule(address, amount, hours * 3600, now, self.faults)
        tx = TronZapTransaction(
            id=self._new_hex(24),
            external_id=external or None,
            receiver=address,
            energy=amount,
            hours=hours,
            amount_sun=cost,
            activate=activate,
            created_at=now,
            delivery=delivery,
        )
        self.orders[tx.id] = tx
        return self._ok(self._render(tx))

    def _latest(self, external_id: str) -> TronZapTransaction | None:
        found = [t for t in self.orders.values() if t.external_id == external_id]
        return max(found, key=lambda t: t.created_at) if found else None

    async def _check(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        tx_id, external = body.get("id"), body.get("external_id")
        if not tx_id and not external:
            return self._fail(2, "Either id or external_id is required", "id")
        tx = self.orders.get(str(tx_id)) if tx_id else self._latest(str(external))
        if tx is None:
            return self._fail(20, "Transaction not found", "transaction")
        return self._ok(self._render(tx))

    # ------------------------------------------------------------------ state

    def _delivery_changed(self, delivery: Delivery, now: float) -> None:
        # an assumption: nothing says a failed one is refunded
        self.balance_sun += refund_failed(self.orders.values(), delivery)

    def status_of(self, tx: TronZapTransaction) -> str:
        state = tx.delivery.state
        if state is DeliveryState.FAILED:
            return "failed"
        if tx.delivery.delegations:
            return "success"
        return "new" if self.clock.now() < tx.created_at + 1.0 else "pending"

    def _render(self, tx: TronZapTransaction) -> dict[str, Any]:
        d = tx.delivery
        params: dict[str, Any] = {
            "address": tx.receiver,
            "amounts": {"energy": tx.energy},
            "duration": tx.hours,
        }
        if tx.activate:
            params["activate_address"] = True
        return {
            "id": tx.id,
            "external_id": tx.external_id,
            "service": "energy",
            "params": params,
            "status": self.status_of(tx),
            "amount": _trx(tx.amount_sun),
            "created_at": datetime.fromtimestamp(tx.created_at, UTC).isoformat(),
            "hash": d.delegations[0].txid if d.delegations else None,
        }
