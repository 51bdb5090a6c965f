"""Helpers for the chain-backed contract tests: adapters wired to a `sandbox.world.World`.

Each adapter talks to its vendor emulator (in-process through an ASGI transport, or over
loopback when the world is served); the emulators deliver on the world's emulated chain,
which the tests read back through `engine.observe.chain.ChainReader` on the node's ASGI app.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from engine.core.clock import VirtualClock
from engine.observe.chain import ChainReader
from providers import registry
from providers.base import OrderRequest, OrderState, Provider, Receipt
from providers.http import NO_WAIT
from sandbox import demo
from sandbox.providers import vendor as emulated
from sandbox.tron_node.accounts import to_hex
from sandbox.world import World

VENDORS = demo.VENDORS


class Paced:
    """The world's clock as an adapter sees it, with time passing while the adapter waits
    (its rate limiter's pacing): on a `VirtualClock` nothing else would move it."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def now(self) -> float:
        return float(self.clock.now())

    async def sleep(self, seconds: float) -> None:
        if seconds > 0 and isinstance(self.clock, VirtualClock):
            self.clock.advance(seconds)
        await self.clock.sleep(0)


def credentials(vendor: str, **override: str) -> dict[str, SecretStr]:
    """Adapter keywords for the sandbox credentials (`api_key=`, `api_secret=` override)."""
    keys = {"apiKey": "api_key", "apiSecret": "api_secret"}
    values = {keys[k]: v for k, v in demo.CREDENTIALS[vendor].items()}
    values.update(override)
    return {k: SecretStr(v) for k, v in values.items()}


def set_emulator_credentials(world: World, vendor: str, key: str, secret: str) -> None:
    """Make the emulator accept other credentials (canary values in the secrets tests)."""
    emulator: Any = world.emulators[vendor]
    emulator.api_key = key
    if hasattr(emulator, "api_secret"):
        emulator.api_secret = secret


def adapter(
    world: World,
    vendor: str,
    *,
    served: bool = False,
    timeout: float | None = None,
    base_url: str | None = None,
    **creds: str,
) -> Provider:
    """The vendor's adapter, in-process (default) or over loopback (`served=True`)."""
    kwargs: dict[str, Any] = {
        "clock": Paced(world.clock),
        "retry": NO_WAIT,
        **credentials(vendor, **creds),
        **emulated(vendor).setting_kwargs(),
    }
    if base_url is not None:
        kwargs["base_url"] = base_url
    elif served:
        kwargs["base_url"] = world.url(vendor)
    else:
        kwargs["base_url"] = "http://vendor.test" + demo.BASE_PATHS.get(vendor, "")
        kwargs["transport"] = world.transport(vendor)
    if timeout is not None:
        kwargs["timeout"] = timeout
    return registry.create(vendor, vendor, **kwargs)


def reader(world: World) -> ChainReader:
    return ChainReader(
        "http://node.test", api_key=None, clock=world.clock, transport=world.node_transport()
    )


def order_for(provider: Provider, receiver: str, client_order_id: str, **kw: Any) -> OrderRequest:
    """A one-hour order of 65k energy, raised to what the vendor sells."""
    caps = provider.capabilities
    energy, duration = caps.fit_amount(65_000), caps.fit_duration(3600)
    assert energy is not None and duration is not None
    return OrderRequest(
        client_order_id=client_order_id,
        receiver=receiver,
        energy=energy,
        duration=duration,
        **kw,
    )


async def follow(
    world: World, provider: Provider, receipt: Receipt, *, seconds: int = 20
) -> list[OrderState]:
    """The adapter's state every emulated second for `seconds`, then after the duration."""
    states = []
    for _ in range(seconds):
        states.append((await provider.status(receipt)).state)
        world.advance(1)
    world.advance(receipt.duration)
    states.append((await provider.status(receipt)).state)
    return states


def exhaust_stake(world: World, vendor: str) -> None:
    """Delegate all the vendor's free stake elsewhere: its next delegations fail."""
    address = demo.provider_address(vendor)
    free = world.chain.can_delegate_max_json(to_hex(address), 1).get("max_size", 0)
    world.chain.delegate_energy(address, demo.SINK, int(free))


def refused_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
