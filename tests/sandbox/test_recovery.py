"""The recovery certificate (sandbox/recovery.py) on the node's own arithmetic.

Usages come from `sandbox/tron_node/model.py` (java-tron's window merging); `holds` below
is a plain restatement of (R_w), independent of the module's vectorised check, and the
property test in test_optimum.py uses it too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from sandbox.market import Offer
from sandbox.optimum import WINDOW, solve_address
from sandbox.recovery import Draw, Reclaim, certified_window, check
from sandbox.tron_node import model

H = 3600.0
SLOT = 3.0


def holds(draws: Sequence[Draw], reclaims: Sequence[Reclaim], window: float) -> bool:
    """(R_w): for every j and i <= j, the program's usage at t_j of the draws i..j-1 is at
    most u_j plus what reclaims in [t_i, t_j) moved away."""
    for j, last in enumerate(draws):
        for i in range(j + 1):
            usage = sum(
                d.drawn * max(0.0, 1.0 - (last.at - d.at + 6.0) / window) for d in draws[i:j]
            )
            taken = sum(r.moved for r in reclaims if draws[i].at <= r.at < last.at)
            if usage > last.usage_before + taken:
                return False
    return True


def _merged_run(gap_hours: float) -> list[Draw]:
    """100k drawn at 0 h and 100k at 12 h (the node merges the windows), then a 64,285
    transfer `gap_hours` after the second; usages as the node computes them."""
    usage = model.consume(model.Usage(), 100_000, 0)
    second = int(12 * H / SLOT)
    before_second = model.decay(usage.used, usage.latest_slot, second, usage.window)
    usage = model.consume(usage, 100_000, second)
    assert (usage.used, usage.window) == (150_000, int(20 * H / SLOT))  # U = 150k, W = 20 h
    third = int((12 + gap_hours) * H / SLOT)
    before_third = model.decay(usage.used, usage.latest_slot, third, usage.window)
    return [
        Draw(0.0, 100_000, 0),
        Draw(12 * H, 100_000, before_second),
        Draw((12 + gap_hours) * H, 64_285, before_third),
    ]


def test_a_merge_then_a_quiet_spell_needs_a_shorter_window() -> None:
    draws = _merged_run(20.0)
    assert draws[2].usage_before == 0  # the merged window (20 h) has run out
    assert not holds(draws, [], WINDOW)  # the 24 h program still sees 16.7k
    assert check(draws, [], WINDOW) == pytest.approx(100_000 * (4 * H - 6) / WINDOW)
    window = certified_window(draws)
    # the second draw must be gone by t = 32 h: w <= 20 h + 6 s
    assert window == pytest.approx(20 * H + 6, abs=1e-3)
    assert window <= 20 * H + 6
    assert holds(draws, [], window)
    assert check(draws, [], window) <= 0


@pytest.mark.parametrize(("gap", "full"), [(10.0, True), (15.0, True), (16.0, False)])
def test_the_merged_usage_falls_below_the_independent_sum_after_15_hours(
    gap: float, full: bool
) -> None:
    draws = _merged_run(gap)
    window = certified_window(draws)
    assert (window == WINDOW) is full
    assert holds(draws, [], WINDOW) is full
    assert holds(draws, [], window)


def test_a_reclaim_counts_what_it_moved_away() -> None:
    """A delegation reclaimed after the first draw takes its usage with it."""
    usage = model.consume(model.Usage(), 100_000, 0)
    at = int(H / SLOT)
    decayed = model.decay(usage.used, usage.latest_slot, at, usage.window)
    stake = 20_000 * model.TRX  # 180k energy at 9 energy per TRX
    moved = model.undelegate_transfer(decayed, stake, stake, 90_000_000_000, 10**10)
    assert moved == decayed  # the whole stake goes: all the usage moves
    draws = [Draw(0.0, 100_000, 0), Draw(2 * H, 64_285, decayed - moved)]
    reclaims = [Reclaim(H, moved)]
    assert certified_window(draws, reclaims) == WINDOW
    assert holds(draws, reclaims, WINDOW)
    # without the reclaim the node's usage (0) is below the program's: a short window
    assert certified_window(draws, []) < 2 * H + 7
    # a reclaim after the transfer does not count for it
    assert certified_window(draws, [Reclaim(2 * H, moved)]) < WINDOW


def test_the_window_is_the_full_day_without_draws_and_never_zero() -> None:
    assert certified_window([]) == WINDOW
    assert certified_window([Draw(0.0, 64_285, 0)]) == WINDOW
    # adversarial: the node claims no usage one second after a draw
    draws = [Draw(0.0, 64_285, 0), Draw(1.0, 64_285, 0)]
    window = certified_window(draws)
    assert 6.0 < window <= 7.0
    assert holds(draws, [], window)


def test_the_vectorised_check_agrees_with_the_definition() -> None:
    rng = random.Random(4)
    for _ in range(150):
        times = sorted(rng.uniform(0, 2 * WINDOW) for _ in range(rng.randint(1, 7)))
        draws = [Draw(t, rng.choice([0, 64_285, 130_285]), rng.randint(0, 150_000)) for t in times]
        reclaims = [Reclaim(rng.uniform(0, 2 * WINDOW), rng.randint(0, 80_000)) for _ in range(2)]
        window = rng.choice([WINDOW, rng.uniform(6.0, WINDOW)])
        assert (check(draws, reclaims, window) <= 0) is holds(draws, reclaims, window)
        certified = certified_window(draws, reclaims)
        assert holds(draws, reclaims, certified)
        if certified < WINDOW:  # the largest: a little longer fails
            assert not holds(draws, reclaims, min(WINDOW, certified * 1.001 + 1e-3))


def test_the_bound_only_goes_down_with_the_window() -> None:
    draws = _merged_run(20.0)
    offers = [Offer("a", 3600, 40, 32_000), Offer("b", 2 * 86_400, 90, 32_000)]
    times = [d.at for d in draws]
    energies = [d.drawn for d in draws]
    bounds = [
        solve_address("A", times, energies, offers, energy_fee=100, window=c * WINDOW,
                      milp_time_limit=None).lower_bound_sun
        for c in (1.0, 0.9, certified_window(draws) / WINDOW, 0.5, 0.1)
    ]  # fmt: skip
    assert bounds == sorted(bounds, reverse=True)
    assert bounds[2] < bounds[0]  # the certified window gives up some of the 24 h bound
    with pytest.raises(ValueError, match="recovery window"):
        solve_address("A", times, energies, offers, energy_fee=100, window=0.0)
