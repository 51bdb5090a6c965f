"""The sandbox's market as one catalogue: every rental each vendor emulator sells, and its price.

`catalogue(world)` reads the emulators' price tables (`MefreePrices`, `ItrxPrices`,
`EopenPrices`, `TronSavePrices`, and the tables of the emulators that list their own offers;
the values, their public sources and the date they describe
are in docs/sandbox-providers.md) and lists one `Offer` per vendor and duration: the
duration in seconds, the cost in sun of one unit of energy for that whole duration (per-day
prices times days) and the vendor's smallest order. Durations run to `max_days` days.
TronSave sells any duration (prorated per day beyond one day): the catalogue lists it on a
grid beyond a day (`tronsave_grid`), each point priced as the shortest order it stands for
(the previous point), so an order of any length costs at least its representative. Any
other emulator lists its own offers: `emulator.market_offers(prices, max_days)` yields
(seconds, sun per unit for the whole duration, smallest order), and its table scales
itself (`prices.scaled(factor)`).

Prices can move: `Market(world, Drift(seed))` keeps the emulators' tables as a base and,
each time `apply(t)` is called (the simulator calls it every step), sets every emulator's
table to the base times `Drift.factor(vendor, t)`, rounded to whole sun: a seeded level
that wanders by a few percent a day per vendor, and for eopen a time-of-day cycle (dearer
in the UTC afternoon, cheaper at night, as some vendors publish prices by UTC period). The
factor is constant within 10-minute buckets. Without a drift nothing changes.

`PriceBook.lowest(vendor, duration, start, end)` is what the hindsight optimum
(`sandbox/optimum.py`) pays for a rental of at least `duration` from `vendor` placed in
[start, end]: the lowest price over those buckets and over the vendor's offers at least as
long (buying longer is always allowed). Neighbours: `sandbox/world.py`, `sandbox/providers/*`.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.providers.eopen import MIN_RENTAL as EOPEN_MIN
from sandbox.providers.eopen import PERIODS as EOPEN_PERIODS
from sandbox.providers.eopen import EopenEmulator, EopenPrices
from sandbox.providers.itrx import ItrxEmulator
from sandbox.providers.itrx_rules import ItrxPrices
from sandbox.providers.mefree import MIN_QUANTITY as MEFREE_MIN
from sandbox.providers.mefree import MefreeEmulator, MefreePrices
from sandbox.providers.tronsave import TronSaveEmulator
from sandbox.providers.tronsave_market import TronSavePrices, cost_sun

if TYPE_CHECKING:
    from sandbox.world import World

HOUR = 3600
DAY = 86_400
BUCKET = 600.0  # seconds a drift factor holds


# (up to, step) in hours: TronSave's grid of any-length orders beyond a day
TRONSAVE_STEPS = ((30, 1), (36, 2), (48, 4), (72, 6), (192, 12))


def tronsave_grid(max_days: int) -> list[int]:
    """Durations (s) standing for TronSave's any-length orders beyond a day: every hour to
    30 h, every 2 h to 36 h, 4 h to 2 days, 6 h to 3 days, 12 h to 8 days, then every day.
    An order between two points is priced as the shorter one's length, so it pays at least
    (1 - step / length) of its own price: the looseness is at most 1/24 of the order to
    30 h, 1/15 to 36 h, 1/9 to 2 days, 1/8 to 3 days, 1/6 to 8 days and 1/8 beyond. The
    steps are finest where most orders are (a day and a few hours): an hourly grid to 3
    days made bench/optimum's LP about 1.8 times as slow (over its 2 s target) for
    0.1-0.4 % more bound (docs/sandbox.md)."""
    points, end = [], DAY
    for until, step in TRONSAVE_STEPS:
        while end + step * HOUR <= until * HOUR:
            end += step * HOUR
            points.append(end)
    points += list(range(9 * DAY, max_days * DAY + 1, DAY))
    return [p for p in points if p <= max_days * DAY]


@dataclass(frozen=True, slots=True)
class Offer:
    vendor: str
    duration: int  # seconds
    unit_cost_sun: float  # sun per energy unit for the whole duration
    min_amount: int  # smallest order, energy


def _offers(vendor: str, emulator: Any, prices: Any, world: World, max_days: int) -> list[Offer]:
    days = range(1, max_days + 1)
    if isinstance(emulator, MefreeEmulator):
        p: MefreePrices = prices
        out = [Offer(vendor, HOUR, min(p.cost(1, 0), p.cost(1, 1)), MEFREE_MIN)]
        return out + [Offer(vendor, n * DAY, p.cost(1, 2 if n == 1 else n), MEFREE_MIN)
                      for n in days if n != 2]  # fmt: skip
    if isinstance(emulator, ItrxEmulator):
        q: ItrxPrices = prices
        minimum = emulator.min_energy  # below `small_amount` an addition is due too
        out = [Offer(vendor, HOUR, q.unit_price(0), minimum)]
        return out + [Offer(vendor, n * DAY, q.unit_price(n) * n, minimum) for n in days]
    if isinstance(emulator, EopenEmulator):
        e: EopenPrices = prices
        longest = max_days * DAY
        return [Offer(vendor, seconds, e.unit(period), EOPEN_MIN)
                for period, seconds in EOPEN_PERIODS.items() if seconds <= longest]  # fmt: skip
    if isinstance(emulator, TronSaveEmulator):
        t: TronSavePrices = prices
        minimum = int(world.readings.number("tronsave", "minimum"))
        out = [Offer(vendor, HOUR, cost_sun(t.slow(HOUR), 1, HOUR), minimum),
               Offer(vendor, DAY, cost_sun(t.slow(DAY), 1, DAY), minimum)]  # fmt: skip
        # any duration beyond a day, prorated: points on a grid, each priced as the shortest
        # order it stands for (down to the previous point), so none costs less than that
        previous = DAY
        for end in tronsave_grid(max_days):
            out.append(Offer(vendor, end, t.slow(end) * previous / DAY, minimum))
            previous = end
        return out
    listed = getattr(emulator, "market_offers", None)  # a vendor that lists its own offers
    if listed is None:
        return []
    return [Offer(vendor, seconds, unit, minimum) for seconds, unit, minimum in
            listed(prices, max_days)]  # fmt: skip


def _prices(emulator: object) -> Any:
    """The emulator's price table (every vendor emulator has a `prices` attribute)."""
    return getattr(emulator, "prices")  # noqa: B009


