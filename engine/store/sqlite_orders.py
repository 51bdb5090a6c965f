"""Orders and the spend ledger on SQLite: the statements behind `SQLiteStore`'s order methods.

Synchronous functions on a `sqlite3.Connection`, run on the store's own thread. Writers
(`create_intent`, `transition`) expect to be called inside a `BEGIN IMMEDIATE` transaction
opened by `sqlite.py`, which holds SQLite's single write lock across processes: the
open-order check, the budget check and the inserts of invariants 1, 2 and 5 happen under
that one lock, and the database's unique index and CHECKs refuse what slips past Python.

Neighbours: `sqlite.py` (connection, thread, transactions), `rows.py` (row conversion,
checks and transition plans shared with PostgreSQL), `phases.py` (transition and
settlement rules), `records.py` (values).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping
from typing import Any

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

_OPEN = tuple(sorted(OPEN_PHASES))
_OPEN_SQL = ", ".join("?" for _ in _OPEN)

# --------------------------------------------------------------------------- writers


def create_intent(
    conn: sqlite3.Connection,
    now: float,
    intent: NewIntent,
    budgets: list[BudgetLimit],
    max_open: int,
) -> IntentOutcome:
    rows.check_budget_scopes(intent, budgets)
    if _fetch_order_row(conn, intent.client_order_id) is not None:
        raise DuplicateOrderError(intent.client_order_id)

    holders = conn.execute(
        "SELECT client_order_id, open_slot FROM orders "
        "WHERE address = ? AND open_slot IS NOT NULL ORDER BY created_at, client_order_id",
        (intent.address,),
    ).fetchall()
    slot = free_slot({int(row["open_slot"]) for row in holders}, max_open)
    if slot is None:
        return rows.open_order_refusal(str(row["client_order_id"]) for row in holders)
    for budget in budgets:
        start, end = window_bounds(budget.window, now)
        spent = _sum_ledger(conn, budget.policy, start, end, budget.addresses)
        refusal = rows.over_budget(intent, budget, spent)
        if refusal is not None:
            return refusal
    try:
        conn.execute(
            "INSERT INTO orders (client_order_id, policy, address, provider, energy, duration,"
            " phase, open_slot, max_open, reserved_sun, created_at, updated_at, deadline)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows.intent_values(intent, slot, max_open, now),
        )
    except sqlite3.IntegrityError as exc:
        if "open_slot" not in str(exc):
            raise
        # The database's own guard (invariant 2): reachable only if Python's check above
        # was wrong. The failed statement wrote nothing; report it as the refusal it is.
        return rows.open_order_refusal(str(row["client_order_id"]) for row in holders)
    detail = rows.intent_detail(intent, max_open)
    _insert_event(conn, intent.client_order_id, None, OrderPhase.INTENT, now, detail)
    if intent.reserved_sun:
        _insert_ledger(
            conn,
            intent.client_order_id,
            intent.policy,
            LedgerKind.RESERVE,
            intent.reserved_sun,
            now,
            now,
        )
    return IntentCreated(order=get_order(conn, intent.client_order_id))


def transition(conn: sqlite3.Connection, now: float, change: rows.OrderChange) -> OrderRecord:
    order = get_order(conn, change.client_order_id)
    plan = rows.plan_transition(order, change)
    cursor = conn.execute(
        "UPDATE orders SET phase = ?, open_slot = CASE WHEN ? THEN open_slot END,"
        " provider_order_id = COALESCE(?, provider_order_id), cost_sun = ?,"
        " refund_sun = COALESCE(?, refund_sun), receipt = COALESCE(?, receipt),"
        " last_error = COALESCE(?, last_error), attempts = attempts + ?, updated_at = ?"
        " WHERE client_order_id = ? AND phase = ?",
        plan.update_values(now, _dumps),
    )
    if cursor.rowcount != 1:  # compare-and-set on the phase read above (same transaction)
        raise TransitionConflictError(
            change.client_order_id, frozenset({order.phase}), change.to_phase
        )
    _insert_event(conn, change.client_order_id, order.phase, change.to_phase, now, plan.detail)
    for kind, amount in plan.entries:
        _insert_ledger(
            conn, change.client_order_id, order.policy, kind, amount, order.created_at, now
        )
    return get_order(conn, change.client_order_id)


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True)


def _insert_event(
    conn: sqlite3.Connection,
    client_order_id: str,
    from_phase: OrderPhase | None,
    to_phase: OrderPhase,
    at: float,
    detail: Mapping[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO order_events (client_order_id, from_phase, to_phase, at, detail)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            client_order_id,
            None if from_phase is None else from_phase.value,
            to_phase.value,
            at,
            _dumps(detail),
        ),
    )


def _insert_ledger(
    conn: sqlite3.Connection,
    client_order_id: str,
    policy: str,
    kind: LedgerKind,
    amount_sun: int,
    booked_at: float,
    recorded_at: float,
) -> None:
    conn.execute(
        "INSERT INTO ledger_entries"
        " (client_order_id, policy, kind, amount_sun, booked_at, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (client_order_id, policy, kind.value, amount_sun, booked_at, recorded_at),
    )


# --------------------------------------------------------------------------- readers


def _fetch_order_row(conn: sqlite3.Connection, client_order_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,)
    ).fetchone()
    return row


def get_order(conn: sqlite3.Connection, client_order_id: str) -> OrderRecord:
    row = _fetch_order_row(conn, client_order_id)
    if row is None:
        raise OrderNotFoundError(client_order_id)
    return _order(row)


def _order(row: sqlite3.Row) -> OrderRecord:
    return rows.order_from_row(row, decode_json=json.loads)


def open_orders(conn: sqlite3.Connection, address: str | None) -> list[OrderRecord]:
    return orders(conn, rows.open_orders_filter(address))


def orders(conn: sqlite3.Connection, selection: OrderFilter) -> list[OrderRecord]:
    where: list[str] = []
    params: list[Any] = []
    if selection.phases is not None:
        if not selection.phases:
            return []
        where.append(f"phase IN ({', '.join('?' for _ in selection.phases)})")
        params.extend(sorted(p.value for p in selection.phases))
    for column in ("policy", "provider", "address"):
        value = getattr(selection, column)
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if selection.since is not None:
        where.append("created_at >= ?")
        params.append(selection.since)
    if selection.updated_since is not None:
        where.append("updated_at >= ?")
        params.append(selection.updated_since)
    if selection.ends_after is not None:
        where.append("created_at + duration > ?")
        params.append(selection.ends_after)
    if selection.deadline_before is not None:
        where.append(f"deadline < ? AND phase IN ({_OPEN_SQL})")
        params.extend([selection.deadline_before, *_OPEN])
    direction = "DESC" if selection.newest_first else "ASC"
    # Only fixed column names and "?" placeholders are pasted in; values are parameters.
    sql = (
        "SELECT * FROM orders"  # noqa: S608
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY created_at {direction}, client_order_id {direction} LIMIT ?"
    )
    return [_order(row) for row in conn.execute(sql, (*params, selection.limit))]


def last_orders(
    conn: sqlite3.Connection, addresses: list[str], since: float | None
) -> list[OrderRecord]:
    """The newest order of each address (created at or after `since`): one lookup in
    `orders_by_address` per address, the addresses passed as one JSON array."""
    window = "" if since is None else " AND created_at >= ?"  # fixed text only
    sql = (
        "SELECT o.* FROM json_each(?) AS a JOIN orders AS o ON o.client_order_id = ("  # noqa: S608
        " SELECT client_order_id FROM orders WHERE address = a.value" + window +
        " ORDER BY created_at DESC, client_order_id DESC LIMIT 1)"
    )  # fmt: skip
    params: tuple[Any, ...] = (json.dumps(addresses),) + (() if since is None else (since,))
    return [_order(row) for row in conn.execute(sql, params)]


def order_history(conn: sqlite3.Connection, client_order_id: str) -> list[OrderEvent]:
    get_order(conn, client_order_id)  # raises OrderNotFoundError
    return [
        rows.event_from_row(row, decode_json=json.loads)
        for row in conn.execute(
            "SELECT * FROM order_events WHERE client_order_id = ? ORDER BY seq",
            (client_order_id,),
        )
    ]


def _sum_ledger(
    conn: sqlite3.Connection,
    policy: str | None,
    start: float,
    end: float,
    addresses: Collection[str] | None = None,
) -> int:
    if addresses is not None:  # the orders of these addresses, whichever policy placed them
        row = conn.execute(
            "SELECT COALESCE(SUM(l.amount_sun), 0) FROM ledger_entries AS l"
            " JOIN orders AS o ON o.client_order_id = l.client_order_id"
            " WHERE l.booked_at >= ? AND l.booked_at < ?"
            " AND o.address IN (SELECT value FROM json_each(?))",
            (start, end, json.dumps(sorted(addresses))),
        ).fetchone()
        return int(row[0])
    sql = "SELECT COALESCE(SUM(amount_sun), 0) FROM ledger_entries WHERE booked_at >= ?"
    sql += " AND booked_at < ?"
    params: list[Any] = [start, end]
    if policy is not None:
        sql += " AND policy = ?"
        params.append(policy)
    return int(conn.execute(sql, params).fetchone()[0])


def spent(
    conn: sqlite3.Connection,
    policy: str | None,
    start: float,
    end: float,
    addresses: Collection[str] | None = None,
) -> int:
    return _sum_ledger(conn, policy, start, end, addresses)


def ledger_entries(
    conn: sqlite3.Connection,
    client_order_id: str | None,
    policy: str | None,
    since: float | None,
    limit: int,
) -> list[LedgerEntry]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("client_order_id = ?", client_order_id),
        ("policy = ?", policy),
        ("booked_at >= ?", since),
    ):
        if value is not None:
            where.append(column)
            params.append(value)
    sql = (
        "SELECT * FROM ledger_entries"  # noqa: S608 - fixed column names, values are parameters
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY seq LIMIT ?"
    )
    return [rows.ledger_entry_from_row(row) for row in conn.execute(sql, (*params, limit))]
