"""The sidecar's loop: reconciliation passes on an interval and on wake-ups, one at a time.

`Controller(source, ...)` loads the policy set, opens a `Session` and runs
`Reconciler.reconcile_once(apply=True)` - the same pass as `energyctl apply` - whenever:

- the interval elapses (`observation.interval`; `busy_interval` while orders are open, so
  deliveries are confirmed promptly);
- something wakes it (`wake(reason)`): a new block touching a watched address (follow
  mode, `engine/observing.py`), a provider callback, or an ensure request.

A lock keeps one pass at a time. `ensure(address, energy)` adds a demand that the next
pass hands to the planner (`demands=`): concurrent requests for one address fold into one
demand, and the store's one-open-order rule holds across passes, so a burst never buys
twice for one need. The policy directory is polled (`PolicySource.fingerprint`): a valid
change replaces the session between passes; an invalid one is logged, kept in `status()`
and ignored, the last good set stays in force. `stop()` lets no new pass start, waits up
to `stop_grace` for the one in flight (its provider calls finish, its results are
written), then closes the session: an order cut off later is a write-ahead intent that
the next start resolves (ARCHITECTURE.md invariant 1).

Library code: never prints, never exits; logs through `logging` (`engine/logs.py` formats).
Neighbours: `engine/reconciling.py`, `engine/session.py`, `engine/observing.py`,
`engine/reloading.py`; served by `engine/service.py`, started by `engine/sidecar.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.clock import Clock, SystemClock
from engine.observing import CachingSource
from engine.reconciling import PassResult, Reconciler
from engine.reloading import Loaded, PolicySource
from engine.session import Session
from engine.tracking import TrackingSettings
from policies.policyset import PolicySet

log = logging.getLogger("energyctl.controller")

SessionFactory = Callable[[PolicySet], Session]
PassObserver = Callable[["Controller", PassResult | None, float], None]


class ControllerError(Exception):
    """The controller cannot start (no valid policy set, store or node unreachable)."""


class UnknownAddress(ControllerError):
    """An ensure request for an address no policy watches."""


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    reload_interval: float = 5.0  # seconds between polls of the policy files
    busy_interval: float = 3.0  # pass interval while orders are open
    follow_interval: float = 1.0  # follow mode: seconds between block polls
    stop_grace: float = 20.0  # SIGTERM: most seconds to let the pass in flight finish
    ensure_poll: float = 0.5  # ensure with wait: seconds between reads of the address
    intent_grace: float = 0.0  # a restarted sidecar is the only writer of its intents


class Controller:
    """Owns the loop; see the module docstring."""

    def __init__(
        self,
        source: PolicySource,
        *,
        clock: Clock | None = None,
        settings: ControllerSettings | None = None,
        session_factory: SessionFactory | None = None,
        observers: list[PassObserver] | None = None,
        wrap_providers: Callable[[Any], Any] | None = None,
    ) -> None:
        self.source = source
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.settings = settings or ControllerSettings()
        self._factory = session_factory or self._default_session
        self.observers = list(observers or [])
        self._wrap = wrap_providers or (lambda pool: pool)
        self.policy_set: PolicySet | None = None
        self.policy_source = "files"
        self.session: Session | None = None
        self.reconciler: Reconciler | None = None
        self.observer: CachingSource | None = None
        self.fingerprint = ""
        self.reload_errors: tuple[str, ...] = ()
        self.last_pass: PassResult | None = None
        self.last_pass_at: float | None = None  # clock time the last pass finished
        self.last_pass_error: str | None = None
        self.passes = 0
        self.stopping = False
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._wake_reasons: set[str] = set()
        self._demands: dict[str, int] = {}
        self._waiters: list[asyncio.Future[PassResult]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._tracked_at = float("-inf")  # monotonic time of the last pass that tracked

    # ------------------------------------------------------------------ lifecycle

    def _default_session(self, policy_set: PolicySet) -> Session:
        tracking = TrackingSettings(intent_grace=self.settings.intent_grace)
        return Session(policy_set, clock=self.clock, tracking=tracking, applied_by="energyctl run")

    async def start(self) -> None:
        """Load the policy set and open its session; ControllerError if it cannot."""
        loaded = await asyncio.to_thread(self.source.load)
        if loaded.policy_set is None:
            raise ControllerError("invalid policy set:\n" + "\n".join(loaded.errors))
        await self._install(loaded, "files")

    async def _install(self, loaded: Loaded, origin: str) -> None:
        assert loaded.policy_set is not None
        session = self._factory(loaded.policy_set)
        try:
            await session.__aenter__()
        except Exception as exc:
            raise ControllerError(f"cannot open the session: {exc}") from exc
        old = self.session
        observer = CachingSource(session.reader, self.clock, loaded.policy_set)
        self.session, self.observer, self.policy_set = session, observer, loaded.policy_set
        self.reconciler = Reconciler(
            loaded.policy_set,
            store=session.store,
            reader=observer,
            providers=self._wrap(session.pool),
            clock=self.clock,
            tracking=TrackingSettings(intent_grace=self.settings.intent_grace),
            applied_by="energyctl run",
        )
        if origin == "files":  # a set sent over HTTP stays until the files change
            self.fingerprint = loaded.fingerprint
        self.policy_source, self.reload_errors = origin, ()
        log.info(
            "policy set in force",
            extra={"event": "policies", "revision": loaded.policy_set.revision, "from": origin},
        )
        if old is not None:
            await old.aclose()

    async def run(self) -> None:
        """Pass after pass until `stop()`; then close the session."""
        if self.session is None:
            await self.start()
        assert self.policy_set is not None
        self._tasks = [asyncio.create_task(self._watch_files(), name="energyctl:reload")]
        if self.policy_set.settings.observation.mode == "follow":
            self._tasks.append(asyncio.create_task(self._follow(), name="energyctl:follow"))
        try:
            while not self.stopping:
                await self.run_pass()
                await self._sleep_until_woken()
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._fail_waiters(ControllerError("the sidecar is stopping"))
            if self.session is not None:
                await self.session.aclose()

    async def stop(self) -> None:
        """No new pass; the one in flight gets `stop_grace` seconds to finish."""
        self.stopping = True
        self._wake.set()
        try:  # the lock is free once the pass in flight has finished
            await asyncio.wait_for(self._lock.acquire(), timeout=self.settings.stop_grace)
        except TimeoutError:
            return
        self._lock.release()

    def wake(self, reason: str) -> None:
        """Start a pass now (or right after the one running)."""
        self._wake_reasons.add(reason)
        self._wake.set()

    async def _sleep_until_woken(self) -> None:
        interval = self._interval()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=interval)
        self._wake.clear()

    def _interval(self) -> float:
        assert self.policy_set is not None
        interval = float(self.policy_set.settings.observation.interval)
        if self.last_pass is not None and self._open_orders(self.last_pass):
            interval = min(interval, self.settings.busy_interval)
        return interval

    @staticmethod
    def _open_orders(result: PassResult) -> bool:
        return any(o.client_order_id for o in result.outcomes) or any(
            str(e.condition) == "TopUpPending" or str(e.reason) == "UnresolvedOrder"
            for e in result.plan.entries
        )

    # ------------------------------------------------------------------ passes

    async def run_pass(self) -> PassResult | None:
        """One pass with the demands gathered so far (skipped once stopping)."""
        async with self._lock:
            if self.stopping or self.reconciler is None:
                return None
            demands, self._demands = self._demands, {}
            waiters, self._waiters = self._waiters, []
            reasons, self._wake_reasons = self._wake_reasons, set()
            if self.observer is not None:
                self.observer.refresh(demands)
            started = time.perf_counter()
            quick = bool(demands) and reasons <= {"ensure"} and self._tracked_recently()
            try:
                if quick:
                    result = await self._quick_pass(self.reconciler, demands)
                else:
                    result = await self.reconciler.reconcile_once(apply=True, demands=demands)
                    self._tracked_at = time.monotonic()
            except Exception as exc:  # the loop survives a failed pass; it says why
                self.last_pass_error = f"{type(exc).__name__}: {exc}"
                log.error("pass failed", extra={"event": "pass", "error": self.last_pass_error})
                self._notify(None, time.perf_counter() - started)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(ControllerError(self.last_pass_error))
                return None
            elapsed = time.perf_counter() - started
            self.passes += 1
            self.last_pass, self.last_pass_at, self.last_pass_error = result, self.clock.now(), None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(result)
            if self.observer is not None:  # orders in flight: always read them afresh
                self.observer.refresh(_busy_addresses(result))
            _log_pass(result, elapsed, sorted(reasons))
            self._notify(result, elapsed)
            return result

    def _tracked_recently(self) -> bool:
        return time.monotonic() - self._tracked_at < self.settings.busy_interval

    @staticmethod
    async def _quick_pass(rec: Reconciler, demands: dict[str, int]) -> PassResult:
        """An ensure pass right after a full one: the same steps without tracking (open
        orders count as open until the next full pass moves them: never a second buy)."""
        observations = await rec.observe()
        decided = await rec.decide(await rec.inputs(observations, demands))
        outcomes, notes = await rec.execute(decided, observations)
        return PassResult(decided, True, tuple(outcomes), (), rec.policy_set.revision, tuple(notes))

    def _notify(self, result: PassResult | None, elapsed: float) -> None:
        for observer in self.observers:
            try:
                observer(self, result, elapsed)
            except Exception:  # an observer never stops the loop
                log.exception("pass observer failed", extra={"event": "observer"})

    def _fail_waiters(self, error: Exception) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    # ------------------------------------------------------------------ ensure

    async def ensure(self, address: str, energy: int, wait: float = 0.0) -> dict[str, Any]:
        """Buy now if `address` needs it for `energy`; with `wait`, return once the chain
        shows that much available energy or `wait` seconds have passed."""
        if self.policy_set is None or self.policy_set.policy_for(address) is None:
            raise UnknownAddress(f"{address} is not watched by any policy")
        if self.stopping:
            raise ControllerError("the sidecar is stopping")
        waiter: asyncio.Future[PassResult] = asyncio.get_running_loop().create_future()
        self._demands[address] = max(self._demands.get(address, 0), energy)
        self._waiters.append(waiter)
        self.wake("ensure")
        result = await waiter
        answer = _ensure_answer(result, address, energy)
        if wait > 0 and not answer["satisfied"]:
            answer.update(await self._wait_for_energy(address, energy, wait))
        return answer

    async def _wait_for_energy(self, address: str, energy: int, wait: float) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        available: int | None = None
        while not self.stopping:
            session = self.session
            if session is not None:
                try:
                    available = (await session.reader.snapshot(address)).available
                except Exception as exc:  # a failed read: try again until the deadline
                    log.debug("ensure read failed", extra={"error": str(exc)})
            if available is not None and available >= energy:
                return {"satisfied": True, "available": available, "timed_out": False}
            if time.monotonic() >= deadline:
                break
            self.wake("ensure-wait")  # tracking moves the order on in the next pass
            await asyncio.sleep(min(self.settings.ensure_poll, deadline - time.monotonic()))
        return {"satisfied": False, "available": available, "timed_out": True}

    # ------------------------------------------------------------------ policies

    async def replace(self, loaded: Loaded, origin: str) -> None:
        """Put a validated set in force between passes."""
        async with self._lock:
            if not self.stopping:
                await self._install(loaded, origin)
        self.wake("policies")

    async def reload(self) -> bool:
        """Load the files if they changed; True when a new set was put in force."""
        if await asyncio.to_thread(self.source.fingerprint) == self.fingerprint:
            return False
        loaded = await asyncio.to_thread(self.source.load)
        if loaded.policy_set is None:
            if loaded.errors != self.reload_errors:
                log.error(
                    "policy change rejected; the last good set stays in force",
                    extra={"event": "policies", "errors": list(loaded.errors)},
                )
            self.reload_errors, self.fingerprint = loaded.errors, loaded.fingerprint
            return False
        try:
            await self.replace(loaded, "files")
        except ControllerError as exc:
            self.reload_errors = (str(exc),)
            log.error("policy change not applied", extra={"event": "policies", "error": str(exc)})
            return False
        return True

    async def _watch_files(self) -> None:
        while not self.stopping:
            await asyncio.sleep(self.settings.reload_interval)
            try:
                await self.reload()
            except Exception:
                log.exception("policy reload failed", extra={"event": "policies"})

    async def _follow(self) -> None:
        while not self.stopping:
            observer = self.observer
            if observer is not None:
                try:
                    if await observer.follow():
                        self.wake("block")
                except Exception as exc:
                    log.warning("block following failed", extra={"error": str(exc)})
            await asyncio.sleep(self.settings.follow_interval)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        result = self.last_pass
        return {
            "revision": self.policy_set.revision if self.policy_set else None,
            "policySource": self.policy_source,
            "reloadErrors": list(self.reload_errors),
            "passes": self.passes,
            "lastPassAt": self.last_pass_at,
            "lastPassError": self.last_pass_error,
            "stopping": self.stopping,
            "addresses": [e.to_json() for e in result.plan.entries] if result else [],
        }

    def observation_age(self) -> float | None:
        """Seconds since the oldest successful full read of the watched addresses."""
        if self.observer is None or self.observer.swept_at is None:
            return None
        return max(0.0, self.clock.now() - self.observer.swept_at)


def _busy_addresses(result: PassResult) -> set[str]:
    busy = {o.address for o in result.outcomes if o.client_order_id}
    busy |= {t.address for t in result.tracked}
    busy |= {
        e.address for e in result.plan.entries if str(e.condition) in ("TopUpPending", "Blocked")
    }
    return busy


def _ensure_answer(result: PassResult, address: str, energy: int) -> dict[str, Any]:
    entry = next((e for e in result.plan.entries if e.address == address), None)
    outcome = next((o for o in result.outcomes if o.address == address), None)
    available = entry.available if entry is not None else None
    return {
        "address": address,
        "energy": energy,
        "available": available,
        "satisfied": available is not None and available >= energy,
        "condition": str(entry.condition) if entry else None,
        "reason": str(entry.reason) if entry else None,
        "detail": entry.detail if entry else None,
        "order": outcome.to_json() if outcome is not None else None,
        "timed_out": False,
    }


def _log_pass(result: PassResult, elapsed: float, reasons: list[str]) -> None:
    for outcome in result.outcomes:
        log.info("decision", extra={"event": "decision", "data": outcome.to_json()})
    for tracked in result.tracked:
        if tracked.moved or tracked.alert:
            log.info("order state", extra={"event": "order", "data": tracked.to_json()})
    log.debug(
        "pass",
        extra={
            "event": "pass",
            "seconds": round(elapsed, 4),
            "actions": len(result.plan.actions),
            "woken_by": reasons,
        },
    )


__all__ = [
    "Controller",
    "ControllerError",
    "ControllerSettings",
    "PassObserver",
    "UnknownAddress",
]
