"""One contract, four adapters: each runs against its vendor emulator (sandbox/providers).

The emulators are written from the vendors' documents, never from adapter code, so an
adapter passing here agrees with an independent reading of the vendor's wire format.
`TestContract` runs once per reading of each vendor's open points
(`sandbox/providers/readings.py`): the defaults and every other value alone.
Everything runs in-process through `httpx.ASGITransport` on one `VirtualClock`.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from engine.core.clock import VirtualClock
from providers import registry
from providers.base import (
    AmbiguousError,
    ErrorReason,
    OrderState,
    PermanentError,
    Provider,
    ProviderError,
    QuoteRequest,
    TemporaryError,
)
from providers.http import NO_WAIT
from providers.tronsave import TronsaveProvider
from sandbox.providers import VENDORS as EMULATED
from sandbox.providers import EmulatedVendor
from sandbox.providers.readings import Readings, all_single
from sandbox.world import World as SandboxWorld
from tests.providers import chain_harness as chain
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


def _vendor(entry: EmulatedVendor) -> Vendor:
    """The contract's view of one emulated vendor: its registered adapter, test credentials."""
    values = {kwarg: KEY if kwarg == "api_key" else SECRET for kwarg in entry.credential_kwargs()}

    def adapter_kwargs(key: str) -> dict[str, Any]:
        secrets = {k: SecretStr(key if k == "api_key" else v) for k, v in values.items()}
        return secrets | entry.setting_kwargs()

    return Vendor(
        entry.name,
        entry.emulator.__module__,
        entry.emulator.__name__,
        values,
        f"http://{entry.name}.test{entry.base_path}",
        registry.get(entry.name),
        adapter_kwargs,
    )


VENDORS = [_vendor(entry) for entry in EMULATED]


class World:
    def __init__(self, vendor: Vendor, emulator: Any, clock: VirtualClock) -> None:
        self.vendor, self.emulator, self.clock = vendor, emulator, clock
        self.transport = httpx.ASGITransport(app=emulator.app)

    def adapter(self, key: str = KEY) -> Provider:
        return self.vendor.adapter(
            self.vendor.name,
            base_url=self.vendor.base_url,
            clock=chain.Paced(self.clock),
            transport=self.transport,
            retry=NO_WAIT,
            **self.vendor.adapter_kwargs(key),
        )


def _emulator_class(vendor: Vendor) -> Any:
    # Every emulator exists: one that does not import fails the suite, never skips it.
    return getattr(importlib.import_module(vendor.module), vendor.emulator)


#: (vendor, reading): each vendor under the defaults and under each of its own readings
READ_AS = [
    (vendor, name, readings)
    for vendor in VENDORS
    for name, readings in all_single()
    if name == "defaults" or name.startswith(vendor.name + ".")
]


@pytest.fixture(params=READ_AS, ids=[f"{v.name}-{name}" for v, name, _ in READ_AS])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    vendor: Vendor
    readings: Readings
    vendor, _, readings = request.param
    base = importlib.import_module("sandbox.providers.base")
    clock = VirtualClock()
    delegator = base.RecordingDelegator(capacity=1_000_000_000)
    emulator = _emulator_class(vendor)(
        delegator, clock=clock, readings=readings, **vendor.emulator_kwargs
    )
    yield World(vendor, emulator, clock)


async def _until_terminal(world: World, provider: Provider, receipt: Any) -> OrderState:
    state = OrderState.PENDING
    for _ in range(30):
        state = (await provider.status(receipt)).state
        if state.terminal:
            break
        world.clock.advance(5.0)
    return state


#: readings under which a vendor reports an order in progress while it is delegated
IN_PROGRESS_WHILE_DELEGATED = [{"itrx.status30": "delegated"}, {"eopen.completed": "ended"}]


