"""`energyctl simulate`: the engine's own passes against an in-process World, in emulated time.

`simulate(paths, workload, days=...)` loads a policy set, builds a `World` on a
`SimulationClock` with nothing served (every call goes through ASGI transports), creates
and funds the policy's addresses, and plays a workload (`sandbox/workload.py`) while the
same `Reconciler.run_pass(apply=True)` as `energyctl apply` and the sidecar runs on
a temporary SQLite store. No real sleeping: time moves in steps of `step` emulated seconds,
by default the engine's own reaction time (`reaction_step`): its poll interval, or in
follow mode `FOLLOW_STEP`; never more than `MAX_STEP`. A coarser step would let a second
transfer of a batch burn energy the engine would have bought in time.

The engine is woken the way block following wakes it (`engine/observe/following.py`): in a step
where a watched address transacted (a transfer of the workload, or a delegation that
arrived or expired: its energy limit changed), while any order is open (tracking), and
otherwise every `sweep` seconds. A step with none of these cannot change what the engine
would decide, apart from slow energy regeneration, which the sweep covers. The emulators
are ticked every step while an order is open, else every `EMULATOR_TICK` seconds.

With `drift` (`sandbox.market.Drift`), the emulators' prices move with emulated time
(`Market.apply` each step). After the run, the hindsight optimum (`sandbox/optimum.py`) is
computed over the transfers made and the prices as they were (`SimulationResult.optimum`),
each transfer's row with the recovery window the run certifies for it (`sandbox/recovery.py`:
from the usage the node held before each transfer and what each reclaim moved away).

Provider documents keep their names and types but talk to the vendor emulators; their
`fromEnv` secret references are answered with the sandbox credentials (nothing is read
from the environment). `fromFile` references are refused. Results (`SimulationResult`)
feed `sandbox/reporting.py`. Neighbours: `sandbox/world.py`, `engine/reconciling.py`.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.act.providing import ProviderPool
from engine.act.validating import ENGINE_CHECKS
from engine.core.clock import VirtualClock
from engine.core.costs import charged, order_cost
from engine.reconciling import Reconciler
from engine.store import OrderFilter, OrderRecord, Store, open_store
from policies.base import SecretRef
from policies.loading import SecretMode, load
from policies.models import EngineSpec
from policies.policyset import PolicySet
from providers.base import ProviderError, QuoteRequest
from providers.http import NO_WAIT
from sandbox import demo
from sandbox.market import Drift, Market
from sandbox.optimum import Optimum, optimum, stake_eps
from sandbox.recovery import Reclaim, run_windows
from sandbox.reporting import Floor, build_report
from sandbox.state_reader import StateReader
from sandbox.tron_node.accounts import to_base58, to_hex
from sandbox.workload import DAY, Spender, TransferRecord, load_workload
from sandbox.world import World

FLOOR_ENERGY = 131_000
#: emulators are ticked every step while an order is open, else this often (emulated
#: seconds): a rental's expiry is seen at most this late. Each tick costs time in
#: proportion to every order an emulator ever took.
EMULATOR_TICK = 120.0
PAGE = 10_000  # orders read at once (the store's largest page)
#: follow mode wakes the engine within a block (3 s) of a transfer; the simulation reacts
#: no faster than this (slower than the chain, never kinder to the engine)
FOLLOW_STEP = 15.0
MAX_STEP = 60.0
#: each vendor emulator's stake in a simulation (TRX): ~470M energy, a pool deep enough for
#: fifty addresses holding rolling levels from one vendor at once (the World's default,
#: 5M TRX, ~47M energy, runs dry there, and its orders then fail for want of capacity)
VENDOR_STAKE_TRX = 50_000_000
DEPOSITS_STEP = 60.0  # a deposit's sweep waits for its energy: no batch to react within


def reaction_step(settings: EngineSpec) -> float:
    """The simulation's default step for an engine configured with `settings`."""
    observation = settings.observation
    interval = FOLLOW_STEP if observation.mode == "follow" else float(observation.interval)
    return min(MAX_STEP, interval)


class SimulationError(Exception):
    """The policy set cannot be simulated (invalid, fromFile secrets, unknown workload)."""


class SimulationClock(VirtualClock):
    """A VirtualClock whose `sleep` moves time itself: nothing else would (rate limiters)."""

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)
        await asyncio.sleep(0)


