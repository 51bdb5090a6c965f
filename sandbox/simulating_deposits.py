"""`energyctl simulate` for a set with DepositPolicies: deposits, sweeps, and their cost.

For each DepositPolicy of the set, its deposit addresses (inline and from its address
file) are activated on an in-process World (with a few TRX for a sweep that must burn);
its hot wallet holds USDT. Customers pay in on the `deposit_schedule` (one deposit per
address per day), and the exchange's `Sweeper` sweeps each deposit when the engine says
its energy is ready (the episode's state in the store), or burns TRX after `give_up`.

The engine is the sidecar's deposit desk (`engine/sidecar/depositing.py`): it follows
every block through an in-memory reader (`sandbox/state_reader.py`), records deposits,
buys one sweep's energy per episode from the emulated vendors, and closes an episode when
its sweep is seen. Orders are tracked by the engine's `Tracker` each step while any is
open. Time moves in steps of `step` emulated seconds; nothing sleeps.

The result is a `SimulationResult` whose transfers are the sweeps: the report's cost per
transfer against burning is the cost per sweep, and `extra` adds the deposits, sweeps and
burned sweeps. Neighbours: `sandbox/simulating.py` (dispatches here), `sandbox/sweeping.py`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from engine.act.providing import ProviderPool
from engine.act.tracking import Tracker
from engine.core.costs import charged, order_cost
from engine.core.deposits import NeedState
from engine.sidecar.depositing import DepositDesk, DepositSettings, make_sources
from engine.sidecar.webhooks import WebhookSender
from engine.store import OrderFilter, Store, open_store
from policies.addresses import AddressSet
from policies.policyset import PolicySet
from providers.http import NO_WAIT
from sandbox.market import Drift, Market
from sandbox.simulating import SimulationClock, SimulationResult
from sandbox.state_reader import StateReader
from sandbox.sweeping import Customers, Sweeper, deposit_schedule
from sandbox.workload import DAY
from sandbox.world import World

DEPOSIT_TRX = 30  # TRX on each deposit address: activated, and enough for one burned sweep


def deposit_addresses(policy_set: PolicySet) -> list[str]:
    """Every deposit address of the set's DepositPolicies (inline and from files)."""
    found = AddressSet()
    for name, policy in policy_set.deposit_policies.items():
        for address in policy.spec.addresses:
            found.add(address)
        read = policy_set.address_files.get(name)
        if read is not None:
            for body in read.addresses.bodies():
                found.add(body)
    return sorted(found)


