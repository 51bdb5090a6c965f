"""Applying: carry out one planned purchase, write-ahead, and say what came of it.

`apply_action(action, ...)` walks the action's candidates in priority order. For each:

1. a fresh client order id; `store.create_intent` commits the intent with its budget
   reservation in the transaction that also enforces the open-order limit (invariants 1,
   2 and 5). A refusal ends the action as `held`. The reservation is the most the order
   may cost (`reservation`): the price cap, never the quote, because the price can move
   between the quote and the order and the vendor charges its price of the moment. When
   the order ends, the reservation is released and the charge settled from the receipt
   (or the vendor's final status): budgets hold whatever the vendor charged within the cap.
2. `provider.place(...)` with the policy's options (exclusive, duplicate prevention, the
   price cap; fill-or-nothing wherever the vendor offers it, so a partial fill never
   holds the address).
3. The answer is recorded with a compare-and-set transition from `intent`:
   - a receipt: `submitted` with its cost. A cost above the cap is recorded as it is (the
     money is spent) and flagged `over_cap` for an alert, never silently accepted; a cost
     above the quote (the price moved) is flagged `over_quote`, and alerted too;
   - a definite failure (`TemporaryError`, `PermanentError`): `failed` (the reservation is
     released), the provider's failure is recorded (it cools down) and the next candidate
     is tried; a duplicate refusal stops the walk (the vendor holds an order like it);
   - an ambiguous one (`AmbiguousError`, or anything unexpected): `unknown`, and the walk
     stops: no order elsewhere until tracking resolves it (invariant 3).

It never raises per action: store failures become `held` outcomes (an intent left behind
is found by `engine/act/tracking.py`). A create call is never retried here: adapters retry
only where the vendor has an idempotency key (invariant 4).

Crash points (`engine/core/crashing.py`) surround the intent's commit and the provider's
answer, for the crash tests and the chaos suite.

`call_timeout` (seconds on the injected clock; None: only the adapters' own HTTP
timeouts) bounds the whole `place` call, retries included: a provider that never answers
is an ambiguous outcome after that long (`bounded`), never a stalled pass.

Neighbours: `engine/decide/planning.py` (the `Action`), `engine/store/` (intents, transitions),
`providers/base.py` (the calls), `engine/reconciling.py` (calls this per action).
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.core.clock import Clock
from engine.core.concurrency import bounded
from engine.core.crashing import crash_point
from engine.core.snapshots import EnergySnapshot
from engine.decide.planning import Action, Candidate
from engine.store import (
    BudgetLimit,
    BudgetWindow,
    IntentRefused,
    NewIntent,
    OrderPhase,
    Store,
    StoreError,
)
from policies.models import EnergyPolicy
from providers.base import (
    AmbiguousError,
    ErrorReason,
    OrderRequest,
    PermanentError,
    Provider,
    Receipt,
    TemporaryError,
)

_T = TypeVar("_T")

#: provider failures that say nothing about the provider's health (the order was wrong)
_NOT_THE_PROVIDERS_FAULT = frozenset({ErrorReason.RECEIVER, ErrorReason.PRICE})


class OutcomeKind(enum.StrEnum):
    BOUGHT = "bought"  # a provider accepted an order (submitted; tracking follows it)
    HELD = "held"  # nothing bought, and the address must wait (open order, budget, unknown)
    FAILED = "failed"  # every candidate failed definitely: nothing bought


@dataclass(frozen=True, slots=True)
class Attempt:
    """One candidate tried: which order id it used and how it ended."""

    provider: str
    client_order_id: str | None
    result: str  # "accepted", "failed", "ambiguous", "refused", "skipped"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    address: str
    policy: str
    kind: OutcomeKind
    reason: str
    provider: str | None = None
    client_order_id: str | None = None
    energy: int | None = None
    duration: int | None = None
    cost_sun: int | None = None
    cap_sun: int | None = None
    over_cap: bool = False
    attempts: tuple[Attempt, ...] = field(default=())
    quote_sun: int | None = None
    over_quote: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "policy": self.policy,
            "outcome": str(self.kind),
            "reason": self.reason,
            "provider": self.provider,
            "client_order_id": self.client_order_id,
            "energy": self.energy,
            "duration": self.duration,
            "cost_sun": self.cost_sun,
            "cap_sun": self.cap_sun,
            "over_cap": self.over_cap,
            "quote_sun": self.quote_sun,
            "over_quote": self.over_quote,
            "attempts": [
                {"provider": a.provider, "client_order_id": a.client_order_id}
                | {"result": a.result, "detail": a.detail}
                for a in self.attempts
            ],
        }


def budget_limits(policy: EnergyPolicy) -> list[BudgetLimit]:
    """The store's budget limits for one policy (invariant 5)."""
    budget = policy.spec.budget
    limits = []
    for window, limit in (
        (BudgetWindow.DAY, budget.per_day),
        (BudgetWindow.MONTH, budget.per_month),
    ):
        if limit is not None:
            limits.append(
                BudgetLimit(
                    policy=policy.metadata.name,
                    window=window,
                    limit_sun=limit,
                    # the addresses carry the spend: a renamed policy keeps it (records.py)
                    addresses=frozenset(policy.spec.addresses),
                )
            )
    return limits


