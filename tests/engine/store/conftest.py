"""Fixtures of the store contract suite: every test taking `store` or `backend` runs once
per database. The PostgreSQL run skips, saying why, until ENERGYCTL_TEST_POSTGRES_URL is
set and this build has a PostgreSQL store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.clock import VirtualClock
from engine.store import Store, UnsupportedStoreURLError
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
    yield PostgresBackend(url)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=START)


@pytest.fixture
async def store(backend: Backend, clock: VirtualClock) -> AsyncIterator[Store]:
    try:
        opened = await backend.open(clock)
    except UnsupportedStoreURLError as exc:
        pytest.skip(f"{backend.name}: this build has no such store yet ({exc})")
    try:
        yield opened
    finally:
        await opened.close()
