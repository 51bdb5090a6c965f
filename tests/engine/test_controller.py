"""The sidecar's controller in process, on a VirtualClock, against the in-process World.

The World's node and vendor emulators are reached through `httpx.ASGITransport`; the
store is an SQLite file; time moves only when a test advances it, so every pass or
tracking round seen here was started by a wake-up, not by an interval, unless the test
advanced the clock. Each address starts with 450k energy delegated by a third party.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from engine.core.clock import VirtualClock
from engine.session import Session
from engine.sidecar.controller import Controller, ControllerSettings, NotOwner
from engine.sidecar.reloading import PolicySource
from engine.store import OrderFilter, OrderPhase, OrderRecord, open_store
from sandbox import demo
from sandbox.world import World

PORTS = {"node": 1, **{vendor: 2 + n for n, vendor in enumerate(demo.VENDORS)}}
STAKER = "TYukBQZ2XXCcRCReAUguyXncCWNY9CEiDQ"
START = 450_000
POLICY = """apiVersion: energyctl/v1
kind: EnergyPolicy
metadata: {{name: pay}}
spec:
  addresses: [{addresses}]
  threshold: 65k
  topUp: {{amount: 131k, duration: 1h}}
  providers: [itrx, mefree]
  maxPrice: 120 sun/energy
  budget: {{perDay: 5000 TRX}}
"""


class Rig:
    def __init__(self, tmp_path: Path, *, mode: str = "poll", **settings: Any) -> None:
        self.clock = VirtualClock()
        self.world = World(clock=self.clock, ports=PORTS, watched=4)
        self.directory = tmp_path
        self.world.write_policies(tmp_path)
        (tmp_path / "policies.yaml").write_text(
            POLICY.format(addresses=", ".join(self.world.watched))
        )
        engine = tmp_path / "engine.yaml"
        text = engine.read_text().replace("mode: poll", f"mode: {mode}")
        engine.write_text(text.replace("interval: 15s", "interval: 60s"))
        chain = self.world.chain
        chain.create_account(STAKER, 10**14)
        chain.stake_energy(STAKER, 9 * 10**13)
        for address in self.world.watched:
            chain.delegate_energy(STAKER, address, chain.sun_for_energy(START), None)
        self.addresses = list(self.world.watched)
        self.reads: list[list[str]] = []  # addresses of each chain read the passes made
        self.controller = Controller(
            PolicySource([tmp_path], env=self.world.env()),
            clock=self.clock,
            settings=ControllerSettings(**settings),
            session_factory=self._session,
        )

    def _session(self, policy_set: Any) -> Session:
        transports = {vendor: self.world.transport(vendor) for vendor in demo.VENDORS}
        return Session(
            policy_set,
            clock=self.clock,
            node_transport=self.world.node_transport(),
            provider_transports=transports,
        )

    def record_reads(self) -> None:
        observer = self.controller.observer
        assert observer is not None
        inner = observer.reader.snapshots

        async def snapshots(addresses: Any, **kw: Any) -> Any:
            wanted = list(addresses)
            self.reads.append(wanted)
            return await inner(wanted, **kw)

        observer.reader = type("R", (), {"snapshots": staticmethod(snapshots)})()  # type: ignore[assignment]

    async def orders(self, phases: frozenset[OrderPhase] | None = None) -> list[OrderRecord]:
        async with await open_store(str(self.directory / "energyctl.db"), self.clock) as store:
            return await store.orders(OrderFilter(phases=phases, limit=1000))

    def creates(self) -> int:
        return sum(len(getattr(e, "orders", {})) for e in self.world.emulators.values())


async def until(check: Callable[[], bool], what: str, turns: int = 2000) -> None:
    for _ in range(turns):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never {what}")


@contextlib.asynccontextmanager
async def running(rig: Rig) -> AsyncIterator[Controller]:
    c = rig.controller
    await c.start()
    task = asyncio.create_task(c.run())
    try:
        await until(lambda: c.passes >= 1, "the first pass")
        yield c
    finally:
        await c.stop()
        await asyncio.wait_for(task, 30)


async def test_ensure_wakes_a_pass_and_a_burst_buys_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    async with running(rig) as c:
        address = rig.addresses[0]
        answers = await asyncio.gather(*(c.ensure(address, START + 100_000) for _ in range(6)))
        orders = await rig.orders()
        assert [o.address for o in orders] == [address]  # one order for one need
        assert {a["order"]["client_order_id"] for a in answers if a["order"]} == {
            orders[0].client_order_id
        }
        assert rig.creates() == 1  # the vendor saw one create
        again = await c.ensure(address, START + 100_000)
        assert again["order"] is None and again["condition"] == "TopUpPending"
        assert rig.creates() == 1


async def test_passes_run_one_at_a_time(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    async with running(rig) as c:
        assert c.reconciler is not None
        inner = c.reconciler.run_pass
        now, most = 0, 0

        async def counted(*args: Any, **kw: Any) -> Any:
            nonlocal now, most
            now += 1
            most = max(most, now)
            try:
                await asyncio.sleep(0.01)
                return await inner(*args, **kw)
            finally:
                now -= 1

        c.reconciler.run_pass = counted  # type: ignore[method-assign]
        before = c.passes
        await asyncio.gather(
            *(c.run_pass() for _ in range(4)), c.ensure(rig.addresses[1], START + 10)
        )
        assert most == 1 and c.passes >= before + 4  # the ensure joins one of them


async def test_a_policy_change_and_a_callback_wake_the_loops(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    async with running(rig) as c:
        await c.ensure(rig.addresses[0], START + 100_000)  # an order to track
        rounds, passes = c.tracking_rounds, c.passes
        c.wake("callback:itrx")
        await until(lambda: c.tracking_rounds > rounds, "a tracking round on the callback")
        await until(lambda: c.passes > passes, "a pass on the callback")
        text = (tmp_path / "policies.yaml").read_text().replace("threshold: 65k", "threshold: 70k")
        loaded = c.source.load_texts({"policies.yaml": text} | _others(tmp_path))
        assert loaded.policy_set is not None, loaded.errors
        passes = c.passes
        await c.replace(loaded, "api")
        await until(lambda: c.passes > passes, "a pass on the policy change")
        assert {e["threshold"] for e in c.status()["addresses"]} == {70_000}
        assert c.status()["policySource"] == "api"


def _others(directory: Path) -> dict[str, str]:
    return {n: (directory / n).read_text() for n in ("providers.yaml", "engine.yaml")}


class _Gate:
    """Wraps a provider pool: `place` waits until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    def wrap(self, pool: Any) -> Any:
        gate = self

        class Held:
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def __getattr__(self, name: str) -> Any:
                return getattr(self.inner, name)

            async def place(self, order: Any) -> Any:
                gate.entered.set()
                await gate.release.wait()
                return await self.inner.place(order)

        class Pool(dict[str, Any]):
            pass

        return Pool({name: Held(pool[name]) for name in pool})


