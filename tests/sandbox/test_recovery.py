"""The recovery certificate (sandbox/recovery.py) on the node's own arithmetic.

Usages come from `sandbox/tron_node/model.py` (java-tron's window merging); `holds_row`
and `holds` below are a plain restatement of (R_j, w), independent of the module's
vectorised check, and the property test in test_optimum.py uses them too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from sandbox.market import Offer
from sandbox.optimum import WINDOW, solve_address
from sandbox.recovery import Draw, Reclaim, certified_window, certified_windows, check
from sandbox.tron_node import model

H = 3600.0
SLOT = 3.0


def holds_row(draws: Sequence[Draw], reclaims: Sequence[Reclaim], j: int, window: float) -> bool:
    """(R_j, w): for every i <= j, the program's usage at t_j (window w) of the draws
    i..j-1 is at most u_j plus what reclaims in [t_i, t_j) moved away, each decayed linearly
    over 24 h from its time to t_j (draws in time order)."""
    last = draws[j]
    for i in range(j + 1):
        usage = sum(d.drawn * max(0.0, 1.0 - (last.at - d.at + 6.0) / window) for d in draws[i:j])
        taken = sum(
            r.moved * max(0.0, 1.0 - (last.at - r.at) / 86_400.0)
            for r in reclaims
            if draws[i].at <= r.at < last.at
        )
        if usage > last.usage_before + taken:
            return False
    return True


def holds(
    draws: Sequence[Draw], reclaims: Sequence[Reclaim], window: float | Sequence[float]
) -> bool:
    """(R_j, w_j) at every transfer j (time order, stable): `window` is one w for every row
    or one per row."""
    ordered = sorted(draws, key=lambda d: d.at)
    windows = [window] * len(ordered) if isinstance(window, float | int) else list(window)
    assert len(windows) == len(ordered)
    return all(holds_row(ordered, reclaims, j, w) for j, w in enumerate(windows))


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
    # per row: only the transfer after the quiet spell needs it; the others keep 24 h
    rows = certified_windows(draws)
    assert rows[:2] == [WINDOW, WINDOW] and rows[2] == window
    assert holds(draws, [], rows) and check(draws, [], rows) <= 0
    assert not holds_row(draws, [], 2, rows[2] + 1e-3)  # the largest: a little more fails


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
    # what it moved counts as it would have recovered: 19 h later, 5/24 of it is left
    late = [Draw(0.0, 100_000, 0), Draw(20 * H, 64_285, 0)]
    left = 100_000 * (1 - (20 * H + 6) / WINDOW)  # the program's usage of the first draw
    assert check(late, [Reclaim(H, 50_000)], WINDOW) == pytest.approx(left - 50_000 * 5 / 24)
    assert check(late, [Reclaim(20 * H - 1, 10_000)], WINDOW) == pytest.approx(
        left - 10_000 * (1 - 1 / WINDOW)
    )
    assert check(late, [Reclaim(-5 * H, moved)], WINDOW) == pytest.approx(left)  # before t_0


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
        rows = certified_windows(draws, reclaims)
        assert min(rows) == certified and all(6.0 <= w <= WINDOW for w in rows)
        assert (check(draws, reclaims, rows) <= 0) and holds(draws, reclaims, rows)
        ordered = sorted(draws, key=lambda d: d.at)
        for j, w in enumerate(rows):  # each row's the largest: a little longer fails there
            assert holds_row(ordered, reclaims, j, w)
            if w < WINDOW:
                assert not holds_row(ordered, reclaims, j, min(WINDOW, w * 1.001 + 1e-3))


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


def _played(hours: Sequence[float], drawn: int = 100_000) -> list[Draw]:
    """Draws of `drawn` energy at these hours, with the usages the node computes."""
    usage, draws = model.Usage(), []
    for hour in hours:
        slot = int(hour * H / SLOT)
        before = model.decay(usage.used, usage.latest_slot, slot, usage.window)
        draws.append(Draw(hour * H, drawn, before))
        usage = model.consume(usage, drawn, slot)
    return draws


def _bound(draws: Sequence[Draw], offers: Sequence[Offer], window: float | list[float]) -> int:
    times, energies = [d.at for d in draws], [d.drawn for d in draws]
    return solve_address("A", times, energies, offers, energy_fee=100, window=window,
                         milp_time_limit=None).lower_bound_sun  # fmt: skip


def test_per_row_windows_give_a_bound_no_lower_than_one_window_per_address() -> None:
    """Each row's window is at least the address's (their minimum), and the bound only goes
    down with a row's window, so the per-row bound is at least the per-address one; here
    strictly, since the rows before the quiet spell keep 24 h."""
    offers = [Offer("a", 3600, 40, 32_000), Offer("b", 2 * 86_400, 90, 32_000)]
    for hours, strictly in (([0.0, 12.0, 13.0, 32.0, 33.0], True), ([0.0, 30.0], False)):
        draws = _played(hours)
        rows = certified_windows(draws)
        assert holds(draws, [], rows)
        per_row, per_address = _bound(draws, offers, rows), _bound(draws, offers, min(rows))
        assert per_row >= per_address
        assert (per_row > per_address * 1.001) is strictly, (rows, per_row, per_address)
        if strictly:
            assert rows[:3] == [WINDOW] * 3 and max(rows[3:]) < WINDOW  # only the late rows
            assert per_row <= _bound(draws, offers, WINDOW)
