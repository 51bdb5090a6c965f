"""PostgreSQL specifics: store URLs and passwords, the database's own guards, migrations
under concurrent starts, connection failures, and locks released by a replica that dies.

The URL tests run anywhere; the rest need ENERGYCTL_TEST_POSTGRES_URL (`.ci/run` sets it)
and each gets a private schema, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from collections.abc import Iterator

import psycopg
import pytest
from pydantic import SecretStr

from engine.core.clock import VirtualClock
from engine.store import (
    IntentCreated,
    OrderPhase,
    SchemaVersionError,
    StoreUnavailableError,
    UnsupportedStoreURLError,
    open_store,
)
from engine.store.factory import parse_postgres_url
from engine.store.migrating import discover
from engine.store.postgres import PostgresStore
from engine.store.postgres_orders import lock_key
from tests.engine.store.harness import START, PostgresBackend, intent

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg() -> Iterator[PostgresBackend]:
    url = os.environ.get("ENERGYCTL_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ENERGYCTL_TEST_POSTGRES_URL is unset: no PostgreSQL to test against")
    backend = PostgresBackend(url)
    try:
        yield backend
    finally:
        backend.cleanup()


# --------------------------------------------------------------------------- URLs


def test_energyctl_options_are_split_from_libpq_ones() -> None:
    target = parse_postgres_url(
        "postgresql://app@db.internal:5433/energy?schema=energyctl&pool_size=3&sslmode=require"
    )
    assert (target.schema, target.pool_size) == ("energyctl", 3)
    conninfo = psycopg.conninfo.conninfo_to_dict(target.conninfo)
    assert conninfo["sslmode"] == "require" and conninfo["connect_timeout"] == "10"
    assert "schema" not in conninfo and "pool_size" not in conninfo
    assert parse_postgres_url("postgres://app@h/db").schema == "public"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@h/db?schema=Robert');DROP",
        "postgresql://app@h/db?schema=",
        "postgresql://app@h/db?pool_size=0",
        "postgresql://app@h/db?pool_size=lots",
        "postgresql://app@h/db?no_such_libpq_option=1",
    ],
)
def test_bad_postgres_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedStoreURLError):
        parse_postgres_url(url)


async def test_a_password_in_the_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(UnsupportedStoreURLError, match="password setting") as caught:
        await open_store("postgresql://app:hunter2@127.0.0.1/db", VirtualClock(START))
    assert "hunter2" not in str(caught.value)


async def test_an_unreachable_server_is_unavailable_and_the_password_stays_secret() -> None:
    url = "postgresql://app@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(StoreUnavailableError) as caught:
        await open_store(url, VirtualClock(START), password=SecretStr("hunter2"))
    message = str(caught.value)
    assert message.startswith(url) and "hunter2" not in message
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


# --------------------------------------------------------------------------- the database


async def test_database_guards_money_and_history(pg: PostgresBackend) -> None:
    async with await open_store(pg.url(), VirtualClock(START)) as store:
        outcome = await store.create_intent(intent(reserved_sun=10), budgets=[])
        assert isinstance(outcome, IntentCreated)
        oid = outcome.order.client_order_id
    insert = (
        "INSERT INTO orders (client_order_id, policy, address, provider, energy, duration,"
        " phase, open_slot, reserved_sun, created_at, updated_at)"
        " VALUES (%s, 'p', %s, 'itrx', 65000, 3600, %s, %s, %s, 0, 0)"
    )
    refusals = {
        "open order without a slot": (insert, ("a", "T9", "intent", None, 0)),
        "terminal order holding a slot": (insert, ("b", "T9", "failed", 0, 0)),
        "negative reservation": (insert, ("c", "T9", "intent", 0, -1)),
        "unknown phase": (insert, ("d", "T9", "lost", 0, 0)),
        "ledger edit": ("UPDATE ledger_entries SET amount_sun = 0", ()),
        "ledger delete": ("DELETE FROM ledger_entries", ()),
        "ledger truncate": ("TRUNCATE ledger_entries", ()),
        "history edit": ("UPDATE order_events SET to_phase = 'failed'", ()),
        "history delete": ("DELETE FROM order_events", ()),
        "orphan ledger entry": (
            "INSERT INTO ledger_entries (client_order_id, policy, kind, amount_sun, booked_at,"
            " recorded_at) VALUES ('nobody', 'p', 'settle', 5, 0, 0)",
            (),
        ),
    }
    for what, (sql, params) in refusals.items():
        with pytest.raises(psycopg.IntegrityError):
            pg.raw_execute(sql, params)
            pytest.fail(f"the database accepted: {what}")
    pg.raw_execute(insert, ("ok", "T9", "intent", 0, 0))
    assert pg.rows("SELECT client_order_id, amount_sun FROM ledger_entries") == [(oid, 10)]
    assert pg.rows("SELECT COUNT(*) FROM order_events") == [(1,)]


async def test_three_replicas_starting_together_migrate_once(pg: PostgresBackend) -> None:
    stores = await asyncio.gather(*(open_store(pg.url(), VirtualClock(START)) for _ in range(3)))
    try:
        for store in stores:
            await store.healthcheck()
    finally:
        for store in stores:
            await store.close()
    rows = pg.rows("SELECT version, name FROM schema_migrations ORDER BY version")
    assert rows == [(m.version, m.name) for m in discover("postgresql")]
    # the same version numbers as SQLite: version N is the same schema on both
    assert [m.version for m in discover("postgresql")] == [m.version for m in discover("sqlite")]


async def test_a_newer_schema_is_refused(pg: PostgresBackend) -> None:
    store = await PostgresStore.open(parse_postgres_url(pg.url()), VirtualClock(START))
    assert store.schema_version == len(discover("postgresql"))
    pg.raw_execute(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
        " VALUES (999, 'from_the_future', 'x', 0)"
    )
    with pytest.raises(SchemaVersionError, match="version 999"):
        await store.healthcheck()
    await store.close()
    with pytest.raises(SchemaVersionError, match="newer than this energyctl"):
        await open_store(pg.url(), VirtualClock(START))


async def test_an_edited_migration_is_refused(pg: PostgresBackend) -> None:
    await (await open_store(pg.url(), VirtualClock(START))).close()
    pg.raw_execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(SchemaVersionError, match="must never be edited"):
        await open_store(pg.url(), VirtualClock(START))


async def test_schemas_keep_deployments_apart(pg: PostgresBackend) -> None:
    other = PostgresBackend(pg.base_url)
    try:
        async with (
            await open_store(pg.url(), VirtualClock(START)) as mine,
            await open_store(other.url(), VirtualClock(START)) as theirs,
        ):
            assert isinstance(await mine.create_intent(intent(), budgets=[]), IntentCreated)
            assert await theirs.open_orders() == []
            assert isinstance(await theirs.create_intent(intent(), budgets=[]), IntentCreated)
    finally:
        other.cleanup()


# --------------------------------------------------------------------------- failures


async def test_a_killed_connection_is_replaced(pg: PostgresBackend) -> None:
    app = f"energyctl_{pg.schema}"
    url = f"{pg.url()}&application_name={app}"
    async with await open_store(url, VirtualClock(START)) as store:
        await store.create_intent(intent(address="T1"), budgets=[])
        killed = pg.rows(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE application_name = '{app}'"
        )
        assert killed and all(ok for (ok,) in killed)
        assert len(await store.open_orders()) == 1  # the pool noticed and reconnected


async def test_a_dead_replicas_budget_lock_is_released_with_its_connection(
    pg: PostgresBackend,
) -> None:
    """A replica that dies inside create_intent holds the policy's lock only as long as its
    session lives: when the connection goes, another replica proceeds."""
    async with await open_store(pg.url(), VirtualClock(START)) as store:
        stuck = await psycopg.AsyncConnection.connect(pg.base_url)
        await stuck.execute(
            "SELECT pg_advisory_xact_lock(%s)", (lock_key("energyctl", pg.schema, "account"),)
        )  # a transaction left open, holding the account-wide lock exclusively
        waiting = asyncio.ensure_future(store.create_intent(intent(), budgets=[]))
        await asyncio.sleep(0.5)
        assert not waiting.done(), "create_intent did not wait for the budget lock"
        await stuck.close()  # the replica dies: its session, transaction and locks end
        outcome = await asyncio.wait_for(waiting, timeout=10)
        assert isinstance(outcome, IntentCreated)


async def test_a_role_without_ddl_rights_runs_a_migrated_schema(pg: PostgresBackend) -> None:
    """docs/operations.md: migrate once with an owner, run replicas with a DML-only role."""
    await (await open_store(pg.url(), VirtualClock(START))).close()
    role = f"{pg.schema}_dml"
    grants = [
        f"CREATE ROLE {role} LOGIN",
        f"GRANT USAGE ON SCHEMA {pg.schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {pg.schema} TO {role}",
    ]
    for statement in grants:
        pg.raw_execute(statement)
    try:
        parts = urllib.parse.urlsplit(pg.url())
        port = f":{parts.port}" if parts.port else ""
        url = parts._replace(netloc=f"{role}@{parts.hostname}{port}").geturl()
        try:
            store = await open_store(url, VirtualClock(START))
        except StoreUnavailableError as exc:
            pytest.skip(f"the test server does not let a new role in without a password: {exc}")
        async with store:
            await store.healthcheck()
            assert isinstance(await store.create_intent(intent(), budgets=[]), IntentCreated)
            [order] = await store.open_orders()
            await store.transition(order.client_order_id, OrderPhase.FAILED)
            assert await store.acquire_lease("controller", "a", 30) is not None
    finally:
        pg.raw_execute(f"DROP OWNED BY {role}")
        pg.raw_execute(f"DROP ROLE {role}")
