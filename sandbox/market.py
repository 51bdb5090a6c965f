"""The sandbox's market as one catalogue: every rental each vendor emulator sells, and its price.

`catalogue(world)` reads the four emulators' price tables (`MefreePrices`, `ItrxPrices`,
`EopenPrices`, `TronSavePrices`; the values, their public sources and the date they describe
are in docs/sandbox-providers.md) and lists one `Offer` per vendor and duration: the
duration in seconds, the cost in sun of one unit of energy for that whole duration (per-day
prices times days) and the vendor's smallest order. Durations run to `max_days` days.

`Offer.cost(t)` is the price at emulated time `t`; today's emulators keep their tables
fixed, so it is constant. The hindsight optimum (`sandbox/optimum.py`) builds its linear
program from this catalogue. Neighbours: `sandbox/world.py`, `sandbox/providers/*`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandbox.providers.eopen import MIN_RENTAL as EOPEN_MIN
from sandbox.providers.eopen import PERIODS as EOPEN_PERIODS
from sandbox.providers.eopen import EopenEmulator
from sandbox.providers.itrx import ItrxEmulator
from sandbox.providers.mefree import MIN_QUANTITY as MEFREE_MIN
from sandbox.providers.mefree import MefreeEmulator
from sandbox.providers.tronsave import TronSaveEmulator
from sandbox.providers.tronsave_market import cost_sun

if TYPE_CHECKING:
    from sandbox.world import World

HOUR = 3600
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Offer:
    vendor: str
    duration: int  # seconds
    unit_cost_sun: float  # sun per energy unit for the whole duration
    min_amount: int  # smallest order, energy

    def cost(self, at: float) -> float:
        """Sun per energy unit for the whole duration, for an order placed at `at`."""
        return self.unit_cost_sun


def catalogue(world: World, *, max_days: int = 30) -> list[Offer]:
    """Every (vendor, duration) the emulators sell, up to `max_days` days."""
    offers: list[Offer] = []
    days = range(1, max_days + 1)
    for vendor, emulator in world.emulators.items():
        if isinstance(emulator, MefreeEmulator):
            p = emulator.prices
            offers.append(Offer(vendor, HOUR, min(p.cost(1, 0), p.cost(1, 1)), MEFREE_MIN))
            offers += [Offer(vendor, n * DAY, p.cost(1, 2 if n == 1 else n), MEFREE_MIN)
                       for n in days if n != 2]  # fmt: skip
        elif isinstance(emulator, ItrxEmulator):
            q = emulator.prices
            minimum = emulator.min_energy  # below `small_amount` an addition is due too
            offers.append(Offer(vendor, HOUR, q.unit_price(0), minimum))
            offers += [Offer(vendor, n * DAY, q.unit_price(n) * n, minimum) for n in days]
        elif isinstance(emulator, EopenEmulator):
            table = emulator.prices
            for period, seconds in EOPEN_PERIODS.items():
                if seconds <= max_days * DAY:
                    offers.append(Offer(vendor, seconds, table.unit(period), EOPEN_MIN))
        elif isinstance(emulator, TronSaveEmulator):
            t = emulator.prices
            minimum = int(world.readings.number("tronsave", "minimum"))
            offers.append(Offer(vendor, HOUR, cost_sun(t.slow(HOUR), 1, HOUR), minimum))
            offers += [Offer(vendor, n * DAY, t.slow(n * DAY) * n, minimum) for n in days]
    return offers


__all__ = ["Offer", "catalogue"]
