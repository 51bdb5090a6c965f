"""The hindsight optimum's own plan, replayed on the emulated chain: can it be carried out?

`sandbox/optimum.py`'s program is a relaxation of the chain: each draw recovers on its own
line over 24 h where java-tron merges them into one window, and an ended rental is
credited with up to its whole amount of used energy where the chain moves only the
stake's share of it (`model.undelegate_transfer`). Its optimum is therefore a lower
bound, but its plan need not work on the chain. This script tells how far it is from
working, per profile, for a few addresses of a week (seed 0):

1. each address's transfers are played once on an emulated chain with no energy, to read
   what each one needs (65k to a holder, 131k to a fresh address);
2. the program is solved with 24 h recovery on every row (no run, so no certificate);
3. its plan (every rental: when, for how long, how much) is replayed on a fresh chain: a
   delegation from one staked account to the address just after the transfer before the
   rental's candidate (where the program counts it present from) and taken back at its
   end plus the program's margin; the transfers are made at their times and what they
   burn is counted;
4. the plan is also replayed with every rental times s (1.0 to 2.5): the least of s x its
   cost plus what the transfers burned is what perfect foresight, with the program's
   timing, paid on the chain: an upper estimate of the true optimum for that workload.

Prints, per profile, the bound and both costs; ends with one line:

    RESULT days=7 addresses=N <profile>_replayed_over_bound=<plan as is, burns included,
        over the bound> <profile>_scaled_over_bound=<the best scaled plan over it> ...

    .venv/bin/python bench/replay_optimum.py [--profiles steady,daily,bursty,payments]
        [--addresses 4] [--days 7]
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import time
from dataclasses import dataclass

from engine.core.clock import VirtualClock
from sandbox import demo
from sandbox.market import catalogue
from sandbox.optimum import MARGIN, Rental, solve_address
from sandbox.tron_node.state import ChainState
from sandbox.workload import Spender, Workload, profile
from sandbox.world import TRX, World

START = 1_767_225_600.0  # 2026-01-01T00:00Z, as the simulator's clock
STAKER = demo.key_address("replay-staker")
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Replay:
    burned: int  # transfers that burned (any amount)
    burned_sun: int
    repaired_sun: int = 0  # the hour-long rentals bought just before transfers


def needs(workload: Workload) -> list[int]:
    """What each transfer of `workload` needs, read from a chain that gives no energy."""
    chain = _chain()
    spender = Spender(chain, workload, start=START)
    spender.run_until(START + 10 * 86_400, set_time=chain.clock.set)  # type: ignore[attr-defined]
    return [r.energy_total for r in spender.records]


def _chain() -> ChainState:
    chain = ChainState(VirtualClock(START))
    chain.create_account(STAKER, 2_000_000_000 * TRX)
    chain.stake_energy(STAKER, 1_900_000_000 * TRX)
    chain.create_account(demo.SINK, 0)
    chain.mark_usdt_holder(demo.SINK)
    return chain


def replay(
    workload: Workload,
    times: list[float],
    energies: list[int],
    rentals: list[Rental],
    scale: float,
    repair: float | None = None,
) -> Replay:
    """Play `workload` with `rentals` (times in seconds since START) times `scale`.
    `repair` (sun per energy): before a transfer that would burn, rent what it lacks for
    an hour at that price (knowing the transfer is coming), its cost in `repaired_sun`."""
    chain = _chain()
    clock = chain.clock
    address = workload.transfers[0].sender
    chain.create_account(address, 1_000 * TRX)
    events: list[tuple[float, int, int]] = []  # (at, +1 delegate / -1 take back, sun)
    for r in rentals:
        energy = int(r.energy * scale)
        if energy < 1:
            continue
        sun = max(TRX, chain.sun_for_energy(energy))
        k = bisect.bisect_left(times, r.at)
        start = 0.0 if k == 0 else times[k - 1] + 1.0
        events.append((start, 1, sun))
        events.append((r.at + r.duration + MARGIN, -1, sun))
    for at in times:
        events.append((at, 0, 0))  # a transfer
    events.sort(key=lambda e: (e[0], -abs(e[1])))
    heap: list[tuple[float, int, int]] = []
    spender = Spender(chain, workload, start=START)
    repaired = 0
    queue = list(reversed(events))
    while queue or heap:
        if heap and (not queue or heap[0][0] <= queue[-1][0]):
            at, kind, sun = heapq.heappop(heap)
        else:
            at, kind, sun = queue.pop()
        clock.set(max(clock.now(), START + at))  # type: ignore[attr-defined]
        if kind > 0:
            chain.delegate_energy(STAKER, address, sun)
        elif kind < 0:
            chain.undelegate_energy(STAKER, address, sun)
        else:
            short = energies[len(spender.records)] - chain.available_energy(address)
            if repair is not None and short > 0:
                sun = max(TRX, chain.sun_for_energy(short))
                chain.delegate_energy(STAKER, address, sun)
                repaired += round(short * repair)
                heapq.heappush(heap, (at + HOUR, -1, sun))
            spender.run_until(START + at, set_time=clock.set)  # type: ignore[attr-defined]
    burning = [r for r in spender.records if r.burned_sun > 0]
    return Replay(len(burning), sum(r.burned_sun for r in burning), repaired)


SCALES = tuple(round(1.0 + 0.1 * i, 1) for i in range(16))  # 1.0 .. 2.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="steady,daily,bursty,payments")
    parser.add_argument("--addresses", type=int, default=4)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    offers = catalogue(World(watched=0), max_days=int(args.days) + 2)
    hour = min(o.unit_cost_sun for o in offers if o.duration == HOUR)
    figures: list[str] = []
    for name in args.profiles.split(","):
        started = time.perf_counter()
        bound = 0.0
        burned = 0
        plain = dict.fromkeys(SCALES, 0.0)
        mended = dict.fromkeys(SCALES, 0.0)
        senders = [demo.watched_address(n) for n in range(args.addresses)]
        full = profile(name, senders, days=args.days, seed=args.seed)
        for sender in senders:
            mine = Workload(name, tuple(t for t in full.transfers if t.sender == sender))
            if not mine.transfers:
                continue
            energies = needs(mine)
            times = [t.at for t in mine.transfers]
            plan = solve_address(
                sender, times, energies, offers, energy_fee=100, milp_time_limit=None, since=0.0
            )
            cost = sum(r.cost_sun for r in plan.rentals) + sum(b for _, b in plan.burns)
            bound += plan.lower_bound_sun
            for scale in SCALES:
                played = replay(mine, times, energies, plan.rentals, scale)
                plain[scale] += cost * scale + played.burned_sun
                burned += played.burned if scale == 1.0 else 0
                fixed = replay(mine, times, energies, plan.rentals, scale, repair=hour)
                mended[scale] += cost * scale + fixed.repaired_sun + fixed.burned_sun
        best = min(SCALES, key=lambda x: plain[x])
        good = min(SCALES, key=lambda x: mended[x])
        print(
            f"{name:<9} bound {bound / TRX:,.2f} TRX; its plan on the chain: {burned} transfers "
            f"burn, {plain[1.0] / TRX:,.2f} TRX in all (x{plain[1.0] / bound:.2f}); scaled "
            f"x{best}: x{plain[best] / bound:.2f}; scaled x{good} and mended with hour-long "
            f"rentals at {hour:g} sun before each transfer that would burn: "
            f"{mended[good] / TRX:,.2f} TRX (x{mended[good] / bound:.2f}) "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        figures += [
            f"{name}_replayed_over_bound={plain[1.0] / bound:.2f}",
            f"{name}_scaled_over_bound={plain[best] / bound:.2f}",
            f"{name}_mended_over_bound={mended[good] / bound:.2f}",
        ]
    print(f"RESULT days={args.days:g} addresses={args.addresses} " + " ".join(figures))


if __name__ == "__main__":
    main()
