"""What both stores do alike around their SQL: rows to records, checks, and change plans.

PURE: no I/O. `sqlite_orders.py` and `postgres_orders.py` (and their stores) differ in
dialect, locking, transactions and driver errors; everything else they share lives here,
so both read rows, validate arguments, refuse over-budget intents and decide what a
transition writes in exactly the same way:

- rows -> records: `order_from_row`, `event_from_row`, `ledger_entry_from_row` (a JSON
  column arrives as text from SQLite and already decoded from PostgreSQL: `decode_json`),
  `by_address` (with `distinct_addresses`, for `last_orders`);
- argument checks: `check_max_open`, `check_budget_scopes`, `check_amounts`, `check_ttl`;
- intents: `intent_values` (the INSERT's values), `intent_detail`, `over_budget`,
  `open_order_refusal`;
- transitions: `OrderChange` (what the caller asked for) and `plan_transition`, which
  checks the move and turns `phases.settlement` into the order's new columns, the event
  detail and the ledger entries (`TransitionPlan.update_values` for the UPDATE);
  `resolution_change` is an operator's resolution (`Store.resolve`) as such a change.

Neighbours: `phases.py` (the transition and settlement rules), `records.py` (values),
`base.py` (errors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.core.phases import (
    OPEN_PHASES,
    LedgerKind,
    OrderPhase,
    check_transition,
    settlement,
)
from engine.core.records import (
    BudgetLimit,
    IntentRefused,
    LedgerEntry,
    NewIntent,
    OrderEvent,
    OrderFilter,
    OrderRecord,
    RefusalReason,
)
from engine.store.base import IllegalTransitionError, TransitionConflictError


class Row(Protocol):
    """A database row read by column name (`sqlite3.Row`, psycopg's `DictRow`)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _as_is(value: Any) -> Any:
    return value


# --------------------------------------------------------------------------- rows -> records


def order_from_row(row: Row, *, decode_json: Callable[[Any], Any] = _as_is) -> OrderRecord:
    return OrderRecord(
        client_order_id=row["client_order_id"],
        policy=row["policy"],
        address=row["address"],
        provider=row["provider"],
        energy=row["energy"],
        duration=row["duration"],
        phase=OrderPhase(row["phase"]),
        reserved_sun=row["reserved_sun"],
        cost_sun=row["cost_sun"],
        refund_sun=row["refund_sun"],
        provider_order_id=row["provider_order_id"],
        receipt=None if row["receipt"] is None else decode_json(row["receipt"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deadline=row["deadline"],
        attempts=row["attempts"],
        last_error=row["last_error"],
    )


def event_from_row(row: Row, *, decode_json: Callable[[Any], Any] = _as_is) -> OrderEvent:
    return OrderEvent(
        seq=row["seq"],
        client_order_id=row["client_order_id"],
        from_phase=None if row["from_phase"] is None else OrderPhase(row["from_phase"]),
        to_phase=OrderPhase(row["to_phase"]),
        at=row["at"],
        detail=decode_json(row["detail"]),
    )


def ledger_entry_from_row(row: Row) -> LedgerEntry:
    return LedgerEntry(
        seq=row["seq"],
        client_order_id=row["client_order_id"],
        policy=row["policy"],
        kind=LedgerKind(row["kind"]),
        amount_sun=row["amount_sun"],
        booked_at=row["booked_at"],
        recorded_at=row["recorded_at"],
    )


def distinct_addresses(addresses: Iterable[str]) -> list[str]:
    """The addresses of a `last_orders` question, once each, sorted."""
    return sorted(set(addresses))


def by_address(records: Iterable[OrderRecord]) -> dict[str, OrderRecord]:
    """`last_orders`' answer: one order per address (the query returns at most one)."""
    return {record.address: record for record in records}


def open_orders_filter(address: str | None) -> OrderFilter:
    """The selection behind `Store.open_orders`: open phases, oldest first."""
    return OrderFilter(phases=OPEN_PHASES, address=address, limit=10_000, newest_first=False)


# --------------------------------------------------------------------------- checks


def check_max_open(max_open: int) -> None:
    if max_open < 1:
        raise ValueError(f"max_open must be >= 1, got {max_open}")


def check_budget_scopes(intent: NewIntent, budgets: Iterable[BudgetLimit]) -> None:
    """Each budget must limit the intent's policy or every policy (None)."""
    for budget in budgets:
        if budget.policy not in (None, intent.policy):
            raise ValueError(
                f"budget for policy {budget.policy!r} cannot limit an order of policy "
                f"{intent.policy!r}"
            )


def check_amounts(cost_sun: int | None, refund_sun: int | None) -> None:
    for label, value in (("cost_sun", cost_sun), ("refund_sun", refund_sun)):
        if value is not None and value < 0:
            raise ValueError(f"{label} must be >= 0 sun, got {value}")


def check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"lease ttl must be > 0 seconds, got {ttl}")


# --------------------------------------------------------------------------- intents


def intent_values(intent: NewIntent, slot: int, max_open: int, now: float) -> tuple[Any, ...]:
    """Values for INSERT INTO orders (client_order_id, policy, address, provider, energy,
    duration, phase, open_slot, max_open, reserved_sun, created_at, updated_at, deadline)."""
    return (
        intent.client_order_id,
        intent.policy,
        intent.address,
        intent.provider,
        intent.energy,
        intent.duration,
        OrderPhase.INTENT.value,
        slot,
        max_open,
        intent.reserved_sun,
        now,
        now,
        intent.deadline,
    )


def intent_detail(intent: NewIntent, max_open: int) -> dict[str, Any]:
    """The detail of an order's creation event."""
    detail: dict[str, Any] = {"reserved_sun": intent.reserved_sun, "max_open": max_open}
    if intent.note:
        detail["note"] = intent.note
    return detail


def open_order_refusal(holders: Iterable[str]) -> IntentRefused:
    """The refusal when every open-order slot of the address is held by `holders`."""
    return IntentRefused(reason=RefusalReason.OPEN_ORDER_EXISTS, open_orders=tuple(holders))


def over_budget(intent: NewIntent, budget: BudgetLimit, spent_sun: int) -> IntentRefused | None:
    """The refusal when reserving the intent would take `budget` over its limit."""
    if spent_sun + intent.reserved_sun > budget.limit_sun:
        return IntentRefused(
            reason=RefusalReason.BUDGET_EXCEEDED,
            budget=budget,
            spent_sun=spent_sun,
            requested_sun=intent.reserved_sun,
        )
    return None


# --------------------------------------------------------------------------- transitions


@dataclass(frozen=True)
class OrderChange:
    """The arguments of `Store.transition`, normalised (see its docstring)."""

    client_order_id: str
    to_phase: OrderPhase
    expect_from: frozenset[OrderPhase] | None = None
    provider_order_id: str | None = None
    cost_sun: int | None = None
    refund_sun: int | None = None
    receipt: Mapping[str, Any] | None = None
    error: str | None = None
    note: str | None = None
    attempt: bool = False
    #: an operator's resolution (`resolution_change`): who and why, kept in the event
    resolution: Mapping[str, str] | None = None


#: where an operator may end an open order (`Store.resolve`)
RESOLUTIONS: frozenset[OrderPhase] = frozenset({OrderPhase.DELIVERED, OrderPhase.FAILED})


def resolution_change(
    client_order_id: str,
    to_phase: OrderPhase,
    *,
    by: str,
    reason: str,
    expect_from: frozenset[OrderPhase] | None,
) -> OrderChange:
    """The change behind `Store.resolve`; ValueError for another phase or a blank `by` or
    `reason` (both go into the order's history: who ended it, and why)."""
    phase = OrderPhase(to_phase)
    if phase not in RESOLUTIONS:
        valid = ", ".join(sorted(RESOLUTIONS))
        raise ValueError(f"an order can be resolved as {valid}, not {phase}")
    for label, value in (("by", by), ("reason", reason)):
        if not value.strip():
            raise ValueError(f"resolving order {client_order_id} needs a non-blank {label}")
    return OrderChange(
        client_order_id,
        phase,
        expect_from=expect_from,
        resolution={"resolved_by": by.strip(), "reason": reason.strip()},
    )


@dataclass(frozen=True)
class TransitionPlan:
    """What moving `order` as `change` asks writes: the order's row, its event, its ledger."""

    order: OrderRecord
    change: OrderChange
    entries: list[tuple[LedgerKind, int]]
    cost_sun: int | None
    refund_sun: int | None
    detail: dict[str, Any]

    def update_values(
        self, now: float, encode_json: Callable[[dict[str, Any]], Any]
    ) -> tuple[Any, ...]:
        """Values for the compare-and-set UPDATE: phase, keep the open slot (bool),
        provider_order_id, cost_sun, refund_sun, receipt (`encode_json`), last_error,
        attempts increment, updated_at, client_order_id, the phase read."""
        change = self.change
        return (
            change.to_phase.value,
            change.to_phase.is_open,
            change.provider_order_id,
            self.cost_sun,
            self.refund_sun,
            None if change.receipt is None else encode_json(dict(change.receipt)),
            change.error,
            1 if change.attempt else 0,
            now,
            change.client_order_id,
            self.order.phase.value,
        )


def plan_transition(order: OrderRecord, change: OrderChange) -> TransitionPlan:
    """Check the move of `order` (read in the writing transaction) and decide what it writes.

    Raises TransitionConflictError, IllegalTransitionError, or ValueError for a negative
    amount or a refund larger than the charge."""
    to_phase = change.to_phase
    if change.expect_from is not None and order.phase not in change.expect_from:
        raise TransitionConflictError(change.client_order_id, change.expect_from, order.phase)
    if not check_transition(order.phase, to_phase):
        raise IllegalTransitionError(change.client_order_id, order.phase, to_phase)
    check_amounts(change.cost_sun, change.refund_sun)
    entries = settlement(
        to_phase,
        reserved_sun=order.reserved_sun,
        cost_sun=change.cost_sun,
        known_cost_sun=order.cost_sun,
        refund_sun=change.refund_sun,
    )
    # While open, cost_sun is what the provider reported; once terminal, what was settled,
    # so that for every terminal order cost_sun - refund_sun is its share of the ledger.
    new_cost = order.cost_sun if change.cost_sun is None else change.cost_sun
    if to_phase.is_terminal:
        new_cost = sum(amount for kind, amount in entries if kind is LedgerKind.SETTLE)
    new_refund = -sum(amount for kind, amount in entries if kind is LedgerKind.REFUND)
    detail: dict[str, Any] = {
        key: value
        for key, value in (
            ("provider_order_id", change.provider_order_id),
            ("cost_sun", change.cost_sun),
            ("refund_sun", change.refund_sun),
            ("error", change.error),
            ("note", change.note),
        )
        if value is not None
    }
    if change.attempt:
        detail["attempt"] = True
    if change.resolution is not None:
        detail.update(change.resolution)
    if entries:
        detail["ledger"] = [[kind.value, amount] for kind, amount in entries]
    return TransitionPlan(
        order=order,
        change=change,
        entries=entries,
        cost_sun=new_cost,
        refund_sun=new_refund or None,
        detail=detail,
    )