async def simulate_deposits(
    policy_set: PolicySet,
    *,
    name: str,
    days: float,
    seed: int = 0,
    step: float = 60.0,
    give_up: float = 1800.0,
    progress: Callable[[float], None] | None = None,
    drift: Drift | None = None,
    webhooks: WebhookSender | None = None,
    ready: Callable[[str], Awaitable[bool]] | None = None,
    restart_after: float | None = None,
    deposit_addresses_only: list[str] | None = None,
    clock: SimulationClock | None = None,
) -> SimulationResult:
    """Run the set's DepositPolicies over `days` of deposits; see the module docstring.

    For tests: `webhooks` sends the policies' webhooks (none by default), `ready` replaces
    the sweeper's question (by default the episode's state in the store),
    `restart_after` (emulated seconds) replaces the engine's deposit desk by a new one on
    the same store once, as a restarted sidecar would, and `deposit_addresses_only`
    limits the customers' deposits to these addresses (the others stay quiet)."""
    clock = clock or SimulationClock()
    world, market, addresses = _world(policy_set, clock, drift)
    start = clock.now()
    shown = addresses[:8]
    result = SimulationResult(
        name=name,
        started_at=start,
        ended_at=start + days * DAY,
        energy_fee=world.chain.params.energy_fee,
        thresholds={},
        energy_series={a: [] for a in shown},
    )
    transports = {n: world.transport(d.spec.type) for n, d in policy_set.providers.items()}
    hot = next(iter(policy_set.deposit_policies.values())).spec.sweep_to
    with tempfile.TemporaryDirectory(prefix="energyctl-simulate-") as tmp:
        store = await open_store(f"sqlite:///{Path(tmp) / 'simulate.db'}", clock)
        reader = StateReader(world.chain, clock)
        pool = ProviderPool(policy_set, clock=clock, transports=transports, retry=NO_WAIT)
        try:
            await pool.open()

            def new_desk() -> DepositDesk:
                return DepositDesk(
                    policy_set.deposit_policies,
                    store=store,
                    reader=reader,
                    providers=pool,
                    clock=clock,
                    sources=make_sources(policy_set, clock),
                    settings=DepositSettings(interval=900.0, quote_ttl=0.0),
                    webhooks=webhooks,
                )

            desk = new_desk()
            tracker = Tracker(store=store, providers=pool, reader=reader, clock=clock)
            customers = Customers(
                world.chain,
                deposit_schedule(deposit_addresses_only or addresses, days=days, seed=seed),
                start=start,
            )
            sweeper = Sweeper(world.chain, hot, ready=ready or _ready(store), give_up=give_up)
            await desk.start()
            await desk.follow_once()
            t = start
            # after the last day, the deposits still pending get their sweep (or burn)
            while t <= result.ended_at or (sweeper.pending and t <= result.ended_at + give_up):
                if restart_after is not None and t - start >= restart_after:
                    restart_after = None
                    await desk.settle()
                    desk = new_desk()  # a new process: only the store carries over
                    result.extra["restarted_at"] = clock.now()
                market.apply(t)
                world.advance(max(0.0, t - clock.now()))
                for deposit in customers.run_until(clock.now()):
                    sweeper.landed(deposit.address, clock.now())
                await desk.round()
                if await store.open_orders():
                    await tracker.track(await store.open_orders())
                    await desk.check_orders()
                result.transfers += await sweeper.run(clock.now())
                result.passes += 1
                await _sample(result, world, store, shown, clock.now(), progress)
                t += step
            result.orders = await store.orders(OrderFilter(limit=10_000))
            needs = await store.deposit_needs(open_only=False)
            await desk.settle()
            result.extra |= {
                "deposit_addresses": len(addresses),
                "deposits": len(customers.made),
                "episodes": len(needs),
                "sweeps": len(sweeper.records),
                "burned_sweeps": sweeper.burned_sweeps,
                "unswept": len(sweeper.pending),
            }
        finally:
            await pool.aclose()
            await store.close()
    return result


def _world(
    policy_set: PolicySet, clock: SimulationClock, drift: Drift | None
) -> tuple[World, Market, list[str]]:
    """The world: deposit addresses activated with a little TRX, hot wallets holding USDT."""
    world = World(clock=clock, watched=0)
    market = Market(world, drift)
    market.apply(clock.now())
    addresses = deposit_addresses(policy_set)
    for address in addresses:
        world.fund(address, DEPOSIT_TRX)
    for policy in policy_set.deposit_policies.values():
        world.fund(policy.spec.sweep_to, 100)
        world.chain.mark_usdt_holder(policy.spec.sweep_to)
    return world, market, addresses


def _ready(store: Store) -> Callable[[str], Awaitable[bool]]:
    async def ready(address: str) -> bool:
        needs = await store.deposit_needs(addresses=[address])
        return any(n.state is NeedState.READY for n in needs)

    return ready


async def _sample(
    result: SimulationResult,
    world: World,
    store: Store,
    shown: list[str],
    now: float,
    progress: Callable[[float], None] | None,
) -> None:
    if result.sample_times and now - result.sample_times[-1] < 600:
        return
    result.sample_times.append(now)
    for address in shown:
        result.energy_series[address].append(world.chain.available_energy(address))
    orders = await store.orders(OrderFilter(limit=10_000))
    spent = sum(order_cost(o) for o in orders if charged(o))
    result.spent_series.append(spent)
    result.burned_series.append(sum(r.burned_sun for r in result.transfers))
    if progress is not None:
        span = result.ended_at - result.started_at
        progress(min(1.0, (now - result.started_at) / span))


__all__ = ["deposit_addresses", "simulate_deposits"]
