"""Tracking: drive open orders to a terminal phase, from the provider's word and the chain's.

`Tracker.track(orders)` looks at each open order once and moves it if it can:

- `intent` (written ahead, then the process died or a store write failed) and `unknown`
  (an ambiguous answer) are *resolved*: with an idempotency key (Mefree) by placing the
  same client order id again, which returns the order if it exists and creates it exactly
  once if it does not; where the vendor has a lookup by client id, by the lookup (found:
  `submitted` with the vendor's receipt; "no such order" ends it only `lookup_settle`
  seconds after the unclear answer, as a request may still reach the vendor; meanwhile,
  and when the lookup fails, the chain may still settle it); else by the chain: a rise of
  the address's energy limit by the ordered amount since the intent's baseline (the
  snapshot recorded with it) is the order delivered. Without evidence the order stays held
  as `unknown` (no second order for the address, invariant 3) and is flagged for an alert
  once past its deadline. An `intent` younger than `intent_grace` is left alone: another
  process may be between its intent and its call.
- `submitted` / `delegating`: the vendor's status. FAILED (below) and REFUNDED end it as the
  vendor says. Otherwise the order is `delivered` only when the chain shows the energy
  (invariant 7); "delegated" from the vendor alone moves it to `delegating`, and if the
  chain has not shown it `delivery_wait` seconds later it ends `partial` (some energy
  arrived) or `failed` with its cost (charged, nothing arrived: an alert).
- `abandonAfter` (a policy's, default off): an `unknown` order held for want of chain
  evidence that long, or a `submitted` one whose vendor has still not said "delegated",
  failed or refunded, with a fresh reading of its address showing no delegation since the
  order was created (`delegation_evidence`), ends `failed` and is flagged `abandoned` (an
  alert; a submitted order keeps the charge its receipt shows: paid, and not known to be
  refunded). The one place the engine accepts a small risk of buying twice: a vendor that
  delegates later still, or a delegation hidden by another one expiring meanwhile. Without
  it such an order holds its address for good (a Mefree order whose delegation never
  lands, which its docs say can happen, answers "pending" for ever).

Every move is a compare-and-set (`expect_from` the phase read); losing one means another
tracker moved the order, which is fine. Nothing here raises per order. Without a reading
of the address (the node down or stale) nothing is concluded from the chain: a delegating
order waits, however long the vendor has said "delegated".

A vendor's "failed" is one reading: the chain's evidence wins over it (the energy shown:
`delivered`), and a failed order books the charge the vendor reports, never 0 for an
order it charged (only REFUNDED gives money back). An order whose provider is no longer
configured (its document removed from the set) is followed by the chain alone:
`delivered` when it shows the energy, else `partial` or `failed` with its cost once past
the order's deadline (`_follow_removed`); it never holds its address for good.

Provider calls are bounded by `TrackingSettings.call_timeout` on the clock (a timeout is a
temporary failure: the order stays where it is). `crash_point("before_move")` and
`crash_point("after_move")` (engine/core/crashing.py) surround every move, for the chaos suite.

Neighbours: `engine/act/applying.py` (writes the intents and the baseline note),
`engine/reconciling.py` (calls `track`), `engine/store/`, `engine/observe/chain.py`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from engine.core.clock import Clock
from engine.core.concurrency import CallTimeout, bounded
from engine.core.crashing import crash_point
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import ChainError
from engine.store import OrderPhase, OrderRecord, Store, StoreError
from providers.base import (
    AmbiguousError,
    ErrorReason,
    OrderRequest,
    OrderState,
    PermanentError,
    Provider,
    ProviderError,
    Receipt,
    TemporaryError,
)

_P = OrderPhase
_R = TypeVar("_R")
#: permanent errors on a re-placed create that prove nothing about the order
_UNPROVEN = frozenset({ErrorReason.AUTH, ErrorReason.PROTOCOL, ErrorReason.UNKNOWN})


class SnapshotSource(Protocol):
    """What tracking reads of the chain (`ChainReader` is one)."""

    async def snapshots(
        self, addresses: Iterable[str], *, delegators: bool = False
    ) -> dict[str, EnergySnapshot | ChainError]: ...


@dataclass(frozen=True, slots=True)
class TrackingSettings:
    #: an intent younger than this may be in flight in another process: left alone
    intent_grace: float = 60.0
    #: how long the chain may take to show energy the vendor reports delegated
    delivery_wait: float = 300.0
    #: share of the ordered energy the chain must show for "delivered"
    tolerance: float = 0.97
    #: open orders tracked at once
    concurrency: int = 16
    #: most seconds (clock time) one provider call may take; None: the adapters' own
    call_timeout: float | None = None
    #: abandonAfter only trusts a reading of the address at most this old (clock seconds)
    abandon_read_age: float = 60.0
    #: a lookup's "no such order" ends an order only this long (clock seconds) after its
    #: last move (the unclear answer): a request the vendor has yet to process is not lost
    lookup_settle: float = 120.0


@dataclass(frozen=True, slots=True)
class TrackResult:
    client_order_id: str
    address: str
    provider: str
    before: OrderPhase
    after: OrderPhase
    detail: str
    alert: bool = False
    #: ended `failed` by the policy's abandonAfter (an alert of its own)
    abandoned: bool = False

    @property
    def moved(self) -> bool:
        return self.before is not self.after

    def to_json(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id,
            "address": self.address,
            "provider": self.provider,
            "from": str(self.before),
            "to": str(self.after),
            "detail": self.detail,
            "alert": self.alert,
            "abandoned": self.abandoned,
        }


def parse_baseline(note: object) -> Mapping[str, Any] | None:
    """The chain baseline `applying.baseline_note` wrote into an intent's note, if any."""
    if not isinstance(note, str):
        return None
    try:
        data = json.loads(note)
    except ValueError:
        return None
    baseline = data.get("baseline") if isinstance(data, dict) else None
    return baseline if isinstance(baseline, dict) else None