def reservation(candidate: Candidate, cap: int) -> int:
    """What an intent for `candidate` reserves of its budgets: the most the order may cost.

    That is the cap (`Action.cap_for`), sent with the order as its maximum total: a vendor
    that enforces it (TronSave's `maxPriceAccepted`) refuses rather than charge more, and
    any other vendor charging more is flagged `over_cap`. The quote is only what the price
    was when asked: reserving it let two orders quoted 25.5 TRX and charged 39.9 TRX each
    spend 79.8 TRX of a 60 TRX day. A quote above the cap (never planned) is reserved as
    it is.
    """
    return max(cap, candidate.quote_sun or 0)


def baseline_note(reason: str, snapshot: EnergySnapshot | None) -> str:
    """The intent's note: why, and the chain as seen before the order (tracking's baseline)."""
    data: dict[str, Any] = {"reason": reason}
    if snapshot is not None:
        data["baseline"] = {
            "limit": snapshot.limit,
            "available": snapshot.available,
            "delegated_in": snapshot.delegated_in,
            "block": snapshot.block,
            "read_at": snapshot.read_at,
        }
    return json.dumps(data, sort_keys=True)


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    return receipt.model_dump(mode="json")


def new_order_id() -> str:
    return "ec-" + uuid.uuid4().hex


async def apply_action(
    action: Action,
    *,
    store: Store,
    providers: Mapping[str, Provider],
    clock: Clock,
    budgets: Sequence[BudgetLimit] = (),
    baseline: EnergySnapshot | None = None,
    resolve_within: float = 1800.0,
    new_id: Callable[[], str] = new_order_id,
    call_timeout: float | None = None,
) -> ActionOutcome:
    """Buy what `action` asks for from the first candidate that accepts; never raises."""
    attempts: list[Attempt] = []

    def outcome(kind: OutcomeKind, reason: str, **extra: Any) -> ActionOutcome:
        return ActionOutcome(
            action.address, action.policy, kind, reason, attempts=tuple(attempts), **extra
        )

    for candidate in action.candidates:
        provider = providers.get(candidate.provider)
        if provider is None:
            attempts.append(Attempt(candidate.provider, None, "skipped", "not configured"))
            continue
        cap = action.cap_for(candidate)
        coid = new_id()
        intent = NewIntent(
            client_order_id=coid,
            policy=action.policy,
            address=action.address,
            provider=candidate.provider,
            energy=candidate.energy,
            duration=candidate.duration,
            reserved_sun=reservation(candidate, cap),
            deadline=clock.now() + resolve_within,
            note=baseline_note(action.reason, baseline),
        )
        crash_point("before_intent")
        try:
            created = await store.create_intent(
                intent, budgets=list(budgets), max_open=action.max_open
            )
        except StoreError as exc:
            attempts.append(Attempt(candidate.provider, coid, "refused", str(exc)))
            return outcome(OutcomeKind.HELD, f"store: {exc}")
        if isinstance(created, IntentRefused):
            attempts.append(Attempt(candidate.provider, coid, "refused", str(created)))
            return outcome(OutcomeKind.HELD, str(created))
        crash_point("after_intent")
        attempt, ending = await _place(
            action, candidate, provider, coid, cap, store, clock, call_timeout
        )
        attempts.append(attempt)
        if ending is not None:
            kind, reason, extra = ending
            return outcome(kind, reason, **extra)
    reasons = "; ".join(f"{a.provider}: {a.detail}" for a in attempts) or "no candidate"
    return outcome(OutcomeKind.FAILED, reasons)


