"""Where a deposit policy's addresses come from: a file, or a query on the operator's database.

- `FileSource`: one address per line (`policies/addresses.py` reads it). The file is
  re-read when its modification time or size changes; a re-read with a bad line keeps the
  last good set and says which line (`problem`).
- `PostgresSource`: the policy's SELECT, re-run every `interval` on a fresh connection
  (psycopg, read-only transaction, statement timeout). Rows whose first column is not a
  TRON address are counted and skipped; a failed query keeps the last good set and says
  why in `problem` (the sidecar shows it in `/readyz` and the logs).

Both hand back a new `AddressSet` only when the set was (re)read successfully; the caller
swaps it in whole. Reading a million lines takes seconds: `FileSource.poll` runs the read
on a thread.

Neighbours: `policies/deposits.py` (the settings), `engine/observe/deposits.py`
(`DepositWatch.set_base`), the sidecar's `depositing.py` (polls them).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

from engine.core.clock import Clock
from policies.addresses import AddressFile, AddressSet, decode_base58check, read_address_file
from policies.deposits import PostgresSource as PostgresSettings


@dataclass
class SourceState:
    """What a source last did: when it last read a good set, and what went wrong since."""

    name: str
    count: int = 0
    loaded_at: float | None = None
    problem: str | None = None
    skipped: int = 0  # rows or lines that were not addresses, in the last good read

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "addresses": self.count,
            "loadedAt": self.loaded_at,
            "problem": self.problem,
            "skipped": self.skipped,
        }


class FileSource:
    def __init__(self, path: Path, clock: Clock, first: AddressFile | None = None) -> None:
        self.path = path
        self.clock = clock
        self.state = SourceState(f"file {path}")
        self._stamp: tuple[int, int] | None = None
        self._first = first if first is not None and first.ok else None

    def _signature(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    async def poll(self) -> AddressSet | None:
        """A new set when the file changed and reads cleanly; else None."""
        stamp = self._signature()
        if stamp is None:
            self.state.problem = f"{self.path}: cannot be read (kept the last good set)"
            return None
        if stamp == self._stamp:
            return None
        if self._first is not None:  # read at load time: do not read a million lines twice
            read, self._first = self._first, None
        else:
            read = await asyncio.to_thread(read_address_file, self.path)
        self._stamp = stamp
        if not read.ok:
            first = read.problems[0] if read.problems else None
            self.state.problem = (
                f"{first} ({read.bad_lines} bad lines; kept the last good set)"
                if first
                else f"{self.path}: unreadable (kept the last good set)"
            )
            return None
        self.state = SourceState(self.state.name, len(read.addresses), self.clock.now())
        return read.addresses


class PostgresSource:
    def __init__(
        self,
        settings: PostgresSettings,
        clock: Clock,
        *,
        password: SecretStr | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.password = password
        self.connect_timeout = connect_timeout
        self.state = SourceState(f"postgres {_display(settings.url)}")
        self._next_at: float | None = None

    @property
    def interval(self) -> float:
        return float(self.settings.interval)

    def due(self) -> bool:
        return self._next_at is None or self.clock.now() >= self._next_at

    async def poll(self, *, force: bool = False) -> AddressSet | None:
        """Run the query when due (or `force`); a new set, or None (not due, or failed)."""
        if not force and not self.due():
            return None
        self._next_at = self.clock.now() + self.interval
        try:
            found, skipped = await self._query()
        except (psycopg.Error, OSError) as exc:
            self.state.problem = (
                f"query failed: {type(exc).__name__}: {str(exc).strip()[:300]} "
                f"(kept the last good set of {self.state.count})"
            )
            return None
        self.state = SourceState(self.state.name, len(found), self.clock.now(), None, skipped)
        return found

    async def _query(self) -> tuple[AddressSet, int]:
        kwargs: dict[str, Any] = {"autocommit": False, "connect_timeout": self.connect_timeout}
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
        found = AddressSet()
        bodies = found._bodies
        skipped = 0
        conn = await psycopg.AsyncConnection.connect(self.settings.url, **kwargs)
        async with conn, conn.transaction():
            await conn.execute("SET TRANSACTION READ ONLY")
            await conn.execute("SET LOCAL statement_timeout = '60s'")
            async with conn.cursor() as cur:
                await cur.execute(self.settings.query.encode())
                while rows := await cur.fetchmany(10_000):
                    for row in rows:
                        value = row[0] if row else None
                        body = decode_base58check(value) if isinstance(value, str) else None
                        if body is None:
                            skipped += 1
                        else:
                            bodies.add(body)
        return found, skipped


def _display(url: str) -> str:
    return url.split("?", 1)[0]


__all__ = ["FileSource", "PostgresSource", "SourceState"]
