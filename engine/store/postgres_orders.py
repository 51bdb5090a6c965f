"""Orders and the spend ledger on PostgreSQL: the statements behind `PostgresStore`'s order
methods.

Async functions on a psycopg cursor, each called inside one transaction that
`postgres.py` opened (READ COMMITTED for writers). Replicas share nothing but the
database, so the rules are enforced there:

- invariant 2: the partial unique index `orders_open_slot_unique` refuses a second open
  order in one slot of an address, whichever replica (or raw SQL) inserts it;
- invariant 5: every writer of a policy's ledger first takes that policy's advisory
  transaction lock (`lock_budgets`), so the budget sums and the insert of the intent and
  its reservation happen with no other ledger write of the policy in between. A check
  against the account-wide budget (policy None) takes the account lock exclusively; every
  other ledger writer takes it shared.

Locks are always taken in the same order (account, then policy, then order rows), so two
writers never wait on each other in a cycle. Neighbours: `postgres.py` (pool,
transactions, error mapping), `rows.py` (row conversion, checks and transition plans
shared with SQLite), `phases.py` (rules), `records.py` (values).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any

import psycopg
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from engine.core.phases import (
    OPEN_PHASES,
    LedgerKind,
    OrderPhase,
    free_slot,
)
from engine.core.records import (
    BudgetLimit,
    IntentCreated,
    IntentOutcome,
    LedgerEntry,
    NewIntent,
    OrderEvent,
    OrderFilter,
    OrderRecord,
    window_bounds,
)
from engine.store import rows
from engine.store.base import (
    DuplicateOrderError,
    OrderNotFoundError,
    TransitionConflictError,
)

Cursor = psycopg.AsyncCursor[DictRow]
_OPEN = sorted(phase.value for phase in OPEN_PHASES)

# --------------------------------------------------------------------------- locks


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key, the same in every replica (not Python's hash)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_budgets(cur: Cursor, schema: str, policy: str, *, account: bool) -> None:
    """Serialise ledger writers of `policy` (and, with `account`, of every policy) until
    the transaction ends. Keys include the schema, so two deployments sharing a database
    in different schemas do not wait on each other."""
    kind = "pg_advisory_xact_lock" if account else "pg_advisory_xact_lock_shared"
    await cur.execute(f"SELECT {kind}(%s)", (lock_key("energyctl", schema, "account"),))
    await cur.execute(
        "SELECT pg_advisory_xact_lock(%s)", (lock_key("energyctl", schema, "policy", policy),)
    )


# --------------------------------------------------------------------------- writers


async def create_intent(
    cur: Cursor,
    schema: str,
    now: float,
    intent: NewIntent,
    budgets: list[BudgetLimit],
    max_open: int,
) -> IntentOutcome:
    rows.check_budget_scopes(intent, budgets)
    account = any(budget.policy is None for budget in budgets)
    await lock_budgets(cur, schema, intent.policy, account=account)
    if await _fetch_order_row(cur, intent.client_order_id) is not None:
        raise DuplicateOrderError(intent.client_order_id)

    holders = await _slot_holders(cur, intent.address)
    slot = free_slot(set(holders.values()), max_open)
    if slot is None:
        return rows.open_order_refusal(holders)
    for budget in budgets:
        start, end = window_bounds(budget.window, now)
        spent = await sum_ledger(cur, budget.policy, start, end, budget.addresses)
        refusal = rows.over_budget(intent, budget, spent)
        if refusal is not None:
            return refusal
    try:
        async with cur.connection.transaction():  # a savepoint: a refusal keeps the txn
            await cur.execute(
                "INSERT INTO orders (client_order_id, policy, address, provider, energy,"
                " duration, phase, open_slot, max_open, reserved_sun, created_at, updated_at,"
                " deadline) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows.intent_values(intent, slot, max_open, now),
            )
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != "orders_open_slot_unique":
            raise DuplicateOrderError(intent.client_order_id) from exc
        # The database's own guard (invariant 2), reached when another transaction took
        # the slot after our read (another policy claiming the same address). Re-read.
        return rows.open_order_refusal(await _slot_holders(cur, intent.address))
    detail = rows.intent_detail(intent, max_open)
    await _insert_event(cur, intent.client_order_id, None, OrderPhase.INTENT, now, detail)
    if intent.reserved_sun:
        await _insert_ledger(
            cur, intent, LedgerKind.RESERVE, intent.reserved_sun, booked_at=now, now=now
        )
    return IntentCreated(order=await get_order(cur, intent.client_order_id))


async def _slot_holders(cur: Cursor, address: str) -> dict[str, int]:
    await cur.execute(
        "SELECT client_order_id, open_slot FROM orders WHERE address = %s"
        " AND open_slot IS NOT NULL ORDER BY created_at, client_order_id",
        (address,),
    )
    return {str(row["client_order_id"]): int(row["open_slot"]) for row in await cur.fetchall()}


async def transition(cur: Cursor, schema: str, now: float, change: rows.OrderChange) -> OrderRecord:
    client_order_id = change.client_order_id
    rows.check_amounts(change.cost_sun, change.refund_sun)
    # The policy never changes: read it without a lock, lock its ledger, then the row.
    await cur.execute("SELECT policy FROM orders WHERE client_order_id = %s", (client_order_id,))
    found = await cur.fetchone()
    if found is None:
        raise OrderNotFoundError(client_order_id)
    await lock_budgets(cur, schema, str(found["policy"]), account=False)
    row = await _fetch_order_row(cur, client_order_id, for_update=True)
    assert row is not None  # orders are never deleted
    order = _order(row)
    plan = rows.plan_transition(order, change)
    await cur.execute(
        "UPDATE orders SET phase = %s, open_slot = CASE WHEN %s THEN open_slot END,"
        " provider_order_id = COALESCE(%s, provider_order_id), cost_sun = %s,"
        " refund_sun = COALESCE(%s, refund_sun), receipt = COALESCE(%s, receipt),"
        " last_error = COALESCE(%s, last_error), attempts = attempts + %s, updated_at = %s"
        " WHERE client_order_id = %s AND phase = %s",
        plan.update_values(now, Jsonb),
    )
    if cur.rowcount != 1:  # compare-and-set on the phase read above (row is locked: safety)
        raise TransitionConflictError(client_order_id, frozenset({order.phase}), change.to_phase)
    await _insert_event(cur, client_order_id, order.phase, change.to_phase, now, plan.detail)
    for kind, amount in plan.entries:
        await _insert_ledger(cur, order, kind, amount, booked_at=order.created_at, now=now)
    return await get_order(cur, client_order_id)


async def _insert_event(
    cur: Cursor,
    client_order_id: str,
    from_phase: OrderPhase | None,
    to_phase: OrderPhase,
    at: float,
    detail: Mapping[str, Any],
) -> None:
    await cur.execute(
        "INSERT INTO order_events (client_order_id, from_phase, to_phase, at, detail)"
        " VALUES (%s, %s, %s, %s, %s)",
        (
            client_order_id,
            None if from_phase is None else from_phase.value,
            to_phase.value,
            at,
            Jsonb(dict(detail)),
        ),
    )


async def _insert_ledger(
    cur: Cursor,
    order: NewIntent | OrderRecord,
    kind: LedgerKind,
    amount_sun: int,
    *,
    booked_at: float,
    now: float,
) -> None:
    await cur.execute(
        "INSERT INTO ledger_entries"
        " (client_order_id, policy, kind, amount_sun, booked_at, recorded_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (order.client_order_id, order.policy, kind.value, amount_sun, booked_at, now),
    )


# --------------------------------------------------------------------------- readers


async def _fetch_order_row(
    cur: Cursor, client_order_id: str, *, for_update: bool = False
) -> DictRow | None:
    if for_update:
        await cur.execute(
            "SELECT * FROM orders WHERE client_order_id = %s FOR UPDATE", (client_order_id,)
        )
    else:
        await cur.execute("SELECT * FROM orders WHERE client_order_id = %s", (client_order_id,))
    return await cur.fetchone()


async def get_order(cur: Cursor, client_order_id: str) -> OrderRecord:
    row = await _fetch_order_row(cur, client_order_id)
    if row is None:
        raise OrderNotFoundError(client_order_id)
    return _order(row)


def _order(row: DictRow) -> OrderRecord:
    return rows.order_from_row(row)


async def orders(cur: Cursor, selection: OrderFilter) -> list[OrderRecord]:
    where: list[str] = []
    params: list[Any] = []
    if selection.phases is not None:
        if not selection.phases:
            return []
        where.append("phase = ANY(%s)")
        params.append(sorted(p.value for p in selection.phases))
    for column in ("policy", "provider", "address"):
        value = getattr(selection, column)
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if selection.since is not None:
        where.append("created_at >= %s")
        params.append(selection.since)
    if selection.updated_since is not None:
        where.append("updated_at >= %s")
        params.append(selection.updated_since)
    if selection.ends_after is not None:
        where.append("created_at + duration > %s")
        params.append(selection.ends_after)
    if selection.deadline_before is not None:
        where.append("deadline < %s AND phase = ANY(%s)")
        params.extend([selection.deadline_before, _OPEN])
    direction = "DESC" if selection.newest_first else "ASC"
    # Only fixed column names and placeholders are pasted in; values are parameters.
    sql = (
        "SELECT * FROM orders"  # noqa: S608
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY created_at {direction}, client_order_id {direction} LIMIT %s"
    )
    await cur.execute(sql, (*params, selection.limit))
    return [_order(row) for row in await cur.fetchall()]


async def last_orders(cur: Cursor, addresses: list[str], since: float | None) -> list[OrderRecord]:
    """The newest order of each address (created at or after `since`): one lookup in
    `orders_by_address` per address."""
    window = "" if since is None else " AND o.created_at >= %s"  # fixed text only
    sql = (
        "SELECT o.* FROM unnest(%s::text[]) AS a(address) CROSS JOIN LATERAL ("  # noqa: S608
        " SELECT * FROM orders AS o WHERE o.address = a.address" + window +
        " ORDER BY o.created_at DESC, o.client_order_id DESC LIMIT 1) AS o"
    )  # fmt: skip
    params: tuple[Any, ...] = (addresses,) + (() if since is None else (since,))
    await cur.execute(sql, params)
    return [_order(row) for row in await cur.fetchall()]


async def order_history(cur: Cursor, client_order_id: str) -> list[OrderEvent]:
    await get_order(cur, client_order_id)  # raises OrderNotFoundError
    await cur.execute(
        "SELECT * FROM order_events WHERE client_order_id = %s ORDER BY seq", (client_order_id,)
    )
    return [rows.event_from_row(row) for row in await cur.fetchall()]


async def sum_ledger(
    cur: Cursor,
    policy: str | None,
    start: float,
    end: float,
    addresses: Collection[str] | None = None,
) -> int:
    if addresses is not None:  # the orders of these addresses, whichever policy placed them
        await cur.execute(
            "SELECT COALESCE(SUM(l.amount_sun), 0)::bigint AS total FROM ledger_entries AS l"
            " JOIN orders AS o ON o.client_order_id = l.client_order_id"
            " WHERE l.booked_at >= %s AND l.booked_at < %s AND o.address = ANY(%s)",
            (start, end, sorted(addresses)),
        )
        found = await cur.fetchone()
        assert found is not None
        return int(found["total"])
    sql = "SELECT COALESCE(SUM(amount_sun), 0)::bigint AS total FROM ledger_entries"
    sql += " WHERE booked_at >= %s AND booked_at < %s"
    params: list[Any] = [start, end]
    if policy is not None:
        sql += " AND policy = %s"
        params.append(policy)
    await cur.execute(sql, params)
    row = await cur.fetchone()
    assert row is not None
    return int(row["total"])


async def ledger_entries(
    cur: Cursor,
    client_order_id: str | None,
    policy: str | None,
    since: float | None,
    limit: int,
) -> list[LedgerEntry]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("client_order_id = %s", client_order_id),
        ("policy = %s", policy),
        ("booked_at >= %s", since),
    ):
        if value is not None:
            where.append(column)
            params.append(value)
    sql = (
        "SELECT * FROM ledger_entries"  # noqa: S608 - fixed column names, values are parameters
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY seq LIMIT %s"
    )
    await cur.execute(sql, (*params, limit))
    return [rows.ledger_entry_from_row(row) for row in await cur.fetchall()]