@dataclass(slots=True)
class SimulationResult:
    name: str
    started_at: float
    ended_at: float
    energy_fee: int
    thresholds: dict[str, int]
    floor: Floor | None = None
    passes: int = 0
    orders: list[OrderRecord] = field(default_factory=list)
    known_orders: dict[str, OrderRecord] = field(default_factory=dict, repr=False)
    transfers: list[TransferRecord] = field(default_factory=list)
    sample_times: list[float] = field(default_factory=list)
    energy_series: dict[str, list[int]] = field(default_factory=dict)
    spent_series: list[int] = field(default_factory=list)
    burned_series: list[int] = field(default_factory=list)
    #: per receiver, the used energy each UnDelegateResource moved away (the certificate)
    reclaims: dict[str, list[Reclaim]] = field(default_factory=dict)
    optimum: Optimum | None = None
    #: the optimum's reference without foresight, solved with `reference_reserve` (if asked)
    reference: Optimum | None = None
    reference_reserve: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # figures of a particular run
    #: address -> its policy's name (the report's per-address rows)
    policies: dict[str, str] = field(default_factory=dict)
    #: the world after the run, with `keep_world=True` (its node answers over
    #: `world.node_transport()`: `energyctl report` can read the run's blocks)
    world: World | None = None

    def report(self) -> dict[str, Any]:
        return build_report(
            name=self.name,
            orders=self.orders,
            transfers=self.transfers,
            floor=self.floor,
            energy_fee=self.energy_fee,
            optimum=self.optimum,
            ended_at=self.ended_at,
            policies=self.policies,
            reference=self.reference,
            reference_reserve=self.reference_reserve,
            extra={"days": round((self.ended_at - self.started_at) / DAY, 4),
                   "passes": self.passes, **self.extra},
        )  # fmt: skip


def sandbox_env(policy_set: PolicySet) -> dict[str, str]:
    """Variable -> sandbox credential for every `fromEnv` in the Provider documents (and a
    stand-in for a DepositPolicy's webhook secret: the simulation sends no webhook)."""
    env: dict[str, str] = {}
    for policy in policy_set.deposit_policies.values():
        hook = policy.spec.webhook
        if hook is not None and hook.secret.from_env is not None:
            env[hook.secret.from_env] = "sandbox-webhook-secret"
    for name, document in policy_set.providers.items():
        credentials = demo.CREDENTIALS.get(document.spec.type, {})
        for key, info in type(document.spec).model_fields.items():
            ref = getattr(document.spec, key)
            if not isinstance(ref, SecretRef):
                continue
            if ref.from_env is None:
                raise SimulationError(
                    f"provider {name!r}: spec.{info.alias or key} comes from a file; "
                    "simulate answers fromEnv references only"
                )
            env[ref.from_env] = credentials.get(info.alias or key, "sandbox")
    return env


def load_for_simulation(paths: Sequence[Path]) -> PolicySet:
    first = load(paths, secrets=SecretMode.OPTIONAL, checks=ENGINE_CHECKS)
    if first.policy_set is None:
        raise SimulationError("; ".join(str(d) for d in first.errors))
    result = load(
        paths, secrets=SecretMode.REQUIRED, checks=ENGINE_CHECKS, env=sandbox_env(first.policy_set)
    )
    if result.policy_set is None:
        raise SimulationError("; ".join(str(d) for d in result.errors))
    return result.policy_set


async def _floor(pool: ProviderPool, receiver: str) -> Floor | None:
    """The cheapest unit price on offer, each provider at its shortest duration."""
    best: Floor | None = None
    for name in sorted(pool):
        caps = pool[name].capabilities
        duration = caps.durations[0] if caps.durations else max(caps.min_duration, 3600)
        energy = max(caps.min_amount, FLOOR_ENERGY)
        try:
            quote = await pool[name].quote(
                QuoteRequest(receiver=receiver, energy=energy, duration=duration)
            )
        except ProviderError:
            continue
        candidate = Floor(name, duration, energy, quote.total_sun)
        if best is None or candidate.unit_price < best.unit_price:
            best = candidate
    return best


