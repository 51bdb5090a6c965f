"""Buying one sweep's energy for deposit episodes: readings, decision, quotes, claim, order.

`SweepBuyer.buy(needs)` is step 3 of the deposit desk (`depositing.py`) for the episodes
in state `open`: it reads those addresses (only those), asks
`engine/decide/deposits.py` what each needs (ready, wait, held, buy) at the sweep's
energy (`sweep_energy`: the hot wallet's token balance, read every `energy_ttl` seconds),
fetches the quotes and provider balances the buys ask for (reused for `quote_ttl`
seconds), claims the episodes to buy for in the store (`open` -> `ordered`, one
transaction) and buys through `engine/act/applying.py`: write-ahead intent, the budget
reserved at the cap, one open order per address. The episodes' new states are written in
one transaction after every order of the round is placed.

Neighbours: `depositing.py` (the desk that calls it), `engine/decide/deposits.py`,
`engine/act/applying.py`, `engine/store/` (episodes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from engine.act.applying import OutcomeKind, apply_action
from engine.core.clock import Clock
from engine.core.concurrency import CallTimeout, bounded
from engine.core.deposits import DepositNeed, NeedState
from engine.core.snapshots import EnergySnapshot
from engine.decide.deposits import (
    Round,
    Step,
    SweepDecision,
    SweepInputs,
    assess_sweep,
    choose_sweep,
    quote_keys,
)
from engine.decide.plans import ObservationFailure, ProviderView, QuoteKey
from engine.observe.chain import ChainError, NodeHeads
from engine.store import BudgetLimit, BudgetWindow, Store
from policies.deposits import SWEEP_TO_EMPTY, SWEEP_TO_HOLDER, DepositPolicy
from providers.base import Provider as Adapter
from providers.base import ProviderError, Quote, QuoteRequest, TemporaryError

log = logging.getLogger("energyctl.deposits")


@dataclass(frozen=True, slots=True)
class DepositSettings:
    follow_interval: float = 1.0  # seconds between block polls
    interval: float = 30.0  # seconds between safety-net rounds (and source polls)
    energy_ttl: float = 300.0  # seconds the hot wallet's "holds the token" is reused
    quote_ttl: float = 2.0  # seconds a quote or balance is reused
    max_actions: int = 100  # most purchases started in one round
    #: orders placed at once: a block's deposits are ordered together, each for its own
    #: address; every order waits for its intent's commit on the store, so a block's
    #: orders go out in about the time of their intents' commits
    apply_concurrency: int = 64


class DepositReader(Protocol):
    """What the desk reads of the chain: a `ChainReader`, or the simulator's in-memory
    reader (`sandbox/state_reader.py`)."""

    node: str

    async def heads(self) -> NodeHeads: ...

    async def block(self, number: int) -> dict[str, Any] | None: ...

    async def block_infos(self, number: int) -> list[dict[str, Any]]: ...

    async def snapshot(self, address: str, *, delegators: bool = False) -> EnergySnapshot: ...

    async def snapshots(
        self, addresses: Iterable[str], *, delegators: bool = False
    ) -> dict[str, EnergySnapshot | ChainError]: ...

    async def token_balance(self, token: str, owner: str) -> int: ...


class SweepBuyer:
    """See the module docstring. `wake_tracking()` asks the controller to track now."""

    def __init__(
        self,
        policies: Mapping[str, DepositPolicy],
        *,
        store: Store,
        reader: DepositReader,
        providers: Mapping[str, Adapter],
        clock: Clock,
        settings: DepositSettings,
        wake_tracking: Callable[[], None] = lambda: None,
        call_timeout: float | None = None,
    ) -> None:
        self.policies = policies
        self.store, self.reader, self.providers, self.clock = store, reader, providers, clock
        self.settings = settings
        self.wake_tracking = wake_tracking
        self.call_timeout = call_timeout
        self._hot: dict[str, tuple[float, int]] = {}  # policy -> (read at, sweep energy)
        self._quotes: dict[QuoteKey, tuple[float, Quote]] = {}
        self._balances: dict[str, tuple[float, int | None]] = {}
        #: per deposit ordered: its address, the perf_counter when its block was read and
        #: when the order's acceptance was recorded (the most recent ones)
        self.placements: list[tuple[str, float, float]] = []  # (address, seen, recorded)

    async def buy(
        self, needs: Sequence[DepositNeed], seen: Mapping[int, float]
    ) -> list[SweepDecision]:
        """Decide and buy for `open` episodes (`seen`: when each one's block was read, by
        perf_counter, for `placements`); the episodes found ready come back."""
        now = self.clock.now()
        addresses = [n.address for n in needs]
        raw = await self.reader.snapshots(addresses)
        readings: dict[str, EnergySnapshot | ObservationFailure] = {
            a: v if isinstance(v, EnergySnapshot) else ObservationFailure(str(v))
            for a, v in raw.items()
        }
        wanted = set(addresses)
        open_orders = [o for o in await self.store.open_orders() if o.address in wanted]
        views = await self._views(now)
        decisions: list[SweepDecision] = []
        for need in needs:
            policy = self.policies[need.policy]
            decisions.append(
                assess_sweep(
                    SweepInputs(
                        need=need,
                        policy=policy,
                        sweep_energy=await self.sweep_energy(policy),
                        reading=readings.get(need.address),
                        open_orders=[o for o in open_orders if o.address == need.address],
                        providers=views,
                        now=now,
                    )
                )
            )
        quotes, balances = await self._market(decisions, now)
        views = {n: replace(v, balance_sun=balances.get(n)) for n, v in views.items()}
        round_ = Round(spent=await self._spent(now), actions_left=self.settings.max_actions)
        chosen = [
            choose_sweep(d, self.policies[d.need.policy], views, quotes, round_) for d in decisions
        ]
        chosen = await self._claim(chosen)
        slots = asyncio.Semaphore(self.settings.apply_concurrency)
        bought = await asyncio.gather(
            *(self._buy(d, readings, slots, seen.get(d.need.id)) for d in chosen)
        )
        # the episodes' new states in one transaction, after every order of the round is
        # placed (an episode claimed but left without its order id by a crash here is
        # released by `check_orders`; its order, if placed, holds the address meanwhile)
        changes: list[tuple[int, frozenset[NeedState], dict[str, Any]]] = []
        ready: list[SweepDecision] = []
        for decision, outcome in zip(chosen, bought, strict=True):
            need = decision.need
            if decision.step is Step.READY:
                ready.append(decision)
            elif outcome is None:
                fields = {"energy": decision.energy, "note": decision.reason}
                changes.append((need.id, frozenset({NeedState.OPEN}), fields))
            elif outcome[0]:
                fields = {"client_order_id": outcome[0], "note": outcome[1]}
                changes.append((need.id, frozenset({NeedState.ORDERED}), fields))
            else:  # nothing bought: the claim is released
                fields = {"state": NeedState.OPEN, "note": outcome[1]}
                changes.append((need.id, frozenset({NeedState.ORDERED}), fields))
        if changes:
            await self.store.update_deposit_needs(changes)
        if any(o is not None and o[0] for o in bought):
            self.wake_tracking()
        return ready

    async def _claim(self, chosen: Sequence[SweepDecision]) -> list[SweepDecision]:
        """Claim every episode about to be bought for (`open` -> `ordered`, no order id
        yet) in one transaction, before any vendor is called; an episode another process
        (a replica that saw the same deposit) claimed first is left to it."""
        buying = [d for d in chosen if d.action is not None]
        if not buying:
            return list(chosen)
        claims = await self.store.update_deposit_needs(
            [
                (
                    d.need.id,
                    frozenset({NeedState.OPEN}),
                    {"state": NeedState.ORDERED, "energy": d.energy, "note": "placing an order"},
                )
                for d in buying
            ]
        )
        lost = {d.need.id for d, claim in zip(buying, claims, strict=True) if claim is None}
        return [d for d in chosen if d.need.id not in lost]

    async def _buy(
        self,
        decision: SweepDecision,
        readings: Mapping[str, EnergySnapshot | ObservationFailure],
        slots: asyncio.Semaphore,
        seen_at: float | None,
    ) -> tuple[str | None, str] | None:
        """Carry out the decision's action: (the order id it holds the address with, or
        None when nothing was bought; why). None when there is no action."""
        need = decision.need
        if decision.action is None:
            return None
        policy = self.policies[need.policy]
        seen = readings.get(need.address)
        async with slots:
            outcome = await apply_action(
                decision.action,
                store=self.store,
                providers=self.providers,
                clock=self.clock,
                budgets=deposit_budgets(policy),
                baseline=seen if isinstance(seen, EnergySnapshot) else None,
                call_timeout=self.call_timeout,
            )
        if seen_at is not None and outcome.kind is OutcomeKind.BOUGHT:
            self.placements.append((need.address, seen_at, time.perf_counter()))
            del self.placements[:-10_000]
        log.info(
            "deposit order",
            extra={
                "event": "deposits",
                "policy": need.policy,
                "address": need.address,
                "outcome": str(outcome.kind),
                "reason": outcome.reason,
            },
        )
        if outcome.kind is OutcomeKind.BOUGHT:
            return outcome.client_order_id, outcome.reason
        # an ambiguous create holds the address until resolved: the episode follows it
        held = [a.client_order_id for a in outcome.attempts if a.result == "ambiguous"]
        return (held[-1] if held else None), outcome.reason

    async def _views(self, now: float) -> dict[str, ProviderView]:
        cooldowns = await self.store.provider_cooldowns(now)
        return {
            name: ProviderView(name, provider.capabilities, cooling_until=cooldowns.get(name))
            for name, provider in self.providers.items()
        }

    async def _spent(self, now: float) -> dict[tuple[str, BudgetWindow], int]:
        spent: dict[tuple[str, BudgetWindow], int] = {}
        for name, policy in self.policies.items():
            for limit in deposit_budgets(policy):
                spent[(name, limit.window)] = await self.store.spent(name, limit.window, now)
        return spent

    async def _market(
        self, decisions: Sequence[SweepDecision], now: float
    ) -> tuple[dict[QuoteKey, Quote | ProviderError], dict[str, int | None]]:
        keys = sorted(quote_keys(decisions), key=lambda k: (k.provider, k.energy, k.duration))
        receivers = {
            QuoteKey(c.provider, c.energy, c.duration): d.need.address
            for d in decisions
            for c in d.candidates
        }
        names = sorted({k.provider for k in keys})
        ttl = self.settings.quote_ttl

        async def quote(key: QuoteKey) -> Quote | ProviderError:
            kept = self._quotes.get(key)
            if kept is not None and now - kept[0] < ttl:
                return kept[1]
            request = QuoteRequest(
                receiver=receivers[key], energy=key.energy, duration=key.duration
            )
            try:
                got: Quote = await self._bounded(
                    key.provider, self.providers[key.provider].quote(request)
                )
            except ProviderError as exc:
                return exc
            self._quotes[key] = (now, got)
            return got

        async def balance(name: str) -> int | None:
            kept = self._balances.get(name)
            if kept is not None and now - kept[0] < ttl:
                return kept[1]
            try:
                sun: int | None = await self._bounded(name, self.providers[name].balance())
            except ProviderError:
                sun = None
            self._balances[name] = (now, sun)
            return sun

        got_quotes, got_balances = await asyncio.gather(
            asyncio.gather(*(quote(k) for k in keys)), asyncio.gather(*(balance(n) for n in names))
        )
        return dict(zip(keys, got_quotes, strict=True)), dict(zip(names, got_balances, strict=True))

    async def _bounded(self, provider: str, call: Awaitable[Any]) -> Any:
        try:
            return await bounded(self.clock, self.call_timeout, call)
        except CallTimeout as exc:
            raise TemporaryError(provider, str(exc)) from exc

    async def sweep_energy(self, policy: DepositPolicy) -> int:
        """The energy of one sweep: `sweepEnergy`, or by the hot wallet's token balance
        (read every `energy_ttl` seconds; unreadable: the larger figure, never too little)."""
        if policy.spec.sweep_energy is not None:
            return policy.spec.sweep_energy
        name, now = policy.metadata.name, self.clock.now()
        kept = self._hot.get(name)
        if kept is not None and now - kept[0] < self.settings.energy_ttl:
            return kept[1]
        try:
            held = await self.reader.token_balance(policy.spec.tokens[0], policy.spec.sweep_to)
            energy = SWEEP_TO_HOLDER if held > 0 else SWEEP_TO_EMPTY
        except ChainError as exc:
            log.warning("hot wallet balance unreadable", extra={"error": str(exc)})
            energy = SWEEP_TO_EMPTY
        self._hot[name] = (now, energy)
        return energy


def deposit_budgets(policy: DepositPolicy) -> list[BudgetLimit]:
    """The store's budget limits of a deposit policy: by policy name (its addresses may
    number a million; they do not carry the spend)."""
    budget, name = policy.spec.budget, policy.metadata.name
    return [
        BudgetLimit(policy=name, window=window, limit_sun=limit)
        for window, limit in (
            (BudgetWindow.DAY, budget.per_day),
            (BudgetWindow.MONTH, budget.per_month),
        )
        if limit is not None
    ]


__all__ = ["DepositReader", "DepositSettings", "SweepBuyer", "deposit_budgets"]
