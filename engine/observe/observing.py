"""The sidecar's observation: full reads once per interval, and only what changed between.

`CachingSource` stands between the `Reconciler` and the `ChainReader` (it is the
reconciler's `reader`). Every `observation.interval` a pass reads every watched address
(the sweep). A pass in between (woken by an ensure request, a callback or a block)
re-reads only the addresses marked with `refresh` - the ones an ensure request names and
every address with an order in flight (the controller marks them after each pass) - plus
any never read, and hands the planner the sweep's snapshots of the others. In **follow**
mode `follow()` reads new blocks (`following.py`), marks the watched addresses they
touched, and tallies the transactions of watched addresses that burned TRX for energy
(`burns`, `burned_sun`: per address, since this source was made; a transaction in a block
dropped by a reorganisation and included again counts twice). Energy only falls through
transactions in blocks (`following.py`), so in follow mode an untouched address's last
snapshot is still a safe floor; in poll mode a fall between sweeps is seen at the next
sweep, as with plain polling. Snapshots
older than the planner's age limit are never reused (never buy blind: invariant 6 of
docs/architecture.md).

Neighbours: `chain.py`, `following.py`, `engine/sidecar/controller.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from engine.core.clock import Clock
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import ChainError, ChainReader
from engine.observe.following import BlockFollower
from policies.policyset import PolicySet


class CachingSource:
    """A `SnapshotSource` over a `ChainReader`; see the module docstring."""

    def __init__(self, reader: ChainReader, clock: Clock, policy_set: PolicySet) -> None:
        self.reader = reader
        self.clock = clock
        settings = policy_set.settings.observation
        self.follow_mode = settings.mode == "follow"
        self.sweep_interval = float(settings.interval)
        self.max_reuse = max(1.0, min(self.sweep_interval, 60.0))
        self.watched = frozenset(policy_set.addresses)
        self.follower = BlockFollower(reader, lambda: self.watched) if self.follow_mode else None
        self.cache: dict[str, EnergySnapshot] = {}
        #: address -> the mark's sequence number: a read clears only marks older than it
        self.dirty: dict[str, int] = {}
        self._marks = 0
        self.swept_at: float | None = None  # clock time of the last full read
        self.blocks_seen = 0
        self.burns: Counter[str] = Counter()  # address -> transactions that burned TRX
        self.burned_sun: Counter[str] = Counter()  # address -> sun they burned

    def watch(self, addresses: frozenset[str]) -> None:
        """Watch these addresses from now on (a replica's shards changed); a changed set is
        read in full at the next pass, and block following reports only these."""
        if addresses != self.watched:
            self.watched = addresses
            self.swept_at = None

    def refresh(self, addresses: Iterable[str]) -> None:
        """Read these addresses afresh at the next pass (ensure requests, orders in flight,
        orders tracking is about to end). A read already in flight when the mark is made
        does not clear it: only a read started after the mark does."""
        for address in addresses:
            self._marks += 1
            self.dirty[address] = self._marks

    async def follow(self) -> bool:
        """Read new blocks; True when one touched a watched address."""
        if self.follower is None:
            return False
        update = await self.follower.poll()
        self.blocks_seen += len(update.reports)
        for report in update.reports:
            for address, sun in report.burned:
                self.burns[address] += 1
                self.burned_sun[address] += sun
        if update.skipped is not None:
            self.swept_at = None  # fell behind: the next pass reads everything
            return True
        touched = update.addresses
        self.refresh(touched)
        return bool(touched)

    def _due_for_sweep(self, now: float) -> bool:
        return self.swept_at is None or now - self.swept_at >= self.sweep_interval

    async def snapshots(
        self, addresses: Iterable[str], *, delegators: bool = False
    ) -> dict[str, EnergySnapshot | ChainError]:
        wanted = list(dict.fromkeys(addresses))
        now = self.clock.now()
        full = set(wanted) >= self.watched and self._due_for_sweep(now)
        if full or delegators:
            todo = wanted
        else:
            todo = [
                a
                for a in wanted
                if a in self.dirty
                or a not in self.cache
                or now - self.cache[a].read_at > self.max_reuse * 4
            ]
        started = self._marks
        fresh = await self.reader.snapshots(todo, delegators=delegators) if todo else {}
        out: dict[str, EnergySnapshot | ChainError] = {}
        failed = False
        for address in wanted:
            value = fresh.get(address) if address in fresh else self.cache.get(address)
            if value is None:
                continue
            if isinstance(value, EnergySnapshot):
                self.cache[address] = value
                if address in fresh and self.dirty.get(address, started + 1) <= started:
                    del self.dirty[address]
            else:
                failed = True
            out[address] = value
        if full and not failed:
            self.swept_at = now
        return out


__all__ = ["CachingSource"]
