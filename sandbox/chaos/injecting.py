"""What the chaos harness injects into the engine itself: kills, store outages, and time.

- `Life` is one incarnation of an in-process engine. `Killed` (a `BaseException`, so no
  `except Exception` in the engine can swallow it) is raised at the engine's crash points
  (`engine.act.applying.crash_hook`) when a kill is armed there; from then on the incarnation
  is dead: every store call, crash point and new HTTP request of it raises `Killed`, as if
  the process were gone. The harness then builds a fresh incarnation on the same store
  file and the same World, like a restarted process.
- `ChaosStore` wraps a `Store`: `StoreUnavailableError` on every call while `down`, or on
  a seeded share of calls while `flaky`; it counts calls in flight (the time driver must
  not move time while the store's thread works).
- `GuardedTransport` wraps an httpx transport so a dead incarnation sends nothing more.
- `ChaosClock` is a `VirtualClock` that can say when its next sleeper is due; `drive`
  runs a coroutine and, whenever nothing else can run, jumps the clock to that moment
  (so a provider that never answers costs emulated seconds, not a hung test).

Neighbours: `sandbox/chaos/running.py` (uses all of this), `engine/act/applying.py` (the
crash points and `crash_hook`), `engine/store/base.py` (the interface wrapped).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from engine.core.clock import VirtualClock
from engine.core.deposits import DepositNeed, NeedState, NewDeposit
from engine.core.usage import UsageProfile
from engine.store import (
    BudgetLimit,
    BudgetWindow,
    IntentOutcome,
    Lease,
    LedgerEntry,
    NewIntent,
    OrderEvent,
    OrderFilter,
    OrderPhase,
    OrderRecord,
    PolicyRevision,
    ProviderHealth,
    Store,
    StoreUnavailableError,
)

_T = TypeVar("_T")


class Killed(BaseException):
    """The in-process engine was killed at a crash point (or touched after its death)."""


class Life:
    """One engine incarnation: alive until a kill fires, dead for good after."""

    def __init__(self) -> None:
        self.dead = False
        self.armed: str | None = None
        self.killed_at: str | None = None

    def check(self) -> None:
        if self.dead:
            raise Killed(f"dead since {self.killed_at}")

    def crash_point(self, name: str) -> None:
        """The `engine.act.applying.crash_hook` of this incarnation."""
        self.check()
        if self.armed == name:
            self.dead, self.killed_at, self.armed = True, name, None
            raise Killed(name)


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that a dead incarnation can no longer use."""

    def __init__(self, inner: httpx.AsyncBaseTransport, life: Life) -> None:
        self.inner, self.life = inner, life

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.life.check()
        return await self.inner.handle_async_request(request)


