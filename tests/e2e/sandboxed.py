"""Helpers for the apply end-to-end and crash tests: a served World and `energyctl`.

The World (emulated node + four emulated vendors) is served on loopback on a real-time
clock (`ScaledClock`, speed 1: the CLI signs with real time); `energyctl` runs as a
subprocess against the policy files the World writes. Every address starts with 450k
energy delegated by a third party (above every demo threshold); `drain` spends it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.core.clock import SystemClock
from engine.store import (
    OPEN_PHASES,
    BudgetWindow,
    OrderEvent,
    OrderFilter,
    OrderRecord,
    open_store,
)
from policies.loading import SecretMode, load
from policies.policyset import PolicySet
from sandbox.world import World

ENERGYCTL = str(Path(sys.executable).with_name("energyctl"))
STAKER = "TYukBQZ2XXCcRCReAUguyXncCWNY9CEiDQ"
START_ENERGY = 450_000


class Sandbox:
    def __init__(self, world: World, directory: Path) -> None:
        self.world, self.directory = world, directory
        world.write_policies(directory)
        with (directory / "engine.yaml").open("a") as handle:
            handle.write("  maxActionsPerPass: 30\n")
        self.env = {**os.environ, **world.env()}
        self.env.pop("ENERGYCTL_TEST_CRASH_AT", None)
        result = load(directory, secrets=SecretMode.REQUIRED, env=self.env)
        assert result.policy_set is not None, result.diagnostics
        self.policy_set: PolicySet = result.policy_set
        self.store_url = self.policy_set.settings.store.url
        chain = world.chain
        chain.create_account(STAKER, 100_000_000 * 1_000_000)
        chain.stake_energy(STAKER, 90_000_000 * 1_000_000)
        sun = chain.sun_for_energy(START_ENERGY)
        for address in world.watched:
            chain.delegate_energy(STAKER, address, sun, None)

    def energyctl(self, *args: str, crash_at: str | None = None, timeout: float = 60) -> Any:
        env = dict(self.env)
        if crash_at is not None:
            env["ENERGYCTL_TEST_CRASH_AT"] = crash_at
        return subprocess.run(
            [ENERGYCTL, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.directory,
            check=False,
        )

    def apply(self, *extra: str, crash_at: str | None = None) -> Any:
        return self.energyctl(
            "apply", "-f", str(self.directory), "--yes", *extra, crash_at=crash_at
        )

    def first_provider(self, address: str) -> str:
        policy = self.policy_set.policy_for(address)
        assert policy is not None
        return policy.spec.providers[0]

    def threshold(self, address: str) -> int:
        policy = self.policy_set.policy_for(address)
        assert policy is not None
        return policy.spec.threshold

    def drain(self, addresses: list[str]) -> None:
        self.world.drain(addresses)
        for address in addresses:
            assert self.world.available_energy(address) < self.threshold(address)

    def orders(self) -> list[OrderRecord]:
        async def read() -> list[OrderRecord]:
            store = await open_store(self.store_url, SystemClock())
            async with store:
                return await store.orders(OrderFilter(limit=10_000))

        return asyncio.run(read())

    def history(self, client_order_id: str) -> list[OrderEvent]:
        async def read() -> list[OrderEvent]:
            store = await open_store(self.store_url, SystemClock())
            async with store:
                return await store.order_history(client_order_id)

        return asyncio.run(read())

    def spent(self, policy: str) -> int:
        """Sun the policy has reserved + settled today (UTC)."""

        async def read() -> int:
            store = await open_store(self.store_url, SystemClock())
            async with store:
                return await store.spent(policy, BudgetWindow.DAY)

        return asyncio.run(read())

    def vendor_orders(self, vendor: str) -> list[Any]:
        emulator: Any = self.world.emulators[vendor]
        return list(emulator.orders.values())

    def vendor_receivers(self) -> dict[str, list[str]]:
        """Receiver addresses of every order each vendor holds."""
        out: dict[str, list[str]] = {}
        for vendor, emulator in self.world.emulators.items():
            for order in getattr(emulator, "orders", {}).values():
                out.setdefault(_receiver(order), []).append(vendor)
        return out

    def assert_one_open_per_address(self) -> None:
        open_orders = [o.address for o in self.orders() if o.phase in OPEN_PHASES]
        assert len(open_orders) == len(set(open_orders)), open_orders

    def wait_for_energy(self, address: str, at_least: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.world.available_energy(address) < at_least:
            assert time.monotonic() < deadline, f"{address} never reached {at_least}"
            time.sleep(0.2)


def _receiver(order: Any) -> str:
    for name in ("receiver", "target", "receive_address", "pledge_address"):
        value = getattr(order, name, None)
        if isinstance(value, str):
            return value
    raise AssertionError(f"no receiver on {order!r}")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    from engine.core.clock import ScaledClock

    with World(clock=ScaledClock()) as world:
        box = Sandbox(world, tmp_path)
        yield box
        box.assert_one_open_per_address()  # after every test: never two open orders
