"""Reading 10,000 addresses through the chain reader, against the transport floor and a naive loop.

Starts the emulated node (`sandbox.tron_node`) on loopback with an injected answer delay
standing for network latency (default 20 ms, a nearby node), creates the accounts through
its Python API, then measures in the same run:

- engine: `ChainReader.snapshots(addresses)` (one getnodeinfo, then getaccountresource and
  getaccount per address: the snapshot's limit/used come from the first, delegated-in
  stake from the second; unactivated addresses stop after the first);
- floor: the same requests as raw async httpx POSTs, bodies decoded as JSON, with the same
  concurrency (the same number of workers over one connection pool of that size);
- naive: sequential synchronous tronpy calls (`Tron.get_account_resource` and
  `Tron.get_account` per address), timed on a sample and scaled.

Engine and floor take the best of `--rounds` runs each, alternating. Targets: engine at
most 1.5x the floor, at least 20x faster than the naive loop.

    .venv/bin/python bench/chain_read.py [--addresses 10000] [--latency 0.02]
        [--concurrency 200] [--sample 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection

import httpx
from tronpy import Tron
from tronpy.keys import to_base58check_address
from tronpy.providers import HTTPProvider

from engine.core.clock import SystemClock
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import ChainReader
from sandbox.tron_node import ChainState, TronNode


def address(i: int) -> str:
    return str(to_base58check_address(b"\x41" + i.to_bytes(20, "big")))


def populate(state: ChainState, addresses: list[str]) -> None:
    """Every address activated; one in ten stakes for energy and delegates some on."""
    for i, a in enumerate(addresses):
        state.create_account(a, balance_sun=100_000_000)
        if i % 10 == 0:
            state.stake_energy(a, 50_000_000)
    for i in range(0, len(addresses) - 1, 20):
        state.delegate_energy(addresses[i], addresses[i + 1], 10_000_000)


def _serve_child(state: ChainState, latency: float, pipe: Connection) -> None:
    with TronNode.start(state, latency=latency) as node:
        pipe.send(node.url)
        pipe.recv()  # until told to stop


@contextlib.contextmanager
def node_url(state: ChainState, latency: float, where: str) -> Iterator[str]:
    """`TronNode.start` in this process (a server thread sharing the interpreter lock with
    the clients being measured) or in a forked child process (like a real node: its CPU
    is not ours)."""
    if where == "thread":
        with TronNode.start(state, latency=latency) as node:
            yield node.url
        return
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_serve_child, args=(state, latency, theirs), daemon=True)
    child.start()
    try:
        yield str(ours.recv())
    finally:
        ours.send("stop")
        child.join(10)


async def engine_run(url: str, addresses: list[str], concurrency: int) -> float:
    reader = ChainReader(url, api_key=None, clock=SystemClock(), concurrency=concurrency)
    async with reader:
        t0 = time.perf_counter()
        results = await reader.snapshots(addresses)
        elapsed = time.perf_counter() - t0
    bad = [v for v in results.values() if not (isinstance(v, EnergySnapshot) and v.activated)]
    if bad:
        raise SystemExit(f"engine: {len(bad)} addresses not read, e.g. {bad[0]!r}")
    return elapsed


async def floor_run(url: str, addresses: list[str], concurrency: int, lanes: bool = True) -> float:
    """Raw httpx: `concurrency` workers, each on its own one-connection client (`lanes`),
    as the engine does, or all on one client with a pool of `concurrency` connections."""
    if lanes:
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        clients = [httpx.AsyncClient(base_url=url, limits=one) for _ in range(concurrency)]
    else:
        pool = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        clients = [httpx.AsyncClient(base_url=url, limits=pool)]
    t0 = time.perf_counter()
    (await clients[0].post("/wallet/getnodeinfo", json={})).json()
    pending = iter(addresses)

    async def work(client: httpx.AsyncClient) -> None:
        for a in pending:
            body = {"address": a, "visible": True}
            (await client.post("/wallet/getaccountresource", json=body)).json()
            (await client.post("/wallet/getaccount", json=body)).json()

    await asyncio.gather(*(work(clients[k % len(clients)]) for k in range(concurrency)))
    elapsed = time.perf_counter() - t0
    for client in clients:
        await client.aclose()
    return elapsed


def naive_run(url: str, sample: list[str]) -> float:
    tron = Tron(HTTPProvider(url))
    t0 = time.perf_counter()
    for a in sample:
        tron.get_account_resource(a)
        tron.get_account(a)
    return time.perf_counter() - t0


async def best_of(rounds: int, runs: dict[str, Callable[[], Awaitable[float]]]) -> dict[str, float]:
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = min(best[name], await run())
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.02, help="node answer delay, s")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--sample", type=int, default=500, help="naive loop sample size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--node",
        choices=["process", "thread"],
        default="process",
        help="run the emulated node in a child process (default) or a thread of this one",
    )
    parser.add_argument(
        "--single-pool", action="store_true", help="also time raw httpx on one pool (slow)"
    )
    args = parser.parse_args()

    addresses = [address(i) for i in range(1, args.addresses + 1)]
    state = ChainState(SystemClock())
    t0 = time.perf_counter()
    populate(state, addresses)
    setup_s = time.perf_counter() - t0

    with node_url(state, args.latency, args.node) as url:
        asyncio.run(floor_run(url, addresses[:200], args.concurrency))  # warm up
        runs: dict[str, Callable[[], Awaitable[float]]] = {
            "engine": lambda: engine_run(url, addresses, args.concurrency),
            "floor": lambda: floor_run(url, addresses, args.concurrency),
        }
        best = asyncio.run(best_of(args.rounds, runs))
        single_s = None
        if args.single_pool:
            single_s = asyncio.run(floor_run(url, addresses, args.concurrency, lanes=False))
        sample = addresses[: args.sample]
        naive_sample_s = naive_run(url, sample)
    naive_s = naive_sample_s * len(addresses) / len(sample)
    engine_s, floor_s = best["engine"], best["floor"]
    requests = 1 + 2 * len(addresses)

    print(
        f"node: sandbox emulator on loopback ({args.node}), "
        f"answer delay {args.latency * 1000:.0f} ms"
    )
    print(f"addresses: {len(addresses):,} (created in {setup_s:.1f} s); requests: {requests:,}")
    print(f"concurrency: {args.concurrency} for engine and floor; best of {args.rounds} rounds")
    print(f"{'way':<52}{'seconds':>10}{'addr/s':>10}")
    rows = [
        ("engine: ChainReader.snapshots", engine_s),
        ("floor: raw async httpx POSTs, same requests", floor_s),
        (f"naive: sequential sync tronpy (sample {len(sample)}, scaled)", naive_s),
    ]
    if single_s is not None:
        rows.insert(2, ("raw httpx, one pool of `concurrency` connections", single_s))
    for name, seconds in rows:
        print(f"{name:<52}{seconds:>10.2f}{len(addresses) / seconds:>10.0f}")
    vs_floor, vs_naive = engine_s / floor_s, naive_s / engine_s
    print(f"engine / floor = {vs_floor:.2f} (target <= 1.5)")
    print(f"naive / engine = {vs_naive:.1f} (target >= 20)")
    print(
        f"RESULT addresses={len(addresses)} engine_s={engine_s:.2f} floor_s={floor_s:.2f} "
        f"naive_s={naive_s:.2f} vs_floor={vs_floor:.2f} vs_naive={vs_naive:.1f}"
    )


if __name__ == "__main__":
    main()
