"""What the store tests share: intents to write, and the databases (`Backend`) to run on.

The contract suite runs once per backend (`conftest.py` parametrizes it). Adding the
PostgreSQL store is one `Backend` subclass here and nothing else in the tests.
"""

from __future__ import annotations

import abc
import itertools
import sqlite3
from pathlib import Path
from typing import Any

from engine.clock import VirtualClock
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


class PostgresBackend(Backend):  # placeholder until the PostgreSQL store exists
    name = "postgres"
    integrity_error = Exception

    def __init__(self, url: str) -> None:
        self._url = url

    def url(self) -> str:
        return self._url

    def raw_insert_open_order(self, client_order_id: str, address: str, open_slot: int) -> None:
        raise NotImplementedError("arrives with the PostgreSQL store")

    def raw_set_phase(self, client_order_id: str, phase: str) -> None:
        raise NotImplementedError("arrives with the PostgreSQL store")
