"""What the store tests share: intents to write, and the databases (`Backend`) to run on.

The contract suite runs once per backend (`conftest.py` parametrizes it): an SQLite file
in the test's temporary directory, or a fresh schema `energyctl_test_<hex>` in the
PostgreSQL that ENERGYCTL_TEST_POSTGRES_URL names, dropped after the test. The raw-SQL
helpers go around the store, to show the database itself refuses what Python would.
"""

from __future__ import annotations

import abc
import itertools
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from engine.core.clock import VirtualClock
from engine.store import NewIntent, Store, open_store

# 2026-03-10T12:00:00Z: mid-day, mid-month, so day and month windows are both well inside.
START = 1_773_144_000.0
_ids = itertools.count(1)


def intent(**overrides: Any) -> NewIntent:
    """A valid intent with a fresh client order id; override any field."""
    fields: dict[str, Any] = {
        "client_order_id": f"order-{next(_ids):06d}",
        "policy": "payouts",
        "address": "TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw",
        "provider": "itrx",
        "energy": 131_000,
        "duration": 3600,
        "reserved_sun": 0,
    }
    fields.update(overrides)
    return NewIntent(**fields)


class Backend(abc.ABC):
    """One database the contract suite runs against."""

    name: str
    integrity_error: type[Exception]

    @abc.abstractmethod
    def url(self) -> str: ...

    async def open(self, clock: VirtualClock) -> Store:
        """A new store object on this backend's database (another 'replica' if called twice)."""
        return await open_store(self.url(), clock)

    @abc.abstractmethod
    def rows(self, query: str) -> list[tuple[Any, ...]]:
        """Run one raw SELECT (no parameters) on the database; all its rows."""

    def cleanup(self) -> None:
        """Drop what the test created (nothing for a file in tmp_path)."""
        return None

    @abc.abstractmethod
    def raw_insert_open_order(self, client_order_id: str, address: str, open_slot: int) -> None:
        """INSERT an open order straight into the database, bypassing the store's Python."""

    @abc.abstractmethod
    def raw_set_phase(self, client_order_id: str, phase: str) -> None:
        """UPDATE an order's phase straight in the database."""


class SQLiteBackend(Backend):
    name = "sqlite"
    integrity_error = sqlite3.IntegrityError

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "store.sqlite3"

    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def raw_execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return self.raw_execute(query)

    def raw_insert_open_order(self, client_order_id: str, address: str, open_slot: int) -> None:
        self.raw_execute(
            "INSERT INTO orders (client_order_id, policy, address, provider, energy, duration,"
            " phase, open_slot, reserved_sun, created_at, updated_at)"
            " VALUES (?, 'payouts', ?, 'itrx', 65000, 3600, 'intent', ?, 0, 0, 0)",
            (client_order_id, address, open_slot),
        )

    def raw_set_phase(self, client_order_id: str, phase: str) -> None:
        self.raw_execute(
            "UPDATE orders SET phase = ? WHERE client_order_id = ?", (phase, client_order_id)
        )


class PostgresBackend(Backend):
    """A private schema in the test PostgreSQL: the store opens it with `?schema=`."""

    name = "postgres"
    integrity_error = psycopg.IntegrityError

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.schema = f"energyctl_test_{uuid.uuid4().hex[:16]}"

    def url(self) -> str:
        joiner = "&" if "?" in self.base_url else "?"
        return f"{self.base_url}{joiner}schema={self.schema}"

    def raw_execute(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            cursor = conn.execute(query.encode(), params or None)
            return cursor.fetchall() if cursor.description else []

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return self.raw_execute(query)

    def cleanup(self) -> None:
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )

    def raw_insert_open_order(self, client_order_id: str, address: str, open_slot: int) -> None:
        self.raw_execute(
            "INSERT INTO orders (client_order_id, policy, address, provider, energy, duration,"
            " phase, open_slot, reserved_sun, created_at, updated_at)"
            " VALUES (%s, 'payouts', %s, 'itrx', 65000, 3600, 'intent', %s, 0, 0, 0)",
            (client_order_id, address, open_slot),
        )

    def raw_set_phase(self, client_order_id: str, phase: str) -> None:
        self.raw_execute(
            "UPDATE orders SET phase = %s WHERE client_order_id = %s", (phase, client_order_id)
        )
