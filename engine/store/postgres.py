"""The PostgreSQL Store: several replicas sharing one database, psycopg 3 (async) and a pool.

Selected by a `postgresql://USER@HOST:PORT/DB` URL, parsed by `factory.py` into a
`PostgresTarget`: the libpq connection string, the schema (default `public`, created if
missing) and the pool size. The URL never carries a password: it comes from the store
settings' `password` secret, or from libpq's own PGPASSWORD / .pgpass.

Every method is one transaction on a pooled connection, and nothing but the database is
awaited inside it. Writers run at READ COMMITTED under advisory transaction locks (see
`postgres_orders.py`); readers run in a REPEATABLE READ, READ ONLY transaction, one
consistent snapshot. Leases are rows taken with one atomic upsert; their times, like all
the store's times, come from the store's Clock. Driver errors are mapped once, in `_run`:
connection failures, lock and statement timeouts to StoreUnavailableError (naming the
URL, which holds no password), anything else to StoreError.

Neighbours: `postgres_orders.py` (order and ledger statements), `migrating.py`
(`migrate_postgresql`), `factory.py`, `base.py` (the interface).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from engine.core.clock import Clock
from engine.core.deposits import DepositNeed, NeedState, NewDeposit
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
    window_bounds,
)
from engine.core.usage import UsageProfile
from engine.store import deposit_rows as dq
from engine.store import postgres_orders as q
from engine.store import rows
from engine.store.base import (
    SchemaVersionError,
    Store,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
)
from engine.store.migrating import discover, migrate_postgresql

T = TypeVar("T")
Work = Callable[[q.Cursor, float], Awaitable[T]]
#: set on every connection: a stuck lock wait or statement fails instead of hanging, and a
#: session that stalls inside a transaction (a frozen replica) loses it and its locks.
_SESSION = (
    "SET lock_timeout = '10s'; SET statement_timeout = '30s';"
    " SET idle_in_transaction_session_timeout = '60s'"
)


@dataclass(frozen=True)
class PostgresTarget:
    """A parsed store URL: what libpq gets, and what energyctl keeps for itself."""

    conninfo: str
    schema: str = "public"
    pool_size: int = 5
    display: str = ""


class PostgresStore(Store):
    """Open with `await PostgresStore.open(url, clock, password=...)` (or `open_store`)."""

    def __init__(
        self, target: PostgresTarget, clock: Clock, *, password: SecretStr | None = None
    ) -> None:
        super().__init__(clock)
        self.target = target
        self.schema = target.schema
        self._password = password
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._closed = False
        self.schema_version = 0

    @classmethod
    async def open(
        cls, target: PostgresTarget, clock: Clock, *, password: SecretStr | None = None
    ) -> PostgresStore:
        """Connect, apply pending migrations (under an advisory lock), start the pool.
        `factory.parse_postgres_url` makes the target from a URL."""
        store = cls(target, clock, password=password)
        try:
            await store._start()
        except BaseException:
            await store.close()
            raise
        return store

    def __repr__(self) -> str:
        return f"<PostgresStore {self.target.display!r} schema={self.schema!r}>"

    # ------------------------------------------------------------------ plumbing

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True}
        if self._password is not None:
            kwargs["password"] = self._password.get_secret_value()
        return kwargs

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        await conn.execute(_SESSION)

    async def _start(self) -> None:
        try:
            conn = await psycopg.AsyncConnection.connect(self.target.conninfo, **self._kwargs())
            async with conn:
                await self._configure(conn)
                self.schema_version = await migrate_postgresql(conn, self.clock.now(), self.schema)
            self._pool = AsyncConnectionPool(
                self.target.conninfo,
                kwargs=self._kwargs(),
                min_size=1,
                max_size=self.target.pool_size,
                open=False,
                configure=self._configure,
                check=AsyncConnectionPool.check_connection,  # drop dead ones on checkout
                name=f"energyctl-{self.schema}",
                timeout=15.0,
            )
            await self._pool.open(wait=True, timeout=15.0)
        except psycopg.Error as exc:
            raise self._mapped(exc) from exc

    def _mapped(self, exc: psycopg.Error) -> StoreError:
        # Messages from libpq and the server never contain the password; the URL has none.
        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailableError(f"{self.target.display}: {exc}")
        return StoreError(f"{self.target.display}: the database refused the change: {exc}")

    async def _run(self, work: Work[T], *, write: bool = True) -> T:
        """`work(cursor, now)` in one transaction on a pooled connection; map errors here."""
        if self._closed or self._pool is None:
            raise StoreClosedError(f"{self.target.display}: store is closed")
        try:
            async with (
                self._pool.connection() as conn,
                conn.transaction(),
                conn.cursor(row_factory=dict_row) as cur,
            ):
                if not write:
                    await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return await work(cur, self.clock.now())
        except psycopg.Error as exc:
            raise self._mapped(exc) from exc

    async def _read(self, work: Callable[[q.Cursor], Awaitable[T]]) -> T:
        return await self._run(lambda cur, _now: work(cur), write=False)

    # ------------------------------------------------------------------ orders

    async def create_intent(
        self, intent: NewIntent, *, budgets: list[BudgetLimit], max_open: int = 1
    ) -> IntentOutcome:
        rows.check_max_open(max_open)
        chosen = list(budgets)
        return await self._run(
            lambda cur, now: q.create_intent(cur, self.schema, now, intent, chosen, max_open)
        )

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
        change = rows.OrderChange(
            client_order_id,
            OrderPhase(to_phase),
            expect_from=None if expect_from is None else frozenset(expect_from),
            provider_order_id=provider_order_id,
            cost_sun=cost_sun,
            refund_sun=refund_sun,
            receipt=receipt,
            error=error,
            note=note,
            attempt=attempt,
        )
        return await self._run(lambda cur, now: q.transition(cur, self.schema, now, change))

    async def resolve(
        self,
        client_order_id: str,
        to_phase: OrderPhase,
        *,
        by: str,
        reason: str,
        expect_from: set[OrderPhase] | frozenset[OrderPhase] | None = None,
    ) -> OrderRecord:
        change = rows.resolution_change(
            client_order_id,
            to_phase,
            by=by,
            reason=reason,
            expect_from=None if expect_from is None else frozenset(expect_from),
        )
        return await self._run(lambda cur, now: q.transition(cur, self.schema, now, change))

    async def get_order(self, client_order_id: str) -> OrderRecord:
        return await self._read(lambda cur: q.get_order(cur, client_order_id))

    async def open_orders(self, address: str | None = None) -> list[OrderRecord]:
        selection = rows.open_orders_filter(address)
        return await self._read(lambda cur: q.orders(cur, selection))

    async def orders(self, selection: OrderFilter | None = None) -> list[OrderRecord]:
        chosen = selection or OrderFilter()
        return await self._read(lambda cur: q.orders(cur, chosen))

    async def last_orders(
        self, addresses: Collection[str], since: float | None = None
    ) -> dict[str, OrderRecord]:
        wanted = rows.distinct_addresses(addresses)
        if not wanted:
            return {}
        return rows.by_address(await self._read(lambda cur: q.last_orders(cur, wanted, since)))

    async def order_history(self, client_order_id: str) -> list[OrderEvent]:
        return await self._read(lambda cur: q.order_history(cur, client_order_id))

    async def spent(
        self,
        policy: str | None,
        window: BudgetWindow,
        now: float | None = None,
        *,
        addresses: Collection[str] | None = None,
    ) -> int:
        start, end = window_bounds(window, self._as_of(now))
        return await self._read(lambda cur: q.sum_ledger(cur, policy, start, end, addresses))

    async def ledger_entries(
        self,
        *,
        client_order_id: str | None = None,
        policy: str | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[LedgerEntry]:
        return await self._read(
            lambda cur: q.ledger_entries(cur, client_order_id, policy, since, limit)
        )

    # ------------------------------------------------------------------ provider health

    async def record_provider_result(
        self, provider: str, ok: bool, reason: str | None = None
    ) -> ProviderHealth:
        async def work(cur: q.Cursor, now: float) -> ProviderHealth:
            if ok:
                await cur.execute(
                    "INSERT INTO provider_health AS h (provider, last_success_at)"
                    " VALUES (%s, %s) ON CONFLICT (provider) DO UPDATE SET"
                    " consecutive_failures = 0, last_success_at = EXCLUDED.last_success_at"
                    " RETURNING *",
                    (provider, now),
                )
            else:
                await cur.execute(
                    "INSERT INTO provider_health AS h (provider, consecutive_failures,"
                    " last_failure_at, last_reason) VALUES (%s, 1, %s, %s)"
                    " ON CONFLICT (provider) DO UPDATE SET"
                    " consecutive_failures = h.consecutive_failures + 1,"
                    " last_failure_at = EXCLUDED.last_failure_at,"
                    " last_reason = EXCLUDED.last_reason RETURNING *",
                    (provider, now, reason),
                )
            return ProviderHealth(**await _one(cur))

        return await self._run(work)

    async def provider_health(self) -> dict[str, ProviderHealth]:
        async def work(cur: q.Cursor) -> dict[str, ProviderHealth]:
            await cur.execute("SELECT * FROM provider_health ORDER BY provider")
            return {row["provider"]: ProviderHealth(**row) for row in await cur.fetchall()}

        return await self._read(work)

    # ------------------------------------------------------------------ policy revisions

    async def record_policy_revision(
        self, digest: str, source_summary: str, applied_by: str
    ) -> PolicyRevision:
        async def work(cur: q.Cursor, now: float) -> PolicyRevision:
            await cur.execute(
                "INSERT INTO policy_revisions (digest, source_summary, applied_at, applied_by)"
                " VALUES (%s, %s, %s, %s) RETURNING *",
                (digest, source_summary, now, applied_by),
            )
            return PolicyRevision(**await _one(cur))

        return await self._run(work)

    async def latest_policy_revision(self) -> PolicyRevision | None:
        async def work(cur: q.Cursor) -> PolicyRevision | None:
            await cur.execute("SELECT * FROM policy_revisions ORDER BY seq DESC LIMIT 1")
            row = await cur.fetchone()
            return None if row is None else PolicyRevision(**row)

        return await self._read(work)

    # ------------------------------------------------------------------ usage profiles

    async def save_usage_profiles(self, profiles: Collection[UsageProfile]) -> None:
        kept = [(p.address, json.dumps(p.to_json()), p.updated_at) for p in profiles]
        if not kept:
            return

        async def work(cur: q.Cursor, _now: float) -> None:
            await cur.executemany(
                "INSERT INTO usage_profiles AS u (address, profile, updated_at)"
                " VALUES (%s, %s, %s) ON CONFLICT (address) DO UPDATE SET"
                " profile = EXCLUDED.profile, updated_at = EXCLUDED.updated_at"
                " WHERE EXCLUDED.updated_at >= u.updated_at",
                kept,
            )

        await self._run(work)

    async def usage_profiles(
        self, addresses: Collection[str] | None = None
    ) -> dict[str, UsageProfile]:
        wanted = None if addresses is None else set(addresses)

        async def work(cur: q.Cursor) -> dict[str, UsageProfile]:
            await cur.execute("SELECT address, profile, updated_at FROM usage_profiles")
            return {
                row["address"]: UsageProfile.from_json(
                    row["address"], json.loads(row["profile"]), row["updated_at"]
                )
                for row in await cur.fetchall()
                if wanted is None or row["address"] in wanted
            }

        return await self._read(work)

    # ------------------------------------------------------------------ leases

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        rows.check_ttl(ttl)

        async def work(cur: q.Cursor, now: float) -> Lease | None:
            # One statement, atomic under concurrency: insert, or take the row over only
            # if it expired (a new tenure: token + 1) or is already ours (extend it).
            await cur.execute(
                "INSERT INTO leases AS l (name, holder, token, acquired_at, expires_at)"
                " VALUES (%(name)s, %(holder)s, 1, %(now)s, %(until)s)"
                " ON CONFLICT (name) DO UPDATE SET"
                " token = CASE WHEN l.expires_at > %(now)s THEN l.token ELSE l.token + 1 END,"
                " acquired_at = CASE WHEN l.expires_at > %(now)s THEN l.acquired_at"
                " ELSE EXCLUDED.acquired_at END,"
                " holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
                " WHERE l.expires_at <= %(now)s OR l.holder = EXCLUDED.holder"
                " RETURNING *",
                {"name": name, "holder": holder, "now": now, "until": now + ttl},
            )
            row = await cur.fetchone()
            return None if row is None else Lease(**row)

        return await self._run(work)

    async def renew_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        rows.check_ttl(ttl)

        async def work(cur: q.Cursor, now: float) -> Lease | None:
            await cur.execute(
                "UPDATE leases SET expires_at = %s WHERE name = %s AND holder = %s"
                " AND expires_at > %s RETURNING *",
                (now + ttl, name, holder, now),
            )
            row = await cur.fetchone()
            return None if row is None else Lease(**row)

        return await self._run(work)

    async def release_lease(self, name: str, holder: str) -> bool:
        async def work(cur: q.Cursor, now: float) -> bool:
            await cur.execute(
                "UPDATE leases SET expires_at = %s WHERE name = %s AND holder = %s"
                " AND expires_at > %s",
                (now, name, holder, now),
            )
            return cur.rowcount == 1

        return await self._run(work)

    async def lease_holders(self, now: float | None = None) -> dict[str, Lease]:
        moment = self._as_of(now)

        async def work(cur: q.Cursor) -> dict[str, Lease]:
            await cur.execute("SELECT * FROM leases WHERE expires_at > %s ORDER BY name", (moment,))
            return {row["name"]: Lease(**row) for row in await cur.fetchall()}

        return await self._read(work)

    # ------------------------------------------------------------------ deposits

    async def record_deposits(
        self, deposits: Sequence[NewDeposit]
    ) -> list[tuple[DepositNeed, bool]]:
        values = [d.values() for d in deposits]

        async def work(cur: q.Cursor, now: float) -> list[tuple[DepositNeed, bool]]:
            await dq.pg_prune_seen(cur, now)
            return [await dq.pg_record(cur, now, v) for v in values]

        return await self._run(work)

    async def deposit_needs(
        self,
        *,
        open_only: bool = True,
        addresses: Collection[str] | None = None,
        policy: str | None = None,
        limit: int = 100_000,
    ) -> list[DepositNeed]:
        return await self._read(lambda cur: dq.pg_needs(cur, open_only, addresses, policy, limit))

    async def update_deposit_need(
        self, need_id: int, *, expect: Collection[NeedState] | None = None, **fields: Any
    ) -> DepositNeed | None:
        checked = dq.check_fields(fields)
        return await self._run(lambda cur, now: dq.pg_update(cur, now, need_id, checked, expect))

    async def update_deposit_needs(
        self, changes: Sequence[tuple[int, Collection[NeedState] | None, Mapping[str, Any]]]
    ) -> list[DepositNeed | None]:
        checked = [(i, expect, dq.check_fields(fields)) for i, expect, fields in changes]

        async def work(cur: q.Cursor, now: float) -> list[DepositNeed | None]:
            return [await dq.pg_update(cur, now, i, f, e) for i, e, f in checked]

        return await self._run(work)

    async def set_deposit_address(self, policy: str, address: str, present: bool) -> None:
        await self._run(lambda cur, now: dq.pg_set_address(cur, now, policy, address, present))

    async def deposit_addresses(self) -> list[tuple[str, str, bool]]:
        return await self._read(dq.pg_addresses)

    async def set_deposit_cursor(self, name: str, block: int) -> None:
        await self._run(lambda cur, now: dq.pg_set_cursor(cur, now, name, block))

    async def deposit_cursor(self, name: str) -> int | None:
        return await self._read(lambda cur: dq.pg_cursor(cur, name))

    # ------------------------------------------------------------------ lifecycle

    async def healthcheck(self) -> None:
        expected = len(discover("postgresql"))

        async def work(cur: q.Cursor) -> int:
            await cur.execute("SELECT MAX(version) AS version FROM schema_migrations")
            return int((await _one(cur))["version"] or 0)

        found = await self._read(work)
        if found != expected:
            raise SchemaVersionError(
                f"{self.target.display} (schema {self.schema}): schema version {found}, "
                f"this energyctl expects {expected}"
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            await self._pool.close()


async def _one(cur: q.Cursor) -> DictRow:
    row = await cur.fetchone()
    assert row is not None
    return row