def catalogue(world: World, *, max_days: int = 30) -> list[Offer]:
    """Every (vendor, duration) the emulators sell now, up to `max_days` days."""
    offers: list[Offer] = []
    for vendor, emulator in world.emulators.items():
        offers += _offers(vendor, emulator, _prices(emulator), world, max_days)
    return offers


def _scale(value: int, factor: float) -> int:
    return max(1, round(value * factor))


def scaled(prices: Any, factor: float) -> Any:
    """A copy of an emulator's price table with every energy price times `factor`."""
    if isinstance(prices, MefreePrices):
        return dataclasses.replace(
            prices,
            flash_price_sun=_scale(prices.flash_price_sun, factor),
            hour_price_sun=_scale(prices.hour_price_sun, factor),
            day_price_sun=_scale(prices.day_price_sun, factor),
            multi_day_price_sun=_scale(prices.multi_day_price_sun, factor),
        )
    if isinstance(prices, ItrxPrices):
        tiers = tuple((d, _scale(p, factor)) for d, p in prices.tiers)
        return dataclasses.replace(prices, tiers=tiers)
    if isinstance(prices, EopenPrices):
        table = tuple((n, _scale(p, factor)) for n, p in prices.per_period)
        return dataclasses.replace(prices, per_period=table)
    if isinstance(prices, TronSavePrices):
        slow = tuple((limit, _scale(p, factor)) for limit, p in prices.slow_by_duration)
        return dataclasses.replace(prices, slow_by_duration=slow)
    if hasattr(prices, "scaled"):  # a vendor's table that scales itself
        return prices.scaled(factor)
    raise TypeError(f"no price table scaling for {type(prices).__name__}")


