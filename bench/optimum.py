"""The hindsight optimum's LP for one address over 7 days (sandbox/optimum.py).

Builds one address's week of transfers from a built-in profile (`payments` by default: a
daily cycle with bursts) at 1, 2 and 4 transfers per hour on average, prices it against the
sandbox market's catalogue (`sandbox/market.py`, every vendor and duration) and solves the
LP relaxation with HiGHS, timing each: with 24 h recovery on every row, and with the
windows the certificate gives each row (`sandbox/recovery.py`) if every transfer drew its
energy from the pool, usages as the node's arithmetic merges them
(`sandbox/tron_node/model.py`). Target: under 2 s for one address's week. Ends with one
line:

    RESULT days=7 transfers=N lp_1ph_s=<at 1 per hour> ... lp_rows_1ph_s=<per-row windows>
        ... short_rows_4ph=<share of rows below 24 h> lp_max_s=<slowest>

    .venv/bin/python bench/optimum.py [--profile payments] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

from sandbox import demo
from sandbox.market import catalogue
from sandbox.optimum import WINDOW, solve_address
from sandbox.recovery import Draw, certified_windows
from sandbox.tron_node import model
from sandbox.workload import profile
from sandbox.world import World

HOT, FRESH = 64_285, 130_285
SLOT = 3.0


def row_windows(times: list[float], energies: list[int]) -> list[float]:
    """Each row's certified window if every transfer drew all its energy from the pool."""
    usage, draws = model.Usage(), []
    for at, energy in zip(times, energies, strict=True):
        slot = int(at / SLOT)
        draws.append(
            Draw(at, energy, model.decay(usage.used, usage.latest_slot, slot, usage.window))
        )
        usage = model.consume(usage, energy, slot)
    return certified_windows(draws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="payments")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=float, default=7.0)
    args = parser.parse_args()
    world = World(watched=0)
    offers = catalogue(world, max_days=int(args.days) + 2)
    fee = world.chain.params.energy_fee
    address = demo.watched_address(0)
    figures: list[str] = []
    slowest = 0.0
    first = 0
    for per_hour in (1.0, 2.0, 4.0):
        load = profile(args.profile, [address], days=args.days, seed=args.seed, per_hour=per_hour)
        times = [t.at for t in load.transfers]
        energies = [FRESH if t.fresh else HOT for t in load.transfers]
        start = time.perf_counter()
        solved = solve_address(address, times, energies, offers, energy_fee=fee,
                               milp_time_limit=None)  # fmt: skip
        seconds = time.perf_counter() - start
        windows = row_windows(times, energies)
        start = time.perf_counter()
        rows = solve_address(address, times, energies, offers, energy_fee=fee,
                             milp_time_limit=None, window=windows)  # fmt: skip
        per_row = time.perf_counter() - start
        short = sum(w < WINDOW for w in windows) / len(windows)
        slowest = max(slowest, seconds, per_row)
        first = first or len(times)
        burn = sum(energies) * fee
        print(
            f"{per_hour:g}/h: {len(times):>5} transfers  LP {seconds:5.2f} s  "
            f"bound {solved.lower_bound_sun / 1e6:,.2f} TRX  burning {burn / 1e6:,.2f} TRX "
            f"({solved.lower_bound_sun / burn:.1%}); row windows ({short:.1%} < 24 h, "
            f"smallest {min(windows) / 3600:.2f} h): LP {per_row:5.2f} s  "
            f"bound {rows.lower_bound_sun / 1e6:,.2f} TRX",
            flush=True,
        )
        figures.append(f"lp_{per_hour:g}ph_s={seconds:.2f} transfers_{per_hour:g}ph={len(times)}")
        figures.append(
            f"lp_rows_{per_hour:g}ph_s={per_row:.2f} short_rows_{per_hour:g}ph={short:.3f}"
        )
    print(f"RESULT days={args.days:g} transfers={first} " + " ".join(figures)
          + f" lp_max_s={slowest:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