async def test_stop_lets_the_call_in_flight_finish(tmp_path: Path) -> None:
    rig = Rig(tmp_path, stop_grace=30.0)
    gate = _Gate()
    rig.controller._wrap = gate.wrap
    async with running(rig) as c:
        ensure = asyncio.create_task(c.ensure(rig.addresses[0], START + 100_000))
        await asyncio.wait_for(gate.entered.wait(), 10)
        [intent] = await rig.orders()
        assert intent.phase is OrderPhase.INTENT
        # tracking runs beside the pass, yet leaves the intent being placed alone
        assert await c.track_once() == []
        stopping = asyncio.create_task(c.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done()  # waits for the vendor call
        gate.release.set()
        await asyncio.wait_for(stopping, 10)
        [placed] = await rig.orders()
        assert placed.phase is OrderPhase.SUBMITTED  # the answer was written
        assert (await ensure)["order"]["outcome"] == "bought"


async def test_stop_gives_up_after_its_grace(tmp_path: Path) -> None:
    rig = Rig(tmp_path, stop_grace=0.2)
    gate = _Gate()
    rig.controller._wrap = gate.wrap
    c = rig.controller
    await c.start()
    task = asyncio.create_task(c.run())
    await until(lambda: c.passes >= 1, "the first pass")
    ensure = asyncio.create_task(c.ensure(rig.addresses[0], START + 100_000))
    await asyncio.wait_for(gate.entered.wait(), 10)
    await asyncio.wait_for(c.stop(), 5)  # bounded: returns with the call still held
    [order] = await rig.orders()
    assert order.phase is OrderPhase.INTENT  # a write-ahead intent for the next start
    task.cancel()
    ensure.cancel()
    for t in (task, ensure):
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


@pytest.mark.parametrize("when", ["after the pass read the chain", "before the pass"])
async def test_a_delivery_tracked_beside_a_pass_never_buys_twice(tmp_path: Path, when: str) -> None:
    """The pass's reading of the address predates the delivery; tracking ends the order
    while the pass runs (after its chain read) or just before it. Either the pass still
    sees the order open, or it re-reads the address: never "no order, no energy"."""
    rig = Rig(tmp_path)
    c = rig.controller
    await c.start()
    assert c.observer is not None and c.reconciler is not None
    address = rig.addresses[2]
    rig.world.drain([address])
    c.observer.refresh([address])  # poll mode: as the next sweep would
    first = await c.run_pass()
    assert first is not None and [o.kind for o in first.outcomes] == ["bought"]
    assert await c.run_pass() is not None  # reads the address again: still no energy
    c.observer.dirty.pop(address, None)  # the cached reading is the pre-delivery one
    for _ in range(20):  # the vendor delegates; the chain shows it
        rig.world.advance(3)
        if rig.world.available_energy(address) >= 131_000:
            break
    assert rig.world.available_energy(address) >= 131_000
    rec = c.reconciler
    observe = rec.observe

    async def observe_then_track(*args: Any, **kw: Any) -> Any:
        got = await observe(*args, **kw)
        await c.track_once()  # the order ends after the chain read, inside the pass
        return got

    async def open_gate() -> None:  # tracking would otherwise wait for this pass to end
        return None

    c._gate = open_gate  # type: ignore[method-assign]
    if when == "before the pass":
        assert [r.after for r in await c.track_once()] == [OrderPhase.DELIVERED]
    else:
        rec.observe = observe_then_track  # type: ignore[method-assign]
    result = await c.run_pass()
    assert result is not None and result.outcomes == ()  # held or satisfied: no buy
    rec.observe = observe  # type: ignore[method-assign]
    result = await c.run_pass()
    assert result is not None and result.outcomes == ()
    orders = await rig.orders()
    assert [o.phase for o in orders] == [OrderPhase.DELIVERED] and rig.creates() == 1
    await c.stop()
    assert c.session is not None
    await c.session.aclose()


async def test_follow_mode_rereads_touched_addresses_and_sweeps_each_interval(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, mode="follow", follow_interval=3600.0)
    rig.world.advance(3)  # the delegations of the set-up are in a block before we follow
    c = rig.controller
    await c.start()
    rig.record_reads()
    await c.follow_once()  # learns the head
    assert await c.run_pass() is not None
    assert sorted(rig.reads[-1]) == sorted(rig.addresses)  # the first pass sweeps
    address = rig.addresses[3]
    rig.world.spend(address)
    rig.world.advance(3)  # the transfer is in a block
    assert await c.follow_once() is True
    assert await c.run_pass() is not None
    assert rig.reads[-1] == [address]  # only what the block touched
    assert await c.follow_once() is False  # nothing new
    reads = len(rig.reads)
    assert await c.run_pass() is not None
    assert len(rig.reads) == reads  # nothing read at all
    rig.world.advance(60)  # the observation interval: a full sweep again
    assert await c.run_pass() is not None
    assert sorted(rig.reads[-1]) == sorted(rig.addresses)
    await c.stop()
    assert c.session is not None
    await c.session.aclose()


async def test_a_mark_made_during_a_read_survives_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    c = rig.controller
    await c.start()
    observer = c.observer
    assert observer is not None
    address = rig.addresses[0]
    inner = observer.reader.snapshots

    async def slow(addresses: Any, **kw: Any) -> Any:
        got = await inner(addresses, **kw)
        observer.refresh([address])  # tracking marks it while the read is in flight
        return got

    observer.reader = type("R", (), {"snapshots": staticmethod(slow)})()  # type: ignore[assignment]
    await observer.snapshots(rig.addresses)
    assert address in observer.dirty  # the next pass reads it again
    observer.reader = type("R", (), {"snapshots": staticmethod(inner)})()  # type: ignore[assignment]
    await observer.snapshots(rig.addresses)
    assert address not in observer.dirty
    assert c.session is not None
    await c.session.aclose()


async def test_two_replicas_split_the_addresses_and_refuse_each_other_s_ensures(
    tmp_path: Path,
) -> None:
    """Two controllers on one store with shard leases: each plans only the addresses of
    its shards, an ensure for the other's address names the owner, and a drained address
    is bought for once, by its owner."""
    rig = Rig(tmp_path, shards=4, replica="a", lease_ttl=30.0)
    other = Controller(
        rig.controller.source,
        clock=rig.clock,
        settings=ControllerSettings(shards=4, replica="b", lease_ttl=30.0),
        session_factory=rig._session,
    )
    a = rig.controller
    await a.start()
    await other.start()
    for c in (a, other, a, other):  # a takes all, b joins, a hands over, b takes its share
        assert c.leases is not None
        await c.leases.tick()
    owned_a, owned_b = a._owned(), other._owned()
    assert owned_a is not None and owned_b is not None
    assert owned_a | owned_b == set(rig.addresses) and not owned_a & owned_b
    assert owned_a and owned_b, "4 addresses over 4 shards land on both replicas here"
    theirs = sorted(owned_b)[0]
    with pytest.raises(NotOwner) as refused:
        await a.ensure(theirs, START + 100_000)
    assert refused.value.owner == "b"
    rig.world.drain(rig.addresses)
    for c in (a, other):
        assert c.observer is not None
        c.observer.refresh(rig.addresses)
        result = await c.run_pass()
        assert result is not None
        owned = c._owned()
        assert owned is not None
        assert frozenset(o.address for o in result.outcomes) == owned
        assert frozenset(e.address for e in result.plan.entries) == owned
    orders = await rig.orders()
    assert sorted(o.address for o in orders) == sorted(rig.addresses)  # one order each
    assert rig.creates() == len(rig.addresses)
    status = a.status()["replica"]
    assert status["name"] == "a" and status["members"] == ["a", "b"]
    assert len(status["held"]) == 2 and status["leaseExpiresAt"] > rig.clock.now()
    for c in (a, other):
        await c.stop()
        assert c.session is not None
        await c.session.aclose()


class _Hung:
    """A provider whose quotes and balance reads never answer (a hung vendor)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def quote(self, request: Any) -> Any:
        await asyncio.Event().wait()

    async def balance(self) -> int:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_run_bounds_provider_calls_by_the_session_s_call_timeout(tmp_path: Path) -> None:
    """`energyctl run`'s passes bound each provider call as `apply` and `plan` do: a hung
    vendor costs a pass the session's call timeout of clock time, not forever."""
    rig = Rig(tmp_path)

    def session(policy_set: Any) -> Session:
        made = rig._session(policy_set)
        made.call_timeout = 5.0
        return made

    controller = Controller(
        PolicySource([tmp_path], env=rig.world.env()),
        clock=rig.clock,
        session_factory=session,
        wrap_providers=lambda pool: {name: _Hung(pool[name]) for name in pool},
    )
    await controller.start()
    try:
        reconciler = controller.reconciler
        assert reconciler is not None
        assert reconciler.call_timeout == 5.0
        assert reconciler.tracker.settings.call_timeout == 5.0
        rig.world.drain(rig.addresses)
        assert controller.observer is not None
        controller.observer.refresh(rig.addresses)
        task = asyncio.create_task(controller.run_pass())
        for _ in range(200):  # 10 s of clock time, a little at a time
            await asyncio.sleep(0.005)
            rig.clock.advance(0.05)
            if task.done():
                break
        assert task.done(), "a hung vendor stalled the pass beyond the call timeout"
        result = task.result()
        assert result is not None and not result.outcomes  # no quote: nothing bought
    finally:
        await controller.stop()
        assert controller.session is not None
        await controller.session.aclose()


async def test_policy_files_are_polled_on_the_controller_s_clock(tmp_path: Path) -> None:
    """The files are polled every `reload_interval` seconds of the injected clock: here an
    hour of emulated time, which passes only when the test advances it."""
    rig = Rig(tmp_path, reload_interval=3600.0)
    async with running(rig) as c:
        assert c.policy_set is not None
        before = c.policy_set.revision
        policies = tmp_path / "policies.yaml"
        policies.write_text(policies.read_text().replace("threshold: 65k", "threshold: 66k"))
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert c.policy_set.revision == before  # the hour has not passed on the clock
        rig.clock.advance(3600.0)
        await until(
            lambda: c.policy_set is not None and c.policy_set.revision != before, "reloaded"
        )