def _delegated_in_fact(world: World, receipt: Any) -> bool:
    """Whether the emulator delegated the order (what the chain would show)."""
    delegator = world.emulator.delegator
    return bool(delegator.energy_of(receipt.receiver) >= receipt.energy)


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
        state = await _until_terminal(world, provider, receipt)
        status = await provider.status(receipt)
        if world.emulator.readings.chosen() in IN_PROGRESS_WHILE_DELEGATED:
            # the vendor says "in progress" until the rental ends: never read as
            # delivered, the chain decides (tracking); the order is not failed
            assert state is OrderState.DELEGATING and _delegated_in_fact(world, receipt)
        else:
            assert state is OrderState.DELEGATED
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

    async def test_mefree_repeat_answered_with_an_error_is_ambiguous(self) -> None:
        world = await _make(VENDORS[0], readings=Readings({"mefree.duplicate": "error"}))
        provider = world.adapter()
        await provider.place(_order_for(provider))
        for retry in (False, True):  # a repeat: an order exists, whatever the flag says
            with pytest.raises(AmbiguousError) as info:
                await provider.place(_order_for(provider, retry=retry))
            assert info.value.reason is ErrorReason.DUPLICATE
        world.emulator.faults.fail_next(1, 500, after_accept=True, on="create")
        with pytest.raises(AmbiguousError):  # accepted, 500, retried: "already exists"
            await provider.place(_order_for(provider, client_order_id="ord-0002"))
        assert len(world.emulator.orders) == 2 and world.emulator.count("create") == 5

    async def test_tronsave_cap_never_equals_a_numeric_unit_price(self) -> None:
        world = await _make(VENDORS[3], readings=Readings({"tronsave.max_price": "below"}))
        provider = TronsaveProvider(
            "tronsave",
            base_url=world.vendor.base_url,
            api_key=SecretStr(KEY),
            clock=world.clock,
            transport=world.transport,
            retry=NO_WAIT,
            unit_price=60,
        )
        order = _order_for(provider)
        with pytest.raises(PermanentError) as info:  # cap 60 sun/unit: refused here
            await provider.place(order.model_copy(update={"max_total_sun": 60 * order.energy}))
        assert info.value.reason is ErrorReason.PRICE and world.emulator.count("create") == 0
        receipt = await provider.place(
            order.model_copy(update={"max_total_sun": 61 * order.energy})
        )
        assert receipt.provider_order_id and world.emulator.count("create") == 1

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

    async def test_tronzap_repeated_external_id_creates_a_second_order(self) -> None:
        world = await _make(_named("tronzap"))  # the default reading: nothing de-duplicates
        provider = world.adapter()
        before = await provider.balance()
        first = await provider.place(_order_for(provider))
        second = await provider.place(_order_for(provider))
        assert first.provider_order_id != second.provider_order_id
        assert len(world.emulator.orders) == 2
        assert before - await provider.balance() == 2 * (first.cost_sun or 0)

    @pytest.mark.parametrize("reading", ["second", "existing", "refused"])
    async def test_tronzap_unclear_create_is_resolved_by_lookup(self, reading: str) -> None:
        world = await _make(_named("tronzap"), readings=Readings({"tronzap.duplicate": reading}))
        provider = world.adapter()
        assert await provider.lookup("ord-0001") is None  # nothing yet
        world.emulator.faults.fail_next(1, 500, after_accept=True, on="create")
        with pytest.raises(AmbiguousError):
            await provider.place(_order_for(provider))
        assert world.emulator.count("create") == 1  # never retried blindly
        found = await provider.lookup("ord-0001")
        [made] = world.emulator.orders
        assert found is not None and found.provider_order_id == made
        world.clock.advance(10)
        assert (await provider.status(found)).state is OrderState.DELEGATED

    async def test_tronzap_sells_what_its_services_list_says(self) -> None:
        readings = Readings({"tronzap.minimum": "60000", "tronzap.durations": "1,24"})
        world = await _make(_named("tronzap"), readings=readings)
        provider = world.adapter()
        request = QuoteRequest(receiver=RECEIVER, energy=61_000, duration=86_400)
        assert (await provider.quote(request)).total_sun > 0
        caps = provider.capabilities
        assert caps.min_amount == 60_000 and caps.durations == (3600, 86_400)
        with pytest.raises(PermanentError):  # under the listed minimum: refused unsent
            await provider.place(_order_for(provider).model_copy(update={"energy": 59_000}))
        assert world.emulator.count("create") == 0

    async def test_netts_pace_keeps_within_two_requests_a_second(self) -> None:
        world = await _make(_named("netts"))
        provider = world.adapter()
        start = world.clock.now()
        for _ in range(7):
            await provider.balance()  # never answered 429
        assert world.emulator.count("balance") == 7
        assert world.clock.now() - start >= 2.5  # 2 at once, then one every half second
        world.clock.advance(1.0)  # the bucket refills
        async with httpx.AsyncClient(transport=world.transport, base_url="http://n") as http:
            headers = {"X-API-KEY": KEY, "X-Real-IP": "127.0.0.1"}
            answers = [(await http.get("/apiv2/userinfo", headers=headers)).status_code
                       for _ in range(3)]  # fmt: skip
        assert answers == [200, 200, 429]  # the emulator enforces it

    async def test_netts_ip_must_be_whitelisted(self) -> None:
        world = await _make(_named("netts"))
        kwargs = world.vendor.adapter_kwargs(KEY) | {"real_ip": "203.0.113.9"}
        provider = world.vendor.adapter(
            "netts", base_url=world.vendor.base_url, clock=chain.Paced(world.clock),
            transport=world.transport, retry=NO_WAIT, **kwargs,
        )  # fmt: skip
        with pytest.raises(PermanentError) as info:
            await provider.balance()
        assert info.value.reason is ErrorReason.AUTH

    async def test_netts_each_duration_has_its_limits(self) -> None:
        world = await _make(_named("netts"))
        provider = world.adapter()
        five = make_order(energy=700_000, duration=300)
        with pytest.raises(PermanentError):  # order5m takes at most 650,000: never sent
            await provider.place(five)
        assert world.emulator.count("create") == 0
        hour = await provider.place(make_order(energy=700_000, duration=3600))
        short = await provider.place(make_order(client_order_id="o5", energy=650_000, duration=300))
        assert [o.duration for o in world.emulator.orders.values()] == [3600, 300]
        assert hour.raw["hash"] and short.raw["hash"]  # delegated before the answer
        world.emulator.pool_empty = True  # order5m: 503, which a proxy could send too
        with pytest.raises(AmbiguousError):
            await provider.place(make_order(client_order_id="o6", duration=300))
        assert world.emulator.count("create") == 3

    async def test_netts_delegation_after_the_answer(self) -> None:
        world = await _make(_named("netts"), readings=Readings({"netts.sync": "later"}))
        provider = world.adapter()
        receipt = await provider.place(_order_for(provider))
        assert receipt.raw["hash"] == ""
        assert (await provider.status(receipt)).state is OrderState.PENDING
        world.clock.advance(5)
        assert (await provider.status(receipt)).state is OrderState.DELEGATED


