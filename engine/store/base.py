"""The Store interface: what the engine remembers, and the errors it can meet doing so.

One async interface implemented by `sqlite.py` (the default) and, later, a PostgreSQL
store. Both pass one contract suite (`tests/engine/store/`). The money invariants of
docs/architecture.md live here as much as in the engine:

- invariant 1: `create_intent` commits the intent before the caller may call a provider;
- invariant 2: the database itself refuses a second open order for an address;
- invariant 5: budgets are checked and reserved in the same transaction as invariant 2,
  settled or released by `transition`.

All times come from the Clock the store was opened with; query methods accept an explicit
`now` for "as of" questions. Neighbours: `records.py`, `phases.py`, `factory.py`.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Self

from engine.core.clock import Clock
from engine.core.deposits import DepositNeed, NeedState, NewDeposit
from engine.core.errors import EngineError
from engine.core.phases import OrderPhase
from engine.core.records import (
    BudgetLimit,
    BudgetWindow,
    IntentOutcome,
    Lease,
    LedgerEntry,
    NewIntent,
    OrderEvent,
    OrderFilter,
    OrderRecord,
    PolicyRevision,
    ProviderHealth,
    cooldown_until,
)
from engine.core.usage import UsageProfile

# --------------------------------------------------------------------------- errors


class StoreError(EngineError):
    """Base of every error a store raises. Driver exceptions are chained with `from`."""


class StoreUnavailableError(StoreError):
    """The database cannot serve now (locked beyond the busy timeout, disk, connection)."""


class StoreClosedError(StoreError):
    """The store was closed."""


class SchemaVersionError(StoreError):
    """The database's schema does not match this code (newer, or a migration was edited)."""


class UnsupportedStoreURLError(StoreError):
    """The URL names a backend this build cannot open."""


class OrderNotFoundError(StoreError):
    def __init__(self, client_order_id: str) -> None:
        super().__init__(f"no order with client order id {client_order_id!r}")
        self.client_order_id = client_order_id


class DuplicateOrderError(StoreError):
    def __init__(self, client_order_id: str) -> None:
        super().__init__(f"an order with client order id {client_order_id!r} already exists")
        self.client_order_id = client_order_id


class IllegalTransitionError(StoreError):
    """The move is never allowed (for example out of a terminal phase)."""

    def __init__(self, client_order_id: str, from_phase: OrderPhase, to_phase: OrderPhase):
        super().__init__(
            f"order {client_order_id}: illegal transition {from_phase} -> {to_phase}"
            + (" (terminal phases are final)" if from_phase.is_terminal else "")
        )
        self.client_order_id = client_order_id
        self.from_phase = from_phase
        self.to_phase = to_phase


class TransitionConflictError(StoreError):
    """Compare-and-set lost: the order was not in an expected phase (someone moved it)."""

    def __init__(
        self, client_order_id: str, expected: frozenset[OrderPhase], actual: OrderPhase
    ) -> None:
        wanted = ", ".join(sorted(expected))
        super().__init__(f"order {client_order_id}: expected phase in {{{wanted}}}, found {actual}")
        self.client_order_id = client_order_id
        self.expected = expected
        self.actual = actual


# --------------------------------------------------------------------------- interface