class ChaosStore(Store):
    """A `Store` that can be unavailable; see the module docstring."""

    def __init__(self, inner: Store, life: Life, rng: random.Random) -> None:
        super().__init__(inner.clock)
        self.inner, self.life, self.rng = inner, life, rng
        self.down = False
        self.flaky = 0.0
        self.in_flight = 0
        self.refused = 0

    async def _do(self, call: Callable[[], Awaitable[_T]]) -> _T:
        self.life.check()
        if self.down or (self.flaky and self.rng.random() < self.flaky):
            self.refused += 1
            raise StoreUnavailableError("injected: the database is unavailable")
        self.in_flight += 1
        try:
            result = await call()
        finally:
            self.in_flight -= 1
        self.life.check()  # died while the call ran: its result is never seen
        return result

    async def create_intent(
        self, intent: NewIntent, *, budgets: list[BudgetLimit], max_open: int = 1
    ) -> IntentOutcome:
        return await self._do(
            lambda: self.inner.create_intent(intent, budgets=budgets, max_open=max_open)
        )

    async def transition(
        self,
        client_order_id: str,
        to_phase: OrderPhase,
        *,
        expect_from: set[OrderPhase] | frozenset[OrderPhase] | None = None,
        **fields: Any,
    ) -> OrderRecord:
        return await self._do(
            lambda: self.inner.transition(
                client_order_id, to_phase, expect_from=expect_from, **fields
            )
        )

    async def resolve(
        self,
        client_order_id: str,
        to_phase: OrderPhase,
        *,
        by: str,
        reason: str,
        expect_from: set[OrderPhase] | frozenset[OrderPhase] | None = None,
    ) -> OrderRecord:
        return await self._do(
            lambda: self.inner.resolve(
                client_order_id, to_phase, by=by, reason=reason, expect_from=expect_from
            )
        )

    async def get_order(self, client_order_id: str) -> OrderRecord:
        return await self._do(lambda: self.inner.get_order(client_order_id))

    async def open_orders(self, address: str | None = None) -> list[OrderRecord]:
        return await self._do(lambda: self.inner.open_orders(address))

    async def orders(self, selection: OrderFilter | None = None) -> list[OrderRecord]:
        return await self._do(lambda: self.inner.orders(selection))

    async def last_orders(
        self, addresses: Collection[str], since: float | None = None
    ) -> dict[str, OrderRecord]:
        return await self._do(lambda: self.inner.last_orders(addresses, since))

    async def order_history(self, client_order_id: str) -> list[OrderEvent]:
        return await self._do(lambda: self.inner.order_history(client_order_id))

    async def spent(
        self,
        policy: str | None,
        window: BudgetWindow,
        now: float | None = None,
        *,
        addresses: Collection[str] | None = None,
    ) -> int:
        return await self._do(lambda: self.inner.spent(policy, window, now, addresses=addresses))

    async def ledger_entries(self, **selection: Any) -> list[LedgerEntry]:
        return await self._do(lambda: self.inner.ledger_entries(**selection))

    async def record_provider_result(
        self, provider: str, ok: bool, reason: str | None = None
    ) -> ProviderHealth:
        return await self._do(lambda: self.inner.record_provider_result(provider, ok, reason))

    async def provider_health(self) -> dict[str, ProviderHealth]:
        return await self._do(self.inner.provider_health)

    async def record_policy_revision(
        self, digest: str, source_summary: str, applied_by: str
    ) -> PolicyRevision:
        return await self._do(
            lambda: self.inner.record_policy_revision(digest, source_summary, applied_by)
        )

    async def latest_policy_revision(self) -> PolicyRevision | None:
        return await self._do(self.inner.latest_policy_revision)

    async def save_usage_profiles(self, profiles: Collection[UsageProfile]) -> None:
        await self._do(lambda: self.inner.save_usage_profiles(profiles))

    async def usage_profiles(
        self, addresses: Collection[str] | None = None
    ) -> dict[str, UsageProfile]:
        return await self._do(lambda: self.inner.usage_profiles(addresses))

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        return await self._do(lambda: self.inner.acquire_lease(name, holder, ttl))

    async def renew_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        return await self._do(lambda: self.inner.renew_lease(name, holder, ttl))

    async def release_lease(self, name: str, holder: str) -> bool:
        return await self._do(lambda: self.inner.release_lease(name, holder))

    async def lease_holders(self, now: float | None = None) -> dict[str, Lease]:
        return await self._do(lambda: self.inner.lease_holders(now))

    async def record_deposits(
        self, deposits: Sequence[NewDeposit]
    ) -> list[tuple[DepositNeed, bool]]:
        return await self._do(lambda: self.inner.record_deposits(deposits))

    async def deposit_needs(
        self,
        *,
        open_only: bool = True,
        addresses: Collection[str] | None = None,
        policy: str | None = None,
        limit: int = 100_000,
    ) -> list[DepositNeed]:
        return await self._do(
            lambda: self.inner.deposit_needs(
                open_only=open_only, addresses=addresses, policy=policy, limit=limit
            )
        )

    async def update_deposit_need(
        self, need_id: int, *, expect: Collection[NeedState] | None = None, **fields: Any
    ) -> DepositNeed | None:
        return await self._do(
            lambda: self.inner.update_deposit_need(need_id, expect=expect, **fields)
        )

    async def update_deposit_needs(
        self, changes: Sequence[tuple[int, Collection[NeedState] | None, Mapping[str, Any]]]
    ) -> list[DepositNeed | None]:
        return await self._do(lambda: self.inner.update_deposit_needs(changes))

    async def set_deposit_address(self, policy: str, address: str, present: bool) -> None:
        await self._do(lambda: self.inner.set_deposit_address(policy, address, present))

    async def deposit_addresses(self) -> list[tuple[str, str, bool]]:
        return await self._do(self.inner.deposit_addresses)

    async def set_deposit_cursor(self, name: str, block: int) -> None:
        await self._do(lambda: self.inner.set_deposit_cursor(name, block))

    async def deposit_cursor(self, name: str) -> int | None:
        return await self._do(lambda: self.inner.deposit_cursor(name))

    async def healthcheck(self) -> None:
        await self._do(self.inner.healthcheck)

    async def close(self) -> None:
        await self.inner.close()


class ChaosClock(VirtualClock):
    """A VirtualClock that knows when its next sleeper is due."""

    def next_due(self) -> float | None:
        waiters: list[tuple[float, asyncio.Future[None]]] = self._waiters
        due = [at for at, fut in waiters if not fut.done()]
        return min(due) if due else None


async def drive(clock: ChaosClock, call: Awaitable[_T], busy: Callable[[], bool]) -> _T:
    """Await `call`; when nothing else can run (no ready task, `busy()` false), move
    `clock` to its next sleeper's deadline. Relies on the default event loop's ready
    queue (`_ready`), which only this test harness looks at."""
    task = asyncio.ensure_future(call)
    loop = asyncio.get_running_loop()
    ready: Any = getattr(loop, "_ready", None)
    while not task.done():
        await asyncio.sleep(0)
        if task.done() or (ready is not None and len(ready) > 0):
            continue
        if busy():
            await asyncio.sleep(0.0005)
            continue
        await asyncio.sleep(0)
        if not task.done() and (ready is None or len(ready) == 0) and not busy():
            due = clock.next_due()
            if due is not None:
                clock.set(max(due, clock.now()))
    return task.result()


def guarded(transports: Mapping[str, httpx.AsyncBaseTransport], life: Life) -> dict[str, Any]:
    return {name: GuardedTransport(t, life) for name, t in transports.items()}


__all__ = [
    "ChaosClock",
    "ChaosStore",
    "GuardedTransport",
    "Killed",
    "Life",
    "drive",
    "guarded",
]
