"""Expected consumption per address: what the engine learns from its own reads. PURE.

A `UsageProfile` is kept per watched address, from nothing but what the engine observes:
between two reads of an address, the energy it used is the rise of its used energy beyond
what the 24-hour linear recovery would have brought it down to (java-tron recovers used
energy linearly over a 24 h window; https://developers.tron.network/docs/resource-model).
That amount is added to the hour of day it happened in, and the time observed to the
hours it covered, both decaying by half every `HALF_LIFE` (3 days), so the profile follows
a changing workload within a few days. A read that shows the address's energy limit
falling (a delegation ended: java-tron then moves used energy away with the stake) counts
nothing, and a gap of more than `MAX_GAP` between reads is not counted either.

`burst` is the most the address used within `BURST_WINDOW` (30 min), decaying the same
way: a batch of payouts that an hourly average hides (shown in status, for `atLeast`).
`days` keeps what was used per UTC day over the last 8 days (`last_week`).

Forecasts (`Forecast`): the expected rate per hour of day (blended with a declared
expectation, `prior_per_day`, until the address has been observed long enough), the energy
expected over a span, and `peak_usage`: the highest used energy the address is expected to
reach over a span, starting from what it has used now, with every draw recovering
linearly over 24 h (a steady sender using r per hour settles at about 12 r).

Neighbours: `engine/reconciling.py` updates profiles from each pass's reads and keeps them
in the store (`engine/store/`, table `usage_profiles`); `engine/decide/sizing.py` sizes
purchases from forecasts; the sidecar's status shows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

HOUR = 3600.0
DAY = 86_400.0
WINDOW = DAY  # java-tron's recovery window for used energy
HALF_LIFE = 3 * DAY
MAX_GAP = 2 * HOUR
BURST_WINDOW = 1800.0
#: a profile observed for less than this (decayed seconds) is still learning
LEARNED = 0.9 * DAY
_STEP = 900.0  # the step of `peak_usage`'s forward run


def _decay(seconds: float) -> float:
    return float(math.pow(0.5, max(0.0, seconds) / HALF_LIFE))


@dataclass(frozen=True, slots=True)
class UsageProfile:
    """What one address was seen to use (see the module docstring). Energy in units,
    times in epoch seconds; `hourly[h]` and `exposure[h]` decay with `HALF_LIFE`."""

    address: str
    hourly: tuple[float, ...] = (0.0,) * 24  # energy used in hour h of the UTC day
    exposure: tuple[float, ...] = (0.0,) * 24  # seconds observed in hour h
    burst: float = 0.0
    recent: tuple[tuple[float, int], ...] = ()  # (at, used) within BURST_WINDOW
    days: tuple[tuple[int, int], ...] = ()  # (UTC day number, energy used), newest last
    last_used: int = 0
    last_limit: int = 0
    last_read_at: float | None = None
    updated_at: float = 0.0

    @property
    def observed_seconds(self) -> float:
        return sum(self.exposure)

    def last_week(self, now: float) -> int:
        """Energy used over the 7 UTC days before today's."""
        today = int(now // DAY)
        return sum(used for day, used in self.days if today - 7 <= day < today)

    def to_json(self) -> dict[str, Any]:
        return {
            "hourly": [round(v, 1) for v in self.hourly],
            "exposure": [round(v, 1) for v in self.exposure],
            "burst": round(self.burst, 1),
            "recent": [list(r) for r in self.recent],
            "days": [list(d) for d in self.days],
            "last_used": self.last_used,
            "last_limit": self.last_limit,
            "last_read_at": self.last_read_at,
        }

    @classmethod
    def from_json(cls, address: str, data: dict[str, Any], updated_at: float) -> UsageProfile:
        return cls(
            address=address,
            hourly=tuple(float(v) for v in data.get("hourly", [0.0] * 24)),
            exposure=tuple(float(v) for v in data.get("exposure", [0.0] * 24)),
            burst=float(data.get("burst", 0.0)),
            recent=tuple((float(a), int(u)) for a, u in data.get("recent", [])),
            days=tuple((int(d), int(u)) for d, u in data.get("days", [])),
            last_used=int(data.get("last_used", 0)),
            last_limit=int(data.get("last_limit", 0)),
            last_read_at=data.get("last_read_at"),
            updated_at=updated_at,
        )


def _spread(at: float, seconds: float) -> list[float]:
    """`seconds` ending at `at`, split over the hours of day they fall in."""
    out = [0.0] * 24
    end = at
    left = seconds
    while left > 0:
        into = end % HOUR or HOUR
        part = min(left, into)
        out[int(((end - part) % DAY) // HOUR)] += part
        end -= part
        left -= part
    return out


def observe(profile: UsageProfile, *, used: int, limit: int, at: float) -> UsageProfile:
    """The profile after a read at `at` showing `used` of `limit` energy."""
    last = profile.last_read_at
    if last is not None and at <= last:  # an older (or the same) read: nothing new
        return profile
    if last is None:
        return replace(profile, last_used=used, last_limit=limit, last_read_at=at, updated_at=at)
    gap = at - last
    factor = _decay(gap)
    hourly = [v * factor for v in profile.hourly]
    exposure = [v * factor for v in profile.exposure]
    burst = profile.burst * factor
    recent = [r for r in profile.recent if at - r[0] < BURST_WINDOW]
    days = list(profile.days)
    if gap <= MAX_GAP:
        covered = _spread(at, gap)
        exposure = [e + c for e, c in zip(exposure, covered, strict=True)]
        consumed = 0
        if limit >= profile.last_limit:  # no delegation ended between the reads
            recovered = profile.last_used * max(0.0, 1.0 - gap / WINDOW)
            consumed = max(0, round(used - recovered))
        if consumed:
            hourly[int((at % DAY) // HOUR)] += consumed
            recent.append((at, consumed))
            day = int(at // DAY)
            if days and days[-1][0] == day:
                days[-1] = (day, days[-1][1] + consumed)
            else:
                days.append((day, consumed))
        burst = max(burst, float(sum(u for _, u in recent)))
    days = [d for d in days if d[0] >= int(at // DAY) - 8]
    return UsageProfile(
        address=profile.address,
        hourly=tuple(hourly),
        exposure=tuple(exposure),
        burst=burst,
        recent=tuple(recent),
        days=tuple(days),
        last_used=used,
        last_limit=limit,
        last_read_at=at,
        updated_at=at,
    )


@dataclass(frozen=True, slots=True)
class Forecast:
    """Expected use of one address: `rates[h]` energy per second in hour h of the UTC day.
    `known` is False while neither a declared expectation nor a day of reads backs it."""

    rates: tuple[float, ...] = (0.0,) * 24
    burst: float = 0.0
    known: bool = False
    source: str = "none"
    _cache: dict[tuple[float, float, float], list[float]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def per_day(self) -> float:
        return sum(self.rates) * HOUR

    def rate_at(self, t: float) -> float:
        return self.rates[int((t % DAY) // HOUR)]

    def expected(self, start: float, seconds: float) -> float:
        """Energy expected to be used in [start, start + seconds]."""
        whole, rest = divmod(max(0.0, seconds), DAY)
        total = whole * self.per_day
        t, end = start, start + rest
        while t < end:
            step = min(end - t, HOUR - t % HOUR or HOUR)
            total += self.rate_at(t) * step
            t += step
        return total

    def usage_series(self, start: float, used: float, scale: float = 1.0) -> list[float]:
        """Expected used energy every `_STEP` seconds over the next 48 h from `used` now,
        the expected draws times `scale` (each draw recovering linearly over 24 h; after
        48 h the pattern repeats)."""
        key = (start, used, scale)
        kept = self._cache.get(key)
        if kept is not None:
            return kept
        steps = int(2 * DAY / _STEP)
        draws = [self.rate_at(start + i * _STEP) * _STEP * scale for i in range(steps)]
        span = int(WINDOW / _STEP)
        out = []
        for i in range(steps + 1):
            value = used * max(0.0, 1.0 - i * _STEP / WINDOW)
            for k in range(max(0, i - span), i):
                value += draws[k] * (1.0 - (i - k - 0.5) / span)
            out.append(value)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = out
        return out

    def peak_usage(self, start: float, used: float, seconds: float, scale: float = 1.0) -> float:
        """The highest used energy expected within [start, start + seconds] (the draws
        expected meanwhile times `scale`)."""
        series = self.usage_series(start, used, scale)
        last = min(len(series) - 1, math.ceil(seconds / _STEP))
        return max(series[: last + 1])


def forecast(profile: UsageProfile | None, prior_per_day: int | None = None) -> Forecast:
    """The forecast for an address: its profile, blended with `prior_per_day` (a declared
    expectation, energy per day) until it has been observed for a day."""
    prior = (prior_per_day or 0) / DAY
    observed = profile.observed_seconds if profile is not None else 0.0
    burst = profile.burst if profile is not None else 0.0
    if profile is None or observed <= 0:
        if prior_per_day is None:
            return Forecast(known=False, source="none")
        return Forecast((prior,) * 24, 0.0, True, "declared")
    overall = sum(profile.hourly) / observed
    rates = []
    for used, seen in zip(profile.hourly, profile.exposure, strict=True):
        # a bucket seen for less than an hour leans on the overall (or declared) rate
        weight = HOUR
        base = prior if prior_per_day is not None and observed < LEARNED else overall
        rates.append((used + base * weight) / (seen + weight))
    known = observed >= LEARNED or prior_per_day is not None
    source = "observed" if observed >= LEARNED else ("declared" if prior_per_day else "learning")
    return Forecast(tuple(rates), burst, known, source)


__all__ = ["DAY", "HOUR", "Forecast", "UsageProfile", "forecast", "observe"]