async def simulate(
    paths: Sequence[Path],
    workload: str,
    *,
    days: float,
    seed: int = 0,
    step: float | None = None,
    sweep: float = 900.0,
    sample: float = 600.0,
    name: str | None = None,
    progress: Callable[[float], None] | None = None,
    with_optimum: bool = True,
    milp_time_limit: float | None = 1.0,
    drift: Drift | None = None,
    store_url: str | None = None,
    keep_world: bool = False,
    reference_reserve: int = 0,
) -> SimulationResult:
    """Run one policy set over `days` of emulated traffic; see the module docstring.
    `store_url`: the store the engine writes (default: a temporary SQLite file, removed
    afterwards); `keep_world`: the world is kept on the result (`SimulationResult.world`).
    `reference_reserve` > 0 also solves the optimum's reference without foresight (nothing
    burned, that much free before every transfer; `sandbox/optimum.py`) into
    `SimulationResult.reference`: the report's `reference_trx` and `cost_over_reference`.
    A set with DepositPolicies plays deposits and sweeps instead of `workload`
    (`sandbox/simulating_deposits.py`); it must then be `deposits`, and hold no
    EnergyPolicy (refused: its addresses would see no traffic)."""
    policy_set = load_for_simulation(paths)
    if policy_set.deposit_policies and policy_set.policies:
        raise SimulationError(
            "the set holds EnergyPolicies ("
            + ", ".join(sorted(policy_set.policies))
            + ") and DepositPolicies ("
            + ", ".join(sorted(policy_set.deposit_policies))
            + "): the deposits simulation plays only deposits and sweeps, so it would "
            "report nothing for the EnergyPolicy addresses; simulate them as two sets "
            "(one file or directory each, both with the Provider documents)"
        )
    if policy_set.deposit_policies:
        if workload != "deposits":
            raise SimulationError(
                f"the set has DepositPolicies: simulate it with --workload deposits, not "
                f"{workload!r}"
            )
        from sandbox.simulating_deposits import simulate_deposits

        return await simulate_deposits(
            policy_set,
            name=name or ",".join(str(p) for p in paths),
            days=days,
            seed=seed,
            step=DEPOSITS_STEP if step is None else step,
            progress=progress,
            drift=drift,
        )
    if step is None:
        step = reaction_step(policy_set.settings)
    clock = SimulationClock()
    world = World(clock=clock, watched=0, provider_stake_trx=VENDOR_STAKE_TRX)
    market = Market(world, drift)
    market.apply(clock.now())
    addresses = list(policy_set.addresses)
    for address in addresses:
        world.fund(address, 10_000)
    try:
        played = load_workload(workload, addresses, days=days, seed=seed)
    except ValueError as exc:
        raise SimulationError(str(exc)) from exc
    thresholds = {
        a: p.spec.threshold for a in addresses if (p := policy_set.policy_for(a)) is not None
    }
    result = SimulationResult(
        name=name or ",".join(str(p) for p in paths),
        started_at=clock.now(),
        ended_at=clock.now() + days * DAY,
        energy_fee=world.chain.params.energy_fee,
        thresholds=thresholds,
        energy_series={a: [] for a in addresses},
        policies={a: p.metadata.name for a in addresses if (p := policy_set.policy_for(a))},
        world=world if keep_world else None,
    )
    transports = {n: world.transport(d.spec.type) for n, d in policy_set.providers.items()}
    with tempfile.TemporaryDirectory(prefix="energyctl-simulate-") as tmp:
        store = await open_store(store_url or f"sqlite:///{Path(tmp) / 'simulate.db'}", clock)
        reader = StateReader(world.chain, clock)
        pool = ProviderPool(policy_set, clock=clock, transports=transports, retry=NO_WAIT)
        try:
            await pool.open()
            rec = Reconciler(
                policy_set, store=store, reader=reader, providers=pool, clock=clock,
                applied_by="energyctl simulate",
            )  # fmt: skip
            result.floor = await _floor(pool, addresses[0]) if addresses else None
            spender = Spender(world.chain, played, start=clock.now(), seed=seed)
            await _loop(
                world, rec, spender, result, step=step, sweep=sweep, sample=sample,
                progress=progress, market=market,
            )  # fmt: skip
            await _catch_up(store, result.known_orders)
            result.orders = sorted(result.known_orders.values(), key=lambda o: o.created_at)
            for at, receiver, moved in world.chain.reclaims:
                result.reclaims.setdefault(to_base58(receiver), []).append(Reclaim(at, moved))
            if with_optimum:
                windows = run_windows(result.transfers, result.reclaims)
                result.optimum = _optimum(result, world, market, windows, milp_time_limit)
                if reference_reserve > 0:
                    result.reference_reserve = reference_reserve
                    result.reference = _optimum(
                        result, world, market, windows, None, reserve=reference_reserve
                    )
        finally:
            await pool.aclose()
            await reader.aclose()
            await store.close()
    return result


