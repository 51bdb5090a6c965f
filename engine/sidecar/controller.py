"""The sidecar's loop: planning passes and tracking, each one at a time, never blocking each other.

`Controller(source, ...)` loads the policy set, opens a `Session` and runs two loops:

- **passes** (`run_pass`, under the pass lock): `Reconciler.run_pass` with a tracker
  alongside - observe,
  plan, buy - every `observation.interval` and at once when something wakes it
  (`wake(reason)`): an ensure request, a provider callback, a valid policy change, a new
  block touching a watched address (follow mode, `engine/observe/observing.py`), or tracking
  having ended an order;
- **tracking** (`track_once`, under its own lock): the open orders moved on every
  `busy_interval`, and at once on a callback, a block or an ensure waiting for energy. It
  reads the chain for those orders' addresses in one concurrent batch.

An ensure request therefore never waits for tracking: it waits at most for the planning
pass in flight. Tracking and planning running side by side can never buy twice for one
need: the pass reads the open orders before the chain, tracking marks an address for a
fresh read before ending its order (`Reconciler.run_pass` has the argument), the
store refuses a second open order per address, and tracking leaves alone an intent that
a pass of this process may still be placing (`rounds.py`).

Replicas (`shards` > 0, the default on PostgreSQL): a lease loop runs
`ShardLeases.tick` every `lease_ttl / 3` seconds (`sharding.py`), and passes,
tracking and ensure requests act only on the addresses whose shard this replica holds;
an ensure for another replica's address raises `NotOwner` naming the holder.

`ensure(address, energy)` adds a demand that the next pass hands to the planner:
concurrent requests for one address fold into one demand. The policy directory is polled
(`PolicySource.fingerprint`): a valid change replaces the session between passes; an
invalid one is logged, kept in `status()` and ignored. `stop()` lets no new pass or
tracking start, waits up to `stop_grace` for those in flight (their provider calls
finish, their results are written), then the session closes: an order cut off later is a
write-ahead intent that the next start resolves (docs/architecture.md invariant 1).

Library code: never prints, never exits; logs through `logging`. Neighbours:
`engine/reconciling.py`, `engine/session.py`, `engine/observe/observing.py`,
`reloading.py`, `ensuring.py`; served by `service.py`, started by
`running.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.act.tracking import TrackingSettings, TrackResult
from engine.core.clock import Clock, SystemClock
from engine.core.snapshots import EnergySnapshot
from engine.observe.observing import CachingSource
from engine.reconciling import PassResult, Reconciler
from engine.session import Session
from engine.sidecar.admitting import Source
from engine.sidecar.depositing import DepositDesk, DepositSettings, make_sources
from engine.sidecar.ensuring import EnsureDesk, UnknownAddress, busy_addresses, log_pass
from engine.sidecar.reloading import Loaded, PolicySource
from engine.sidecar.rounds import IN_FLIGHT_GRACE, RoundRules, track_round
from engine.sidecar.sharding import LeaseKeeper, NotOwner, ShardLeases, make_leases
from engine.sidecar.swapping import ControllerError, PolicySwapper
from engine.sidecar.webhooks import WebhookSender
from engine.store import Store
from policies.policyset import PolicySet

log = logging.getLogger("energyctl.controller")

SessionFactory = Callable[[PolicySet], Session]
PassObserver = Callable[["Controller", PassResult | None, float], None]
GATE_POLL = 0.005  # seconds between looks at the tracking gate
_TRACK_REASONS = ("callback:", "block", "ensure-wait", "policies", "deposit")


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    reload_interval: float = 5.0  # seconds between polls of the policy files
    busy_interval: float = 3.0  # seconds between tracking rounds
    follow_interval: float = 1.0  # follow mode: seconds between block polls
    stop_grace: float = 20.0  # SIGTERM: most seconds to let the work in flight finish
    ensure_poll: float = 0.5  # ensure with wait: seconds between reads of the address
    quote_ttl: float = 2.0  # seconds a vendor quote or balance is reused across passes
    #: an intent not written by a pass of this process (a previous life of the process,
    #: or another replica) is resolved once this old. None: 0 for a single sidecar (a
    #: restart resolves its intents at once); with shards, max(60, 4 x lease_ttl)
    intent_grace: float | None = None
    replica: str = "energyctl"  # this replica's name (leases, status, metrics)
    #: address shards leased among replicas; None: 64 on PostgreSQL, 0 (off) on SQLite
    shards: int | None = None
    lease_ttl: float = 15.0  # seconds a shard lease lives without renewal

    def grace(self, sharded: bool) -> float:
        if self.intent_grace is not None:
            return self.intent_grace
        return max(60.0, 4.0 * self.lease_ttl) if sharded else 0.0


class Controller:
    """Owns the loops; see the module docstring.

    It holds three parts and calls them: `swaps` (a `PolicySwapper`: reloads, pushes,
    fixed settings), `desk` (an `EnsureDesk`: ensure requests) and, with shards, a
    `LeaseKeeper` over `leases`; each gets the few things it needs of the controller.
    """

    def __init__(
        self,
        source: PolicySource,
        *,
        clock: Clock | None = None,
        settings: ControllerSettings | None = None,
        session_factory: SessionFactory | None = None,
        observers: list[PassObserver] | None = None,
        wrap_providers: Callable[[Any], Any] | None = None,
        listen_override: str | None = None,
        allowed_secrets: frozenset[Source] = frozenset(),
    ) -> None:
        self.source = source
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.settings = settings or ControllerSettings()
        self._factory = session_factory or self._default_session
        self.observers = list(observers or [])
        self._wrap = wrap_providers or (lambda pool: pool)
        self.policy_set: PolicySet | None = None
        self.session: Session | None = None
        self.reconciler: Reconciler | None = None
        self.observer: CachingSource | None = None
        #: the deposit desk of the set's DepositPolicies (None: the set has none)
        self.deposits: DepositDesk | None = None
        self.last_pass: PassResult | None = None
        self.last_pass_at: float | None = None  # clock time the last pass finished
        self.last_pass_error: str | None = None
        self.passes = 0
        self.tracking_rounds = 0
        self.stopping = False
        self.started_at: float | None = None
        self._lock = asyncio.Lock()  # one planning pass at a time
        self._track_lock = asyncio.Lock()  # one tracking round at a time
        self._wake = asyncio.Event()
        self._track_wake = asyncio.Event()
        self._wake_reasons: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._tracked: list[TrackResult] = []  # tracking results not yet in a PassResult
        self._mine: set[str] = set()  # intents written by passes of ours that finished
        self._running_since: float | None = None  # start of the pass in flight
        self._failed: list[tuple[float, float | None]] = []  # windows of failed passes
        self.leases: ShardLeases | None = None
        self._keeper: LeaseKeeper | None = None
        self._owned_seen: frozenset[str] | None = None
        self.swaps = PolicySwapper(
            source,
            self.clock,
            install=self._install,
            running=lambda: self.policy_set,
            locks=(self._track_lock, self._lock),
            wake=self.wake,
            stopping=lambda: self.stopping,
            reload_every=self.settings.reload_interval,
            listen_override=listen_override,
            allowed_secrets=allowed_secrets,
        )
        self.desk = EnsureDesk(
            self.clock,
            poll=self.settings.ensure_poll,
            watched=self._watches,
            owned=self._owned,
            owner=self._owner_of,
            read=self._read_one,
            wake=self.wake,
            stopping=lambda: self.stopping,
        )

    # ------------------------------------------------------------------ lifecycle

    def _default_session(self, policy_set: PolicySet) -> Session:
        return Session(policy_set, clock=self.clock, applied_by="energyctl run")

    async def start(self) -> None:
        """Load the policy set and open its session; ControllerError if it cannot."""
        loaded = await asyncio.to_thread(self.source.load)
        if loaded.policy_set is None:
            raise ControllerError("invalid policy set:\n" + "\n".join(loaded.errors))
        self.started_at = self.clock.now()
        await self.swaps.put_in_force(loaded, "files")
        assert self.session is not None and self.policy_set is not None
        s = self.settings
        self.leases = make_leases(
            self._store,
            self.session.store_url,
            self.clock,
            replica=s.replica,
            shards=s.shards,
            ttl=s.lease_ttl,
        )
        if self.leases is not None:
            self._keeper = LeaseKeeper(
                self.leases, self.clock, wake=self.wake, stopping=lambda: self.stopping
            )

    async def _install(self, loaded: Loaded) -> None:
        """Open `loaded`'s session and build its Reconciler; then close the old session."""
        assert loaded.policy_set is not None
        session = self._factory(loaded.policy_set)
        try:
            await session.__aenter__()
        except Exception as exc:
            raise ControllerError(f"cannot open the session: {exc}") from exc
        old = self.session
        observer = CachingSource(session.reader, self.clock, loaded.policy_set)
        self.session, self.observer, self.policy_set = session, observer, loaded.policy_set
        self.reconciler = session.make_reconciler(
            reader=observer,
            providers=self._wrap(session.pool),
            # intent grace: `rounds.py` decides instead
            tracking=TrackingSettings(intent_grace=0.0, call_timeout=session.call_timeout),
            quote_ttl=self.settings.quote_ttl,
        )
        self.reconciler.tracker.before_move = lambda address: observer.refresh([address])
        old_desk = self.deposits
        self.deposits = self._deposit_desk(session, loaded.policy_set, old_desk)
        if old_desk is not None:
            await old_desk.aclose()
        if old is not None:
            await old.aclose()

    def _deposit_desk(
        self, session: Session, policy_set: PolicySet, old: DepositDesk | None
    ) -> DepositDesk | None:
        """The new set's deposit desk; it follows blocks from where `old` stopped."""
        if not policy_set.deposit_policies:
            return None
        return DepositDesk(
            policy_set.deposit_policies,
            store=session.store,
            reader=session.reader,
            providers=self._wrap(session.pool),
            clock=self.clock,
            sources=make_sources(policy_set, self.clock),
            settings=DepositSettings(
                follow_interval=self.settings.follow_interval,
                interval=float(policy_set.settings.observation.interval),
                quote_ttl=self.settings.quote_ttl,
            ),
            webhooks=WebhookSender(self.clock),
            wake_tracking=lambda: self.wake("deposit"),
            call_timeout=session.call_timeout,
            follower_start=old.follower.next_height if old is not None else None,
            cursor=self.settings.replica,
        )

    async def run(self) -> None:
        """Passes and tracking until `stop()`; then close the session."""
        if self.session is None:
            await self.start()
        assert self.policy_set is not None
        self._tasks = [
            asyncio.create_task(self.swaps.watch_files(), name="energyctl:reload"),
            asyncio.create_task(self._track_loop(), name="energyctl:track"),
        ]
        self._tasks.append(asyncio.create_task(self._deposit_loop(), name="energyctl:deposits"))
        if self.policy_set.settings.observation.mode == "follow":
            self._tasks.append(asyncio.create_task(self._follow(), name="energyctl:follow"))
        if self._keeper is not None:
            await self._keeper.tick()  # the first pass already knows what this replica holds
            self._tasks.append(asyncio.create_task(self._keeper.loop(), name="energyctl:lease"))
        try:
            while not self.stopping:
                await self.run_pass()
                interval = float(self.policy_set.settings.observation.interval)
                await self._wait(self._wake, interval)
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.desk.fail_all(ControllerError("the sidecar is stopping"))
            if self._keeper is not None:
                await self._keeper.release()
            if self.deposits is not None:
                await self.deposits.aclose()
            if self.session is not None:
                await self.session.aclose()

    async def stop(self) -> None:
        """No new pass or tracking round; those in flight get `stop_grace` seconds."""
        self.stopping = True
        self._wake.set()
        self._track_wake.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.stop_grace
        for lock in (self._lock, self._track_lock):  # free once the work in flight ends
            try:
                await asyncio.wait_for(lock.acquire(), timeout=max(0.0, deadline - loop.time()))
            except TimeoutError:
                return
            lock.release()

    def wake(self, reason: str) -> None:
        """Start a pass now (or right after the one running); some reasons track too."""
        self._wake_reasons.add(reason)
        self._wake.set()
        if reason.startswith(_TRACK_REASONS):
            self._track_wake.set()

    async def _wait(self, event: asyncio.Event, seconds: float) -> None:
        """Until `event` is set or `seconds` of the clock pass; then clear it."""
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (sleeper, waiter):
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await future
        event.clear()

    # ------------------------------------------------------------------ passes

    def _owned(self) -> frozenset[str] | None:
        """The addresses this process may work on (None: all of them)."""
        if self.leases is None or self.policy_set is None:
            return None
        return self.leases.owned(self.policy_set.addresses)

    def _scope(self) -> frozenset[str] | None:
        """`_owned()` for a pass; the observer sweeps just those (a new set: at once)."""
        owned = self._owned()
        if owned is not None and self.observer is not None and owned != self._owned_seen:
            self.observer.watch(owned)
        self._owned_seen = owned
        return owned

    def _windows(self) -> tuple[tuple[float, float | None], ...]:
        now = self.clock.now()
        self._failed = [w for w in self._failed if (w[1] or now) > now - IN_FLIGHT_GRACE]
        running = self._running_since
        return (*self._failed, *([(running, None)] if running is not None else []))

    async def run_pass(self) -> PassResult | None:
        """One planning pass with the demands gathered so far (skipped once stopping)."""
        async with self._lock:
            if self.stopping or self.reconciler is None:
                return None
            demands, waiters = self.desk.take()
            reasons, self._wake_reasons = self._wake_reasons, set()
            if self.observer is not None:
                self.observer.refresh(demands)
            started = time.perf_counter()
            self._running_since = began = self.clock.now()
            try:
                result = await self.reconciler.run_pass(
                    apply=True, demands=demands, only=self._scope(), tracker_alongside=True
                )
            except Exception as exc:  # the loop survives a failed pass; it says why
                self._running_since = None  # its actions may outlive it: keep its window
                self._failed.append((began, self.clock.now()))
                self.last_pass_error = f"{type(exc).__name__}: {exc}"
                log.error("pass failed", extra={"event": "pass", "error": self.last_pass_error})
                self._notify(None, time.perf_counter() - started)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(ControllerError(self.last_pass_error))
                return None
            self._mine.update(
                a.client_order_id for o in result.outcomes for a in o.attempts if a.client_order_id
            )
            self._running_since = None
            tracked, self._tracked = self._tracked, []
            result = dataclasses.replace(result, tracked=tuple(tracked))
            elapsed = time.perf_counter() - started
            self.passes += 1
            self.last_pass, self.last_pass_at, self.last_pass_error = result, self.clock.now(), None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(result)
            if self.observer is not None:  # orders in flight: always read them afresh
                self.observer.refresh(busy_addresses(result))
            log_pass(result, elapsed, sorted(reasons))
            self._notify(result, elapsed)
            return result

    def _notify(self, result: PassResult | None, elapsed: float) -> None:
        for observer in self.observers:
            try:
                observer(self, result, elapsed)
            except Exception:  # an observer never stops the loop
                log.exception("pass observer failed", extra={"event": "observer"})

    # ------------------------------------------------------------------ tracking

    async def track_once(self) -> list[TrackResult]:
        """One tracking round (`rounds.py`); wakes a pass when an order ended (its
        address may need buying again)."""
        async with self._track_lock:
            rec, session = self.reconciler, self.session
            if self.stopping or rec is None or session is None:
                return []
            open_orders = await rec.store.open_orders()
            self._mine &= {o.client_order_id for o in open_orders}
            grace = self.settings.grace(self.leases is not None)
            rules = RoundRules(frozenset(self._mine), self._windows(), grace)
            owned = self._owned()
            if owned is not None and self.deposits is not None:  # deposit orders: every replica
                policies = self.deposits.policies
                owned = owned | {o.address for o in open_orders if o.policy in policies}
            results = await track_round(
                rec, session.reader, open_orders, rules, owned=owned, gate=self._gate
            )
            if results:
                self.tracking_rounds += 1
            self._tracked.extend(r for r in results if r.moved or r.alert)
            if any(r.moved and not r.after.is_open for r in results):
                self.wake("tracked")
            return results

    async def _gate(self) -> None:
        """Tracking waits here while a planning pass runs or demands wait for one (a
        short poll: the pass lock is also held by a policy swap, which wakes no one)."""
        while not self.stopping and (self._lock.locked() or self.desk.demands):  # noqa: ASYNC110
            await asyncio.sleep(GATE_POLL)

    async def _track_loop(self) -> None:
        while not self.stopping:
            try:
                await self.track_once()
            except Exception:
                log.exception("tracking failed", extra={"event": "order"})
            await self._wait(self._track_wake, self.settings.busy_interval)

    # ------------------------------------------------------------------ following

    async def follow_once(self) -> bool:
        """Follow mode: read new blocks; wake a pass when one touched a watched address."""
        observer = self.observer
        if observer is None or not await observer.follow():
            return False
        self.wake("block")
        return True

    async def _follow(self) -> None:
        while not self.stopping:
            try:
                await self.follow_once()
            except Exception as exc:
                log.warning("block following failed", extra={"error": str(exc)})
            await self.clock.sleep(self.settings.follow_interval)

    async def _deposit_loop(self) -> None:
        """The deposit desk's rounds (`depositing.py`); the desk in force at each round
        (a policy change may replace it). Under the tracking lock: never beside a swap."""
        while not self.stopping:
            desk = self.deposits
            if desk is not None:
                try:
                    async with self._track_lock:
                        await desk.round()
                except Exception:
                    log.exception("deposit round failed", extra={"event": "deposits"})
            await self.clock.sleep(self.settings.follow_interval)

    # ------------------------------------------------------------------ the parts' needs

    def _store(self) -> Store:
        if self.session is None:
            raise ControllerError("no session")
        return self.session.store

    def _watches(self, address: str) -> bool:
        return self.policy_set is not None and self.policy_set.policy_for(address) is not None

    async def _owner_of(self, address: str) -> str | None:
        assert self.leases is not None
        return await self.leases.owner(address)

    async def _read_one(self, address: str) -> EnergySnapshot:
        if self.session is None:
            raise ControllerError("no session")
        return await self.session.reader.snapshot(address)

    # ------------------------------------------------------------------ requests

    async def ensure(self, address: str, energy: int, wait: float = 0.0) -> dict[str, Any]:
        """An ensure request (`EnsureDesk.ensure`): answered by the pass that carries it.
        For a deposit address, the deposit desk's episode (`DepositDesk.ensure`)."""
        desk = self.deposits
        if desk is not None and not self._watches(address) and desk.policy_of(address):
            return await desk.ensure(address, wait)
        return await self.desk.ensure(address, energy, wait)

    def load_pushed(self, files: Mapping[str, str]) -> Loaded:
        """A set sent over HTTP, validated under the push rules (`PolicySwapper`)."""
        return self.swaps.load_pushed(files)

    async def replace(self, loaded: Loaded, origin: str) -> None:
        """Put a validated set in force between passes and tracking rounds."""
        await self.swaps.replace(loaded, origin)

    @property
    def restart_required(self) -> tuple[str, ...]:
        """Why the last refused change needs a restart (empty: none)."""
        return self.swaps.restart_required

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        result = self.last_pass
        return {
            "revision": self.policy_set.revision if self.policy_set else None,
            "policySource": self.swaps.policy_source,
            "reloadErrors": list(self.swaps.reload_errors),
            "passes": self.passes,
            "trackingRounds": self.tracking_rounds,
            "lastPassAt": self.last_pass_at,
            "lastPassError": self.last_pass_error,
            "stopping": self.stopping,
            "replica": self.leases.status() if self.leases else {"name": self.settings.replica},
            "addresses": [e.to_json() for e in result.plan.entries] if result else [],
            "deposits": self.deposits.status() if self.deposits is not None else {},
        }

    def observation_age(self) -> float | None:
        """Seconds since the oldest successful full read of the watched addresses."""
        if self.observer is None or self.observer.swept_at is None:
            return None
        return max(0.0, self.clock.now() - self.observer.swept_at)


__all__ = [
    "Controller",
    "ControllerError",
    "ControllerSettings",
    "NotOwner",
    "PassObserver",
    "UnknownAddress",
]
