"""Order delivery in emulated time: when energy is delegated, and when it is taken back.

Every emulator keeps its vendor-specific order records and, next to each, a `Delivery`
from this module's `DeliveryBook`. The book is advanced with `tick(now)`; each call moves
every delivery to where it should be at `now`, in the order events were due:

    accepted --(delay)--> delegated (all, or a fraction) --(duration)--> reclaimed

A delegation refused by the `Delegator` (`DelegationError`) is retried `max_attempts`
times, `retry_delay` apart, and then the delivery fails. With `wait_for_capacity` (TronSave's
market) a delivery first asks the delegator's `ChainView` what it can delegate: with
`partial_fill` it takes what is there now and comes back for the rest; without, it waits
until the whole order fits. Faults (`faults.py`) fixed at acceptance: delay, no delivery,
fraction delivered.

`tick` only walks the deliveries still in progress (something scheduled or a delegation
not yet reclaimed): a finished delivery can never change again, so a week of emulated
orders costs each tick no more than the orders still open.

Neighbours: `base.py` (Delegator, ChainView), `emulating.py` (calls `tick` on each request
and from its background loop). Construct: `DeliveryBook(delegator, delay=3.0)`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.providers.base import ChainView, DelegationError, Delegator
from sandbox.providers.faults import Faults


class DeliveryState(enum.Enum):
    PENDING = "pending"  # accepted, nothing delegated yet
    PARTIAL = "partial"  # some energy delegated, less than ordered
    DELEGATED = "delegated"  # everything ordered is delegated
    FAILED = "failed"  # refused for good, nothing delegated
    EXPIRED = "expired"  # duration over, every delegation reclaimed


@dataclass
class Delegation:
    """One on-chain delegation made for a delivery."""

    txid: str
    energy: int
    delegated_at: float
    expires_at: float
    reclaimed_at: float | None = None
    reclaimed_early: bool = False


@dataclass
class Delivery:
    """The delivery of one order: what was ordered and what happened on chain."""

    receiver: str
    energy: int
    duration: int
    accepted_at: float
    target: int  # energy that will be delivered (energy x the partial-delivery fraction)
    due_at: float | None  # next delegation attempt; None: nothing more will be tried
    wait_for_capacity: bool = False
    partial_fill: bool = False
    #: called just before the first delegation is made (itrx `exclusive` reclaims here)
    before_first: Callable[[Delivery, float], None] | None = None
    delegations: list[Delegation] = field(default_factory=list)
    attempts: int = 0
    error: str | None = None
    #: when the last attempt failed and the delivery gave up (FAILED), emulated time
    failed_at: float | None = None

    @property
    def delivered(self) -> int:
        """Energy delegated so far (including delegations since reclaimed)."""
        return sum(d.energy for d in self.delegations)

    @property
    def active(self) -> list[Delegation]:
        return [d for d in self.delegations if d.reclaimed_at is None]

    @property
    def retrying(self) -> bool:
        """The last delegation attempt failed and another one is scheduled."""
        return self.error is not None and self.due_at is not None

    @property
    def first_delegated_at(self) -> float | None:
        return self.delegations[0].delegated_at if self.delegations else None

    @property
    def finished(self) -> bool:
        """Nothing scheduled and nothing left to reclaim: the delivery cannot change again."""
        return self.due_at is None and not self.active

    @property
    def state(self) -> DeliveryState:
        if not self.delegations:
            failed = self.error is not None and self.due_at is None
            return DeliveryState.FAILED if failed else DeliveryState.PENDING
        if not self.active and self.due_at is None:
            return DeliveryState.EXPIRED
        if self.delivered >= self.energy:
            return DeliveryState.DELEGATED
        return DeliveryState.PARTIAL


def _next_event(delivery: Delivery) -> float:
    """When `delivery` next has something to do: an attempt, or a delegation to reclaim."""
    times = [d.expires_at for d in delivery.active]
    if delivery.due_at is not None:
        times.append(delivery.due_at)
    return min(times, default=math.inf)


class DeliveryBook:
    """Schedules and performs the deliveries of one emulator."""

    def __init__(
        self,
        delegator: Delegator,
        *,
        delay: float = 3.0,
        retry_delay: float = 10.0,
        max_attempts: int = 3,
    ) -> None:
        self.delegator = delegator
        self.delay = delay
        self.retry_delay = retry_delay
        self.max_attempts = max_attempts
        self.deliveries: list[Delivery] = []  # every delivery, in acceptance order
        self._open: list[Delivery] = []  # those not finished, in acceptance order
        #: no open delivery has anything due before this (a tick before it changes nothing:
        #: every request ticks, and a day's rentals keep hundreds of deliveries open)
        self._next = -math.inf

    def schedule(
        self,
        receiver: str,
        energy: int,
        duration: int,
        now: float,
        faults: Faults,
        *,
        wait_for_capacity: bool = False,
        partial_fill: bool = False,
    ) -> Delivery:
        """Accept a delivery at `now`, with the per-order faults in force at that moment."""
        delay = self.delay if faults.delivery_delay is None else faults.delivery_delay
        delivery = Delivery(
            receiver=receiver,
            energy=energy,
            duration=duration,
            accepted_at=now,
            target=max(1, math.floor(energy * faults.fraction)),
            due_at=now + delay if faults.deliver else None,
            wait_for_capacity=wait_for_capacity,
            partial_fill=partial_fill,
        )
        self.deliveries.append(delivery)
        if not delivery.finished:
            self._open.append(delivery)
            self._next = -math.inf  # due now or soon: the next tick looks at every one
        return delivery

    def tick(self, now: float) -> list[Delivery]:
        """Advance every unfinished delivery to `now`; returns those whose state changed."""
        changed: list[Delivery] = []
        if now < self._next:
            return changed
        for delivery in self._open:
            before = (delivery.state, delivery.delivered)
            self._advance(delivery, now)
            if (delivery.state, delivery.delivered) != before:
                changed.append(delivery)
        self._open = [d for d in self._open if not d.finished]
        self._next = min((_next_event(d) for d in self._open), default=math.inf)
        return changed

    def reclaim_early(self, delivery: Delivery, now: float) -> list[str]:
        """Take back every active delegation of `delivery` now (itrx `exclusive`)."""
        txids: list[str] = []
        for d in delivery.active:
            try:
                self.delegator.reclaim(d.txid)
            except DelegationError:
                continue
            d.reclaimed_at, d.reclaimed_early = now, True
            txids.append(d.txid)
        if txids:
            delivery.due_at = None
        return txids

    # ------------------------------------------------------------------ internals

    def _advance(self, delivery: Delivery, now: float) -> None:
        if delivery.due_at is not None and delivery.due_at <= now:
            self._try_delegate(delivery, delivery.due_at, now)
        for d in delivery.active:
            if d.expires_at <= now:
                try:
                    self.delegator.reclaim(d.txid)
                except DelegationError:
                    continue  # retried at the next tick
                d.reclaimed_at = d.expires_at

    def _try_delegate(self, delivery: Delivery, at: float, now: float) -> None:
        # Delegations start when due (not at `now`), so a big clock jump replays correctly.
        wanted = delivery.target - delivery.delivered
        if wanted <= 0:
            delivery.due_at = None
            return
        amount = wanted
        if delivery.wait_for_capacity and isinstance(self.delegator, ChainView):
            free = max(0, self.delegator.available_energy())
            amount = min(wanted, free) if delivery.partial_fill else wanted
            if amount <= 0 or amount > free:
                delivery.due_at = max(at + self.retry_delay, now)  # wait for the market
                return
        if not delivery.delegations and delivery.before_first is not None:
            delivery.before_first(delivery, at)
            delivery.before_first = None
        try:
            txid = self.delegator.delegate(delivery.receiver, amount, delivery.duration)
        except DelegationError as exc:
            delivery.attempts += 1
            if delivery.attempts >= self.max_attempts:
                delivery.error, delivery.due_at, delivery.failed_at = str(exc), None, at
            else:
                delivery.error = str(exc)
                delivery.due_at = at + self.retry_delay
                if delivery.due_at <= now:
                    self._try_delegate(delivery, delivery.due_at, now)
            return
        delivery.error = None
        delivery.delegations.append(Delegation(txid, amount, at, at + delivery.duration))
        if delivery.delivered >= delivery.target:
            delivery.due_at = None
        else:
            delivery.due_at = at + self.retry_delay
            if delivery.due_at <= now:
                self._try_delegate(delivery, delivery.due_at, now)
