"""What itrx accepts and charges: periods, amount validation, the price table.

Prices are sun per energy unit per day (per hour-order for "1H"), by period tier, plus a
small-order `addition` below `small_amount`; see docs/sandbox-providers.md for the values.
Neighbours: used by `itrx.py` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: "1H" or "nD" for n = 1..30 (the newer docs' "Supported range: 1D-30D")
PERIOD = re.compile(r"^(?:1H|([1-9]|[12][0-9]|30)D)$")


@dataclass(frozen=True)
class ItrxPrices:
    """Sun per energy: `tiers` maps the days of a period (0 = 1H) to a per-day price."""

    tiers: tuple[tuple[int, int], ...] = ((0, 40), (1, 90), (3, 60), (7, 51), (30, 50))
    small_amount: int = 50_000  # below this, `small_addition` is charged
    small_addition_sun: int = 600_000
    activation_sun: int = 1_500_000

    def unit_price(self, days: int) -> int:
        return max((t for t in self.tiers if t[0] <= days), default=self.tiers[0])[1]

    def addition(self, energy: int) -> int:
        return self.small_addition_sun if energy < self.small_amount else 0

    def total(self, energy: int, days: int) -> int:
        return self.unit_price(days) * energy * max(1, days) + self.addition(energy)


def period_days(period: str) -> int:
    """Period code on the wire: "1H" -> 0; "nD" -> n (days)."""
    return 0 if period == "1H" else int(period[:-1])


def check_amount(
    value: object, errors: dict[str, list[str]], minimum: int, maximum: int
) -> int | None:
    """Validate `energy_amount` like DRF would; adds to `errors`, returns the integer."""
    if value is None or value == "":
        errors["energy_amount"] = ["This field is required."]
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        errors["energy_amount"] = ["A valid integer is required."]
        return None
    try:
        amount = int(value)
    except ValueError:
        errors["energy_amount"] = ["A valid integer is required."]
        return None
    if amount < minimum:
        errors["energy_amount"] = [
            f"Please make sure the value is greater than or equal to {minimum}."
        ]
    elif amount > maximum:
        errors["energy_amount"] = [
            f"Please make sure the value is less than or equal to {maximum}."
        ]
    return amount