def _named(name: str) -> Vendor:
    return next(v for v in VENDORS if v.name == name)


class TestCatFeeGuarantees:
    """CatFee's `client_order_id` returns the first order; its refusal statuses."""

    async def test_client_order_id_dedupes(self) -> None:
        for replay in ("snapshot", "current"):
            world = await _make(_named("catfee"), readings=Readings({"catfee.replay": replay}))
            provider = world.adapter()
            before = await provider.balance()
            first = await provider.place(_order_for(provider))
            world.clock.advance(10.0)
            second = await provider.place(_order_for(provider))
            assert first.provider_order_id == second.provider_order_id
            assert before - await provider.balance() == first.cost_sun
            assert len(world.emulator.orders) == 1 and world.emulator.count("create") == 2

    async def test_a_5xx_after_accept_is_retried_on_the_key(self) -> None:
        world = await _make(_named("catfee"))
        provider = world.adapter()
        world.emulator.faults.fail_next(1, 500, after_accept=True, on="create")
        receipt = await provider.place(_order_for(provider))
        assert world.emulator.count("create") == 2 and len(world.emulator.orders) == 1
        assert receipt.provider_order_id in world.emulator.orders

    async def test_balance_refusal_either_reading(self) -> None:
        for failure in ("status", "code"):
            world = await _make(_named("catfee"), readings=Readings({"catfee.failure": failure}))
            world.emulator.faults.set_balance(0)
            provider = world.adapter()
            with pytest.raises(PermanentError) as info:
                await provider.place(_order_for(provider))
            assert info.value.reason is ErrorReason.BALANCE, failure
            with pytest.raises(AmbiguousError):  # the same answer to a retry proves nothing
                await provider.place(_order_for(provider, retry=True))
            assert world.emulator.orders == {}


