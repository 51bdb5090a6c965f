"""TronSave's market rules: FAST/MEDIUM/SLOW prices, order cost, body validation.

Prices are sun per energy unit **per day** (reference 4.8): an order costs
`price x amount x max(1 day, durationSec) / 1 day`, so orders of a day or less pay one
day's price. SLOW is the lowest settable price for the duration (`TronSavePrices.slow`);
with `fill` the share of the order the market (the delegator's free stake) can fill now:

    MEDIUM = SLOW + medium_premium if fill > 0, else SLOW + 10
    FAST   = MEDIUM if fill == 100%; MEDIUM + 10 if 0 < fill < 100%; SLOW + 20 if fill == 0

`validate_body` checks a buy/estimate body the way Fastify's schema validation does
(types, required properties, enums; numeric strings are coerced to numbers in place).
Neighbours: used by `tronsave.py` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DAY = 86_400


@dataclass(frozen=True)
class TronSavePrices:
    """The lowest price per duration bracket: ((max duration s or None, sun/unit/day), ...)."""

    slow_by_duration: tuple[tuple[int | None, int], ...] = ((3600, 55), (DAY, 60), (None, 53))
    medium_premium: int = 5

    def slow(self, duration_sec: int) -> int:
        for limit, price in self.slow_by_duration:
            if limit is None or duration_sec <= limit:
                return price
        return self.slow_by_duration[-1][1]


@dataclass(frozen=True)
class Quote:
    price: int  # the unit price the order would get
    slow: int
    medium: int
    fast: int


def quote(
    prices: TronSavePrices, unit_price: object, amount: int, duration: int, available: int
) -> Quote:
    """The price for `unit_price` ("FAST"/"MEDIUM"/"SLOW" or a number of sun)."""
    slow = prices.slow(duration)
    full, none = available >= amount, available <= 0
    medium = slow + 10 if none else slow + prices.medium_premium
    fast = medium if full else (slow + 20 if none else medium + 10)
    named = {"SLOW": slow, "MEDIUM": medium, "FAST": fast}
    price = named[unit_price] if isinstance(unit_price, str) else int(unit_price)  # type: ignore[call-overload]
    return Quote(price, slow, medium, fast)


def cost_sun(price: int, amount: int, duration: int) -> int:
    """Total sun for `amount` units at `price` per unit per day over `duration` seconds."""
    return price * amount * max(DAY, duration) // DAY


_NUMBERS = ("resourceAmount", "durationSec")
_OPTION_BOOLS = ("allowPartialFill", "onlyCreateWhenFulfilled", "preventDuplicateIncompleteOrders")
_OPTION_NUMBERS = ("maxPriceAccepted", "minResourceDelegateRequiredAmount")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return None
    return None


def validate_body(body: dict[str, Any]) -> str | None:
    """Fastify's message for the first schema violation in `body`, or None (coerces numbers)."""
    for name in ("resourceAmount", "receiver"):
        if name not in body:
            return f"body must have required property '{name}'"
    for name in _NUMBERS:
        if name in body:
            number = _number(body[name])
            if number is None:
                return f"body/{name} must be number"
            body[name] = number
    if not isinstance(body["receiver"], str):
        return "body/receiver must be string"
    if body.get("resourceType", "ENERGY") not in ("ENERGY", "BANDWIDTH"):
        return "body/resourceType must be equal to one of the allowed values"
    unit = body.get("unitPrice", "MEDIUM")
    if unit not in ("FAST", "MEDIUM", "SLOW"):
        number = _number(unit) if not isinstance(unit, str) else None
        if number is None:
            return "body/unitPrice must match a schema in anyOf"
        body["unitPrice"] = number
    options = body.get("options", {})
    if not isinstance(options, dict):
        return "body/options must be object"
    for name in _OPTION_BOOLS:
        if name in options and not isinstance(options[name], bool):
            return f"body/options/{name} must be boolean"
    for name in _OPTION_NUMBERS:
        if name in options:
            number = _number(options[name])
            if number is None:
                return f"body/options/{name} must be number"
            options[name] = number
    return None
