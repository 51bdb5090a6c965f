"""An in-process market for the applying, tracking and reconciling tests.

The emulated chain (`ChainState`), the vendor emulators of `sandbox.providers.VENDORS`
delivering on it through `ChainDelegator`, the real adapters talking to them through
`httpx.ASGITransport`, a `ChainReader` on the node app, and a real SQLite store in a
temporary directory, all on one `VirtualClock`. Provider instance names are `p-<vendor>`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from tronpy.keys import PrivateKey

from engine.core.clock import VirtualClock
from engine.observe.chain import ChainReader
from engine.store import OPEN_PHASES, OrderFilter, Store, open_store
from policies.models import EnergyPolicy
from providers import registry
from providers.base import Provider
from providers.http import NO_WAIT
from sandbox.providers import VENDORS as EMULATED
from sandbox.providers import vendor as emulated
from sandbox.providers.chain_delegator import ChainDelegator
from sandbox.providers.emulating import EmulatorBase
from sandbox.tron_node import ChainState, create_app

TRX = 1_000_000
VENDORS = tuple(v.name for v in EMULATED)


def address(role: str, n: int = 0) -> str:
    seed = hashlib.sha256(f"market/{role}/{n}".encode()).digest()
    return str(PrivateKey(seed).public_key.to_base58check_address())


SINK = address("sink")


class Market:
    def __init__(self, store: Store, clock: VirtualClock) -> None:
        self.store, self.clock = store, clock
        self.chain = ChainState(clock)
        self.emulators: dict[str, EmulatorBase] = {}
        for vendor in VENDORS:
            owner = address("provider-" + vendor)
            self.chain.create_account(owner, 5_010_000 * TRX)
            self.chain.stake_energy(owner, 5_000_000 * TRX)
            delegator = ChainDelegator(self.chain, owner)
            kwargs: dict[str, Any] = {"clock": clock, "balance_sun": 100_000 * TRX}
            if vendor == "tronsave":
                kwargs["rate_limit_per_s"] = None
            if vendor == "netts":  # time stands still between the tests' steps
                kwargs["key_rate"] = None
            self.emulators[vendor] = emulated(vendor).emulator(delegator, **kwargs)
        self.chain.create_account(SINK, 0)
        self.chain.mark_usdt_holder(SINK)
        self.node_app = create_app(self.chain)
        self.providers: dict[str, Provider] = {
            f"p-{vendor}": self._adapter(vendor) for vendor in VENDORS
        }
        self.reader = ChainReader(
            "http://node.test",
            api_key=None,
            clock=clock,
            transport=httpx.ASGITransport(app=self.node_app),
        )

    @classmethod
    async def open(cls, tmp_path: Path) -> Market:
        clock = VirtualClock()
        store = await open_store(str(tmp_path / "engine.db"), clock)
        return cls(store, clock)

    def _adapter(self, vendor: str) -> Provider:
        entry = emulated(vendor)
        kwargs: dict[str, Any] = {
            "clock": self.clock,
            "transport": httpx.ASGITransport(app=self.emulators[vendor].app),
            "retry": NO_WAIT,
            "base_url": f"http://{vendor}.test{entry.base_path}",
            **{k: SecretStr(v) for k, v in entry.credential_kwargs().items()},
            **entry.setting_kwargs(),
        }
        if vendor in ("tronsave", "netts"):
            kwargs["requests_per_second"] = 1e6
        return registry.create(vendor, f"p-{vendor}", **kwargs)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.reader.aclose()
        await self.store.close()

    # ------------------------------------------------------------------ the world

    def watched(self, n: int, *, trx: int = 1_000) -> list[str]:
        out = [address("watched", i) for i in range(n)]
        for item in out:
            if not self.chain.has_account(item):
                self.chain.create_account(item, trx * TRX)
        return out

    def energy(self, item: str) -> int:
        return self.chain.available_energy(item)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.chain.produce_blocks()
        for emu in self.emulators.values():
            emu.tick()

    def creates(self, vendor: str) -> int:
        """Orders the vendor emulator holds (accepted creates)."""
        orders: dict[str, Any] = getattr(self.emulators[vendor], "orders")  # noqa: B009
        return len(orders)

    async def assert_one_open_per_address(self) -> None:
        """No address has two open orders (the policies here allow one)."""
        rows = await self.store.orders(OrderFilter(phases=OPEN_PHASES, limit=10_000))
        addresses = [row.address for row in rows]
        assert len(addresses) == len(set(addresses)), addresses


def policy(
    addresses: Sequence[str] | Iterable[str],
    providers: Sequence[str],
    *,
    name: str = "pol",
    **spec: Any,
) -> EnergyPolicy:
    base: dict[str, Any] = {
        "addresses": list(addresses),
        "threshold": "65k",
        "topUp": {"amount": "70k", "duration": "1h"},
        "providers": list(providers),
        "maxPrice": "120 sun/energy",
        "budget": {"perDay": "10000 TRX"},
    }
    base.update(spec)
    return EnergyPolicy.model_validate(
        {"apiVersion": "energyctl/v1", "kind": "EnergyPolicy", "metadata": {"name": name}}
        | {"spec": base}
    )
