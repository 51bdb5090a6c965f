"""A full observe-plan pass over 10,000 addresses, against observation alone, and the planner.

Serves the sandbox World (emulated node + four vendor emulators) on loopback, adds
`--addresses` activated accounts (most with energy delegated above the threshold, a few
drained below it so the pass assesses, quotes and gates real needs), writes four policies
of equal size (each vendor first in one) and measures, in one run, alternating, the best
of `--rounds`:

- observe: `Reconciler.observe()` (ChainReader snapshots of every address);
- pass: `Reconciler.run_pass(apply=False)` (observe, store reads, assess, quotes and
  balances, plan: what `energyctl plan` does; nothing is bought);

and the planner alone (`assess` + `plan`) on in-memory inputs of `--planner-addresses`.
Targets: pass at most 1.25x observe; planner at least 100,000 addresses per second.

    .venv/bin/python bench/reconcile.py [--addresses 10000] [--rounds 3]
        [--planner-addresses 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path

from tronpy.keys import to_base58check_address

from engine.core.clock import ScaledClock
from engine.core.snapshots import EnergySnapshot
from engine.decide.planning import PlanInputs, ProviderView, QuoteKey, assess, plan, quote_requests
from engine.session import Session
from policies.loading import SecretMode, load
from providers.base import Capabilities, ProviderError, Quote
from sandbox.world import World

VENDORS = ("tronsave", "eopen", "itrx", "mefree")


def addresses(n: int, tag: str) -> list[str]:
    return [
        str(to_base58check_address(b"\x41" + hashlib.sha256(f"{tag}/{i}".encode()).digest()[:20]))
        for i in range(n)
    ]


def policy_yaml(name: str, first: str, watched: list[str]) -> str:
    order = [first, *[v for v in VENDORS if v != first]]
    lines = [
        "---",
        "apiVersion: energyctl/v1",
        "kind: EnergyPolicy",
        f"metadata: {{name: {name}}}",
        "spec:",
        "  addresses:",
        *[f"    - {a}" for a in watched],
        "  threshold: 65k",
        "  topUp: {amount: 131k, duration: 1h}",
        f"  providers: [{', '.join(order)}]",
        "  maxPrice: 100 sun/energy",
        "  budget: {perDay: 100000 TRX}",
    ]
    return "\n".join(lines) + "\n"


async def measure(directory: Path, rounds: int) -> tuple[float, float, int]:
    result = load(directory, secrets=SecretMode.REQUIRED)
    assert result.policy_set is not None, [str(d) for d in result.errors]
    policy_set = result.policy_set
    store = f"sqlite:///{directory / 'bench.db'}"
    best_observe = best_pass = float("inf")
    actions = 0
    async with Session(policy_set, store_url=store) as session:
        rec = session.reconciler
        await rec.observe()  # warm the connections
        for _ in range(rounds):
            start = time.perf_counter()
            observed = await rec.observe()
            best_observe = min(best_observe, time.perf_counter() - start)
            assert all(isinstance(v, EnergySnapshot) for v in observed.values())
            start = time.perf_counter()
            passed = await rec.run_pass(apply=False)
            best_pass = min(best_pass, time.perf_counter() - start)
            actions = len(passed.plan.actions)
    return best_observe, best_pass, actions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--addresses", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--planner-addresses", type=int, default=100_000)
    parser.add_argument("--drained", type=float, default=0.01, help="share below threshold")
    args = parser.parse_args()

    watched = addresses(args.addresses, "bench-reconcile")
    with tempfile.TemporaryDirectory() as tmp, World(clock=ScaledClock(), watched=0) as world:
        directory = Path(tmp)
        world.write_policies(directory)
        os.environ.update(world.env())
        chain = world.chain
        staker = addresses(1, "bench-staker")[0]
        chain.create_account(staker, 10**17)
        chain.stake_energy(staker, 10**16)
        sun = chain.sun_for_energy(200_000)  # at the weight after the stake
        drained = int(len(watched) * args.drained)
        for i, address in enumerate(watched):
            chain.create_account(address, 1_000_000)
            if i >= drained:
                chain.delegate_energy(staker, address, sun, None)
        quarter = -(-len(watched) // 4)
        text = "".join(
            policy_yaml(f"bench-{v}", v, watched[i * quarter : (i + 1) * quarter])
            for i, v in enumerate(VENDORS)
        )
        (directory / "policies.yaml").write_text(text)
        observe_s, pass_s, actions = asyncio.run(measure(directory, args.rounds))
    per_s = planner_rate(args.planner_addresses)
    overhead = pass_s / observe_s
    rows = [
        ("addresses", f"{len(watched)}", f"{drained} below threshold"),
        ("observe (best)", f"{observe_s:.3f} s", "ChainReader snapshots of every address"),
        ("observe + plan (best)", f"{pass_s:.3f} s", f"{actions} purchase(s) planned, gated"),
        ("overhead", f"{overhead:.3f}x", "target <= 1.25x"),
        ("planner", f"{per_s:,.0f} addr/s", "target >= 100,000 addr/s"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>18}  {note}")
    print(
        f"RESULT addresses={len(watched)} observe_s={observe_s:.3f} pass_s={pass_s:.3f} "
        f"overhead={overhead:.3f} planner_per_s={per_s:.0f}"
    )


def planner_rate(n: int) -> float:
    """assess + plan on in-memory inputs: addresses per second (best of three)."""
    from policies.models import EnergyPolicy

    watched = addresses(n, "bench-planner")
    caps = {
        "tronsave": Capabilities(min_duration=300, min_amount=32_000),
        "eopen": Capabilities(durations=(600, 3600, 86400), min_amount=64_000),
        "itrx": Capabilities(durations=(3600, 86400), min_amount=10_000, exclusive=True),
        "mefree": Capabilities(durations=(3600, 86400), min_amount=65_000, idempotency_key=True),
    }
    quarter = -(-n // 4)
    policies = [
        EnergyPolicy.model_validate(
            {
                "apiVersion": "energyctl/v1",
                "kind": "EnergyPolicy",
                "metadata": {"name": f"p-{v}"},
                "spec": {
                    "addresses": watched[i * quarter : (i + 1) * quarter],
                    "threshold": "65k",
                    "topUp": {"amount": "131k", "duration": "1h"},
                    "providers": [v, *[o for o in VENDORS if o != v]],
                    "maxPrice": "100 sun/energy",
                    "budget": {"perDay": "100000 TRX"},
                },
            }
        )
        for i, v in enumerate(VENDORS)
    ]
    now = 1_767_225_600.0
    observations = {
        a: EnergySnapshot(a, True, 0 if i % 100 == 0 else 200_000, 200_000, 0, 10**9, 1, now)
        for i, a in enumerate(watched)
    }
    inputs = PlanInputs(
        policies=policies,
        observations=observations,
        open_orders=[],
        providers={name: ProviderView(name, c) for name, c in caps.items()},
        now=now,
        max_actions=n,
    )
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        assessments = assess(inputs)
        keys = quote_requests(assessments)
        quotes: dict[QuoteKey, Quote | ProviderError] = {
            k: Quote(
                provider=k.provider, energy=k.energy, duration=k.duration, total_sun=k.energy * 60
            )
            for k in keys
        }
        result = plan(inputs, assessments, quotes)
        best = min(best, time.perf_counter() - start)
        assert len(result.entries) == n
    return n / best


if __name__ == "__main__":
    main()
