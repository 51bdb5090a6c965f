"""Several `energyctl run` replicas on one PostgreSQL schema and the served sandbox World.

`Cluster(world, directory, base_url, addresses)` writes policy files for the World's
watched addresses (four policies over them, the vendor emulators as providers, the store
in a fresh schema `?schema=energyctl_replicas_<random>`), gives every address 450k
delegated energy, and starts, kills (SIGKILL) and stops (SIGTERM) replica processes with
short intervals and a short lease time-to-live. `cleanup()` drops the schema. Used by
`tests/e2e/test_replicas.py` and `bench/replicas.py`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from sandbox import demo
from sandbox.world import World

ENERGYCTL = str(Path(sys.executable).with_name("energyctl"))
STAKER = "TYukBQZ2XXCcRCReAUguyXncCWNY9CEiDQ"
START = 450_000
OPEN = ("intent", "submitted", "delegating", "unknown")
SHARDS = 32


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def policy_rows(count: int, budget_trx: int) -> tuple[demo.PolicyRow, ...]:
    """The test policies' shapes over `count` addresses, four policies."""
    quarter = count // 4
    shapes = [row[5:8] for row in demo.TEST_POLICIES]
    names = [row[0] for row in demo.TEST_POLICIES]
    thresholds = [row[4] for row in demo.TEST_POLICIES]
    rows = []
    for n in range(4):
        first = n * quarter
        size = quarter if n < 3 else count - first
        top_up, providers, price = shapes[n]
        rows.append(
            (names[n], "replicas", first, size, thresholds[n], top_up, providers, price,
             f"{{perDay: {budget_trx} TRX}}")
        )  # fmt: skip
    return tuple(rows)


class Cluster:
    def __init__(
        self,
        world: World,
        directory: Path,
        base_url: str,
        *,
        budget_trx: int = 100_000,
        shards: int = SHARDS,
        lease_ttl: float = 2.0,
        intent_grace: float = 4.0,
        interval: str = "1s",
    ) -> None:
        self.world, self.directory = world, directory
        self.base_url = base_url
        self.schema = f"energyctl_replicas_{uuid.uuid4().hex[:12]}"
        joiner = "&" if "?" in base_url else "?"
        self.store_url = f"{base_url}{joiner}schema={self.schema}"
        self.addresses = list(world.watched)
        self.rows = policy_rows(len(self.addresses), budget_trx)
        self.budget_sun = budget_trx * 1_000_000
        files = demo.render_policy_files(world.urls(), self.store_url, self.rows)
        engine = files["engine.yaml"].replace("interval: 15s", f"interval: {interval}")
        files["engine.yaml"] = engine + "  maxActionsPerPass: 500\n"
        for name, text in files.items():
            (directory / name).write_text(text)
        self.env = {**os.environ, **world.env()}
        self.options = [
            "--shards", str(shards), "--lease-ttl", str(lease_ttl),
            "--intent-grace", str(intent_grace), "--stop-grace", "5",
        ]  # fmt: skip
        chain = world.chain
        chain.create_account(STAKER, 10**15)
        chain.stake_energy(STAKER, 9 * 10**14)
        sun = chain.sun_for_energy(START)
        for address in self.addresses:
            chain.delegate_energy(STAKER, address, sun, None)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.starts = 0

    # ------------------------------------------------------------------ processes

    def start(self, name: str) -> None:
        port = self.ports.setdefault(name, _port())
        with (self.directory / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [ENERGYCTL, "run", "-f", str(self.directory), "--listen", f"127.0.0.1:{port}",
                 "--replica", name, "--log-level", "info", *self.options],
                env=self.env, cwd=self.directory, stdout=out, stderr=out,
            )  # fmt: skip
        self.starts += 1

    def kill(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def stop(self, name: str) -> int | None:
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                raise
        return proc.returncode

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def get(self, name: str, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.ports[name]}{path}", timeout=10)

    def wait_ready(self, names: list[str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                assert self.alive(name), f"{name} exited:\n{self.logs(name)[-3000:]}"
                try:
                    if self.get(name, "/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{name} never ready"
                time.sleep(0.1)

    def logs(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    # ------------------------------------------------------------------ the database

    def query(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            cursor = conn.execute(query.encode(), params or None)
            return cursor.fetchall() if cursor.description else []

    def max_open_per_address(self) -> int:
        rows = self.query(
            "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM orders"
            " WHERE phase = ANY(%s) GROUP BY address) t",
            (list(OPEN),),
        )
        return int(rows[0][0])

    def cleanup(self) -> None:
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )

    # ------------------------------------------------------------------ the world

    def threshold(self, address: str) -> int:
        index = self.addresses.index(address)
        for row in self.rows:
            if row[2] <= index < row[2] + row[3]:
                text = row[4]
                return int(text.removesuffix("k")) * 1000
        raise KeyError(address)

    def needy(self) -> list[str]:
        return [a for a in self.addresses if self.world.available_energy(a) < self.threshold(a)]

    def held(self) -> set[str]:
        """Addresses held by an ambiguous (`unknown`) order."""
        rows = self.query("SELECT DISTINCT address FROM orders WHERE phase = 'unknown'")
        return {str(row[0]) for row in rows}

    def vendor_orders(self) -> dict[str, int]:
        """Orders each address has at the vendor emulators, all vendors together."""
        out: dict[str, int] = {}
        for emulator in self.world.emulators.values():
            for order in getattr(emulator, "orders", {}).values():
                out[_receiver(order)] = out.get(_receiver(order), 0) + 1
        return out


def _receiver(order: Any) -> str:
    for name in ("receiver", "target", "receive_address", "pledge_address"):
        value = getattr(order, name, None)
        if isinstance(value, str):
            return value
    raise AssertionError(f"no receiver on {order!r}")
