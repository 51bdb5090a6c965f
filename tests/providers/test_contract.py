"""One contract, four adapters: each runs against its vendor emulator (sandbox/providers).

The emulators are written from `reference/providers.md`, never from adapter code, so an
adapter passing here agrees with an independent reading of the vendor's wire format.
Everything runs in-process through `httpx.ASGITransport` on one `VirtualClock`.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from engine.clock import VirtualClock
from providers.base import (
    ErrorReason,
    OrderState,
    PermanentError,
    Provider,
    QuoteRequest,
)
from providers.eopen import EopenProvider
from providers.http import NO_WAIT
from providers.itrx import ItrxProvider
from providers.mefree import MefreeProvider
from providers.tronsave import TronsaveProvider
from tests.providers.conftest import RECEIVER, make_order

KEY, SECRET = "contract-key", "contract-secret"


@dataclass(frozen=True)
class Vendor:
    name: str
    module: str
    emulator: str
    emulator_kwargs: dict[str, Any]
    base_url: str
    adapter: Callable[..., Provider]
    adapter_kwargs: Callable[[str], dict[str, Any]]


VENDORS = [
    Vendor(
        "mefree", "sandbox.providers.mefree", "MefreeEmulator",
        {"api_key": KEY, "api_secret": SECRET}, "http://mefree.test", MefreeProvider,
        lambda key: {"api_key": SecretStr(key), "api_secret": SecretStr(SECRET)},
    ),
    Vendor(
        "itrx", "sandbox.providers.itrx", "ItrxEmulator",
        {"api_key": KEY, "api_secret": SECRET}, "http://itrx.test", ItrxProvider,
        lambda key: {"api_key": SecretStr(key), "api_secret": SecretStr(SECRET)},
    ),
    Vendor(
        "eopen", "sandbox.providers.eopen", "EopenEmulator", {"api_key": KEY},
        "http://eopen.test/api", EopenProvider, lambda key: {"api_key": SecretStr(key)},
    ),
    Vendor(
        "tronsave", "sandbox.providers.tronsave", "TronSaveEmulator", {"api_key": KEY},
        "http://tronsave.test", TronsaveProvider, lambda key: {"api_key": SecretStr(key)},
    ),
]  # fmt: skip


class World:
    def __init__(self, vendor: Vendor, emulator: Any, clock: VirtualClock) -> None:
        self.vendor, self.emulator, self.clock = vendor, emulator, clock
        self.transport = httpx.ASGITransport(app=emulator.app)

    def adapter(self, key: str = KEY) -> Provider:
        return self.vendor.adapter(
            self.vendor.name,
            base_url=self.vendor.base_url,
            clock=self.clock,
            transport=self.transport,
            retry=NO_WAIT,
            **self.vendor.adapter_kwargs(key),
        )


def _emulator_class(vendor: Vendor) -> Any:
    try:
        return getattr(importlib.import_module(vendor.module), vendor.emulator)
    except (ImportError, AttributeError) as exc:  # the emulator is written in parallel
        pytest.skip(f"{vendor.module}.{vendor.emulator} not available: {exc}")


@pytest.fixture(params=VENDORS, ids=[v.name for v in VENDORS])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    vendor: Vendor = request.param
    base = importlib.import_module("sandbox.providers.base")
    clock = VirtualClock()
    delegator = base.RecordingDelegator(capacity=1_000_000_000)
    emulator = _emulator_class(vendor)(delegator, clock=clock, **vendor.emulator_kwargs)
    yield World(vendor, emulator, clock)


async def _until_terminal(world: World, provider: Provider, receipt: Any) -> OrderState:
    state = OrderState.PENDING
    for _ in range(30):
        state = (await provider.status(receipt)).state
        if state.terminal:
            break
        world.clock.advance(5.0)
    return state


def _order_for(provider: Provider, **kw: Any) -> Any:
    caps = provider.capabilities
    duration = caps.fit_duration(3600)
    assert duration is not None
    return make_order(energy=caps.fit_amount(65_000), duration=duration, **kw)


class TestContract:
    async def test_quote_is_a_positive_total(self, world: World) -> None:
        provider = world.adapter()
        order = _order_for(provider)
        quote = await provider.quote(
            QuoteRequest(receiver=RECEIVER, energy=order.energy, duration=order.duration)
        )
        assert quote.total_sun > 0 and quote.energy == order.energy

    async def test_place_then_delegated_and_balance_falls(self, world: World) -> None:
        provider = world.adapter()
        before = await provider.balance()
        receipt = await provider.place(_order_for(provider))
        assert receipt.provider_order_id and receipt.client_order_id == "ord-0001"
        assert await _until_terminal(world, provider, receipt) is OrderState.DELEGATED
        status = await provider.status(receipt)
        assert status.delegated_energy == receipt.energy
        assert await provider.balance() < before

    async def test_bad_credentials_are_permanent_auth(self, world: World) -> None:
        with pytest.raises(PermanentError) as info:
            await world.adapter(key="wrong-key").balance()
        assert info.value.reason is ErrorReason.AUTH

    async def test_too_small_amount_is_permanent(self, world: World) -> None:
        provider = world.adapter()
        order = _order_for(provider)
        with pytest.raises(PermanentError):
            await provider.place(order.model_copy(update={"energy": 5_000}))


class TestVendorGuarantees:
    async def test_mefree_client_order_id_dedupes(self) -> None:
        world = await _make(VENDORS[0])
        provider = world.adapter()
        before = await provider.balance()
        first = await provider.place(_order_for(provider))
        second = await provider.place(_order_for(provider))
        assert first.provider_order_id == second.provider_order_id
        charged = before - await provider.balance()
        assert charged == first.cost_sun

    async def test_tronsave_duplicate_guard(self) -> None:
        world = await _make(VENDORS[3], capacity=0)
        provider = world.adapter()
        await provider.place(_order_for(provider, prevent_duplicates=True))
        with pytest.raises(PermanentError) as info:
            await provider.place(
                _order_for(provider, prevent_duplicates=True, client_order_id="ord-0002")
            )
        assert info.value.reason is ErrorReason.DUPLICATE

    async def test_tronsave_price_cap(self) -> None:
        world = await _make(VENDORS[3])
        provider = world.adapter()
        order = _order_for(provider)
        with pytest.raises(PermanentError) as info:
            await provider.place(order.model_copy(update={"max_total_sun": order.energy}))
        assert info.value.reason is ErrorReason.PRICE


async def _make(vendor: Vendor, capacity: int = 1_000_000_000) -> World:
    base = importlib.import_module("sandbox.providers.base")
    clock = VirtualClock()
    delegator = base.RecordingDelegator(capacity=capacity)
    return World(
        vendor, _emulator_class(vendor)(delegator, clock=clock, **vendor.emulator_kwargs), clock
    )