class Store(abc.ABC):
    """Orders and their history, the spend ledger, provider health, policy revisions and
    leases. Every method is a single transaction; none holds one across an await."""

    def __init__(self, clock: Clock) -> None:
        #: the source of every time the store writes (docs/architecture.md invariant 8)
        self.clock = clock

    def _as_of(self, now: float | None) -> float:
        """The time a query is asked about: `now` if given, else the clock's."""
        return self.clock.now() if now is None else now

    # ---- orders

    @abc.abstractmethod
    async def create_intent(
        self, intent: NewIntent, *, budgets: list[BudgetLimit], max_open: int = 1
    ) -> IntentOutcome:
        """In one transaction: refuse if the address already has `max_open` open orders,
        refuse if any budget would go over its limit, else insert the intent, its creation
        event and its ledger reservation.

        Each budget's `policy` must be the intent's policy or None (all policies).
        Raises DuplicateOrderError if the client order id is taken.
        """

    @abc.abstractmethod
    async def transition(
        self,
        client_order_id: str,
        to_phase: OrderPhase,
        *,
        expect_from: set[OrderPhase] | frozenset[OrderPhase] | None = None,
        provider_order_id: str | None = None,
        cost_sun: int | None = None,
        refund_sun: int | None = None,
        receipt: Mapping[str, Any] | None = None,
        error: str | None = None,
        note: str | None = None,
        attempt: bool = False,
    ) -> OrderRecord:
        """Move an order, record the event and settle the ledger, atomically.

        Raises IllegalTransitionError for a move `phases.ALLOWED_TRANSITIONS` forbids,
        TransitionConflictError when `expect_from` is given and the order is elsewhere
        (compare-and-set: of two replicas moving one order, one loses), OrderNotFoundError.
        `attempt` counts one more provider call. Fields left None keep their value.
        """

    @abc.abstractmethod
    async def resolve(
        self,
        client_order_id: str,
        to_phase: OrderPhase,
        *,
        by: str,
        reason: str,
        expect_from: set[OrderPhase] | frozenset[OrderPhase] | None = None,
    ) -> OrderRecord:
        """An operator's word on an open order: end it `delivered` or `failed`, with `by`
        (who) and `reason` (why) recorded in its history event (`resolved_by`, `reason`).

        Settles like any move there: `failed` releases the reservation (a new order may be
        placed), `delivered` settles it (the budget stays spent). A compare-and-set like
        `transition`: a tracker that read the order before cannot move it afterwards.
        Raises ValueError for another phase or a blank `by`/`reason`,
        IllegalTransitionError for a terminal order, TransitionConflictError,
        OrderNotFoundError.
        """

    @abc.abstractmethod
    async def get_order(self, client_order_id: str) -> OrderRecord:
        """Raises OrderNotFoundError."""

    @abc.abstractmethod
    async def open_orders(self, address: str | None = None) -> list[OrderRecord]:
        """Orders in an open phase, oldest first (at most 10,000: more would be a bug)."""

    @abc.abstractmethod
    async def orders(self, selection: OrderFilter | None = None) -> list[OrderRecord]: ...

    @abc.abstractmethod
    async def last_orders(
        self, addresses: Collection[str], since: float | None = None
    ) -> dict[str, OrderRecord]:
        """The newest order (by `created_at`, then client order id) of each of `addresses`
        created at or after `since` (None: ever), by address; an address without one is
        absent. One indexed lookup per address (`orders_by_address`), however many orders
        the window holds: the policy cooldowns ask it every pass."""

    @abc.abstractmethod
    async def order_history(self, client_order_id: str) -> list[OrderEvent]:
        """Every event of an order, in order. Raises OrderNotFoundError."""

    # ---- ledger

    @abc.abstractmethod
    async def spent(
        self,
        policy: str | None,
        window: BudgetWindow,
        now: float | None = None,
        *,
        addresses: Collection[str] | None = None,
    ) -> int:
        """Sun reserved (open orders) + settled (terminal orders) in the window holding
        `now`, for `policy` (None: all policies); with `addresses`, for every order of
        these addresses whatever its policy (`BudgetLimit.addresses`)."""

    @abc.abstractmethod
    async def ledger_entries(
        self,
        *,
        client_order_id: str | None = None,
        policy: str | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[LedgerEntry]:
        """Entries in commit order; `since` filters on booked_at."""

    # ---- provider health

    @abc.abstractmethod
    async def record_provider_result(
        self, provider: str, ok: bool, reason: str | None = None
    ) -> ProviderHealth:
        """A success resets the consecutive failures; a failure adds one."""

    @abc.abstractmethod
    async def provider_health(self) -> dict[str, ProviderHealth]: ...

    async def provider_cooldowns(self, now: float | None = None) -> dict[str, float]:
        """Providers still cooling down at `now`, with the time they may be tried again
        (`records.cooldown_until` with its default backoff)."""
        moment = self._as_of(now)
        result: dict[str, float] = {}
        for name, health in (await self.provider_health()).items():
            until = cooldown_until(health)
            if until is not None and until > moment:
                result[name] = until
        return result

    # ---- policy revisions

    @abc.abstractmethod
    async def record_policy_revision(
        self, digest: str, source_summary: str, applied_by: str
    ) -> PolicyRevision: ...

    @abc.abstractmethod
    async def latest_policy_revision(self) -> PolicyRevision | None: ...

    # ---- usage profiles

    @abc.abstractmethod
    async def save_usage_profiles(self, profiles: Collection[UsageProfile]) -> None:
        """Keep these profiles (one per address, replacing what was kept)."""

    @abc.abstractmethod
    async def usage_profiles(
        self, addresses: Collection[str] | None = None
    ) -> dict[str, UsageProfile]:
        """The kept profiles of `addresses` (None: all), by address."""

    # ---- leases

    @abc.abstractmethod
    async def acquire_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        """Take the lease if it is free or expired (or already ours: then extend it).
        Returns it, or None when another holder has it."""

    @abc.abstractmethod
    async def renew_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        """Extend a lease we still hold; None if it expired or changed hands (stop work)."""

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up now; False if we did not hold it."""

    @abc.abstractmethod
    async def lease_holders(self, now: float | None = None) -> dict[str, Lease]:
        """Unexpired leases by name."""

    # ---- deposits (engine/core/deposits.py): episodes and run-time deposit addresses.
    # Not abstract: a store that keeps none (a test double) refuses them.

    async def record_deposit(
        self,
        *,
        policy: str,
        address: str,
        token: str,
        txid: str,
        block: int,
        amount: int,
        log: int | None = None,
    ) -> tuple[DepositNeed, bool]:
        """Open an episode for `address`, or join its open one; (episode, opened now).
        A transfer (`txid`, `log`) recorded before (within `SEEN_KEPT`) does neither: its
        episode comes back as it is, even closed."""
        deposit = NewDeposit(policy, address, token, txid, block, amount, log)
        return (await self.record_deposits([deposit]))[0]

    async def record_deposits(
        self, deposits: Sequence[NewDeposit]
    ) -> list[tuple[DepositNeed, bool]]:
        """`record_deposit` for each, in order, in one transaction (a block's deposits)."""
        raise StoreError(f"{type(self).__name__} keeps no deposit episodes")

    async def deposit_needs(
        self,
        *,
        open_only: bool = True,
        addresses: Collection[str] | None = None,
        policy: str | None = None,
        limit: int = 100_000,
    ) -> list[DepositNeed]:
        """Episodes, newest first (open ones only by default)."""
        raise StoreError(f"{type(self).__name__} keeps no deposit episodes")

    async def update_deposit_need(
        self, need_id: int, *, expect: Collection[NeedState] | None = None, **fields: Any
    ) -> DepositNeed | None:
        """Set fields of an open episode (only while in one of the `expect` states); None
        when it is closed or in another state."""
        raise StoreError(f"{type(self).__name__} keeps no deposit episodes")

    async def update_deposit_needs(
        self, changes: Sequence[tuple[int, Collection[NeedState] | None, Mapping[str, Any]]]
    ) -> list[DepositNeed | None]:
        """`update_deposit_need` for each (id, expect, fields), in one transaction."""
        raise StoreError(f"{type(self).__name__} keeps no deposit episodes")

    async def set_deposit_address(self, policy: str, address: str, present: bool) -> None:
        """Record that `address` was added to (or removed from) `policy` at run time."""
        raise StoreError(f"{type(self).__name__} keeps no deposit addresses")

    async def deposit_addresses(self) -> list[tuple[str, str, bool]]:
        """Every run-time change: (policy, address, present)."""
        raise StoreError(f"{type(self).__name__} keeps no deposit addresses")

    async def set_deposit_cursor(self, name: str, block: int) -> None:
        """The last block whose deposits the follower `name` recorded."""
        raise StoreError(f"{type(self).__name__} keeps no deposit cursor")

    async def deposit_cursor(self, name: str) -> int | None:
        """The block `set_deposit_cursor` last wrote for `name` (None: never)."""
        raise StoreError(f"{type(self).__name__} keeps no deposit cursor")

    # ---- lifecycle

    @abc.abstractmethod
    async def healthcheck(self) -> None:
        """Raise StoreUnavailableError (or SchemaVersionError) unless the store can serve."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection. Idempotent."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