_Ending = tuple[OutcomeKind, str, dict[str, Any]]
"""How the walk ends after one candidate: kind, reason, outcome fields."""


async def _place(
    action: Action,
    candidate: Candidate,
    provider: Provider,
    coid: str,
    cap: int,
    store: Store,
    clock: Clock,
    call_timeout: float | None,
) -> tuple[Attempt, _Ending | None]:
    """Place one order on its committed intent and record the answer."""
    name = candidate.provider
    caps = provider.capabilities
    request = OrderRequest(
        client_order_id=coid,
        receiver=action.address,
        energy=candidate.energy,
        duration=candidate.duration,
        max_total_sun=cap,
        exclusive=action.exclusive,
        prevent_duplicates=action.prevent_duplicates,
        fill_or_nothing=caps.fill_or_nothing,
        allow_partial=False,
    )
    order: dict[str, Any] = {"provider": name, "client_order_id": coid}
    order |= {"energy": candidate.energy, "duration": candidate.duration, "cap_sun": cap}
    try:
        receipt = await bounded(clock, call_timeout, provider.place(request))
    except (TemporaryError, PermanentError) as exc:
        crash_point("after_answer")
        ok = await _record(store, coid, OrderPhase.FAILED, error=str(exc))
        if exc.reason not in _NOT_THE_PROVIDERS_FAULT:
            await _health(store, name, False, f"{exc.reason}: {exc}")
        attempt = Attempt(name, coid, "failed", str(exc))
        if not ok:
            return attempt, (OutcomeKind.HELD, f"store write failed for {coid}", order)
        if exc.reason is ErrorReason.DUPLICATE:
            why = f"{name} holds an identical incomplete order; not buying elsewhere"
            return attempt, (OutcomeKind.HELD, why, order)
        return attempt, None
    except Exception as exc:  # AmbiguousError, or anything unforeseen: it may exist
        kind = "ambiguous" if isinstance(exc, AmbiguousError) else type(exc).__name__
        crash_point("after_answer")
        await _record(store, coid, OrderPhase.UNKNOWN, error=f"{kind}: {exc}")
        await _health(store, name, False, f"ambiguous: {exc}")
        why = f"{name} may have accepted order {coid} ({exc}); held until resolved"
        return Attempt(name, coid, "ambiguous", str(exc)), (OutcomeKind.HELD, why, order)
    crash_point("after_place")
    over = receipt.cost_sun is not None and receipt.cost_sun > cap
    quoted = candidate.quote_sun
    moved = receipt.cost_sun is not None and quoted is not None and receipt.cost_sun > quoted
    note = f"cost {receipt.cost_sun} sun above the cap {cap} sun: ALERT" if over else None
    if moved and not over:
        note = f"cost {receipt.cost_sun} sun above the quote {quoted} sun: ALERT"
    ok = await _record(
        store,
        coid,
        OrderPhase.SUBMITTED,
        provider_order_id=receipt.provider_order_id,
        cost_sun=receipt.cost_sun,
        receipt=receipt_json(receipt),
        note=note,
    )
    await _health(store, name, True, None)
    done = order | {"cost_sun": receipt.cost_sun, "over_cap": over}
    done |= {"quote_sun": quoted, "over_quote": moved}
    reason = f"order {receipt.provider_order_id} accepted"
    if not ok:
        reason += "; the store write failed, tracking will resolve it"
    return Attempt(name, coid, "accepted", reason), (OutcomeKind.BOUGHT, reason, done)


async def _record(store: Store, coid: str, phase: OrderPhase, **fields: Any) -> bool:
    """Record a call's answer on the intent (compare-and-set); False if the write failed.

    From `unknown` too: tracking may have moved a slow intent there in the meantime.
    """
    try:
        await store.transition(
            coid, phase, expect_from={OrderPhase.INTENT, OrderPhase.UNKNOWN}, attempt=True, **fields
        )
    except StoreError:
        return False
    return True


async def _health(store: Store, provider: str, ok: bool, reason: str | None) -> None:
    try:
        await store.record_provider_result(provider, ok, reason)
    except StoreError:
        return  # health is advisory; the order's own record is what counts
