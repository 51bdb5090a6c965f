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

    .venv/bin/python bench/replicas.py [--addresses 400] [--timeout 600] [--logs DIR]

An address not reconciled by `--timeout` seconds is given up on: the bench prints one
`GAVE UP` line per such address (its shard and the replica holding it, its available
energy, its last order's phase, provider and the reason: the order's last error or its
last event), exits non-zero after both runs, and with `--logs` keeps the replicas' logs.

At 2,000 addresses the run measures the vendor emulators instead of the engine: their
rate limits (TronSave answers 429 beyond 15 requests a second per key, shared by all
replicas) and refusals leave hundreds of orders failed or waiting, whatever the number
of replicas.

Last line: `RESULT one_per_s=.. three_per_s=..` (`gave-up` for a run that gave up).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from engine.core.clock import ScaledClock
from engine.sidecar.sharding import shard_name, shard_of
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


def gave_up(cluster: Cluster, addresses: list[str]) -> list[str]:
    """One line per address not reconciled: where it stands and why."""
    delivered = {
        str(row[0])
        for row in cluster.query("SELECT DISTINCT address FROM orders WHERE phase = 'delivered'")
    }
    needy = set(cluster.needy())
    holders = {
        str(row[0]): str(row[1])
        for row in cluster.query("SELECT name, holder FROM leases WHERE expires_at > 0")
    }
    lines = []
    for address in addresses:
        if address in delivered and address not in needy:
            continue
        shard = shard_name(shard_of(address, SHARDS), SHARDS)
        energy = cluster.world.available_energy(address)
        where = (
            f"{address} shard={shard} holder={holders.get(shard, '-')} "
            f"energy={energy} threshold={cluster.threshold(address)}"
        )
        last = cluster.query(
            "SELECT client_order_id, phase, provider, last_error, attempts FROM orders"
            " WHERE address = %s ORDER BY created_at DESC LIMIT 1",
            (address,),
        )
        if not last:
            lines.append(f"GAVE UP {where} phase=none reason=no order was ever written")
            continue
        order_id, phase, provider, error, attempts = last[0]
        event = cluster.query(
            "SELECT to_phase, detail FROM order_events WHERE client_order_id = %s"
            " ORDER BY seq DESC LIMIT 1",
            (order_id,),
        )
        detail = json.dumps(event[0][1], sort_keys=True) if event else "{}"
        reason = error or f"last event {event[0][0] if event else '-'} {detail}"
        total = cluster.query("SELECT COUNT(*) FROM orders WHERE address = %s", (address,))[0][0]
        lines.append(
            f"GAVE UP {where} phase={phase} provider={provider} order={order_id} "
            f"attempts={attempts} orders={total} reason={reason}"
        )
    return lines


def measure(
    replicas: int, addresses: int, url: str, timeout: float, keep: Path | None
) -> float | None:
    """Addresses per second, or None (after printing the addresses given up on)."""
    names = [f"r{n + 1}" for n in range(replicas)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        World(clock=ScaledClock(), watched=addresses) as world,
    ):
        cluster = Cluster(world, Path(tmp), url, lease_ttl=5.0, intent_grace=20.0)
        failed: list[str] = []
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
                if time.monotonic() - started > timeout:
                    failed = gave_up(cluster, cluster.addresses)
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - started
        finally:
            for name in names:
                cluster.stop(name)
            if keep is not None:
                target = keep / f"{replicas}-replicas"
                target.mkdir(parents=True, exist_ok=True)
                for name in names:
                    shutil.copy(Path(tmp) / f"{name}.log", target / f"{name}.log")
            cluster.cleanup()
    if failed:
        for line in failed:
            print(line)
        print(
            f"{replicas} replica(s): gave up on {len(failed)} of {addresses} addresses"
            f" after {timeout:.0f} s"
        )
        return None
    rate = addresses / elapsed
    print(f"{replicas} replica(s): {addresses} addresses in {elapsed:.1f} s = {rate:.1f}/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=400)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--logs", type=Path, default=None, help="keep the replicas' logs here")
    args = parser.parse_args()
    url = os.environ.get("ENERGYCTL_TEST_POSTGRES_URL", DEFAULT_URL)
    one = measure(1, args.addresses, url, args.timeout, args.logs)
    three = measure(3, args.addresses, url, args.timeout, args.logs)
    shown = [f"{r:.1f}" if r is not None else "gave-up" for r in (one, three)]
    print(f"RESULT one_per_s={shown[0]} three_per_s={shown[1]}")
    if one is None or three is None:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
