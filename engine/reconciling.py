"""One reconciliation pass: observe -> gather -> plan -> (apply -> track) -> result.

One method, `Reconciler.run_pass`, serves `energyctl plan` (`apply=False`: reads only,
never calls `place` and never writes), `energyctl apply` (its prompt passed in as
`confirm`) and the sidecar's loop (`tracker_alongside=True`). The Reconciler is built in
one place, `Session.reconciler` (`engine/session.py`), for every command and the sidecar.

1. **observe**: `ChainReader.snapshots` for every watched address (a failed read is an
   `ObservationFailure`: no purchase for that address, invariant 6);
2. **track** (apply only): open orders are moved on first, so the plan sees orders that
   ended this pass (an order failed definitely frees its address now, not next pass);
3. **gather**: open orders, money spent per policy and budget window, the last order per
   address (policy cooldowns), provider cooldowns from the store;
4. **plan**: `planning.assess`, then the quotes and balances it needs, fetched
   concurrently and once per pass (the sidecar reuses them for `quote_ttl` seconds:
   a pass per ensure request would otherwise spend vendor rate limits, TronSave's 15
   requests a second, on quotes), then `planning.plan` (price cap, budgets, balances,
   the safety gate);
5. **apply** (apply only): the policy revision is recorded, then `applying.apply_action`
   for each action, a bounded number at once (one per address: a plan has at most one
   action per address).

`call_timeout` (seconds of clock time; None: the adapters' own HTTP timeouts only) bounds
every provider call of a pass, retries included: a quote or balance read without an answer
by then is a temporary failure (that candidate is skipped, the balance unknown), a create
an ambiguous one (held). As quotes, balances and actions run concurrently, a provider that
never answers delays the others' purchases by at most `call_timeout`. It is measured with
`clock.sleep`, so it cannot be used with a clock whose sleep moves time itself
(`energyctl simulate`'s).

Neighbours: `engine/decide/planning.py` (pure decisions), `engine/act/applying.py`,
`engine/act/tracking.py`, `engine/observe/chain.py`, `engine/store/`; called by `engine/cli/` and
the controller.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from engine.act.applying import ActionOutcome, apply_action, budget_limits
from engine.act.tracking import SnapshotSource, Tracker, TrackingSettings, TrackResult
from engine.core.clock import Clock
from engine.core.concurrency import CallTimeout, bounded
from engine.core.snapshots import EnergySnapshot
from engine.core.usage import UsageProfile, observe
from engine.decide.planning import (
    Action,
    Assessment,
    ObservationFailure,
    Plan,
    PlanInputs,
    ProviderView,
    QuoteKey,
    Rental,
    assess,
    plan,
    quote_requests,
)
from engine.observe.chain import ChainError
from engine.store import (
    BudgetWindow,
    OrderFilter,
    OrderPhase,
    OrderRecord,
    Store,
    StoreError,
)
from policies.policyset import PolicySet
from providers.base import Provider, ProviderError, Quote, QuoteRequest, TemporaryError

Observations = dict[str, EnergySnapshot | ObservationFailure]
#: asked with the plan and the orders tracked before anything is bought (the CLI's prompt)
Confirm = Callable[[Plan, list[TrackResult]], Awaitable[bool]]
#: usage profiles meet the store at most this often (seconds of read time), see `learn`
PROFILE_SYNC_INTERVAL = 300.0
_LONGEST_RENTAL = 31 * 86_400.0  # no vendor rents for longer (30 days)
#: the rentals in force are read whole at least this often (seconds); in between, from the
#: orders changed since the last read (an order leaving `delivered` is seen at the latest then)
RENTALS_REREAD = 600.0
_SETTLE = 5.0  # seconds of overlap between two reads of the orders changed
_CHANGES = 10_000  # most order changes `fresh_enough` lists before it re-reads everything
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class PassResult:
    """What one pass saw, decided and did."""

    plan: Plan
    applied: bool
    outcomes: tuple[ActionOutcome, ...] = ()
    tracked: tuple[TrackResult, ...] = ()
    revision: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def pending(self) -> bool:
        """Purchases the plan wants (for `plan --detailed-exitcode`)."""
        return bool(self.plan.actions)

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "revision": self.revision,
            "plan": self.plan.to_json(),
            "outcomes": [o.to_json() for o in self.outcomes],
            "tracked": [t.to_json() for t in self.tracked if t.moved or t.alert],
            "notes": list(self.notes),
        }


class Reconciler:
    """Converges the watched addresses of one policy set; see the module docstring."""

    def __init__(
        self,
        policy_set: PolicySet,
        *,
        store: Store,
        reader: SnapshotSource,
        providers: Mapping[str, Provider],
        clock: Clock,
        tracking: TrackingSettings | None = None,
        apply_concurrency: int = 8,
        quote_concurrency: int = 16,
        quote_ttl: float = 0.0,
        applied_by: str = "energyctl",
        call_timeout: float | None = None,
    ) -> None:
        self.policy_set = policy_set
        self.call_timeout = call_timeout
        if tracking is None and call_timeout is not None:
            tracking = TrackingSettings(call_timeout=call_timeout)
        self.store = store
        self.reader = reader
        self.providers = providers
        self.clock = clock
        self.tracker = Tracker(
            store=store, providers=providers, reader=reader, clock=clock, settings=tracking
        )
        self.tracker.abandon_after = {
            name: float(p.spec.abandon_after)
            for name, p in policy_set.policies.items()
            if p.spec.abandon_after is not None
        }
        self.apply_concurrency = apply_concurrency
        self.quote_concurrency = quote_concurrency
        #: quotes and balances younger than this are reused (0: fetched every pass)
        self.quote_ttl = quote_ttl
        self._quotes: dict[QuoteKey, tuple[float, Quote]] = {}
        self._balances: dict[str, tuple[float, int]] = {}
        #: what each address was seen to use (engine/core/usage.py), kept in the store
        self.usage: dict[str, UsageProfile] = {}
        self.unsaved_profiles: set[str] = set()  # learnt since the last save
        self.profiles_read_at = -math.inf  # when the store's copies were last read
        self.profiles_saved_at = -math.inf  # and when ours were last kept
        #: the rentals in force as last read (client order id -> (address, rental))
        self._rentals: dict[str, tuple[str, Rental]] = {}
        self._rentals_read_at: float | None = None
        self._rentals_whole_at = -math.inf
        self.applied_by = applied_by
        interval = policy_set.settings.observation.interval
        self.max_observation_age = max(120.0, 4.0 * interval)

    # ------------------------------------------------------------------ steps

    async def observe(self, only: Collection[str] | None = None) -> Observations:
        """A fresh snapshot of every watched address, or of `only` these (or why there is
        none)."""
        wanted = [a for a in self.policy_set.addresses if only is None or a in only]
        raw = await self.reader.snapshots(wanted)
        return {
            address: value if isinstance(value, EnergySnapshot) else _failure(value)
            for address, value in raw.items()
        }

    async def learn(self, observations: Observations, *, save: bool) -> list[str]:
        """Fold this pass's reads into each address's usage profile. The profiles are
        synchronised with the store at most every `PROFILE_SYNC_INTERVAL` seconds of read
        time (and on the first pass): the store's copy is taken where it is newer (another
        replica read the address) and, with `save` (never in a plan), what changed since the
        last synchronisation is kept. Between synchronisations the profiles live in memory:
        a crash loses at most that interval of learning, and passes stay cheap (a pass
        every few seconds would otherwise rewrite every profile each time). Returns notes
        (a store that failed)."""
        seen = {a: s for a, s in observations.items() if isinstance(s, EnergySnapshot)}
        if not seen:
            return []
        notes: list[str] = []
        now = max(snap.read_at for snap in seen.values())
        sync = now - self.profiles_read_at >= PROFILE_SYNC_INTERVAL or any(
            address not in self.usage for address in seen
        )
        kept: dict[str, UsageProfile] = {}
        if sync:
            self.profiles_read_at = now
            try:
                kept = dict(await self.store.usage_profiles(list(seen)))
            except StoreError as exc:
                notes.append(f"usage profiles not read: {exc}")
        for address, snap in seen.items():
            mine = self.usage.get(address)
            theirs = kept.get(address)
            if mine is None or (theirs is not None and theirs.updated_at > mine.updated_at):
                mine = theirs or UsageProfile(address)
            new = observe(mine, used=snap.used, limit=snap.limit, at=snap.read_at)
            if new is not mine:
                self.unsaved_profiles.add(address)
            self.usage[address] = new
        due = now - self.profiles_saved_at >= PROFILE_SYNC_INTERVAL
        if save and due and self.unsaved_profiles:
            changed = [self.usage[a] for a in sorted(self.unsaved_profiles) if a in self.usage]
            try:
                await self.store.save_usage_profiles(changed)
                self.unsaved_profiles.clear()
                self.profiles_saved_at = now
            except StoreError as exc:
                notes.append(f"usage profiles not kept: {exc}")
        return notes

    async def rentals(self, now: float) -> dict[str, list[Rental]]:
        """The delegations the engine bought that have not ended yet, by address.

        Read whole from the store at most every `RENTALS_REREAD` seconds; in between, the
        ones kept are brought up to date from the orders changed since the last read
        (another replica's too), and those over by now are dropped."""
        since = self._rentals_read_at
        if since is None or now - self._rentals_whole_at >= RENTALS_REREAD or now < since:
            self._rentals = await self._live_rentals(now, None)
            self._rentals_whole_at = now
        else:
            for key, rental in (await self._live_rentals(now, since - _SETTLE)).items():
                self._rentals[key] = rental
        self._rentals_read_at = now
        self._rentals = {k: r for k, r in self._rentals.items() if r[1].ends_at > now}
        found: dict[str, list[Rental]] = {}
        for owner, live in sorted(self._rentals.values(), key=lambda r: r[1].ends_at):
            found.setdefault(owner, []).append(live)
        return found

    async def _live_rentals(
        self, now: float, changed_since: float | None
    ) -> dict[str, tuple[str, Rental]]:
        """Delivered orders whose rental is not over at `now` (changed since a time, if
        given), a page at a time, by client order id."""
        delivered = frozenset({OrderPhase.DELIVERED, OrderPhase.PARTIAL})
        found: dict[str, tuple[str, Rental]] = {}
        since: float | None = now - _LONGEST_RENTAL
        while True:
            page = await self.store.orders(
                OrderFilter(phases=delivered, since=since, ends_after=now,
                            updated_since=changed_since, limit=_CHANGES, newest_first=False)
            )  # fmt: skip
            for order in page:
                found[order.client_order_id] = (order.address, Rental(
                    order.client_order_id, order.energy, order.created_at + order.duration,
                    order.duration,
                ))  # fmt: skip
            if len(page) < _CHANGES:
                return found
            since = page[-1].created_at  # inclusive: the ids drop the repeats

    async def track(self, observations: Mapping[str, object] | None = None) -> list[TrackResult]:
        """Move every open order on once (reads the chain for addresses not observed)."""
        return await self.tracker.track(await self.store.open_orders(), observations)

    async def inputs(
        self,
        observations: Observations,
        demands: Mapping[str, int] | None = None,
        *,
        open_orders: Sequence[OrderRecord] | None = None,
    ) -> PlanInputs:
        """Everything the planner needs besides quotes and balances, from the store
        (`open_orders`: read by the caller before `observations`, see `_observe_after_orders`)."""
        now = self.clock.now()
        policies = list(self.policy_set.policies.values())
        spent: dict[tuple[str, BudgetWindow], int] = {}
        for policy in policies:
            for limit in budget_limits(policy):
                spent[(policy.metadata.name, limit.window)] = await self.store.spent(
                    policy.metadata.name, limit.window, now, addresses=limit.addresses
                )
        cooldowns = await self.store.provider_cooldowns(now)
        if open_orders is None:
            open_orders = await self.store.open_orders()
        for name, until in _stalled(open_orders, now, self.tracker.settings.delivery_wait).items():
            cooldowns[name] = max(cooldowns.get(name, until), until)
        views = {
            name: ProviderView(name, provider.capabilities, cooling_until=cooldowns.get(name))
            for name, provider in self.providers.items()
        }
        longest = max((p.spec.cooldown or 0 for p in policies), default=0)
        last: dict[str, float] = {}
        if longest:  # each address's newest order, however many the window holds
            newest = await self.store.last_orders(self.policy_set.addresses, since=now - longest)
            last = {address: order.created_at for address, order in newest.items()}
        return PlanInputs(
            policies=policies,
            observations=observations,
            open_orders=open_orders,
            providers=views,
            now=now,
            spent=spent,
            last_order_at=last,
            demands=dict(demands or {}),
            max_observation_age=self.max_observation_age,
            max_actions=self.policy_set.settings.max_actions_per_pass,
            usage=dict(self.usage),
            rentals=await self.rentals(now),
        )

    async def fresh_enough(
        self, observations: Observations, open_orders: Sequence[OrderRecord] = ()
    ) -> Observations:
        """No reading older than its address's last order change (a pass never buys on one).

        A reading a cache kept (the sidecar's `CachingSource`) may predate an order placed
        or ended since - by another process on the store, or by this one's tracking: with
        no open order left, it would show the need that order already met. The store says
        which addresses' orders changed since the oldest reading (`updated_at`); those
        addresses are read again (marked for `refresh` when the reader keeps a cache), and
        one that cannot be read anew is an `ObservationFailure` for this pass. Addresses
        in `open_orders` (the list the plan gets) are left as they are: the plan holds
        for them whatever their reading says.
        """
        held = {o.address for o in open_orders}
        readings = {
            a: s for a, s in observations.items() if isinstance(s, EnergySnapshot) and a not in held
        }
        if not readings:
            return observations
        oldest = min(s.read_at for s in readings.values())
        changed = await self.store.orders(OrderFilter(updated_since=oldest, limit=_CHANGES))
        last: dict[str, float] = {}
        for order in changed:
            last[order.address] = max(last.get(order.address, order.updated_at), order.updated_at)
        if len(changed) >= _CHANGES:  # too many to list: every reading is suspect
            last = {a: self.clock.now() for a in readings}
        stale = sorted(a for a, s in readings.items() if a in last and s.read_at < last[a])
        if not stale:
            return observations
        mark = getattr(self.reader, "refresh", None)
        if callable(mark):
            mark(stale)
        again = await self.reader.snapshots(stale)
        out = dict(observations)
        for address in stale:
            value = again.get(address)
            if isinstance(value, EnergySnapshot) and value.read_at >= last[address]:
                out[address] = value
            else:
                out[address] = ObservationFailure(
                    "the reading predates the address's last order change and could not be "
                    f"read again ({value or 'no answer'})"
                )
        return out

    async def decide(self, inputs: PlanInputs, only: Collection[str] | None = None) -> Plan:
        """Assess, fetch the quotes and balances the assessment asks for, and plan
        (`only`: these addresses; the others are left out of the plan)."""
        assessments = assess(inputs)
        if only is not None:
            assessments = [a for a in assessments if a.address in only]
        quotes, balances = await self._market(assessments)
        views = dict(inputs.providers)
        for name, sun in balances.items():
            views[name] = replace(views[name], balance_sun=sun)
        return plan(replace(inputs, providers=views), assessments, quotes)

    async def _market(
        self, assessments: Sequence[Assessment]
    ) -> tuple[dict[QuoteKey, Quote | ProviderError], dict[str, int | None]]:
        """The quotes and balances `assessments` ask for, fetched concurrently and once per
        pass (reused for `quote_ttl` seconds); a balance not read is None."""
        keys = quote_requests(assessments)
        receivers: dict[QuoteKey, str] = {}
        for item in assessments:
            for cand in item.candidates:
                receivers.setdefault(
                    QuoteKey(cand.provider, cand.energy, cand.duration), item.address
                )
        slots = asyncio.Semaphore(self.quote_concurrency)
        now = self.clock.now()
        self._prune_cache(now)
        ordered = sorted(keys, key=lambda k: (k.provider, k.energy, k.duration))
        names = sorted({k.provider for k in keys})
        got = await asyncio.gather(
            asyncio.gather(*(self._quote(k, receivers[k], now, slots) for k in ordered)),
            asyncio.gather(*(self._balance(n, now, slots) for n in names)),
        )
        return dict(zip(ordered, got[0], strict=True)), dict(zip(names, got[1], strict=True))

    async def _quote(
        self, key: QuoteKey, receiver: str, now: float, slots: asyncio.Semaphore
    ) -> Quote | ProviderError:
        kept = self._quotes.get(key)
        if kept is not None and now - kept[0] < self.quote_ttl:
            return kept[1]
        async with slots:
            request = QuoteRequest(receiver=receiver, energy=key.energy, duration=key.duration)
            try:
                got = await self._bounded(key.provider, self.providers[key.provider].quote(request))
            except ProviderError as exc:
                return exc
            self._quotes[key] = (now, got)
            return got

    async def _balance(self, name: str, now: float, slots: asyncio.Semaphore) -> int | None:
        kept = self._balances.get(name)
        if kept is not None and now - kept[0] < self.quote_ttl:
            return kept[1]
        async with slots:
            try:
                sun = await self._bounded(name, self.providers[name].balance())
            except ProviderError:
                return None  # unknown this pass: not a reason to skip
            self._balances[name] = (now, sun)
            return sun

    def _prune_cache(self, now: float) -> None:
        """Forget quotes and balances too old to be reused: with `target` top-ups every
        amount is a new quote key, and a sidecar lives for months."""
        self._quotes = {k: v for k, v in self._quotes.items() if now - v[0] < self.quote_ttl}
        self._balances = {k: v for k, v in self._balances.items() if now - v[0] < self.quote_ttl}

    async def _bounded(self, provider: str, call: Awaitable[_R]) -> _R:
        """A provider read bounded by `call_timeout`; its expiry is a TemporaryError."""
        try:
            return await bounded(self.clock, self.call_timeout, call)
        except CallTimeout as exc:
            raise TemporaryError(provider, str(exc)) from exc

    # ------------------------------------------------------------------ the pass

    async def run_pass(
        self,
        *,
        apply: bool,
        demands: Mapping[str, int] | None = None,
        only: Collection[str] | None = None,
        confirm: Confirm | None = None,
        tracker_alongside: bool = False,
    ) -> PassResult:
        """One pass: observe, track, plan and, with `apply`, buy; the one way to run one.

        - `apply=False` (`energyctl plan`): reads only; nothing is written, nothing bought.
        - `apply=True` (`energyctl apply`, the simulation): open orders are moved on first,
          then the plan is carried out. `confirm(plan, tracked)` (the CLI's prompt), when
          given, is asked before anything is bought: False ends the pass unapplied.
        - `tracker_alongside=True` (the sidecar, whose tracker runs concurrently): the
          pass does not track; it reads the open orders *before* the observation (see
          `_observe_after_orders`), so it never plans on "no order" with a reading from
          before the delivery.

        `demands`: energy wanted now per address (ensure requests); `only`: plan just these
        addresses (the ones this replica owns), the others are left out of the plan.
        """
        tracked: list[TrackResult] = []
        open_orders: Sequence[OrderRecord] | None = None
        if apply and tracker_alongside:
            open_orders, observations = await self._observe_after_orders(only)
        else:
            observations = await self.observe(only)
            if apply:  # tracking writes: never in a plan
                tracked = await self.track(observations)
            observations = await self.fresh_enough(observations)
        learned = await self.learn(observations, save=apply)
        decided = await self.decide(
            await self.inputs(observations, demands, open_orders=open_orders), only
        )
        if not apply or (confirm is not None and not await confirm(decided, tracked)):
            return PassResult(decided, False, tracked=tuple(tracked))
        outcomes, notes = await self._execute(decided, observations)
        notes = learned + notes
        return PassResult(
            decided, True, tuple(outcomes), tuple(tracked), self.policy_set.revision, tuple(notes)
        )

    async def _observe_after_orders(
        self, only: Collection[str] | None
    ) -> tuple[Sequence[OrderRecord], Observations]:
        """The open orders, then the observation: safe while a tracker runs concurrently.

        An order missing from that list ended before the observation was read, and the
        tracker marks an order's address for a fresh read before it ends it
        (`Tracker.before_move`), so the observation already shows a delivered order's
        energy: the plan never sees "no order" together with a reading from before the
        delivery. An order still listed but ended meanwhile counts as pending energy: the
        plan can only hold, never buy twice; the store refuses a second open order in any
        case.
        """
        open_orders = await self.store.open_orders()
        return open_orders, await self.fresh_enough(await self.observe(only), open_orders)

    async def _execute(
        self, decided: Plan, observations: Observations
    ) -> tuple[list[ActionOutcome], list[str]]:
        """Record the policy revision, then carry out the plan's actions."""
        notes: list[str] = []
        revision = self.policy_set.revision
        try:
            latest = await self.store.latest_policy_revision()
            if latest is None or latest.digest != revision:
                await self.store.record_policy_revision(
                    revision, _summary(self.policy_set), self.applied_by
                )
        except StoreError as exc:
            notes.append(f"policy revision not recorded: {exc}")
        return await self.apply(decided, observations), notes

    async def apply(self, decided: Plan, observations: Observations) -> list[ActionOutcome]:
        """Carry out the plan's actions, a bounded number at once."""
        slots = asyncio.Semaphore(self.apply_concurrency)

        async def one(action: Action) -> ActionOutcome:
            policy = self.policy_set.policy(action.policy)
            seen = observations.get(action.address)
            async with slots:
                return await apply_action(
                    action,
                    store=self.store,
                    providers=self.providers,
                    clock=self.clock,
                    budgets=budget_limits(policy),
                    baseline=seen if isinstance(seen, EnergySnapshot) else None,
                    call_timeout=self.call_timeout,
                )

        return list(await asyncio.gather(*(one(a) for a in decided.actions)))


def _stalled(orders: Sequence[OrderRecord], now: float, wait: float) -> dict[str, float]:
    """Providers holding an order they accepted more than `wait` seconds ago and have not
    delegated: they get no new order until they do (a vendor out of stock may accept
    orders it cannot fill); provider -> when to look again."""
    found: dict[str, float] = {}
    for order in orders:
        if order.phase is OrderPhase.SUBMITTED and now - order.created_at > wait:
            found[order.provider] = now + wait
    return found


def _failure(error: ChainError | object) -> ObservationFailure:
    return ObservationFailure(str(error) or type(error).__name__)


def _summary(policy_set: PolicySet) -> str:
    files = sorted({item.raw.file for item in policy_set.documents})
    return f"{len(policy_set.policies)} policies, {len(policy_set.providers)} providers: " + (
        ", ".join(files)
    )


__all__ = ["Observations", "PassResult", "Reconciler"]
