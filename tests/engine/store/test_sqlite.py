"""SQLite specifics: settings, the database's own guards, migrations, crashes, store URLs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from engine.core.clock import VirtualClock
from engine.store import (
    IntentCreated,
    OrderPhase,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
    UnsupportedStoreURLError,
    open_store,
)
from engine.store.factory import parse_sqlite_url
from engine.store.migrating import discover, split_statements
from engine.store.sqlite import SQLiteStore
from tests.engine.store.harness import START, SQLiteBackend, intent


@pytest.fixture
def db(tmp_path: Path) -> SQLiteBackend:
    return SQLiteBackend(tmp_path)


async def test_settings_wal_full_sync_foreign_keys(db: SQLiteBackend) -> None:
    store = await SQLiteStore.open(str(db.path), VirtualClock(START))
    try:
        settings = await store._call(
            lambda: [
                store._connection().execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            ]
        )
    finally:
        await store.close()
    assert settings == ["wal", 2, 1, 10_000]  # synchronous 2 = FULL
    assert db.raw_execute("PRAGMA journal_mode") == [("wal",)]  # persistent in the file


async def test_database_guards_money_and_history(db: SQLiteBackend) -> None:
    async with await SQLiteStore.open(str(db.path), VirtualClock(START)) as store:
        outcome = await store.create_intent(intent(reserved_sun=10), budgets=[])
        assert isinstance(outcome, IntentCreated)
        oid = outcome.order.client_order_id
    insert = (
        "INSERT INTO orders (client_order_id, policy, address, provider, energy, duration,"
        " phase, open_slot, reserved_sun, created_at, updated_at)"
        " VALUES (?, 'p', ?, 'itrx', 65000, 3600, ?, ?, ?, 0, 0)"
    )
    refusals = {
        "open order without a slot": (insert, ("a", "T9", "intent", None, 0)),
        "terminal order holding a slot": (insert, ("b", "T9", "failed", 0, 0)),
        "money as a float": (insert, ("c", "T9", "intent", 0, 1.5)),
        "negative reservation": (insert, ("d", "T9", "intent", 0, -1)),
        "unknown phase": (insert, ("e", "T9", "pending", 0, 0)),
        "ledger rewrite": ("UPDATE ledger_entries SET amount_sun = 0", ()),
        "ledger delete": ("DELETE FROM ledger_entries", ()),
        "history rewrite": ("DELETE FROM order_events", ()),
    }
    for label, (sql, params) in refusals.items():
        with pytest.raises(sqlite3.IntegrityError):
            db.raw_execute(sql, params)
            pytest.fail(f"the database accepted: {label}")
    # the legitimate shape goes in, proving the refusals above were about their defect
    db.raw_execute(insert, ("ok", "T9", "intent", 0, 0))
    assert db.raw_execute("SELECT client_order_id, amount_sun FROM ledger_entries") == [(oid, 10)]
    assert db.raw_execute("SELECT COUNT(*) FROM order_events") == [(1,)]


async def test_foreign_keys_are_enforced_on_the_store_connection(db: SQLiteBackend) -> None:
    """Foreign keys are a per-connection setting: the store's connection has them on."""
    async with await SQLiteStore.open(str(db.path), VirtualClock(START)) as store:
        with pytest.raises(StoreError, match="FOREIGN KEY") as caught:
            await store._call(
                lambda: store._connection().execute(
                    "INSERT INTO order_events (client_order_id, to_phase, at)"
                    " VALUES ('ghost', 'intent', 0)"
                )
            )
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)


def test_an_intent_survives_a_killed_process(db: SQLiteBackend) -> None:
    """Invariant 1: the writer dies right after create_intent returns (no close, no
    cleanup); a new process finds the intent and its reservation."""
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from engine.core.clock import VirtualClock
        from engine.store import NewIntent, open_store

        async def main():
            store = await open_store({db.url()!r}, VirtualClock({START}))
            await store.create_intent(
                NewIntent(client_order_id="crash-1", policy="p", address="T1",
                          provider="itrx", energy=65000, duration=3600, reserved_sun=777),
                budgets=[])
            os._exit(17)

        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == 17, proc.stderr.decode()
    assert db.raw_execute("SELECT phase, reserved_sun FROM orders") == [("intent", 777)]
    assert db.raw_execute("SELECT kind, amount_sun FROM ledger_entries") == [("reserve", 777)]