class TestFeeeGuarantees:
    """feee.io: the five-minute V3 order, the V2 encodings, a create never retried."""

    async def test_every_duration_is_bought_with_its_encoding(self) -> None:
        for v3 in ("create", "both"):
            world = await _make(_named("feee"), readings=Readings({"feee.v3_path": v3}))
            provider = world.adapter()
            durations = (300, 600, 3600, 3 * 3600, 86_400, 2 * 86_400)
            for n, seconds in enumerate(durations):
                order = _order_for(provider, client_order_id=f"ord-{n}")
                receipt = await provider.place(order.model_copy(update={"duration": seconds}))
                made = world.emulator.orders[receipt.provider_order_id]
                assert made.seconds == seconds and made.version == (3 if seconds == 300 else 2)
                world.clock.advance(10.0)
                assert (await provider.status(receipt)).state is OrderState.DELEGATED

    async def test_a_v3_path_the_vendor_lacks_is_a_clean_refusal(self) -> None:
        world = await _make(_named("feee"), readings=Readings({"feee.v3_path": "submit"}))
        provider = world.adapter()
        order = _order_for(provider).model_copy(update={"duration": 300})
        with pytest.raises(PermanentError):  # a 404: nothing was bought, the next may buy
            await provider.place(order)
        assert world.emulator.orders == {}

    async def test_a_create_is_never_retried(self) -> None:
        world = await _make(_named("feee"))
        provider = world.adapter()
        world.emulator.faults.fail_next(1, 500, after_accept=True, on="create")
        with pytest.raises(AmbiguousError):
            await provider.place(_order_for(provider))
        assert world.emulator.count("create") == 1 and len(world.emulator.orders) == 1


async def _make(
    vendor: Vendor, capacity: int = 1_000_000_000, readings: Readings | None = None
) -> World:
    base = importlib.import_module("sandbox.providers.base")
    clock = VirtualClock()
    delegator = base.RecordingDelegator(capacity=capacity)
    emulator = _emulator_class(vendor)(
        delegator, clock=clock, readings=readings, **vendor.emulator_kwargs
    )
    return World(vendor, emulator, clock)


# --------------------------------------------------------------------------- on the chain
#
# The same four adapters against the sandbox world: each emulator delivers on the emulated
# TRON node through its own staked provider account, and the chain is read back through
# engine.observe.chain.ChainReader. Helpers: tests/providers/chain_harness.py.

#: every state each adapter maps that its emulator can produce. CatFee: a refused delegation
#: ends DELEGATION_CONFIRMED_FAIL (FAILED). feee.io: a refused delegation is refunded (7, 13:
#: in progress, then 14: REFUNDED); half delivered and reclaimed is PARTIAL.
#: Not reachable: Mefree maps
#: no terminal failure (DELEGATE_FAILED is not a documented value: it stays PENDING);
#: itrx's emulator refunds whatever it does not deliver (41/43 -> REFUNDED, never PARTIAL
#: or FAILED); eopen's never answers FAILED and reports COMPLETED for partial deliveries;
#: TronSave ends an order through the `/v2/orders` list's `Completed` flag: PARTIAL when part
#: was matched, FAILED when nothing was. Netts documents no status: `tx_hashes` or not.
REACHABLE = {
    "mefree": {OrderState.PENDING, OrderState.DELEGATING, OrderState.DELEGATED},
    "itrx": {OrderState.PENDING, OrderState.DELEGATING, OrderState.DELEGATED, OrderState.REFUNDED},
    "eopen": {OrderState.PENDING, OrderState.DELEGATING, OrderState.DELEGATED, OrderState.REFUNDED},
    "tronsave": {
        OrderState.PENDING,
        OrderState.DELEGATING,
        OrderState.DELEGATED,
        OrderState.PARTIAL,
        OrderState.FAILED,
    },
    "catfee": {OrderState.PENDING, OrderState.DELEGATING, OrderState.DELEGATED, OrderState.FAILED},
    "feee": {
        OrderState.PENDING,
        OrderState.DELEGATING,
        OrderState.DELEGATED,
        OrderState.PARTIAL,
        OrderState.REFUNDED,
    },
    "tronzap": {OrderState.PENDING, OrderState.DELEGATING, OrderState.DELEGATED, OrderState.FAILED},
    "netts": {OrderState.PENDING, OrderState.DELEGATED},
}
#: vendors whose create answers with the delegation made (Netts' synchronous `hash`)
DELEGATES_BEFORE_ANSWERING = {"netts"}
CANARY_KEY, CANARY_SECRET = "canary-key-7d41c0de", "canary-secret-9b2e5f11"


