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


__all__ = ["after_endings", "auto_amount", "level", "per_used_milli", "served", "staying"]
