"""Replicas sharing the watched addresses: shard leases through the store.

Several `energyctl run` replicas on one PostgreSQL database split the work so that each
address is reconciled by one replica at a time. The addresses are hashed into `shards`
shards (`shard_of`: BLAKE2b of the address, the same in every replica and every Python
process); each shard is a lease in the store (`shard:K/N`, `Store.acquire_lease`) held by
one replica with a time-to-live. `ShardLeases.tick()`, run every `ttl / 3` seconds:

1. renews the replica's membership lease (`replica:NAME`): the number of live members
   gives the fair share, `ceil(shards / members)`;
2. renews every shard it holds; a renewal that fails (the lease expired, or another
   replica took it) drops the shard at once: the replica stops planning, buying and
   tracking for its addresses (fencing);
3. above its fair share (a replica joined), releases the extra shards for the newcomer;
   below it, takes free or expired shards (in an order of its own, so replicas starting
   together do not all race for shard 0).

`owned(addresses)` is the subset of addresses whose shard this replica holds and whose
lease has not run out on the replica's clock: what the controller passes to
`run_pass(only=)` and `track_round(owned=)`. On SIGTERM `release_all()` gives every
lease back so the others take the shards at their next tick; a replica killed outright
stops renewing and its shards are free `ttl` seconds after its last renewal.

Leases only share the work. The money rules hold whatever the replicas believe about
ownership: the store refuses a second open order per address and checks budgets in the
transaction that writes the intent (docs/architecture.md invariants 2 and 5).

Neighbours: `controller.py` (holds a `LeaseKeeper`, which runs `tick` in its loop), `engine/store/`
(the lease API), `service.py` (shows `status()`).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from engine.core.clock import Clock
from engine.sidecar.swapping import ControllerError
from engine.store import Lease, Store

log = logging.getLogger("energyctl.sharding")

MEMBER_PREFIX = "replica:"
SHARD_PREFIX = "shard:"


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def shard_of(address: str, shards: int) -> int:
    """The shard of `address` among `shards`: stable across processes and replicas."""
    return _digest(address) % shards


def shard_name(shard: int, shards: int) -> str:
    return f"{SHARD_PREFIX}{shard}/{shards}"


@dataclass(frozen=True, slots=True)
class ShardSettings:
    replica: str  # this replica's name, unique among the live ones
    shards: int = 64
    ttl: float = 15.0  # seconds a lease lives without renewal

    @property
    def renew_every(self) -> float:
        return self.ttl / 3.0


class ShardLeases:
    """The shards one replica holds; see the module docstring."""

    def __init__(self, store: Callable[[], Store], settings: ShardSettings, clock: Clock) -> None:
        if settings.shards < 1:
            raise ValueError("shards must be >= 1")
        self._store = store  # a getter: a policy swap opens a new session and store
        self.settings = settings
        self.clock = clock
        self.held: dict[int, Lease] = {}
        #: shard -> holder, from the last tick's read of the lease table (any replica)
        self.holders: dict[int, Lease] = {}
        self.members: list[str] = []
        self.ticks = 0
        self.lost = 0  # shards dropped because a renewal failed
        #: the order this replica tries free shards in: its own, so that replicas
        #: starting together do not all race for the same shard
        self._order = sorted(range(settings.shards), key=lambda k: _digest(f"{self.replica}/{k}"))

    @property
    def replica(self) -> str:
        return self.settings.replica

    # ------------------------------------------------------------------ ownership

    def holds(self, shard: int) -> bool:
        lease = self.held.get(shard)
        return lease is not None and lease.expires_at > self.clock.now()

    def owned(self, addresses: Iterable[str]) -> frozenset[str]:
        """The addresses this replica may act on now."""
        n = self.settings.shards
        return frozenset(a for a in addresses if self.holds(shard_of(a, n)))

    async def owner(self, address: str) -> str | None:
        """Who holds `address`'s shard now, read from the store (None: nobody)."""
        shard = shard_of(address, self.settings.shards)
        if self.holds(shard):
            return self.replica
        lease = (await self._store().lease_holders()).get(shard_name(shard, self.settings.shards))
        return lease.holder if lease is not None else None

    # ------------------------------------------------------------------ the tick

    async def tick(self) -> bool:
        """Renew, rebalance and acquire once; True when the shards held changed."""
        store, s = self._store(), self.settings
        before = set(self.held)
        await store.acquire_lease(MEMBER_PREFIX + s.replica, s.replica, s.ttl)
        for shard in sorted(self.held):
            lease = await store.renew_lease(shard_name(shard, s.shards), s.replica, s.ttl)
            if lease is None:
                del self.held[shard]
                self.lost += 1
                log.warning("shard lease lost", extra={"event": "lease", "shard": shard})
            else:
                self.held[shard] = lease
        leases = await store.lease_holders()
        self.members = sorted(
            name.removeprefix(MEMBER_PREFIX) for name in leases if name.startswith(MEMBER_PREFIX)
        )
        self.holders = {}
        for name, lease in leases.items():
            if name.startswith(SHARD_PREFIX) and name.endswith(f"/{s.shards}"):
                self.holders[int(name[len(SHARD_PREFIX) :].split("/")[0])] = lease
        fair = math.ceil(s.shards / max(1, len(self.members)))
        for shard in sorted(self.held, reverse=True)[: max(0, len(self.held) - fair)]:
            await store.release_lease(shard_name(shard, s.shards), s.replica)
            del self.held[shard]
            self.holders.pop(shard, None)
        for shard in self._order:
            if len(self.held) >= fair:
                break
            if shard in self.held or shard in self.holders:
                continue
            lease = await store.acquire_lease(shard_name(shard, s.shards), s.replica, s.ttl)
            if lease is not None:
                self.held[shard] = self.holders[shard] = lease
        self.ticks += 1
        changed = set(self.held) != before
        if changed:
            log.info(
                "shards held",
                extra={"event": "lease", "replica": s.replica, "shards": sorted(self.held)},
            )
        return changed

    async def release_all(self) -> None:
        """Give every lease back (a clean stop): the others take them at their next tick."""
        store, s = self._store(), self.settings
        for shard in sorted(self.held):
            await store.release_lease(shard_name(shard, s.shards), s.replica)
        self.held.clear()
        await store.release_lease(MEMBER_PREFIX + s.replica, s.replica)

    def drop_all(self) -> None:
        """Stop acting on every shard at once (the store cannot be reached to renew)."""
        self.lost += len(self.held)
        self.held.clear()

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        held = {k: v for k, v in self.held.items() if v.expires_at > now}
        return {
            "name": self.replica,
            "shards": self.settings.shards,
            "leaseTtl": self.settings.ttl,
            "held": sorted(held),
            "leaseExpiresAt": min((v.expires_at for v in held.values()), default=None),
            "members": list(self.members),
            "owners": {str(k): v.holder for k, v in sorted(self.holders.items())},
            "lost": self.lost,
        }