@pytest.mark.parametrize("vendor", chain.VENDORS)
class TestContractOnChain:
    async def test_delivery_lands_on_chain_and_ends(self, vendor: str) -> None:
        world = SandboxWorld(watched=1)
        receiver = world.watched[0]
        provider = chain.adapter(world, vendor)
        async with chain.reader(world) as node:
            before = (await node.snapshot(receiver)).available
            receipt = await provider.place(chain.order_for(provider, receiver, "ord-chain"))
            world.advance(10)  # every emulator delegates (and Mefree confirms) within 10 s
            status = await provider.status(receipt)
            made = set(world.delegators[vendor].made)
            delivered = (await node.snapshot(receiver)).available
            world.advance(receipt.duration)
            after = (await node.snapshot(receiver)).available
        await provider.aclose()
        assert status.state is OrderState.DELEGATED
        assert status.delegated_energy == receipt.energy
        assert delivered - before >= receipt.energy  # the chain shows what was ordered
        assert status.txids and set(status.txids) <= made  # txids of the chain's delegations
        assert after == before  # the rental ended: the emulator took the energy back

    async def test_every_mapped_status_is_reached(self, vendor: str) -> None:
        reached: set[OrderState] = set()
        scenarios = {
            "normal": lambda w: None,
            "partial": lambda w: w.emulators[vendor].faults.partial_delivery(0.5),
            "none": lambda w: w.emulators[vendor].faults.no_delivery(),
            "out-of-stake": lambda w: chain.exhaust_stake(w, vendor),
        }
        for name, fault in scenarios.items():
            world = SandboxWorld(watched=1)
            provider = chain.adapter(world, vendor)
            before = await provider.balance()
            # a vendor that delegates before answering runs out of stake before the order
            late = name == "out-of-stake" and vendor not in DELEGATES_BEFORE_ANSWERING
            if not late:
                fault(world)
            receipt = await provider.place(
                chain.order_for(provider, world.watched[0], f"ord-{name}")
            )
            if late:
                fault(world)
            states = await chain.follow(world, provider, receipt)
            reached |= set(states)
            if name == "out-of-stake" and vendor != "tronsave":  # the market just waits
                assert OrderState.DELEGATED not in states
                assert await provider.balance() == before  # refunded in full
            await provider.aclose()
        assert reached == REACHABLE[vendor]

    async def test_error_classes(self, vendor: str) -> None:
        world = SandboxWorld(watched=1)
        provider = chain.adapter(world, vendor)
        emulator = world.emulators[vendor]
        receiver = world.watched[0]
        with pytest.raises(PermanentError) as auth:
            await chain.adapter(world, vendor, api_key="wrong-key").balance()
        assert auth.value.reason is ErrorReason.AUTH
        emulator.faults.rate_limit(0)
        with pytest.raises(TemporaryError) as limited:
            await provider.balance()
        assert limited.value.reason is ErrorReason.RATE_LIMITED
        emulator.faults.reset()
        emulator.faults.fail_next(5, 503, after_accept=False, on="balance")
        calls = emulator.count("balance")
        with pytest.raises(TemporaryError):
            await provider.balance()
        assert emulator.count("balance") - calls == NO_WAIT.attempts  # reads are retried
        emulator.faults.reset()
        emulator.faults.set_balance(0)
        with pytest.raises(PermanentError) as broke:
            await provider.place(chain.order_for(provider, receiver, "ord-broke"))
        assert broke.value.reason in (ErrorReason.BALANCE, ErrorReason.INVALID_REQUEST)
        assert vendor == "mefree" or broke.value.reason is ErrorReason.BALANCE
        refused = chain.adapter(world, vendor, base_url=f"http://127.0.0.1:{chain.refused_port()}")
        with pytest.raises(TemporaryError) as down:  # nothing was sent: safe to retry later
            await refused.place(chain.order_for(refused, receiver, "ord-down"))
        assert down.value.reason is ErrorReason.UNAVAILABLE
        await provider.aclose()

    async def test_create_is_never_retried_blindly(self, vendor: str) -> None:
        world = SandboxWorld(watched=1)
        provider = chain.adapter(world, vendor)
        emulator: Any = world.emulators[vendor]
        receiver = world.watched[0]
        emulator.faults.fail_next(1, 500, after_accept=True, on="create")
        order = chain.order_for(provider, receiver, "ord-ambiguous")
        if provider.capabilities.idempotency_key:  # Mefree: retried on the same client id
            receipt = await provider.place(order)
            assert emulator.count("create") == 2 and len(emulator.orders) == 1
            world.advance(10)
            assert (await provider.status(receipt)).state is OrderState.DELEGATED
        else:
            with pytest.raises(AmbiguousError):
                await provider.place(order)
            assert emulator.count("create") == 1 and len(emulator.orders) == 1  # it exists
        emulator.faults.fail_next(1, 502, after_accept=False, on="create")
        if not provider.capabilities.idempotency_key:
            with pytest.raises(AmbiguousError):  # a 5xx on create: cannot know, never retried
                await provider.place(order.model_copy(update={"client_order_id": "ord-5xx"}))
            assert emulator.count("create") == 2 and len(emulator.orders) == 1
        await provider.aclose()

    async def test_secrets_stay_out_of_repr_errors_and_logs(
        self, vendor: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        world = SandboxWorld(watched=1)
        chain.set_emulator_credentials(world, vendor, CANARY_KEY, CANARY_SECRET)
        creds: dict[str, Any] = {"api_key": CANARY_KEY, "api_secret": CANARY_SECRET}
        if "api_secret" not in chain.credentials(vendor):  # a key-only vendor
            del creds["api_secret"]
        texts: list[str] = []
        with caplog.at_level(logging.DEBUG):
            provider = chain.adapter(world, vendor, **creds)
            texts.append(repr(provider))
            order = chain.order_for(provider, world.watched[0], "ord-canary")
            quote = await provider.quote(
                QuoteRequest(receiver=order.receiver, energy=order.energy, duration=order.duration)
            )
            receipt = await provider.place(order)
            world.advance(10)
            status = await provider.status(receipt)
            texts += [repr(quote), repr(receipt), repr(status), str(dict(receipt.raw))]
            texts.append(str(dict(status.raw)))
            failures: list[ProviderError] = []
            world.emulators[vendor].faults.fail_next(1, 500, on="create")
            for attempt in (
                lambda: provider.place(order.model_copy(update={"client_order_id": "ord-2"})),
                lambda: chain.adapter(world, vendor, api_key=CANARY_SECRET).balance(),
            ):
                try:
                    await attempt()
                except ProviderError as exc:
                    failures.append(exc)
            texts += [f"{exc!s} {exc!r} {exc.__cause__!r}" for exc in failures]
            await provider.aclose()
        # a vendor with an idempotency key (Mefree, CatFee) retries its create
        assert len(failures) == (1 if provider.capabilities.idempotency_key else 2)
        assert "HTTP Request" in caplog.text  # the client's logs were captured
        texts.append(caplog.text)
        for text in texts:
            assert CANARY_KEY not in text and CANARY_SECRET not in text


@pytest.fixture(scope="module")
def served_world() -> Iterator[SandboxWorld]:
    # Served on loopback so that a real client timeout can fire while the answer is held.
    with SandboxWorld(clock=VirtualClock(time.time()), watched=1) as world:
        yield world


@pytest.mark.parametrize("vendor", chain.VENDORS)
async def test_hang_on_create_is_ambiguous_not_retried(
    served_world: SandboxWorld, vendor: str
) -> None:
    world = served_world
    emulator: Any = world.emulators[vendor]
    provider = chain.adapter(world, vendor, served=True, timeout=0.3)
    orders = len(emulator.orders)
    emulator.faults.hang_next(1, on="create", after_accept=True)
    order = chain.order_for(provider, world.watched[0], f"ord-hang-{vendor}")
    if provider.capabilities.idempotency_key:
        receipt = await provider.place(order)  # the retry finds the order the hang created
        assert receipt.client_order_id == order.client_order_id
    else:
        with pytest.raises(AmbiguousError):
            await provider.place(order)
    emulator.faults.release_hangs()
    assert len(emulator.orders) == orders + 1  # one order, whatever the client saw
    await provider.aclose()


async def test_tronsave_partial_order_ends() -> None:
    world = SandboxWorld(watched=1)
    provider = chain.adapter(world, "tronsave")
    world.emulators["tronsave"].faults.partial_delivery(0.5)
    receipt = await provider.place(chain.order_for(provider, world.watched[0], "ord-half"))
    states = await chain.follow(world, provider, receipt)
    await provider.aclose()
    assert OrderState.DELEGATING in states  # half delivered, as the chain shows
    assert states[-1] is OrderState.PARTIAL  # after the duration: ended, part delivered
