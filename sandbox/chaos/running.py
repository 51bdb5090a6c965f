"""One chaos run: the engine against an in-process World while a `Scenario` injects faults.

`run(seed, directory)` builds a `World` on a `ChaosClock` (ten watched addresses in
eight policies, each with another vendor first: seven buy a fixed amount, one keeps a
rolling level of the cheapest offers (`p-mefree`: `strategy: cheapest`, `topUp.auto`, a
declared `expectedUse`, `renewBefore`); every address starts above its threshold, and
above the rolling level, with energy from a third party), writes the policy files into
`directory`, and plays the scenario step by step (`STEP` emulated seconds each):

1. the step's faults are switched on (vendor knobs, among them a price move between
   quote and order up to `CHARGE_CEILING`; the node's: down, stale or junk; the store's;
   kills armed); at `fault_end` all of them are switched off;
2. the addresses whose need starts now are drained (transfers until they are short);
3. time moves (`World.advance`: deliveries), then one engine pass
   (`Reconciler.run_pass(apply=True)`, two at once for `wake_twice`), driven on the
   clock by `injecting.drive` so that timeouts cost emulated time only;
4. a killed engine is discarded and a fresh one built on the same store file, like a
   restarted process; a pass failing on the store is a failed pass, nothing more;
5. the workload: a need is met when the address has its threshold again (65k, every
   policy's: its next transfer can be paid; for the rolling level too, which the planner
   keeps higher and may go on filling piece by piece after the need is met); one still
   unmet `PAY_WITHIN` seconds after it started sends its transfer anyway, burning TRX;
6. the store is sampled: at most one open order per address.

After the faults the run goes on until every need is met and no order is open, or to
`Scenario.max_steps` (a need legitimately held: an open order past its deadline, or the
policy's budget refusing one more reservation), then `checking.check` looks for double
orders (for the rolling level: two purchases in flight at once, or one before the drain),
lost intents and budget overruns.

Neighbours: `scenario.py`, `injecting.py`, `checking.py`; `bench/chaos.py` and
`tests/chaos/` call `run`.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx

from engine.act.applying import OutcomeKind
from engine.act.providing import ProviderPool
from engine.act.tracking import TrackingSettings
from engine.core import crashing
from engine.observe.chain import ChainReader
from engine.reconciling import PassResult, Reconciler
from engine.store import OPEN_PHASES, OrderFilter, StoreError, open_store
from providers.http import NO_WAIT
from sandbox import demo
from sandbox.chaos.checking import RunReport, check
from sandbox.chaos.injecting import ChaosClock, ChaosStore, Killed, Life, drive, guarded
from sandbox.chaos.scenario import Fault, Scenario
from sandbox.simulating import load_for_simulation
from sandbox.tron_node import NodeFaults, create_app
from sandbox.world import TRX, World

STEP = 30.0
PAY_WITHIN = 600.0
CALL_TIMEOUT: float | None = 15.0  # the engine's bound on one provider call
START_ENERGY = 300_000
THRESHOLD = 65_000  # every policy's
STAKER = demo.key_address("chaos-staker")
#: (name, comment, first address, count, threshold, topUp, providers, maxPrice, budget
#: [, further spec lines]). Each order reserves its cap until it ends: the small budgets
#: (p-tronsave, p-itrx) hold two caps and little more (2 x 131k x 120 sun = 31.44 TRX of
#: p-itrx's 32), so both needs can be served at once, and a third order only if the first
#: two settled low. p-mefree keeps a rolling level (engine/decide/sizing.py `rolling`):
#: atLeast (131k) plus the declared use over the 15 min lead (1M a day, x1.2: about
#: 12.5k), about 143k, below `START_ENERGY`, so nothing is bought for it before its drain;
#: drained (about 40k left), it buys the shortfall, then, once the drain (about 260k) is
#: learned as a burst it keeps free, more pieces, one open order at a time. Its pieces
#: (at most about 300k at its 300 sun cap: 90 TRX) fit its budget many times over.
POLICIES: tuple[demo.PolicyRow, ...] = (
    ("p-tronsave", "tronsave first", 0, 2, "65k", "{amount: 131k, duration: 1h}",
     "[tronsave, eopen, itrx, mefree]", "100 sun/energy", "{perDay: 40 TRX}"),
    ("p-eopen", "eopen first", 2, 1, "65k", "{amount: 65k, duration: 1h}",
     "[eopen, mefree, tronsave, itrx]", "95 sun/energy", "{perDay: 500 TRX}"),
    ("p-itrx", "itrx first", 3, 2, "65k", "{amount: 131k, duration: 1h}",
     "[itrx, mefree, tronsave, eopen]", "120 sun/energy", "{perDay: 32 TRX}"),
    ("p-mefree", "the cheapest offers, a rolling level sized to use", 5, 1, "65k",
     "{auto: {}, duration: [1h, 1d]}",
     "[mefree, tronsave, eopen]", "300 sun/energy", "{perDay: 1000 TRX}",
     "strategy: cheapest\nexpectedUse: {perDay: 1M}\nrenewBefore: 15m"),
    ("p-catfee", "catfee first", 6, 1, "65k", "{amount: 100k, duration: 1h}",
     "[catfee, feee, eopen, mefree]", "100 sun/energy", "{perDay: 500 TRX}"),
    ("p-feee", "feee first", 7, 1, "65k", "{amount: 65k, duration: 1h}",
     "[feee, catfee, itrx, tronsave]", "100 sun/energy", "{perDay: 500 TRX}"),
    ("p-tronzap", "tronzap first", 8, 1, "65k", "{amount: 65k, duration: 1h}",
     "[tronzap, netts, eopen, mefree]", "100 sun/energy", "{perDay: 500 TRX}"),
    ("p-netts", "netts first", 9, 1, "65k", "{amount: 100k, duration: 1h}",
     "[netts, tronzap, itrx, tronsave]", "120 sun/energy", "{perDay: 500 TRX}"),
)  # fmt: skip
WATCHED = sum(row[3] for row in POLICIES)  # at most the engine's purchases per pass (10)
#: a price move charges at most this (sun per energy): the lowest of the policies' caps,
#: so a moved charge stays within every cap (a charge above a cap is an alert, and no
#: reservation can hold money the vendor takes beyond what the order allowed)
CHARGE_CEILING = min(int(row[7].split()[0]) for row in POLICIES)


class Engine:
    """One incarnation of the in-process engine over the run's store file and World."""

    def __init__(self, run: ChaosRun) -> None:
        self.run, self.life = run, Life()
        self.store: ChaosStore | None = None
        self.pool: ProviderPool | None = None
        self.reader: ChainReader | None = None

    async def start(self) -> Reconciler:
        run, life = self.run, self.life
        crashing.crash_hook = life.crash_point
        inner = await open_store(f"sqlite:///{run.directory / 'chaos.db'}", run.clock)
        self.store = ChaosStore(inner, life, run.rng)
        self.store.down, self.store.flaky = run.store_down, run.store_flaky
        node = guarded({"node": httpx.ASGITransport(app=run.node_app)}, life)["node"]
        self.reader = ChainReader(
            "http://node.test", api_key=None, clock=run.clock, concurrency=8, transport=node
        )
        transports = {vendor: run.world.transport(vendor) for vendor in demo.VENDORS}
        self.pool = ProviderPool(
            run.policy_set, clock=run.clock, transports=guarded(transports, life), retry=NO_WAIT
        )
        await self.pool.open()
        settings = TrackingSettings(call_timeout=CALL_TIMEOUT)
        return Reconciler(
            run.policy_set, store=self.store, reader=self.reader, providers=self.pool,
            clock=run.clock, tracking=settings, call_timeout=CALL_TIMEOUT,
        )  # fmt: skip

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()
        if self.reader is not None:
            await self.reader.aclose()
        if self.store is not None:
            await self.store.close()