async def test_migrations_are_idempotent(db: SQLiteBackend) -> None:
    for _ in range(3):
        store = await SQLiteStore.open(str(db.path), VirtualClock(START))
        assert store.schema_version == len(discover("sqlite"))
        await store.close()
    rows = db.raw_execute("SELECT version, name FROM schema_migrations ORDER BY version")
    assert rows == [(m.version, m.name) for m in discover("sqlite")]


async def test_a_newer_schema_is_refused(db: SQLiteBackend) -> None:
    store = await SQLiteStore.open(str(db.path), VirtualClock(START))
    db.raw_execute(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
        " VALUES (999, 'from_the_future', 'x', 0)"
    )
    with pytest.raises(SchemaVersionError, match="version 999"):
        await store.healthcheck()  # a running store notices an upgrade behind its back
    await store.close()
    with pytest.raises(SchemaVersionError, match="newer than this energyctl"):
        await SQLiteStore.open(str(db.path), VirtualClock(START))


async def test_an_edited_migration_is_refused(db: SQLiteBackend) -> None:
    await (await SQLiteStore.open(str(db.path), VirtualClock(START))).close()
    db.raw_execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(SchemaVersionError, match="must never be edited"):
        await SQLiteStore.open(str(db.path), VirtualClock(START))


def test_migration_scripts_split_into_statements() -> None:
    script = """
        -- a comment; with a semicolon
        CREATE TABLE t (x INTEGER);  -- trailing; comment
        CREATE TRIGGER t_no_update BEFORE UPDATE ON t BEGIN
            SELECT RAISE(ABORT, 'no; really');
        END;
        -- the end
    """
    statements = split_statements(script)
    assert len(statements) == 2 and statements[1].rstrip().endswith("END;")
    with pytest.raises(SchemaVersionError, match="incomplete"):
        split_statements("CREATE TABLE t (x INTEGER); CREATE TABLE u (y")
    first = discover("sqlite")[0]
    assert (first.version, first.name) == (1, "initial")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (":memory:", (":memory:", None)),
        ("sqlite://:memory:", (":memory:", None)),
        ("sqlite:///state.db", ("state.db", None)),
        ("sqlite:////var/lib/energyctl/state.db", ("/var/lib/energyctl/state.db", None)),
        ("sqlite:///state.db?busy_timeout=2.5", ("state.db", 2.5)),
        ("/var/lib/x.db", ("/var/lib/x.db", None)),
        ("relative/x.db", ("relative/x.db", None)),
    ],
)
def test_sqlite_urls(url: str, expected: tuple[str, float | None]) -> None:
    assert parse_sqlite_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://host/db",
        "sqlite://host/db",
        "sqlite:///",
        "sqlite:///x.db?mode=ro",
        "sqlite:///x.db?busy_timeout=soon",
        "sqlite:///x.db?busy_timeout=0",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedStoreURLError):
        parse_sqlite_url(url)


async def test_sqlite_takes_no_password(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedStoreURLError, match="SQLite stores take none"):
        await open_store(str(tmp_path / "x.db"), VirtualClock(START), password=SecretStr("pw"))
    assert not (tmp_path / "x.db").exists()


async def test_memory_store_works_and_is_private() -> None:
    first = await open_store(":memory:", VirtualClock(START))
    second = await open_store(":memory:", VirtualClock(START))
    try:
        assert isinstance(await first.create_intent(intent(), budgets=[]), IntentCreated)
        assert len(await first.open_orders()) == 1
        assert await second.open_orders() == []
        [order] = await first.open_orders()
        await first.transition(order.client_order_id, OrderPhase.ABANDONED)
    finally:
        await first.close()
        await second.close()


async def test_an_unreachable_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="unable to open"):
        await open_store(str(tmp_path / "missing-dir" / "x.db"), VirtualClock(START))