class NotOwner(ControllerError):
    """An ensure request for an address whose shard another replica holds (or none)."""

    def __init__(self, address: str, owner: str | None) -> None:
        held = f"replica {owner!r} holds it" if owner else "no replica holds it now; retry"
        super().__init__(f"{address} is not reconciled by this replica: {held}")
        self.owner = owner


def make_leases(
    store: Callable[[], Store],
    store_url: str,
    clock: Clock,
    *,
    replica: str,
    shards: int | None,
    ttl: float,
) -> ShardLeases | None:
    """Leases unless `shards` is 0 (None: on for PostgreSQL, off for SQLite)."""
    if shards is None:
        shards = 64 if store_url.lower().startswith("postgres") else 0
    if shards <= 0:
        return None
    return ShardLeases(store, ShardSettings(replica, shards, ttl), clock)


class LeaseKeeper:
    """Keeps one replica's leases: a tick now and every `renew_every` seconds, a release
    on a clean stop. `wake(reason)` starts a pass when the shards held change;
    `stopping()` ends the loop."""

    def __init__(
        self,
        leases: ShardLeases,
        clock: Clock,
        *,
        wake: Callable[[str], None],
        stopping: Callable[[], bool],
    ) -> None:
        self.leases = leases
        self.clock = clock
        self._wake = wake
        self._stopping = stopping

    async def tick(self) -> None:
        try:
            changed = await self.leases.tick()
        except Exception as exc:  # unrenewed leases run out on their own (`holds`)
            log.warning("lease tick failed", extra={"event": "lease", "error": str(exc)})
            return
        if changed:
            self._wake("shards")

    async def loop(self) -> None:
        while not self._stopping():
            await self.clock.sleep(self.leases.settings.renew_every)
            if not self._stopping():
                await self.tick()

    async def release(self) -> None:
        try:  # the others take the shards at their next tick, not after the ttl
            await self.leases.release_all()
        except Exception as exc:
            log.warning("leases not released", extra={"event": "lease", "error": str(exc)})


__all__ = [
    "LeaseKeeper",
    "NotOwner",
    "ShardLeases",
    "ShardSettings",
    "make_leases",
    "shard_name",
    "shard_of",
]
