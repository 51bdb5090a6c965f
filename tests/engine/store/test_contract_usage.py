"""Contract: usage profiles (what the engine learned of each address's use) are kept per
address, survive a reopen (a restart), are shared by every store client (replicas), and a
profile older than the kept one never replaces it."""

from __future__ import annotations

from engine.core.clock import VirtualClock
from engine.core.usage import UsageProfile, observe
from engine.store import Store
from tests.engine.store.harness import START, Backend

A, B = "TPrke8B1kK6VZxNBcr7FayTswfJG8ohMuS", "TNjHacjnzyLg8QyEBtqS6KK2r2i1phjC4c"


def _learned(address: str, used: int) -> UsageProfile:
    profile = observe(UsageProfile(address), used=0, limit=1_000_000, at=START)
    return observe(profile, used=used, limit=1_000_000, at=START + 600)


async def test_profiles_are_kept_and_read_back(
    backend: Backend, store: Store, clock: VirtualClock
) -> None:
    assert await store.usage_profiles() == {}
    a, b = _learned(A, 65_000), _learned(B, 130_000)
    await store.save_usage_profiles([a, b])
    kept = await store.usage_profiles([A])
    assert list(kept) == [A]
    assert kept[A].hourly == a.hourly and kept[A].last_used == 65_000
    assert sum(kept[A].hourly) == 65_000
    # another client of the same database (a replica, or the engine after a restart)
    other = await backend.open(clock)
    try:
        both = await other.usage_profiles()
        assert set(both) == {A, B} and both[B].days == b.days
    finally:
        await other.close()


async def test_an_older_profile_never_replaces_a_newer_one(store: Store) -> None:
    newer = _learned(A, 65_000)
    newest = observe(newer, used=200_000, limit=1_000_000, at=START + 1200)
    await store.save_usage_profiles([newest])
    await store.save_usage_profiles([newer])  # a slower replica's copy
    kept = (await store.usage_profiles())[A]
    assert kept.last_used == 200_000 and kept.updated_at == START + 1200
