"""The default Store: one SQLite file (or `:memory:` for tests), stdlib `sqlite3`.

The connection lives on a dedicated thread (a one-worker executor), so SQLite never runs
on the event loop and every statement of the store is serialised in this process. Writes
run in `BEGIN IMMEDIATE` transactions: SQLite's write lock is taken before the first read,
so check-then-insert is atomic across every process using the file (invariants 2 and 5).

Settings (docs/store.md says why): WAL journal (readers never block the writer),
`synchronous=FULL` (a committed intent survives power loss: invariant 1 holds only if the
intent is on disk before the provider is called), `busy_timeout` (writers queue rather
than fail), `foreign_keys=ON`, STRICT tables (an INTEGER money column refuses floats).

A task cancelled while awaiting a write does not cancel the write: it completes on the
store's thread. A create_intent whose caller was cancelled may thus leave an intent, which
recovery resolves (never the opposite: an order placed without its intent).

Neighbours: `sqlite_orders.py` (orders and ledger statements), `migrating.py`,
`factory.py` (opens it from a URL), `base.py` (the interface it implements).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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
from engine.store import rows
from engine.store import sqlite_orders as q
from engine.store.base import (
    SchemaVersionError,
    Store,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
)
from engine.store.migrating import discover, migrate_sqlite

T = TypeVar("T")
MEMORY = ":memory:"
_MIN_SQLITE = (3, 37, 0)  # STRICT tables


class SQLiteStore(Store):
    """Open with `await SQLiteStore.open(path, clock)` (or `factory.open_store`)."""

    def __init__(self, path: str, clock: Clock, *, busy_timeout: float = 10.0) -> None:
        super().__init__(clock)
        self.path = path
        self.busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="energyctl-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self.schema_version = 0

    @classmethod
    async def open(cls, path: str, clock: Clock, *, busy_timeout: float = 10.0) -> SQLiteStore:
        """Connect, set the pragmas and apply pending migrations."""
        store = cls(path, clock, busy_timeout=busy_timeout)
        try:
            store.schema_version = await store._call(store._connect)
        except BaseException:
            await store.close()
            raise
        return store

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    # ------------------------------------------------------------------ plumbing

    def _connect(self) -> int:
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old: energyctl needs 3.37 or newer"
            )
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        self._conn = conn
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if self.path != MEMORY and mode != "wal":
            raise StoreUnavailableError(f"{self.path}: cannot use WAL journal (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return migrate_sqlite(conn, self.clock.now())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError(f"{self.path}: store is closed")
        return self._conn

    async def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the store's thread; map driver errors once, here."""
        if self._closed:
            raise StoreClosedError(f"{self.path}: store is closed")
        future = self._executor.submit(fn)
        try:
            return await asyncio.wrap_future(future)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"{self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: the database refused the change: {exc}") from exc

    async def _write(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """`fn(conn, now)` inside BEGIN IMMEDIATE ... COMMIT; rolled back if it raises."""

        def run() -> T:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, self.clock.now())
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return await self._call(run)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` in one read transaction: a consistent snapshot, never blocking."""

        def run() -> T:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        return await self._call(run)

    # ------------------------------------------------------------------ orders

    async def create_intent(
        self, intent: NewIntent, *, budgets: list[BudgetLimit], max_open: int = 1
    ) -> IntentOutcome:
        rows.check_max_open(max_open)
        return await self._write(
            lambda conn, now: q.create_intent(conn, now, intent, list(budgets), max_open)
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
        return await self._write(lambda conn, now: q.transition(conn, now, change))

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
        return await self._write(lambda conn, now: q.transition(conn, now, change))

    async def get_order(self, client_order_id: str) -> OrderRecord:
        return await self._read(lambda conn: q.get_order(conn, client_order_id))

    async def open_orders(self, address: str | None = None) -> list[OrderRecord]:
        return await self._read(lambda conn: q.open_orders(conn, address))

    async def orders(self, selection: OrderFilter | None = None) -> list[OrderRecord]:
        chosen = selection or OrderFilter()
        return await self._read(lambda conn: q.orders(conn, chosen))

    async def last_orders(
        self, addresses: Collection[str], since: float | None = None
    ) -> dict[str, OrderRecord]:
        wanted = rows.distinct_addresses(addresses)
        if not wanted:
            return {}
        return rows.by_address(await self._read(lambda conn: q.last_orders(conn, wanted, since)))

    async def order_history(self, client_order_id: str) -> list[OrderEvent]:
        return await self._read(lambda conn: q.order_history(conn, client_order_id))

    async def spent(
        self,
        policy: str | None,
        window: BudgetWindow,
        now: float | None = None,
        *,
        addresses: Collection[str] | None = None,
    ) -> int:
        start, end = window_bounds(window, self._as_of(now))
        return await self._read(lambda conn: q.spent(conn, policy, start, end, addresses))

    async def ledger_entries(
        self,
        *,
        client_order_id: str | None = None,
        policy: str | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[LedgerEntry]:
        return await self._read(
            lambda conn: q.ledger_entries(conn, client_order_id, policy, since, limit)
        )

    # ------------------------------------------------------------------ provider health

    async def record_provider_result(
        self, provider: str, ok: bool, reason: str | None = None
    ) -> ProviderHealth:
        def run(conn: sqlite3.Connection, now: float) -> ProviderHealth:
            if ok:
                conn.execute(
                    "INSERT INTO provider_health (provider, last_success_at) VALUES (?, ?)"
                    " ON CONFLICT (provider) DO UPDATE SET consecutive_failures = 0,"
                    " last_success_at = excluded.last_success_at",
                    (provider, now),
                )
            else:
                conn.execute(
                    "INSERT INTO provider_health (provider, consecutive_failures,"
                    " last_failure_at, last_reason) VALUES (?, 1, ?, ?)"
                    " ON CONFLICT (provider) DO UPDATE SET"
                    " consecutive_failures = consecutive_failures + 1,"
                    " last_failure_at = excluded.last_failure_at,"
                    " last_reason = excluded.last_reason",
                    (provider, now, reason),
                )
            row = conn.execute(
                "SELECT * FROM provider_health WHERE provider = ?", (provider,)
            ).fetchone()
            return ProviderHealth(**dict(row))

        return await self._write(run)

    async def provider_health(self) -> dict[str, ProviderHealth]:
        def run(conn: sqlite3.Connection) -> dict[str, ProviderHealth]:
            rows = conn.execute("SELECT * FROM provider_health ORDER BY provider")
            return {row["provider"]: ProviderHealth(**dict(row)) for row in rows}

        return await self._read(run)

    # ------------------------------------------------------------------ policy revisions

    async def record_policy_revision(
        self, digest: str, source_summary: str, applied_by: str
    ) -> PolicyRevision:
        def run(conn: sqlite3.Connection, now: float) -> PolicyRevision:
            row = conn.execute(
                "INSERT INTO policy_revisions (digest, source_summary, applied_at, applied_by)"
                " VALUES (?, ?, ?, ?) RETURNING *",
                (digest, source_summary, now, applied_by),
            ).fetchone()
            return PolicyRevision(**dict(row))

        return await self._write(run)

    async def latest_policy_revision(self) -> PolicyRevision | None:
        def run(conn: sqlite3.Connection) -> PolicyRevision | None:
            row = conn.execute(
                "SELECT * FROM policy_revisions ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            return None if row is None else PolicyRevision(**dict(row))

        return await self._read(run)

    # ------------------------------------------------------------------ usage profiles

    async def save_usage_profiles(self, profiles: Collection[UsageProfile]) -> None:
        kept = [(p.address, json.dumps(p.to_json()), p.updated_at) for p in profiles]
        if not kept:
            return

        def run(conn: sqlite3.Connection, _now: float) -> None:
            conn.executemany(
                "INSERT INTO usage_profiles (address, profile, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (address) DO UPDATE SET profile = excluded.profile,"
                " updated_at = excluded.updated_at WHERE excluded.updated_at >= updated_at",
                kept,
            )

        await self._write(run)

    async def usage_profiles(
        self, addresses: Collection[str] | None = None
    ) -> dict[str, UsageProfile]:
        wanted = None if addresses is None else set(addresses)

        def run(conn: sqlite3.Connection) -> dict[str, UsageProfile]:
            found = conn.execute("SELECT address, profile, updated_at FROM usage_profiles")
            return {
                row["address"]: UsageProfile.from_json(
                    row["address"], json.loads(row["profile"]), row["updated_at"]
                )
                for row in found
                if wanted is None or row["address"] in wanted
            }

        return await self._read(run)

    # ------------------------------------------------------------------ leases

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        rows.check_ttl(ttl)

        def run(conn: sqlite3.Connection, now: float) -> Lease | None:
            row = conn.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO leases (name, holder, token, acquired_at, expires_at)"
                    " VALUES (?, ?, 1, ?, ?)",
                    (name, holder, now, now + ttl),
                )
            elif row["holder"] == holder and row["expires_at"] > now:
                conn.execute("UPDATE leases SET expires_at = ? WHERE name = ?", (now + ttl, name))
            elif row["expires_at"] <= now:  # free: a new tenure, a new fencing token
                conn.execute(
                    "UPDATE leases SET holder = ?, token = token + 1, acquired_at = ?,"
                    " expires_at = ? WHERE name = ?",
                    (holder, now, now + ttl, name),
                )
            else:
                return None
            return _lease(conn, name)

        return await self._write(run)

    async def renew_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        rows.check_ttl(ttl)

        def run(conn: sqlite3.Connection, now: float) -> Lease | None:
            cursor = conn.execute(
                "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ?",
                (now + ttl, name, holder, now),
            )
            return _lease(conn, name) if cursor.rowcount == 1 else None

        return await self._write(run)

    async def release_lease(self, name: str, holder: str) -> bool:
        def run(conn: sqlite3.Connection, now: float) -> bool:
            cursor = conn.execute(
                "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ?",
                (now, name, holder, now),
            )
            return cursor.rowcount == 1

        return await self._write(run)

    async def lease_holders(self, now: float | None = None) -> dict[str, Lease]:
        moment = self._as_of(now)

        def run(conn: sqlite3.Connection) -> dict[str, Lease]:
            rows = conn.execute(
                "SELECT * FROM leases WHERE expires_at > ? ORDER BY name", (moment,)
            )
            return {row["name"]: Lease(**dict(row)) for row in rows}

        return await self._read(run)

    # ------------------------------------------------------------------ deposits

    async def record_deposits(
        self, deposits: Sequence[NewDeposit]
    ) -> list[tuple[DepositNeed, bool]]:
        values = [d.values() for d in deposits]

        def run(conn: sqlite3.Connection, now: float) -> list[tuple[DepositNeed, bool]]:
            dq.sqlite_prune_seen(conn, now)
            return [dq.sqlite_record(conn, now, v) for v in values]

        return await self._write(run)

    async def deposit_needs(
        self,
        *,
        open_only: bool = True,
        addresses: Collection[str] | None = None,
        policy: str | None = None,
        limit: int = 100_000,
    ) -> list[DepositNeed]:
        return await self._read(
            lambda conn: dq.sqlite_needs(conn, open_only, addresses, policy, limit)
        )

    async def update_deposit_need(
        self, need_id: int, *, expect: Collection[NeedState] | None = None, **fields: Any
    ) -> DepositNeed | None:
        checked = dq.check_fields(fields)
        return await self._write(
            lambda conn, now: dq.sqlite_update(conn, now, need_id, checked, expect)
        )

    async def update_deposit_needs(
        self, changes: Sequence[tuple[int, Collection[NeedState] | None, Mapping[str, Any]]]
    ) -> list[DepositNeed | None]:
        checked = [(i, expect, dq.check_fields(fields)) for i, expect, fields in changes]
        return await self._write(
            lambda conn, now: [dq.sqlite_update(conn, now, i, f, e) for i, e, f in checked]
        )

    async def set_deposit_address(self, policy: str, address: str, present: bool) -> None:
        await self._write(
            lambda conn, now: dq.sqlite_set_address(conn, now, policy, address, present)
        )

    async def deposit_addresses(self) -> list[tuple[str, str, bool]]:
        return await self._read(dq.sqlite_addresses)

    async def set_deposit_cursor(self, name: str, block: int) -> None:
        await self._write(lambda conn, now: dq.sqlite_set_cursor(conn, now, name, block))

    async def deposit_cursor(self, name: str) -> int | None:
        return await self._read(lambda conn: dq.sqlite_cursor(conn, name))

    # ------------------------------------------------------------------ lifecycle

    async def healthcheck(self) -> None:
        expected = len(discover("sqlite"))

        def run(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0])

        found = await self._read(run)
        if found != expected:
            raise SchemaVersionError(
                f"{self.path}: schema version {found}, this energyctl expects {expected}"
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def run() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await asyncio.wrap_future(self._executor.submit(run))
        finally:
            self._executor.shutdown(wait=False)


def _lease(conn: sqlite3.Connection, name: str) -> Lease:
    return Lease(**dict(conn.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone()))
