"""Store contract, deposit episodes: one open episode per address, however many deposits
or replicas see it; compare-and-set moves; run-time addresses kept across a reopen. Runs
on SQLite and, with ENERGYCTL_TEST_POSTGRES_URL, PostgreSQL (conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from engine.core.clock import VirtualClock
from engine.core.deposits import NeedState
from engine.store import Store
from tests.engine.store.harness import Backend

A = "TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw"
B = "TKYPNyrXtuDAZSjAPmu23evp4TB75tWiHj"
USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


async def deposit(store: Store, address: str, txid: str, amount: int = 5_000_000):
    return await store.record_deposit(
        policy="sweep", address=address, token=USDT, txid=txid, block=100, amount=amount
    )


async def test_one_open_episode_per_address(store: Store) -> None:
    first, opened = await deposit(store, A, "tx1")
    again, opened_again = await deposit(store, A, "tx2")
    seen_twice, opened_third = await deposit(store, A, "tx1")  # the first deposit re-read
    assert opened and not opened_again and not opened_third
    assert again.id == first.id and again.deposits == 2
    assert seen_twice.deposits == 2  # the opening deposit seen again does not count twice
    other, opened_other = await deposit(store, B, "tx3")
    assert opened_other and other.id != first.id
    assert {n.address for n in await store.deposit_needs()} == {A, B}


async def test_closed_episode_lets_the_next_deposit_open_one(
    store: Store, clock: VirtualClock
) -> None:
    first, _ = await deposit(store, A, "tx1")
    clock.advance(10)
    closed = await store.update_deposit_need(
        first.id, state=NeedState.CLOSED, closed_at=clock.now(), close_reason="swept"
    )
    assert closed is not None and closed.state is NeedState.CLOSED
    assert await store.update_deposit_need(first.id, note="late") is None  # closed is final
    second, opened = await deposit(store, A, "tx9")
    assert opened and second.id != first.id
    history = await store.deposit_needs(open_only=False, addresses=[A])
    assert [n.id for n in history] == [second.id, first.id]


async def test_update_is_compare_and_set_on_state(store: Store) -> None:
    need, _ = await deposit(store, A, "tx1")
    ordered = await store.update_deposit_need(
        need.id, expect={NeedState.OPEN}, state=NeedState.ORDERED, client_order_id="c1"
    )
    assert ordered is not None and ordered.client_order_id == "c1"
    lost = await store.update_deposit_need(
        need.id, expect={NeedState.OPEN}, state=NeedState.ORDERED, client_order_id="c2"
    )
    assert lost is None
    with pytest.raises(ValueError):
        await store.update_deposit_need(need.id, deposits=7)


async def test_two_replicas_racing_open_one_episode(backend: Backend, clock: VirtualClock) -> None:
    one, two = await backend.open(clock), await backend.open(clock)
    try:
        results = await asyncio.gather(
            *(deposit(s, A, f"tx{i}") for i, s in enumerate([one, two, one, two]))
        )
        assert sum(opened for _, opened in results) == 1
        assert len({need.id for need, _ in results}) == 1
        assert len(await one.deposit_needs()) == 1
    finally:
        await one.close()
        await two.close()


async def test_run_time_addresses_survive_a_reopen(backend: Backend, clock: VirtualClock) -> None:
    store = await backend.open(clock)
    await store.set_deposit_address("sweep", A, True)
    await store.set_deposit_address("sweep", B, True)
    await store.set_deposit_address("sweep", B, False)
    await store.close()
    again = await backend.open(clock)
    try:
        assert await again.deposit_addresses() == [("sweep", A, True), ("sweep", B, False)]
    finally:
        await again.close()


async def test_the_follower_cursor_is_kept_per_name(backend: Backend, clock: VirtualClock) -> None:
    store = await backend.open(clock)
    assert await store.deposit_cursor("replica-a") is None
    await store.set_deposit_cursor("replica-a", 100)
    await store.set_deposit_cursor("replica-a", 160)
    await store.set_deposit_cursor("replica-b", 90)
    await store.close()
    again = await backend.open(clock)
    try:
        assert await again.deposit_cursor("replica-a") == 160
        assert await again.deposit_cursor("replica-b") == 90
    finally:
        await again.close()


async def test_a_transfer_recorded_again_opens_and_joins_nothing(
    store: Store, clock: VirtualClock
) -> None:
    async def transfer(txid: str, log: int):
        return await store.record_deposit(
            policy="sweep", address=A, token=USDT, txid=txid, block=100, amount=5, log=log
        )

    first, opened = await transfer("tx1", 0)
    second, opened_second = await transfer("tx1", 1)  # another log of the same transaction
    assert opened and not opened_second and second.id == first.id and second.deposits == 2
    again, opened_again = await transfer("tx1", 0)
    assert not opened_again and again.id == first.id
    clock.advance(10)
    await store.update_deposit_need(
        first.id, state=NeedState.CLOSED, closed_at=clock.now(), close_reason="swept"
    )
    # the block read again after its episode closed: no second episode, nothing to buy
    for log in (0, 1):
        late, opened_late = await transfer("tx1", log)
        assert not opened_late and late.id == first.id and late.state is NeedState.CLOSED
    assert await store.deposit_needs() == []
    fresh, opened_fresh = await transfer("tx2", 0)  # a new transfer still opens one
    assert opened_fresh and fresh.id != first.id


async def test_two_replicas_recording_one_transfer_after_its_close_open_nothing(
    backend: Backend, clock: VirtualClock
) -> None:
    one, two = await backend.open(clock), await backend.open(clock)
    try:
        first, _ = await one.record_deposit(
            policy="sweep", address=A, token=USDT, txid="tx1", block=100, amount=5, log=0
        )
        await one.update_deposit_need(
            first.id, state=NeedState.CLOSED, closed_at=clock.now(), close_reason="swept"
        )
        results = await asyncio.gather(
            *(
                s.record_deposit(
                    policy="sweep", address=A, token=USDT, txid="tx1", block=100, amount=5, log=0
                )
                for s in (one, two, one, two)
            )
        )
        assert not any(opened for _, opened in results)
        assert await two.deposit_needs() == []
    finally:
        await one.close()
        await two.close()