def energy_rise(baseline: Mapping[str, Any] | None, snapshot: EnergySnapshot) -> int:
    """Energy limit gained since the baseline; with no baseline, the whole limit."""
    if baseline is None:
        return snapshot.limit
    before = baseline.get("limit")
    return snapshot.limit - before if isinstance(before, int) else snapshot.limit


def delegation_evidence(
    baseline: Mapping[str, Any] | None,
    snapshot: EnergySnapshot,
    *,
    energy: int,
    tolerance: float = 0.97,
) -> str | None:
    """Why the chain may show a delegation to the address since the order's baseline (the
    energy may be the order's), or None when it shows none.

    The engine does not know the vendors' delegating accounts, so any delegation counts as
    possibly the vendor's: the stake delegated to the address (`delegated_in`) above the
    baseline's, or its energy limit up by what tracking would call delivered. Without a
    baseline (the intent recorded none) any stake delegated in, or a limit that large, may
    be the order's. A delegation that came and expired, or one hidden by another expiring
    meanwhile, is not seen: that is the risk `orders resolve --as failed` and abandonAfter
    take.
    """
    rise = energy_rise(baseline, snapshot)
    before = baseline.get("delegated_in") if baseline is not None else None
    if not isinstance(before, int):
        if snapshot.delegated_in > 0:
            return (
                f"{snapshot.delegated_in} sun of stake is delegated to it and the order "
                "recorded no baseline to compare with"
            )
        if rise >= energy * tolerance:
            return (
                f"its energy limit is {snapshot.limit} and the order recorded no baseline "
                "to compare with"
            )
        return None
    if snapshot.delegated_in > before:
        return (
            f"the stake delegated to it rose from {before} to {snapshot.delegated_in} sun "
            "since the order was created"
        )
    if rise >= energy * tolerance:
        return f"its energy limit rose by {rise} since the order was created"
    return None


