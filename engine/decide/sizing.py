"""How much to buy and for how long, from an address's expected use. PURE.

The rules the planner applies to `topUp: {auto: ...}` and to lists of durations:

- **Level** (`level`): the used energy the address is expected to reach at most over a
  rental of `duration` (`Forecast.peak_usage`: what it has used now, recovering, plus the
  draws expected meanwhile times `headroom`, each recovering linearly over 24 h), plus
  what must stay free for the next transfer: `atLeast`. A steady sender using r per hour
  settles at about 12 r used, so its level is about half a day's use plus a transfer; a
  rare sender's level is little more than `atLeast`. A burst beyond the level is met by
  the next top-up (a short rental of the shortfall) as soon as the address falls below
  its threshold.
- **Amount** (`auto_amount`): the level less the energy that stays delegated through the
  rental (the address's limit less the rentals the engine bought that end before it
  does), and never less than the shortfall below the policy's threshold. Rounding up to a
  vendor's minimum is the planner's (`Capabilities.fit_amount`).
- **Energy expected to be used** (`served`): over the rental's life, its share of the
  expected use (next to the energy staying delegated with it, in proportion to the
  amounts), at most what a delegation of that size can serve (its amount once; held as a standing
  level, used energy settles at about half a day's draws, so a level serves about twice
  its size a day); never less than what the next transfer takes from it. The planner ranks
  offers by cost divided by this: the lowest expected cost per unit of energy actually
  used (`per_used_milli`).
- **What ends** (`after_endings`): when delegations end, java-tron moves the receiver's used
  energy away in proportion to the stake that leaves (`UnDelegateResourceActuator`,
  https://github.com/tronprotocol/java-tron), so the energy available afterwards is the
  remaining limit times the share that was free: the planner sees the dip coming.

Neighbours: `engine/core/usage.py` (forecasts), `engine/decide/planning.py` (the caller).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.core.usage import WINDOW, Forecast
from engine.decide.plans import Rental
from policies.models import AutoSize


def level(forecast: Forecast, auto: AutoSize, now: float, used: int, duration: int) -> int:
    """Energy the address should have delegated through a rental of `duration`."""
    if not forecast.known:
        return used + auto.at_least
    peak = forecast.peak_usage(now, float(used), float(duration), auto.headroom)
    return round(peak) + auto.at_least


def staying(limit: int, rentals: Sequence[Rental], until: float) -> int:
    """The part of `limit` still delegated at `until`: less the rentals ending before."""
    return max(0, limit - sum(r.energy for r in rentals if r.ends_at < until))


def auto_amount(
    forecast: Forecast,
    auto: AutoSize,
    *,
    now: float,
    used: int,
    limit: int,
    rentals: Sequence[Rental],
    duration: int,
    shortfall: int,
) -> int:
    """What to buy for `duration` (see the module docstring); at least `shortfall`."""
    wanted = level(forecast, auto, now, used, duration)
    return max(shortfall, wanted - staying(limit, rentals, now + duration))


def served(
    forecast: Forecast,
    *,
    now: float,
    energy: int,
    duration: int,
    next_need: int,
    alongside: int = 0,
) -> int:
    """Energy a rental of `energy` for `duration` is expected to serve; `alongside`: the
    energy staying delegated with it, which serves its share of the use."""
    capacity = energy * max(1.0, 2.0 * duration / WINDOW)
    use = forecast.expected(now, duration) if forecast.known else 0.0
    use *= energy / (energy + max(0, alongside))
    return max(1, round(max(min(use, capacity), min(energy, next_need))))


def per_used_milli(cost_sun: int, served_energy: int) -> int:
    """Milli-sun paid per unit of energy expected to be used."""
    return cost_sun * 1000 // max(1, served_energy)


def after_endings(available: int, limit: int, ending: int) -> int:
    """Energy available once delegations of `ending` energy end (see the docstring)."""
    if ending <= 0 or limit <= 0:
        return available
    left = max(0, limit - ending)
    return available * left // limit


#: the share of the largest recent burst (`Forecast.burst`) a rolling level keeps free. The
#: engine tops up within a burst (a pass within seconds of each transfer), so what must be
#: free when a burst starts is what arrives before the first top-up lands, not the whole
#: burst. Measured on the sandbox (8 addresses, 3 days, `atLeast: 262k`): 0.6 cut the
#: spend of the payments and bursty workloads by 12-14 % with no more transfers burning
#: than the whole burst; 0.4 let more burn.
BURST_SHARE = 0.6

#: how long used energy takes to fall by half in a steady sender's merged recovery window
#: (java-tron merges each draw's 24 h window into the usage's: a steady sender's usage falls
#: to 0 over about 12 h, linearly; in `served_rolling` that is treated as a time constant)
HOLD = 12 * 3600.0


@dataclass(frozen=True, slots=True)
class Rolling:
    """A rolling level for one address (see `rolling`)."""

    threshold: int  # free energy wanted now: the rise expected over the lead, plus `free`
    available: int  # free energy once the rentals ending within the lead have ended
    ending: int  # energy of the engine's rentals ending within the lead time
    free: int  # energy kept free on top: atLeast, or a share of the largest recent burst


def rolling(
    forecast: Forecast,
    auto: AutoSize,
    *,
    now: float,
    used: int,
    limit: int,
    rentals: Sequence[Rental],
    lead: int,
) -> Rolling:
    """The rolling level: the address holds enough delegated energy for its expected use
    over the next `lead` seconds (draws times `headroom`, recovering over 24 h), with
    `atLeast` (or `BURST_SHARE` of the largest recent burst, if larger) free on top,
    counting out the rentals the engine bought that end meanwhile (their end takes away
    used energy in proportion, `after_endings`). Each purchase is the shortfall below that
    level, bought for the duration with the lowest cost per unit of energy it is expected
    to serve (`served_rolling`); as pieces end and are replaced, each end takes its share of the
    used energy away, so the level a steady sender needs stays below the half day's use
    a single long rental would need."""
    ending = sum(r.energy for r in rentals if now < r.ends_at <= now + lead)
    ending = min(ending, limit)
    left = limit - ending
    used_after = used * left // limit if limit > 0 else used
    available = max(0, left - used_after)
    free = max(auto.at_least, round(forecast.burst * BURST_SHARE))
    # the rise over the lead: the draws expected, less what the used energy recovers
    # meanwhile (linear over 24 h; over a lead of hours the peak is at one end or the other)
    rise = max(0, round(forecast.expected(now, lead) * auto.headroom - used_after * lead / WINDOW))
    return Rolling(rise + free, available, ending, free)


def served_rolling(
    forecast: Forecast, level: Rolling, *, now: float, energy: int, duration: int
) -> int:
    """Energy a piece of `energy` for `duration` is expected to serve in a rolling level:
    its share of the level that pieces of that duration would need, times the use expected
    over its life. Pieces of duration d end at a rate of one level per d, and each end takes
    its share of the used energy away, on top of the recovery (used energy falls about as
    if it halved every `HOLD`): a level of pieces of duration d settles at about
    rate x 1 / (1 / HOLD + 1 / d) used, plus what is kept free. Short pieces keep the level
    low but each serves little; long pieces are cheaper per day but take little away when
    they end: for a steady sender about a day is best."""
    use = forecast.expected(now, duration)
    if use <= 0 or duration <= 0:
        return 1
    rate = use / duration
    held = 1.0 / (1.0 / HOLD + 1.0 / duration)
    level_for = rate * held + level.free
    return max(1, round(use * min(1.0, energy / level_for)))


__all__ = [
    "Rolling",
    "after_endings",
    "auto_amount",
    "level",
    "per_used_milli",
    "rolling",
    "served",
    "served_rolling",
    "staying",
]
