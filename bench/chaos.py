"""The fault-injection suite over many seeds: the money invariants under chaos.

Each run (`sandbox.chaos.running.run`) plays one seeded scenario: ten addresses in eight
policies (seven buying a fixed amount, one keeping a rolling level), each drained once,
while kills at every step of the order pipeline, vendor 5xx and hangs after acceptance,
slow, partial and missing delivery, empty vendor balances, rate limits, price moves
between quote and order, node outages, stale nodes and junk answers, store outages and
duplicated wake-ups hit the engine in emulated time.
Prints a row per run (`--verbose`) or per failing run, then the totals: faults injected,
needs, orders placed at the vendors, double orders, intents lost, budget overruns,
transfers that burned TRX, the slowest recovery (emulated seconds from the faults' end
to every need met or legitimately held), and the wall time. Ends with one line:

    RESULT runs=.. faults=.. double_orders=.. lost_intents=.. budget_overruns=..

    .venv/bin/python bench/chaos.py [--runs 200] [--first-seed 0] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sandbox.chaos.checking import RunReport
from sandbox.chaos.running import run

HEADER = (
    f"{'seed':>5} {'faults':>6} {'needs':>5} {'placed':>6} {'double':>6} {'lost':>4} "
    f"{'budget':>6} {'burned':>6} {'held':>4} {'kills':>5} {'recover_s':>9}"
)


def row(report: RunReport) -> str:
    recover = "never" if report.recover_s is None else f"{report.recover_s:.0f}"
    return (
        f"{report.seed:>5} {len(report.faults):>6} {report.needs:>5} {report.placed:>6} "
        f"{report.double_orders:>6} {report.lost_intents:>4} {report.budget_overruns:>6} "
        f"{report.burned:>6} {report.held:>4} {report.kills:>5} {recover:>9}"
    )


async def play(first: int, runs: int, verbose: bool) -> list[RunReport]:
    reports = []
    print(HEADER, flush=True)
    for seed in range(first, first + runs):
        with tempfile.TemporaryDirectory(prefix="energyctl-chaos-") as directory:
            report = await run(seed, Path(directory))
        reports.append(report)
        if verbose or not report.clean or report.errors:
            print(row(report), flush=True)
            for line in report.details + report.errors:
                print(f"      {line}", flush=True)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    reports = asyncio.run(play(args.first_seed, args.runs, args.verbose))
    wall = time.perf_counter() - start
    recovered = [r.recover_s for r in reports if r.recover_s is not None]
    total = {
        "faults": sum(len(r.faults) for r in reports),
        "needs": sum(r.needs for r in reports),
        "placed": sum(r.placed for r in reports),
        "double_orders": sum(r.double_orders for r in reports),
        "lost_intents": sum(r.lost_intents for r in reports),
        "budget_overruns": sum(r.budget_overruns for r in reports),
        "burned": sum(r.burned for r in reports),
        "held": sum(r.held for r in reports),
        "kills": sum(r.kills for r in reports),
        "errors": sum(len(r.errors) for r in reports),
    }
    print("-" * len(HEADER))
    for name, value in total.items():
        print(f"{name:<16} {value:>8}")
    print(f"{'recover_s max':<16} {max(recovered, default=0.0):>8.0f}")
    print(f"{'never recovered':<16} {len(reports) - len(recovered):>8}")
    print(f"{'wall_s':<16} {wall:>8.1f}")
    print(
        f"RESULT runs={len(reports)} faults={total['faults']} "
        f"double_orders={total['double_orders']} lost_intents={total['lost_intents']} "
        f"budget_overruns={total['budget_overruns']}"
    )


if __name__ == "__main__":
    main()
