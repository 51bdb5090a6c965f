"""`energyctl simulate` over 7 emulated days of each profile, 50 addresses, against the optimum.

Writes a 50-address copy of examples/sandbox (the same four policies, providers and engine
settings; the 30 extra demo addresses shared out among the policies in turn), runs
`sandbox.simulating.simulate` (the same call the CLI makes, optimum included) once per
profile and prints, per profile, the wall time, transfers, spend, burn, saving against
burning and cost over the hindsight optimum (`sandbox/optimum.py`). The 90 s target for a
50-address week's report, optimum included, was set for the fixed three-day rentals
(`--fixed`); the rolling levels place an order every hour or two per address and take
several times longer. Ends with one line:

    RESULT days=7 addresses=50 transfers=N wall_s=<slowest profile> <profile>_saving=0.xx
        <profile>_over_optimum=x.xx <profile>_burned=N ...

(`transfers` counts the `week` profile's transfers, else the largest profile's; `_burned`
counts transfers that burned. The bound is certified per transfer: row j of an address's
program recovers over c_j x 24 h; each profile's line gives the run's smallest c_j, the
share of transfers with c_j < 1 and the median. The RESULT line holds exactly the keys the
issue names.)

    .venv/bin/python bench/simulate.py [--days 7] [--addresses 50] [--seed 0]
        [--profiles steady,daily,bursty,payments,week,deposits] [--fixed] [--reference]

examples/sandbox keeps rolling levels of day-long pieces from the cheapest vendor (the
settings docs/policies.md recommends): an order every hour or two per address, thousands a
week. `--fixed` runs the same set with the earlier fixed rentals (1M for three days from
the first vendor that serves, `FIXED`), for comparison. `--reference` also solves the
optimum's reference without foresight (`sandbox/optimum.py`: nothing burned, 131k free
before every transfer) and prints each profile's cost over it (not in the RESULT line).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from sandbox import demo
from sandbox.simulating import simulate
from sandbox.workload import PROFILES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "sandbox"


def widen(directory: Path, addresses: int) -> Path:
    """examples/sandbox with `addresses` demo addresses in all (see the module docstring)."""
    for name in ("providers.yaml", "engine.yaml"):
        (directory / name).write_text((EXAMPLES / name).read_text())
    documents: list[dict[str, Any]] = [
        d for d in yaml.safe_load_all((EXAMPLES / "policies.yaml").read_text()) if d
    ]
    taken = {a for d in documents for a in d["spec"]["addresses"]}
    extra = [a for n in range(addresses * 2) if (a := demo.watched_address(n)) not in taken]
    for i, address in enumerate(extra[: max(0, addresses - len(taken))]):
        documents[i % len(documents)]["spec"]["addresses"].append(address)
    (directory / "policies.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return directory


RESERVE = 131_000  # `--reference`: one cold transfer's energy

#: `--fixed`: the earlier examples/sandbox, fixed rentals from the first vendor that serves
#: (and their price cap: three days cost more per unit than the rolling set's cap allows)
FIXED = {
    "topUp": {"amount": "1M", "duration": "3d"},
    "strategy": "priority",
    "maxPrice": "300 sun/energy",
}
FIXED_DROPS = ("renewBefore", "expectedUse")


def fixed(directory: Path) -> Path:
    """The set in `directory` with every policy buying fixed rentals (`FIXED`)."""
    path = directory / "policies.yaml"
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for document in documents:
        spec = document["spec"]
        spec.update(FIXED)
        for key in FIXED_DROPS:
            spec.pop(key, None)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--addresses", type=int, default=50)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fixed", action="store_true",
        help="every policy buys 1M for three days from its first vendor (the earlier examples)",
    )  # fmt: skip
    parser.add_argument(
        "--reference", action="store_true",
        help="also solve the optimum's reference without foresight (nothing burned, one "
        "cold transfer's 131k free before every transfer) and print cost over it",
    )  # fmt: skip
    args = parser.parse_args()
    figures: list[str] = []
    slowest = 0.0
    week_transfers = 0
    with tempfile.TemporaryDirectory(prefix="energyctl-bench-") as tmp:
        policies = widen(Path(tmp), args.addresses)
        if args.fixed:
            policies = fixed(policies)
        for name in args.profiles.split(","):
            start = time.perf_counter()
            reserve = RESERVE if args.reference else 0
            result = asyncio.run(
                simulate([policies], name, days=args.days, seed=args.seed,
                         reference_reserve=reserve)
            )  # fmt: skip
            seconds = time.perf_counter() - start
            slowest = max(slowest, seconds)
            report = result.report()
            if name == "week" or "week" not in args.profiles.split(","):
                week_transfers = max(week_transfers, report["transfers"])
            over = report.get("cost_over_optimum")
            bound = report["optimum"]["lower_bound_trx"]
            factor = report["optimum"]["recovery_factor"]
            short = report["optimum"]["recovery_short_rows"]
            print(
                f"{name:<9} {seconds:6.1f} s (optimum {report['optimum']['seconds']:.1f} s)  "
                f"transfers {report['transfers']:>6}  spent {report['spent_trx']:>10,.2f} TRX  "
                f"burned {report['burned_trx']:>9,.2f} TRX ({report['transfers_burning']})  "
                f"optimum >= {bound:,.2f} TRX  saving {report['saving_vs_burning']:.1%}  "
                f"over optimum {over}  window {report['bound_recovery']}, "
                f"smallest c_j {factor:.3f}, c_j < 1 for {short:.1%} of transfers, "
                f"median c_j {report['optimum']['recovery_median']:.3f}",
                flush=True,
            )
            if args.reference and name != "deposits":
                print(
                    f"{name:<9} reference without foresight ({RESERVE:,} free before every "
                    f"transfer, nothing burned) >= {report['reference_trx']:,.2f} TRX  "
                    f"cost over it {report['cost_over_reference']}",
                    flush=True,
                )
            figures += [
                f"{name}_saving={report['saving_vs_burning']:.2f}",
                f"{name}_over_optimum={over:.2f}" if over else f"{name}_over_optimum=nan",
                f"{name}_burned={report['transfers_burning']}",
            ]
    print(
        f"RESULT days={args.days:g} addresses={args.addresses} transfers={week_transfers} "
        f"wall_s={slowest:.1f} " + " ".join(figures)
    )


if __name__ == "__main__":
    main()
