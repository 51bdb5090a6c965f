"""Addresses reconciled per second by one and by three `energyctl run` replicas.

Serves the sandbox World on loopback (real-time clock, vendor emulators) with
`--addresses` watched addresses, each holding 450k delegated energy, and a fresh
PostgreSQL schema (`ENERGYCTL_TEST_POSTGRES_URL`, default the CI database); the vendors
are staked and funded for thousands of orders (the World's defaults run dry near a
thousand, and their refusals would be measured instead). For one and
then three replicas (shard leases, passes every second): start them, wait until the
shards are split, drain every address at once, and time until every address is
reconciled: topped up on chain and its order `delivered` in the store. A fresh World and
schema for each run.

    .venv/bin/python bench/replicas.py [--addresses 400]

At 2,000 addresses the run measures the vendor emulators instead of the engine: their
rate limits (TronSave answers 429 beyond 15 requests a second per key, shared by all
replicas) and refusals leave hundreds of orders failed or waiting, whatever the number
of replicas.

Last line: `RESULT one_per_s=.. three_per_s=..`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from engine.clock import ScaledClock
from sandbox.world import World

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the replicas' harness:
from tests.e2e.replicated import SHARDS, Cluster

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _split(cluster: Cluster, names: list[str], timeout: float = 60.0) -> None:
    """Until the replicas hold every shard between them, none above its fair share."""
    fair = math.ceil(SHARDS / len(names))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [len(cluster.get(n, "/v1/status").json()["replica"]["held"]) for n in names]
        if sum(held) == SHARDS and max(held) <= fair:
            return
        time.sleep(0.2)
    raise SystemExit("the replicas never split the shards")


def measure(replicas: int, addresses: int, url: str) -> float:
    names = [f"r{n + 1}" for n in range(replicas)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        World(clock=ScaledClock(), watched=addresses) as world,
    ):
        cluster = Cluster(world, Path(tmp), url, lease_ttl=5.0, intent_grace=20.0)
        try:
            for name in names:
                cluster.start(name)
            cluster.wait_ready(names, timeout=120)
            _split(cluster, names)
            world.drain(cluster.addresses)
            started = time.monotonic()
            while True:
                delivered = cluster.query(
                    "SELECT COUNT(DISTINCT address) FROM orders WHERE phase = 'delivered'"
                )[0][0]
                if delivered >= addresses and not cluster.needy():
                    break
                if time.monotonic() - started > 600:
                    raise SystemExit(f"only {delivered} of {addresses} reconciled in 600 s")
                time.sleep(0.1)
            elapsed = time.monotonic() - started
        finally:
            for name in names:
                cluster.stop(name)
            cluster.cleanup()
    rate = addresses / elapsed
    print(f"{replicas} replica(s): {addresses} addresses in {elapsed:.1f} s = {rate:.1f}/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=400)
    args = parser.parse_args()
    url = os.environ.get("ENERGYCTL_TEST_POSTGRES_URL", DEFAULT_URL)
    one = measure(1, args.addresses, url)
    three = measure(3, args.addresses, url)
    print(f"RESULT one_per_s={one:.1f} three_per_s={three:.1f}")


if __name__ == "__main__":
    main()
