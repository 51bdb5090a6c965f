"""Latency from `POST /v1/ensure` to the order being placed, engine side.

Serves the sandbox World on loopback (real-time clock, vendor emulators answering at
once), starts `energyctl run` as a process on its policy files plus one policy of
`--addresses` extra addresses, gives every address 450k delegated energy (healthy), then
sends one ensure request per address, one after the other, for more than it has: each
answer comes back after the pass that placed the order, so the request's round trip is
the ensure-to-order latency. Prints the median and 99th percentile; target p99 < 250 ms.

    .venv/bin/python bench/ensure.py [--addresses 100]

Last line: `RESULT requests=.. p50_ms=.. p99_ms=..`.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from engine.core.clock import ScaledClock
from sandbox import demo
from sandbox.world import World

ENERGYCTL = str(Path(sys.executable).with_name("energyctl"))
STAKER = "TYukBQZ2XXCcRCReAUguyXncCWNY9CEiDQ"
START = 450_000
TOKEN = "bench-token"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=100)
    args = parser.parse_args()
    total = demo.WATCHED + args.addresses
    with tempfile.TemporaryDirectory() as tmp, World(clock=ScaledClock(), watched=total) as world:
        directory = world.write_policies(tmp)
        extra = world.watched[demo.WATCHED :]
        (directory / "bench.yaml").write_text(
            "apiVersion: energyctl/v1\nkind: EnergyPolicy\nmetadata: {name: bench}\nspec:\n"
            f"  addresses: [{', '.join(extra)}]\n  threshold: 65k\n"
            "  topUp: {amount: 131k, duration: 1h}\n  providers: [itrx, mefree, tronsave]\n"
            "  maxPrice: 120 sun/energy\n  budget: {perDay: 100000 TRX}\n"
        )
        engine = directory / "engine.yaml"
        engine.write_text(
            engine.read_text()
            + "  maxActionsPerPass: 1000\n  http:\n    apiToken: {fromEnv: BENCH_TOKEN}\n"
        )
        chain = world.chain
        chain.create_account(STAKER, 10**14)
        chain.stake_energy(STAKER, 9 * 10**13)
        for address in world.watched:
            chain.delegate_energy(STAKER, address, chain.sun_for_energy(START), None)
        port = _port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, **world.env(), "BENCH_TOKEN": TOKEN}
        proc = subprocess.Popen(
            [ENERGYCTL, "run", "-f", str(directory), "--listen", f"127.0.0.1:{port}",
             "--log-level", os.environ.get("BENCH_LOG_LEVEL", "warning")],
            env=env, cwd=tmp,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the sidecar did not become ready")
                time.sleep(0.1)
            samples: list[float] = []
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(timeout=30, headers=headers) as client:
                for address in extra:
                    started = time.perf_counter()
                    answer = client.post(
                        url + "/v1/ensure", json={"address": address, "energy": START + 50_000}
                    ).json()
                    elapsed = time.perf_counter() - started
                    if not answer.get("order") or answer["order"]["outcome"] != "bought":
                        print(f"not bought: {answer}", file=sys.stderr)
                        continue
                    samples.append(elapsed * 1000)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(
        f"ensure -> order placed over {len(samples)} requests: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    print(f"RESULT requests={len(samples)} p50_ms={p50:.1f} p99_ms={p99:.1f}")


if __name__ == "__main__":
    main()
