"""Fixtures of the store contract suite: every test taking `store` or `backend` runs once
per database. The PostgreSQL run needs ENERGYCTL_TEST_POSTGRES_URL (`.ci/run` sets it)
and skips, saying why, when it is unset; each test gets its own schema, dropped after."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.core.clock import VirtualClock
from engine.store import Store
from tests.engine.store.harness import START, Backend, PostgresBackend, SQLiteBackend

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield SQLiteBackend(tmp_path)
        return
    url = os.environ.get("ENERGYCTL_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ENERGYCTL_TEST_POSTGRES_URL is unset: no PostgreSQL to run the contract on")
    backend = PostgresBackend(url)
    try:
        yield backend
    finally:
        backend.cleanup()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=START)


@pytest.fixture
async def store(backend: Backend, clock: VirtualClock) -> AsyncIterator[Store]:
    opened = await backend.open(clock)
    try:
        yield opened
    finally:
        await opened.close()