class Tracker:
    """Moves open orders towards a terminal phase; one instance per engine."""

    def __init__(
        self,
        *,
        store: Store,
        providers: Mapping[str, Provider],
        reader: SnapshotSource,
        clock: Clock,
        settings: TrackingSettings | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.reader = reader
        self.clock = clock
        self.settings = settings or TrackingSettings()
        #: called with an order's address just before the order is moved (the sidecar
        #: marks the address for a fresh read: `Reconciler.run_pass` relies on it)
        self.before_move: Callable[[str], None] | None = None
        #: policy name -> its abandonAfter in seconds (policies without one: never); set
        #: by the Reconciler from the policy set
        self.abandon_after: dict[str, float] = {}
        self._baselines: dict[str, Mapping[str, Any] | None] = {}

    async def track(
        self,
        orders: Sequence[OrderRecord],
        snapshots: Mapping[str, EnergySnapshot | object] | None = None,
    ) -> list[TrackResult]:
        """Look at each open order once; `snapshots` read after the orders were created
        save the reads (addresses missing from it are read now)."""
        orders = [o for o in orders if o.is_open]
        if not orders:
            return []
        known = dict(snapshots or {})
        missing = [
            o.address for o in orders if not isinstance(known.get(o.address), EnergySnapshot)
        ]
        if missing:
            known.update(await self.reader.snapshots(missing))
        slots = asyncio.Semaphore(self.settings.concurrency)

        async def one(order: OrderRecord) -> TrackResult:
            async with slots:
                snap = known.get(order.address)
                return await self.track_one(
                    order, snap if isinstance(snap, EnergySnapshot) else None
                )

        return list(await asyncio.gather(*(one(o) for o in orders)))

    async def track_one(self, order: OrderRecord, snapshot: EnergySnapshot | None) -> TrackResult:
        try:
            if order.phase in (_P.INTENT, _P.UNKNOWN):
                return await self._resolve(order, snapshot)
            return await self._follow(order, snapshot)
        except StoreError as exc:  # a conflict (someone moved it) or the store is down
            return self._result(order, order.phase, f"not moved: {exc}")

    # ------------------------------------------------------------------ helpers

    def _result(self, order: OrderRecord, after: OrderPhase, detail: str) -> TrackResult:
        late = order.deadline is not None and self.clock.now() > order.deadline
        alert = after.is_open and late
        if alert:
            detail += "; ALERT: open past its deadline"
        return TrackResult(
            order.client_order_id, order.address, order.provider, order.phase, after, detail, alert
        )

    async def _move(
        self, order: OrderRecord, to: OrderPhase, detail: str, **fields: Any
    ) -> TrackResult:
        if self.before_move is not None:
            self.before_move(order.address)
        crash_point("before_move")
        await self.store.transition(
            order.client_order_id, to, expect_from={order.phase}, note=detail, **fields
        )
        crash_point("after_move")
        return self._result(order, to, detail)

    async def _call(self, provider: str, call: Awaitable[_R]) -> _R:
        """A provider call bounded by `call_timeout`; its expiry is a TemporaryError."""
        try:
            return await bounded(self.clock, self.settings.call_timeout, call)
        except CallTimeout as exc:
            raise TemporaryError(provider, str(exc)) from exc

    async def _baseline(self, order: OrderRecord) -> Mapping[str, Any] | None:
        coid = order.client_order_id
        if coid not in self._baselines:
            history = await self.store.order_history(coid)
            self._baselines[coid] = (
                parse_baseline(history[0].detail.get("note")) if history else None
            )
        return self._baselines[coid]

    async def _on_chain(self, order: OrderRecord, snapshot: EnergySnapshot | None) -> int | None:
        """Energy the chain shows gained since the order's baseline (None: no reading)."""
        if snapshot is None:
            return None
        baseline = await self._baseline(order)
        read_at = baseline.get("read_at") if baseline else None
        if isinstance(read_at, (int, float)) and snapshot.read_at < read_at:
            return None  # older than the baseline: says nothing
        return energy_rise(baseline, snapshot)

    def _enough(self, order: OrderRecord, rise: int | None) -> bool:
        return rise is not None and rise >= order.energy * self.settings.tolerance

    # ------------------------------------------------------------------ intent / unknown

    async def _resolve(self, order: OrderRecord, snapshot: EnergySnapshot | None) -> TrackResult:
        now = self.clock.now()
        if order.phase is _P.INTENT and now - order.created_at < self.settings.intent_grace:
            return self._result(order, order.phase, "intent may be in flight; left alone")
        provider = self.providers.get(order.provider)
        caps = provider.capabilities if provider is not None else None
        if provider is not None and caps is not None and caps.idempotency_key:
            return await self._replace(order, provider)
        detail = "no lookup at this provider; held until the chain shows the energy"
        if provider is not None and caps is not None and caps.lookup_by_client_id:
            looked = await self._look_up(order, provider)
            if isinstance(looked, TrackResult):
                return looked
            detail = f"{looked}; held until the lookup or the chain settles it"
        rise = await self._on_chain(order, snapshot)
        if self._enough(order, rise):
            return await self._move(
                order, _P.DELIVERED, f"the chain shows +{rise} energy since the intent"
            )
        if order.phase is _P.INTENT:
            return await self._move(order, _P.UNKNOWN, detail)
        abandoned = await self._abandon(order, snapshot)
        if abandoned is not None:
            return abandoned
        return self._result(order, order.phase, detail)

    async def _look_up(self, order: OrderRecord, provider: Provider) -> TrackResult | str:
        """Resolve by the vendor's lookup by our client order id: found, the order is
        `submitted` with the vendor's receipt; a settled "no such order" ends it (`failed`,
        or `abandoned` for an intent never known to be sent). Otherwise (the lookup failed,
        or "no such order" came within `lookup_settle` seconds of the unclear answer, when
        the request may still be on its way to the vendor) why it stays held."""
        try:
            receipt = await self._call(order.provider, provider.lookup(order.client_order_id))
        except ProviderError as exc:
            return f"lookup failed: {exc}"
        if receipt is not None:
            return await self._submitted(order, receipt, "found by lookup")
        since = self.clock.now() - order.updated_at
        if since < self.settings.lookup_settle:
            return (
                f"the provider has no such order yet ({since:.0f}s after the unclear answer, "
                f"settled after {self.settings.lookup_settle:.0f}s)"
            )
        gone = _P.ABANDONED if order.phase is _P.INTENT else _P.FAILED
        return await self._move(order, gone, "the provider has no such order (lookup)")

    async def _abandon(
        self, order: OrderRecord, snapshot: EnergySnapshot | None, cost: int | None = None
    ) -> TrackResult | None:
        """abandonAfter: end a held `unknown` order, or a `submitted` one its vendor has
        not yet reported delegated (`cost`: the charge it shows, booked), as `failed` once
        its policy's abandonAfter has passed, if a fresh reading taken after that shows no
        delegation since the order was created. None when the rule does not apply (yet)."""
        after = self.abandon_after.get(order.policy)
        now = self.clock.now()
        if after is None or order.phase not in (_P.UNKNOWN, _P.SUBMITTED):
            return None
        if now - order.created_at < after:
            return None
        held = f"held past abandonAfter ({after:.0f}s)"
        fresh = snapshot is not None and (
            snapshot.read_at >= order.created_at + after
            and now - snapshot.read_at <= self.settings.abandon_read_age
        )
        if snapshot is None or not fresh:
            return self._result(order, order.phase, f"{held}: no fresh reading of the chain")
        baseline = await self._baseline(order)
        evidence = delegation_evidence(
            baseline, snapshot, energy=order.energy, tolerance=self.settings.tolerance
        )
        if evidence is not None:
            return self._result(order, order.phase, f"{held}: the chain may show it ({evidence})")
        what = "held" if order.phase is _P.UNKNOWN else "not reported delegated by the vendor"
        charged = f"; charged {cost} sun, booked" if cost else ""
        result = await self._move(
            order,
            _P.FAILED,
            f"abandoned: {what} {now - order.created_at:.0f}s (abandonAfter {after:.0f}s) "
            f"and the chain (block {snapshot.block}) shows no delegation to the address since "
            f"the order was created{charged}; ALERT: if the vendor delivers after all, it was "
            "bought twice",
            **({"cost_sun": cost} if cost is not None else {}),
        )
        return dataclasses.replace(result, abandoned=True)

    async def _replace(self, order: OrderRecord, provider: Provider) -> TrackResult:
        """Place the same client order id again: the vendor's idempotency key makes it exact."""
        request = OrderRequest(
            client_order_id=order.client_order_id,
            receiver=order.address,
            energy=order.energy,
            duration=order.duration,
            retry=True,  # the first create may have been accepted: a refusal proves nothing
        )
        try:
            receipt = await self._call(order.provider, provider.place(request))
        except AmbiguousError as exc:
            return self._result(order, order.phase, f"re-placing was ambiguous again: {exc}")
        except PermanentError as exc:
            if exc.reason in _UNPROVEN:
                return self._result(order, order.phase, f"re-placing refused: {exc}")
            gone = _P.ABANDONED if order.phase is _P.INTENT else _P.FAILED
            return await self._move(
                order, gone, f"re-placed with its idempotency key, refused: {exc}", attempt=True
            )
        except ProviderError as exc:  # temporary: proves nothing either way
            return self._result(order, order.phase, f"re-placing failed for now: {exc}")
        return await self._submitted(order, receipt, "resolved by re-placing (idempotency key)")

    async def _submitted(self, order: OrderRecord, receipt: Receipt, detail: str) -> TrackResult:
        return await self._move(
            order,
            _P.SUBMITTED,
            detail,
            provider_order_id=receipt.provider_order_id,
            cost_sun=receipt.cost_sun,
            receipt=receipt.model_dump(mode="json"),
            attempt=True,
        )

    # ------------------------------------------------------------------ submitted / delegating

    async def _follow(self, order: OrderRecord, snapshot: EnergySnapshot | None) -> TrackResult:  # noqa: C901
        provider = self.providers.get(order.provider)
        if provider is None:
            return await self._follow_removed(order, snapshot)
        if order.receipt is None:
            return self._result(order, order.phase, "no receipt stored; cannot follow")
        receipt = Receipt.model_validate(dict(order.receipt))
        try:
            status = await self._call(order.provider, provider.status(receipt))
        except ProviderError as exc:
            return self._result(order, order.phase, f"status failed: {exc}")
        cost = status.cost_sun if status.cost_sun is not None else order.cost_sun
        state = status.state
        if state is OrderState.FAILED:
            return await self._failed(order, snapshot, cost)
        if state is OrderState.REFUNDED:
            refund = min(status.refund_sun, cost) if status.refund_sun and cost else None
            return await self._move(
                order, _P.REFUNDED, "the provider refunded", cost_sun=cost, refund_sun=refund
            )
        if state is OrderState.PARTIAL:
            return await self._move(
                order, _P.PARTIAL, f"partial: {status.delegated_energy} delegated", cost_sun=cost
            )
        rise = await self._on_chain(order, snapshot)
        if self._enough(order, rise):
            return await self._move(
                order, _P.DELIVERED, f"the chain shows +{rise} energy", cost_sun=cost
            )
        if state is not OrderState.DELEGATED:
            if order.phase is _P.SUBMITTED:
                abandoned = await self._abandon(order, snapshot, cost)
                if abandoned is not None:
                    return abandoned
            return self._result(order, order.phase, f"provider: {state}; waiting")
        if order.phase is _P.SUBMITTED:
            return await self._move(
                order, _P.DELEGATING, "the provider reports delegated; waiting for the chain"
            )
        if self.clock.now() - order.updated_at <= self.settings.delivery_wait:
            return self._result(
                order, order.phase, "the provider reports delegated; not on chain yet"
            )
        if rise is None:  # the node down or stale: "nothing arrived" would be a guess
            return self._result(order, order.phase, "no reading of the chain; waiting")
        shown = rise
        if shown > 0:
            return await self._move(
                order, _P.PARTIAL, f"the chain shows only +{shown} of {order.energy}", cost_sun=cost
            )
        return await self._move(
            order,
            _P.FAILED,
            f"the provider reports delegated but the chain shows nothing after "
            f"{self.settings.delivery_wait:.0f}s: ALERT",
            cost_sun=cost,
        )

    # ------------------------------------------------------------------ failed / removed

    async def _failed(
        self, order: OrderRecord, snapshot: EnergySnapshot | None, cost: int | None
    ) -> TrackResult:
        """The vendor reports the order failed. The chain's evidence wins over that
        reading (a vendor's "failed" can be a stale or inconsistent one), and an order the
        vendor charged books its charge: a failed order is not a free one unless the
        vendor refunds it (REFUNDED). Without a reading of the chain it waits."""
        rise = await self._on_chain(order, snapshot)
        if self._enough(order, rise):
            return await self._move(
                order,
                _P.DELIVERED,
                f"the provider reports failed but the chain shows +{rise} energy",
                cost_sun=cost,
            )
        if rise is None:
            return self._result(
                order, order.phase, "the provider reports failed; no reading of the chain: waiting"
            )
        detail = "the provider reports failed"
        if cost:
            detail += f"; charged {cost} sun and not refunded: booked, ALERT"
        return await self._move(order, _P.FAILED, detail, cost_sun=cost)

    async def _follow_removed(
        self, order: OrderRecord, snapshot: EnergySnapshot | None
    ) -> TrackResult:
        """An order whose provider is no longer configured (its document was removed):
        followed by the chain alone, and ended. Delivered (at its receipt's cost) once
        the chain shows the energy; past its deadline with a reading that does not, it
        ends `partial` or `failed` with its cost (charged: an alert), as a delegating
        order does after `delivery_wait`. An open order must never hold its address for
        good: the address would never be topped up again."""
        why = "provider no longer configured; followed by the chain"
        rise = await self._on_chain(order, snapshot)
        if self._enough(order, rise):
            return await self._move(
                order, _P.DELIVERED, f"{why}: it shows +{rise} energy", cost_sun=order.cost_sun
            )
        deadline = order.deadline
        if deadline is None:
            deadline = order.created_at + self.settings.delivery_wait
        if self.clock.now() <= deadline:
            return self._result(order, order.phase, f"{why}: nothing yet; waiting")
        if rise is None:
            return self._result(order, order.phase, f"{why}: no reading of the chain; waiting")
        if rise > 0:
            return await self._move(
                order,
                _P.PARTIAL,
                f"{why}: only +{rise} of {order.energy} by its deadline",
                cost_sun=order.cost_sun,
            )
        return await self._move(
            order,
            _P.FAILED,
            f"{why}: nothing shown by its deadline; ALERT (charged, nothing arrived)",
            cost_sun=order.cost_sun,
        )
