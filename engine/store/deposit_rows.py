"""Deposit episodes and run-time deposit addresses: the SQL of both backends.

The statements are written once with `:name` placeholders (SQLite's) and turned into
psycopg's `%(name)s` for PostgreSQL (`_pg`). Recording a deposit is one upsert on the
partial unique index "one open episode per address" (`deposit_needs_one_open`,
migration 0004): a second deposit, or the same one seen again by another replica or after
a block was re-read, joins the open episode instead of opening another, whatever the
Python around it does.

A chain transfer is also recorded by its identity (`deposit_seen`: transaction id and the
log's place in that transaction) in the same transaction: one seen before neither opens nor
joins an episode, so a block re-read after its episode closed (a lagging replica, a follow
position behind) buys nothing again. Identities older than `SEEN_KEPT` are pruned as
deposits are recorded: a follower never re-reads that far back (it skips blocks more than
an hour behind).

Neighbours: `sqlite.py` and `postgres.py` call these inside their transactions;
`engine/core/deposits.py` holds the values.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Mapping
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import DictRow

from engine.core.deposits import DepositNeed, NeedState

Cursor = AsyncCursor[DictRow]

#: fields `update_deposit_need` may set
UPDATABLE = frozenset(
    {
        "state",
        "energy",
        "client_order_id",
        "note",
        "ready_at",
        "notified_at",
        "closed_at",
        "close_reason",
    }
)

_INSERT = (
    "INSERT INTO deposit_needs (policy, address, token, deposit_txid, deposit_block, amount,"
    " deposits, state, opened_at, updated_at)"
    " VALUES (:policy, :address, :token, :txid, :block, :amount, 1, 'open', :now, :now)"
    " ON CONFLICT (address) WHERE closed_at IS NULL DO NOTHING RETURNING *"
)
_JOIN_ANY = (
    "UPDATE deposit_needs SET deposits = deposits + 1, updated_at = :now"
    " WHERE address = :address AND closed_at IS NULL"
)
# a deposit without its log's place (no identity recorded): its transaction id tells the
# opening deposit seen again
_JOIN = _JOIN_ANY + " AND deposit_txid <> :txid RETURNING *"
_JOIN_ANY += " RETURNING *"
#: how long a transfer's identity is kept (seconds): far beyond any re-read
SEEN_KEPT = 7 * 86_400.0
_SEEN = (
    "INSERT INTO deposit_seen (txid, log, seen_at) VALUES (:txid, :log, :now)"
    " ON CONFLICT (txid, log) DO NOTHING RETURNING txid"
)
_SEEN_EPISODE = "UPDATE deposit_seen SET episode = :episode WHERE txid = :txid AND log = :log"
_SEEN_BEFORE = (
    "SELECT n.* FROM deposit_seen s JOIN deposit_needs n ON n.id = s.episode"
    " WHERE s.txid = :txid AND s.log = :log"
)
_PRUNE_SEEN = "DELETE FROM deposit_seen WHERE seen_at < :before"
_OPEN_ONE = "SELECT * FROM deposit_needs WHERE address = :address AND closed_at IS NULL"
_SET_ADDRESS = (
    "INSERT INTO deposit_addresses (policy, address, present, changed_at)"
    " VALUES (:policy, :address, :present, :now)"
    " ON CONFLICT (policy, address) DO UPDATE SET present = EXCLUDED.present,"
    " changed_at = EXCLUDED.changed_at"
)
_ADDRESSES = "SELECT policy, address, present FROM deposit_addresses ORDER BY policy, address"
_SET_CURSOR = (
    "INSERT INTO deposit_cursors (name, block, updated_at) VALUES (:name, :block, :now)"
    " ON CONFLICT (name) DO UPDATE SET block = EXCLUDED.block, updated_at = EXCLUDED.updated_at"
)
_CURSOR = "SELECT block FROM deposit_cursors WHERE name = :name"


def _join(params: Mapping[str, Any]) -> str:
    return _JOIN if params.get("log") is None else _JOIN_ANY


def _pg(statement: str) -> str:
    return re.sub(r":([a-z_][a-z0-9_]*)", r"%(\1)s", statement)


def need_from_row(row: Mapping[str, Any]) -> DepositNeed:
    values = dict(row)
    values["state"] = NeedState(values["state"])
    return DepositNeed(**values)


def check_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ValueError(f"deposit need fields not updatable: {sorted(unknown)}")
    out = dict(fields)
    if "state" in out:
        out["state"] = str(NeedState(out["state"]))
    return out


def _selection(
    open_only: bool, addresses: Collection[str] | None, policy: str | None, limit: int
) -> tuple[str, dict[str, Any], list[str]]:
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if open_only:
        where.append("closed_at IS NULL")
    if policy is not None:
        where.append("policy = :policy")
        params["policy"] = policy
    names: list[str] = []
    for index, address in enumerate(sorted(set(addresses or ()))):
        params[f"a{index}"] = address
        names.append(f":a{index}")
    if addresses is not None:
        where.append(f"address IN ({', '.join(names) or 'NULL'})")
    text = "SELECT * FROM deposit_needs"
    if where:
        text += " WHERE " + " AND ".join(where)
    return text + " ORDER BY opened_at DESC, id DESC LIMIT :limit", params, names


def _update(need_id: int, fields: Mapping[str, Any], expect: Collection[NeedState] | None) -> str:
    sets = ", ".join(f"{name} = :{name}" for name in fields)
    # names come from UPDATABLE (check_fields) and states from NeedState: no input text
    text = f"UPDATE deposit_needs SET {sets}, updated_at = :now WHERE id = :id"  # noqa: S608
    text += " AND closed_at IS NULL"
    if expect:
        text += " AND state IN (" + ", ".join(f"'{NeedState(s)}'" for s in expect) + ")"
    return text + " RETURNING *"


# --------------------------------------------------------------------------- SQLite


def sqlite_record(
    conn: sqlite3.Connection, now: float, values: Mapping[str, Any]
) -> tuple[DepositNeed, bool]:
    params = {**values, "now": now}
    if params.get("log") is None:
        return _sqlite_episode(conn, params)
    if conn.execute(_SEEN, params).fetchone() is None:  # this transfer was recorded before
        return need_from_row(conn.execute(_SEEN_BEFORE, params).fetchone()), False
    need, opened = _sqlite_episode(conn, params)
    conn.execute(_SEEN_EPISODE, {**params, "episode": need.id})
    return need, opened


def sqlite_prune_seen(conn: sqlite3.Connection, now: float) -> None:
    conn.execute(_PRUNE_SEEN, {"before": now - SEEN_KEPT})


def _sqlite_episode(
    conn: sqlite3.Connection, params: Mapping[str, Any]
) -> tuple[DepositNeed, bool]:
    row = conn.execute(_INSERT, params).fetchone()
    if row is not None:
        return need_from_row(row), True
    joined = conn.execute(_join(params), params).fetchone()
    if joined is not None:
        return need_from_row(joined), False
    return need_from_row(conn.execute(_OPEN_ONE, params).fetchone()), False


def sqlite_needs(
    conn: sqlite3.Connection,
    open_only: bool,
    addresses: Collection[str] | None,
    policy: str | None,
    limit: int,
) -> list[DepositNeed]:
    text, params, _ = _selection(open_only, addresses, policy, limit)
    return [need_from_row(row) for row in conn.execute(text, params)]


def sqlite_update(
    conn: sqlite3.Connection,
    now: float,
    need_id: int,
    fields: Mapping[str, Any],
    expect: Collection[NeedState] | None,
) -> DepositNeed | None:
    row = conn.execute(_update(need_id, fields, expect), {**fields, "now": now, "id": need_id})
    found = row.fetchone()
    return None if found is None else need_from_row(found)


def sqlite_set_address(
    conn: sqlite3.Connection, now: float, policy: str, address: str, present: bool
) -> None:
    conn.execute(
        _SET_ADDRESS, {"policy": policy, "address": address, "present": int(present), "now": now}
    )


def sqlite_addresses(conn: sqlite3.Connection) -> list[tuple[str, str, bool]]:
    return [(r["policy"], r["address"], bool(r["present"])) for r in conn.execute(_ADDRESSES)]


def sqlite_set_cursor(conn: sqlite3.Connection, now: float, name: str, block: int) -> None:
    conn.execute(_SET_CURSOR, {"name": name, "block": block, "now": now})


def sqlite_cursor(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute(_CURSOR, {"name": name}).fetchone()
    return None if row is None else int(row["block"])


# --------------------------------------------------------------------------- PostgreSQL


async def pg_record(cur: Cursor, now: float, values: Mapping[str, Any]) -> tuple[DepositNeed, bool]:
    params = {**values, "now": now}
    if params.get("log") is None:
        return await _pg_episode(cur, params)
    # a replica recording the same transfer waits here for the other's commit, then finds it
    await cur.execute(_pg(_SEEN), params)
    if await cur.fetchone() is None:  # this transfer was recorded before
        await cur.execute(_pg(_SEEN_BEFORE), params)
        return need_from_row(await _one(cur)), False
    need, opened = await _pg_episode(cur, params)
    await cur.execute(_pg(_SEEN_EPISODE), {**params, "episode": need.id})
    return need, opened


async def pg_prune_seen(cur: Cursor, now: float) -> None:
    await cur.execute(_pg(_PRUNE_SEEN), {"before": now - SEEN_KEPT})


async def _one(cur: Cursor) -> DictRow:
    row = await cur.fetchone()
    if row is None:
        raise LookupError("a recorded deposit names no episode")
    return row


async def _pg_episode(cur: Cursor, params: Mapping[str, Any]) -> tuple[DepositNeed, bool]:
    await cur.execute(_pg(_INSERT), params)
    row = await cur.fetchone()
    if row is not None:
        return need_from_row(row), True
    await cur.execute(_pg(_join(params)), params)
    joined = await cur.fetchone()
    if joined is not None:
        return need_from_row(joined), False
    await cur.execute(_pg(_OPEN_ONE), params)
    found = await cur.fetchone()
    if found is None:  # closed between the two statements: record it again
        return await _pg_episode(cur, params)
    return need_from_row(found), False


async def pg_needs(
    cur: Cursor,
    open_only: bool,
    addresses: Collection[str] | None,
    policy: str | None,
    limit: int,
) -> list[DepositNeed]:
    text, params, _ = _selection(open_only, addresses, policy, limit)
    await cur.execute(_pg(text), params)
    return [need_from_row(row) for row in await cur.fetchall()]


async def pg_update(
    cur: Cursor,
    now: float,
    need_id: int,
    fields: Mapping[str, Any],
    expect: Collection[NeedState] | None,
) -> DepositNeed | None:
    await cur.execute(_pg(_update(need_id, fields, expect)), {**fields, "now": now, "id": need_id})
    found = await cur.fetchone()
    return None if found is None else need_from_row(found)


async def pg_set_address(cur: Cursor, now: float, policy: str, address: str, present: bool) -> None:
    await cur.execute(
        _pg(_SET_ADDRESS), {"policy": policy, "address": address, "present": present, "now": now}
    )


async def pg_addresses(cur: Cursor) -> list[tuple[str, str, bool]]:
    await cur.execute(_ADDRESSES)
    return [(r["policy"], r["address"], bool(r["present"])) for r in await cur.fetchall()]


async def pg_set_cursor(cur: Cursor, now: float, name: str, block: int) -> None:
    await cur.execute(_pg(_SET_CURSOR), {"name": name, "block": block, "now": now})


async def pg_cursor(cur: Cursor, name: str) -> int | None:
    await cur.execute(_pg(_CURSOR), {"name": name})
    row = await cur.fetchone()
    return None if row is None else int(row["block"])