class ChaosRun:
    def __init__(self, scenario: Scenario, directory: Path) -> None:
        self.scenario, self.directory = scenario, directory
        self.rng = random.Random(scenario.seed)
        self.clock = ChaosClock()
        self.world = World(clock=self.clock, watched=WATCHED)
        self.node_faults = NodeFaults()
        self.node_app = create_app(self.world.chain, faults=self.node_faults)
        files = demo.render_policy_files(
            {"node": "http://node.test"}
            | {v: f"http://{v}.test{demo.BASE_PATHS.get(v, '')}" for v in demo.VENDORS},
            f"sqlite:///{directory / 'chaos.db'}",
            POLICIES,
        )
        for name, text in files.items():
            (directory / name).write_text(text)
        self.policy_set = load_for_simulation([directory])
        self.store_down, self.store_flaky = False, 0.0
        self.until: dict[str, int] = {}
        self.report = RunReport(scenario.seed, [str(f) for f in scenario.faults])
        self.report.needs = len(scenario.needs)
        chain = self.world.chain
        chain.create_account(STAKER, 100_000_000 * TRX)
        chain.stake_energy(STAKER, 90_000_000 * TRX)
        for address in self.world.watched:
            chain.delegate_energy(STAKER, address, chain.sun_for_energy(START_ENERGY), None)
        self.need_at: dict[str, float] = {}
        self.met_at: dict[str, float] = {}
        self.paid: set[str] = set()
        self.open_peaks = 0
        #: address -> whether the last pass that planned it kept it from buying for its
        #: budget (`_note_budget`)
        self.budget_held: dict[str, bool] = {}
        self.engine = Engine(self)

    # ------------------------------------------------------------------ faults

    def inject(self, fault: Fault) -> None:
        kind, arg = fault.kind, fault.arg
        if kind == "kill":
            self.engine.life.armed = fault.target
            return
        if kind in ("node_down", "node_stale", "node_junk", "store_down", "store_flaky"):
            self.until[kind] = fault.step + int(arg)
            self.node_faults.down |= kind == "node_down"
            if kind == "node_stale":
                self.node_faults.freeze()
            if kind == "node_junk":
                self.node_faults.junk()
            self.store_down |= kind == "store_down"
            self.store_flaky = 0.3 if kind == "store_flaky" else self.store_flaky
            self._sync_store()
            return
        if kind == "wake_twice":
            return
        knobs = self.world.emulators[fault.target].faults
        if kind in ("fail", "fail_before"):
            knobs.fail_next(status=503, after_accept=kind == "fail", on=arg)
        elif kind == "hang":
            knobs.hang_next(on=arg)
        elif kind == "slow":
            knobs.slow_delivery(float(arg))
        elif kind == "undelivered":
            knobs.no_delivery()
        elif kind == "partial":
            knobs.partial_delivery(0.5)
        elif kind == "rate_limit":
            knobs.rate_limit(int(arg))
        elif kind == "broke":
            knobs.set_balance(0)
        elif kind == "price_move":  # between the quote and the order, up to the caps
            knobs.charge_markup(float(arg), ceiling=CHARGE_CEILING)

    def expire(self, step: int, everything: bool = False) -> None:
        for kind, until in list(self.until.items()):
            if everything or step >= until:
                del self.until[kind]
                if kind == "node_down":
                    self.node_faults.outage(False)
                elif kind == "node_stale":
                    self.node_faults.thaw()
                elif kind == "node_junk":
                    self.node_faults.junk(False)
                elif kind == "store_down":
                    self.store_down = False
                else:
                    self.store_flaky = 0.0
        self._sync_store()
        if everything:
            self.engine.life.armed = None
            for emulator in self.world.emulators.values():
                emulator.faults.reset()
                emulator.faults.set_balance(100_000 * TRX)

    def _sync_store(self) -> None:
        if self.engine.store is not None:
            self.engine.store.down, self.engine.store.flaky = self.store_down, self.store_flaky

    # ------------------------------------------------------------------ the loop

    async def one_pass(self, rec: Reconciler, twice: bool) -> Reconciler:
        store = self.engine.store
        assert store is not None
        before = asyncio.all_tasks()
        passes = [rec.run_pass(apply=True) for _ in range(2 if twice else 1)]
        self.report.passes += len(passes)
        try:
            results: list[Any] = await drive(
                self.clock,
                asyncio.gather(*passes, return_exceptions=True),
                lambda: store.in_flight > 0,
            )
        except Killed:  # pragma: no cover - gather returns it
            results = [Killed()]
        if any(isinstance(r, Killed) for r in results):
            return await self.restart(before)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, StoreError):
                self.report.errors.append(f"{type(result).__name__}: {result}")
            elif isinstance(result, PassResult):
                self._note_budget(result)
        return rec

    def _note_budget(self, result: PassResult) -> None:
        """Which addresses this pass kept from buying for their budget: the plan's reason
        (`Budget`) or the store refusing the reservation (the cap) in the intent's
        transaction. Such a need is held legitimately, not lost."""
        held = {o.address for o in result.outcomes if o.kind is OutcomeKind.HELD}
        for entry in result.plan.entries:
            refused = entry.address in held and any(
                "budget exceeded" in o.reason for o in result.outcomes if o.address == entry.address
            )
            self.budget_held[entry.address] = str(entry.reason) == "Budget" or refused

    async def restart(self, before: set[asyncio.Task[Any]]) -> Reconciler:
        self.report.kills += 1
        self.engine.life.dead = True
        leftovers = asyncio.all_tasks() - before
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        await self.engine.stop()
        self.engine = Engine(self)
        return await self.engine.start()

    def workload(self, step: int) -> None:
        chain, now = self.world.chain, self.clock.now()
        for index, at in self.scenario.needs.items():
            address = self.world.watched[index]
            if at == step:
                self.world.drain([address])
                self.need_at[address] = now
            if address not in self.need_at or address in self.met_at:
                continue
            if chain.available_energy(address) >= THRESHOLD:
                self.met_at[address] = now
            elif now - self.need_at[address] >= PAY_WITHIN and address not in self.paid:
                txid = chain.transfer_usdt(address, demo.SINK)  # it cannot wait longer
                self.paid.add(address)
                self.report.burned += int(chain.receipt_summary(txid).get("energy_fee", 0)) > 0

    async def sample(self) -> bool:
        """Whether any order is open (and count addresses with two open at once)."""
        store = self.engine.store
        assert store is not None
        rows = await store.inner.orders(OrderFilter(phases=OPEN_PHASES, limit=10_000))
        addresses = [r.address for r in rows]
        self.open_peaks += len(addresses) - len(set(addresses))
        return bool(rows)

    async def play(self) -> RunReport:
        scenario, report = self.scenario, self.report
        before = asyncio.all_tasks()
        rec = await self.engine.start()
        fault_end = self.clock.now() + scenario.fault_steps * STEP
        try:
            for step in range(scenario.max_steps):
                self.expire(step, everything=step == scenario.fault_steps)
                for fault in scenario.at(step):
                    self.inject(fault)
                self.workload(step)
                self.world.advance(STEP)
                twice = any(f.kind == "wake_twice" for f in scenario.at(step))
                rec = await self.one_pass(rec, twice)
                self.workload(-1)
                busy = await self.sample()
                if step > scenario.fault_steps + 4 and not busy and self._settled():
                    break
            self.expire(scenario.max_steps, everything=True)
            store = self.engine.store
            assert store is not None
            await check(
                report, self.world, store.inner, self.policy_set, self.open_peaks, self.need_at
            )
            report.held = await self._held()
            met = list(self.met_at.values())
            unmet = report.needs - len(met) - report.held
            report.recover_s = None if unmet > 0 else max([0.0, *(t - fault_end for t in met)])
        finally:
            crashing.crash_hook = None
            for emulator in self.world.emulators.values():
                emulator.faults.release_hangs()
            leftovers = asyncio.all_tasks() - before  # abandoned holds and their timers
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)
            await self.engine.stop()
        return report

    def _settled(self) -> bool:
        return len(self.met_at) == len(self.scenario.needs)

    async def _held(self) -> int:
        store = self.engine.store
        assert store is not None
        rows = await store.inner.orders(OrderFilter(phases=OPEN_PHASES, limit=10_000))
        held = {r.address for r in rows if r.address not in self.met_at}
        held |= {a for a in self.need_at if a not in self.met_at and self.budget_held.get(a)}
        return len(held)


async def run(seed: int, directory: Path, scenario: Scenario | None = None) -> RunReport:
    """Play `scenario` (default: `Scenario.random(seed)`) in `directory`; see the module."""
    played = scenario if scenario is not None else Scenario.random(seed, WATCHED)
    return await ChaosRun(played, directory).play()


__all__ = ["POLICIES", "WATCHED", "ChaosRun", "run"]
