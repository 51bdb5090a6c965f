"""`energyctl simulate` over 7 emulated days of each built-in profile on examples/sandbox.

Runs `sandbox.simulating.simulate` (the same call the CLI makes) once per profile and
prints, per profile, the wall time, passes, orders, transfers and the report's money
figures (spent, burned, saving against burning). Target (issue 7): each profile's 7 days
in under 2 minutes on the development machine. Ends with one line:

    RESULT days=7 steady_s=.. daily_s=.. bursty_s=.. payments_s=..

    .venv/bin/python bench/simulate.py [--days 7] [--policies examples/sandbox]
        [--profiles steady,daily,bursty,payments] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from sandbox.simulating import simulate
from sandbox.workload import PROFILES

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--policies", type=Path, default=ROOT / "examples" / "sandbox")
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    timings: dict[str, float] = {}
    for name in args.profiles.split(","):
        start = time.perf_counter()
        result = asyncio.run(simulate([args.policies], name, days=args.days, seed=args.seed))
        timings[name] = time.perf_counter() - start
        report = result.report()
        print(
            f"{name:<9} {timings[name]:6.1f} s  passes {result.passes:>6}  "
            f"orders {len(result.orders):>5}  transfers {report['transfers']:>6}  "
            f"spent {report['spent_trx']:>10,.2f} TRX  burned {report['burned_trx']:>9,.2f} TRX "
            f"({report['transfers_burning']} transfers)  "
            f"saving vs burning {report['saving_vs_burning']:.1%}",
            flush=True,
        )
    days = f"{args.days:g}"
    figures = " ".join(f"{name}_s={seconds:.1f}" for name, seconds in timings.items())
    print(f"RESULT days={days} {figures}")


if __name__ == "__main__":
    main()
