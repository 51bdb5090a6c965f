"""Concurrent tronpy reads through the emulated node's injected latency: do they overlap?

Serves the emulated node (`sandbox.tron_node`) on loopback with an injected answer
delay (`--latency`, default 0.3 s) standing for network latency, then reads one
address's energy `--concurrent` times at once with tronpy's `AsyncTron`. The node awaits
the delay rather than sleeping its thread, so the reads overlap: the run should take
about one latency, at least one (the delay is applied) and well under
`concurrent x latency / 2` (the requests are not serialised). The best of `--rounds`
runs is reported. This claim lived as a wall-clock assert in
`tests/sandbox/tron_node/test_tronpy.py`; timings belong here.

    .venv/bin/python bench/tronpy_read.py [--latency 0.3] [--concurrent 8] [--rounds 3]

Last line: `RESULT latency_s=.. concurrent=.. elapsed_s=.. serial_s=.. overlapped=yes|no`.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from tronpy import AsyncTron
from tronpy.keys import to_base58check_address
from tronpy.providers import AsyncHTTPProvider

from engine.core.clock import VirtualClock
from sandbox.tron_node import ChainState, TronNode

TRX = 1_000_000


def _address(i: int) -> str:
    return str(to_base58check_address(b"\x41" + (0xE0E0 + i).to_bytes(20, "big")))


def chain() -> tuple[ChainState, str]:
    """A provider with 10M TRX staked for energy delegating 131k energy to a user."""
    provider, user = _address(1), _address(2)
    state = ChainState(VirtualClock())
    state.create_account(provider, 20_000_000 * TRX)
    state.stake_energy(provider, 10_000_000 * TRX)
    state.create_account(user, 100 * TRX)
    state.delegate_energy(provider, user, state.sun_for_energy(131_000), lock_period_blocks=0)
    return state, user


async def one_round(url: str, user: str, concurrent: int) -> float:
    async with AsyncTron(AsyncHTTPProvider(url)) as tron:
        await tron.get_latest_block_number()  # connect first
        started = time.perf_counter()
        energies = await asyncio.gather(*(tron.get_energy(user) for _ in range(concurrent)))
        elapsed = time.perf_counter() - started
    if len(set(energies)) != 1:
        raise SystemExit(f"the concurrent reads disagree: {energies}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    state, user = chain()
    with TronNode.start(state, latency=args.latency) as node:
        times = [
            asyncio.run(one_round(node.url, user, args.concurrent)) for _ in range(args.rounds)
        ]
    best = min(times)
    serial = args.concurrent * args.latency
    overlapped = args.latency <= best < serial / 2
    print(f"{args.concurrent} reads at {args.latency:g} s latency: " + ", ".join(
        f"{t:.3f} s" for t in times
    ))  # fmt: skip
    print(
        f"RESULT latency_s={args.latency:g} concurrent={args.concurrent} elapsed_s={best:.3f}"
        f" serial_s={serial:.1f} overlapped={'yes' if overlapped else 'no'}"
    )


if __name__ == "__main__":
    main()