def _optimum(
    result: SimulationResult,
    world: World,
    market: Market,
    windows: Mapping[str, Sequence[float]],
    milp_time_limit: float | None,
    reserve: int = 0,
) -> Optimum:
    """The run's hindsight optimum (`sandbox/optimum.py`), each transfer's row recovering
    over the window the run certifies (`windows`), or with `reserve` its reference without
    foresight."""
    chain = world.chain
    per_trx = chain.params.total_energy_limit / max(1, chain.total_energy_weight)
    return optimum(
        result.transfers,
        market.book(),
        energy_fee=result.energy_fee,
        eps=stake_eps(per_trx),
        milp_time_limit=milp_time_limit,
        since=result.started_at,
        windows=windows,
        reserve=reserve,
    )


async def _catch_up(store: Store, known: dict[str, OrderRecord]) -> None:
    """Bring `known` (every order of the run by client order id) up to date: the orders
    created or changed since the newest change it holds, a page at a time (a week of
    rolling levels places thousands of orders; rereading them all at every sample would
    cost more than the run)."""
    newest = max((o.updated_at for o in known.values()), default=None)
    page = await store.orders(OrderFilter(updated_since=newest, limit=PAGE, newest_first=False))
    if len(page) == PAGE:  # more changed than a page: read every order, by creation
        page, since = [], None
        while True:
            chunk = await store.orders(OrderFilter(since=since, limit=PAGE, newest_first=False))
            page += chunk
            if len(chunk) < PAGE:
                break
            since = chunk[-1].created_at  # inclusive: the ids below remove the repeats
    for order in page:
        known[order.client_order_id] = order


def _limits(world: World, addresses: Sequence[str]) -> list[int]:
    out = []
    for address in addresses:
        resource = world.chain.account_resource_json(to_hex(address)) or {}
        out.append(int(resource.get("EnergyLimit", 0)))
    return out


async def _loop(
    world: World,
    rec: Reconciler,
    spender: Spender,
    result: SimulationResult,
    *,
    step: float,
    sweep: float,
    sample: float,
    progress: Callable[[float], None] | None,
    market: Market | None = None,
) -> None:
    clock = world.clock
    assert isinstance(clock, VirtualClock)
    addresses = list(result.energy_series)
    start, end = result.started_at, result.ended_at
    limits = _limits(world, addresses)
    last_pass = last_tick = -sweep
    next_sample = start
    spent = burned = 0
    open_orders = False
    known = result.known_orders
    t = start
    while t <= end:
        if market is not None:
            market.apply(t)  # prices as they are now (a drift moves them)
        made = spender.run_until(t, set_time=lambda at: clock.set(max(at, clock.now())))
        result.transfers += made
        burned += sum(r.burned_sun for r in made)
        if open_orders or t - last_tick >= EMULATOR_TICK:
            world.advance(max(0.0, t - clock.now()))  # deliveries and expiries
            last_tick = t
        else:
            clock.set(max(t, clock.now()))
            world.chain.produce_blocks()
        now_limits = _limits(world, addresses)
        if made or open_orders or now_limits != limits or clock.now() - last_pass >= sweep:
            passed = await rec.run_pass(apply=True)
            result.passes += 1
            last_pass = clock.now()
            open_orders = bool(passed.outcomes) or bool(await rec.store.open_orders())
        limits = now_limits
        if clock.now() >= next_sample:
            next_sample += sample
            await _catch_up(rec.store, known)
            spent = sum(order_cost(o) for o in known.values() if charged(o))
            result.sample_times.append(clock.now())
            for address in addresses:
                result.energy_series[address].append(world.chain.available_energy(address))
            result.spent_series.append(spent)
            result.burned_series.append(burned)
            if progress is not None:
                progress(min(1.0, (clock.now() - start) / (end - start)))
        t = max(t + step, clock.now())


__all__ = [
    "SimulationClock",
    "SimulationError",
    "SimulationResult",
    "load_for_simulation",
    "sandbox_env",
    "simulate",
]
