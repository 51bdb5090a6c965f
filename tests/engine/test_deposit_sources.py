"""Deposit addresses from the operator's PostgreSQL: a table of 100,000 addresses, rows
added and removed take effect within one interval, a broken query keeps the last set and
`/readyz` says why. Skipped, saying why, when ENERGYCTL_TEST_POSTGRES_URL is unset. Also
the address file: a changed file is re-read, a bad line keeps the last good set."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest

from engine.core.clock import VirtualClock
from engine.observe.address_sources import FileSource, PostgresSource
from engine.sidecar.depositing import DepositDesk
from engine.sidecar.service import Service
from engine.store import open_store
from policies.addresses import encode_base58check
from policies.deposits import DepositPolicy
from policies.deposits import PostgresSource as PostgresSettings

HOT = encode_base58check(bytes([9]) * 20)
ROWS = 100_000


def policy() -> DepositPolicy:
    return DepositPolicy.model_validate(
        {
            "apiVersion": "energyctl/v1",
            "kind": "DepositPolicy",
            "metadata": {"name": "dp"},
            "spec": {
                "sweepTo": HOT,
                "providers": ["p"],
                "maxPrice": "100 sun/energy",
                "budget": {"perDay": "100 TRX"},
            },
        }
    )


async def desk(
    source: FileSource | PostgresSource, clock: VirtualClock, folder: Path
) -> DepositDesk:
    unused: Any = SimpleNamespace()  # no chain or vendor is asked in these tests
    return DepositDesk(
        {"dp": policy()},
        store=await open_store(str(folder / "engine.db"), clock),
        reader=unused,
        providers={},
        clock=clock,
        sources={"dp": source},
    )


@pytest.fixture
def table() -> Iterator[tuple[str, str, list[str]]]:
    url = os.environ.get("ENERGYCTL_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ENERGYCTL_TEST_POSTGRES_URL is unset: no PostgreSQL for the address query")
    name = f"energyctl_test_deposit_addresses_{uuid.uuid4().hex[:12]}"
    rng = random.Random(11)
    addresses = [encode_base58check(rng.randbytes(20)) for _ in range(ROWS)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (address TEXT PRIMARY KEY, active BOOLEAN)")
        with conn.cursor().copy(f"COPY {name} (address, active) FROM STDIN") as copy:
            for address in addresses:
                copy.write_row((address, True))
    try:
        yield url, name, addresses
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {name}")


async def readyz(d: DepositDesk, clock: VirtualClock) -> httpx.Response:
    async def healthy() -> None:
        return None

    controller = SimpleNamespace(
        session=SimpleNamespace(store=SimpleNamespace(healthcheck=healthy)),
        policy_set=SimpleNamespace(
            settings=SimpleNamespace(observation=SimpleNamespace(interval=30)), revision="r"
        ),
        clock=clock,
        last_pass_at=clock.now(),
        observation_age=lambda: 0.0,
        stopping=False,
        status=lambda: {"replica": {"name": "test"}},
        restart_required=(),
        deposits=d,
    )
    transport = httpx.ASGITransport(app=Service(controller).app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        return await client.get("/readyz")


async def test_a_query_sets_the_watched_addresses(
    table: tuple[str, str, list[str]], tmp_path: Path
) -> None:
    url, name, addresses = table
    clock = VirtualClock()
    settings = PostgresSettings(
        url=url, query=f"SELECT address FROM {name} WHERE active", interval="1m"
    )
    d = await desk(PostgresSource(settings, clock), clock, tmp_path)
    await d.start()
    assert d.watch.count() == ROWS and d.policy_of(addresses[123]) == "dp"
    assert (await readyz(d, clock)).status_code == 200
    fresh = encode_base58check(bytes([7]) * 20)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {name} VALUES (%s, true), ('not an address', true)", [fresh])
        conn.execute(f"UPDATE {name} SET active = false WHERE address = %s", [addresses[0]])
    await d.poll_sources()  # not due yet: the interval has not passed
    assert d.policy_of(fresh) is None
    clock.advance(60)
    await d.poll_sources()
    assert d.policy_of(fresh) == "dp" and d.policy_of(addresses[0]) is None
    assert d.watch.count() == ROWS and d.sources["dp"].state.skipped == 1
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {name} RENAME COLUMN active TO enabled")
    clock.advance(60)
    await d.poll_sources()
    assert d.watch.count() == ROWS and d.policy_of(fresh) == "dp"  # the last good set
    answer = await readyz(d, clock)
    assert answer.status_code == 503
    (problem,) = answer.json()["problems"]
    assert "query failed" in problem and "active" in problem and "kept the last good set" in problem
    await d.store.close()


async def test_a_changed_file_is_reread_and_a_bad_one_keeps_the_last_set(tmp_path: Path) -> None:
    clock = VirtualClock()
    first, second = (encode_base58check(bytes([i]) * 20) for i in (1, 2))
    path = tmp_path / "addresses.txt"
    path.write_text(f"{first}\n")
    d = await desk(FileSource(path, clock), clock, tmp_path)
    await d.start()
    assert d.policy_of(first) == "dp" and d.policy_of(second) is None
    path.write_text(f"{first}\n{second}\n")
    os.utime(path, ns=(1, 2))  # a new modification time, whatever the clock's resolution
    await d.poll_sources()
    assert d.policy_of(second) == "dp"
    path.write_text(f"{second}\nnot-an-address\n")
    os.utime(path, ns=(3, 4))
    await d.poll_sources()
    assert d.policy_of(first) == "dp" and d.watch.count() == 2  # kept
    assert d.problems() and ":2:1" in d.problems()[0]
    await d.store.close()


async def test_metrics_count_deposit_addresses_and_episodes(tmp_path: Path) -> None:
    from engine.sidecar.metrics import Metrics
    from policies.deposits import USDT

    clock = VirtualClock()
    path = tmp_path / "addresses.txt"
    path.write_text("".join(f"{encode_base58check(bytes([i]) * 20)}\n" for i in range(1, 6)))
    d = await desk(FileSource(path, clock), clock, tmp_path)
    await d.start()
    await d.store.record_deposit(
        policy="dp", address=encode_base58check(bytes([1]) * 20), token=USDT, txid="t",
        block=1, amount=5_000_000,
    )  # fmt: skip
    controller: Any = SimpleNamespace(
        observation_age=lambda: 1.0, leases=None, session=SimpleNamespace(store=d.store),
        clock=clock, policy_set=SimpleNamespace(policies={}), deposits=d, observer=None,
        reconciler=None,
    )  # fmt: skip
    metrics = Metrics()
    await metrics.refresh(controller)
    text = metrics.exposition().decode()
    assert 'energyctl_deposit_addresses{policy="dp"} 5.0' in text
    assert 'energyctl_deposit_episodes{policy="dp",state="open"} 1.0' in text
    assert 'energyctl_spent_today_sun{policy="dp"} 0.0' in text
    await d.store.close()