def _unit(seed: int, vendor: str, day: int) -> float:
    digest = hashlib.sha256(f"energyctl-sandbox/drift/{seed}/{vendor}/{day}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 2 - 1  # in [-1, 1)


@dataclass(frozen=True, slots=True)
class Drift:
    """Seeded price movement (see the module docstring); `factor` multiplies a base price."""

    seed: int = 0
    daily: float = 0.04  # the level moves at most 2 x this per day (linear between days)
    time_of_day: dict[str, float] = field(default_factory=lambda: {"eopen": 0.15})

    def factor(self, vendor: str, t: float) -> float:
        t = math.floor(t / BUCKET) * BUCKET
        day, into = divmod(t / DAY, 1.0)
        a, b = _unit(self.seed, vendor, int(day)), _unit(self.seed, vendor, int(day) + 1)
        level = 1.0 + self.daily * (a + (b - a) * into)
        swing = self.time_of_day.get(vendor, 0.0)
        cycle = 1.0 + swing * math.sin(2 * math.pi * (into * 24.0 - 9.0) / 24.0)
        return level * cycle


class Market:
    """The emulators' prices over time: the base tables, with a `Drift` or fixed."""

    def __init__(self, world: World, drift: Drift | None = None, *, max_days: int = 30) -> None:
        self.world, self.drift, self.max_days = world, drift, max_days
        self.base = {vendor: _prices(e) for vendor, e in world.emulators.items()}
        self._applied: float | None = None

    def apply(self, t: float) -> None:
        """Set every emulator's table to the prices at `t` (nothing without a drift)."""
        if self.drift is None:
            return
        bucket = math.floor(t / BUCKET)
        if bucket == self._applied:
            return
        self._applied = bucket
        for vendor, emulator in self.world.emulators.items():
            factor = self.drift.factor(vendor, t)
            setattr(emulator, "prices", scaled(self.base[vendor], factor))  # noqa: B010

    def offers_at(self, t: float) -> list[Offer]:
        out: list[Offer] = []
        for vendor, emulator in self.world.emulators.items():
            prices = self.base[vendor]
            if self.drift is not None:
                prices = scaled(prices, self.drift.factor(vendor, t))
            out += _offers(vendor, emulator, prices, self.world, self.max_days)
        return out

    def book(self) -> PriceBook:
        if self.drift is None:
            fixed = self.offers_at(0.0)
            return PriceBook(fixed)  # static: one table for every time
        return PriceBook(self.offers_at(0.0), self.offers_at)


class PriceBook:
    """Lowest prices over time windows (see the module docstring)."""

    def __init__(
        self, offers: Sequence[Offer], at: Callable[[float], Sequence[Offer]] | None = None
    ) -> None:
        self.offers = list(offers)  # the shape: vendors, durations, minimums
        fixed = list(offers)
        self._at = at if at is not None else (lambda _t: fixed)
        self._static = at is None
        self._cache: dict[int, dict[str, list[tuple[int, float]]]] = {}
        self._lowest: dict[tuple[str, int, int, int], float] = {}

    def _table(self, bucket: int) -> dict[str, list[tuple[int, float]]]:
        key = 0 if self._static else bucket
        table = self._cache.get(key)
        if table is None:
            by_vendor: dict[str, list[tuple[int, float]]] = {}
            for offer in self._at(bucket * BUCKET):
                by_vendor.setdefault(offer.vendor, []).append((offer.duration, offer.unit_cost_sun))
            table = {}
            for vendor, items in by_vendor.items():
                items.sort()
                best, suffix = math.inf, []
                for duration, cost in reversed(items):
                    best = min(best, cost)
                    suffix.append((duration, best))
                table[vendor] = suffix[::-1]
            self._cache[key] = table
        return table

    def lowest(self, vendor: str, duration: int, start: float, end: float) -> float:
        """Lowest unit cost of `vendor`'s offers >= `duration` placed within [start, end]."""
        first = math.floor(start / BUCKET)
        last = math.floor(end / BUCKET)
        if self._static:
            first = last = 0
        key = (vendor, duration, first, last)
        best = self._lowest.get(key)
        if best is not None:
            return best
        best = math.inf
        for bucket in range(first, last + 1):
            suffix = self._table(bucket).get(vendor, ())
            # the suffix minimum at the first offer at least `duration` long
            at = bisect.bisect_left(suffix, (duration, -math.inf))
            if at < len(suffix):
                best = min(best, suffix[at][1])
        self._lowest[key] = best
        return best


__all__ = ["Drift", "Market", "Offer", "PriceBook", "catalogue", "scaled"]
