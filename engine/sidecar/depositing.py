"""The deposit desk: from a deposit in a block to one sweep's energy on the address.

`DepositDesk` runs beside the controller's passes for the set's DepositPolicies:

1. **follow**: a `BlockFollower` reads each new block and its transaction infos; its
   `on_block` hook scans the infos' `Transfer` events against the watched sets
   (`engine/observe/deposits.py`: per log, not per watched address).
2. **record**: a deposit opens (or joins) the address's episode in the store; a transfer
   out of a watched address (the sweep) closes its episode, and nothing more is bought.
3. **act** (only the episodes that just opened, or are waiting): `deposit_buying.py`'s
   `SweepBuyer` reads those addresses, decides (`engine/decide/deposits.py`: ready,
   wait, held, buy), claims the episodes in the store and buys through
   `engine/act/applying.py`, write-ahead, the budget reserved at the cap, one open order
   per address.
4. **ready**: when the episode's order is delivered (tracking runs in the controller's
   loop, as for every order) or the chain shows the energy, the episode turns ready and
   the policy's webhook is sent once (`webhooks.py`).
5. **safety net** (every `interval`): reads only the addresses with an open episode
   (never the whole watch list): held episodes are tried again, ordered ones checked, an
   episode whose energy outlived its duration unswept is closed (`expired`).

A restart loses nothing: episodes, their orders, run-time address changes and the last
block whose deposits were recorded (the follower's cursor, per replica name, and the
furthest any desk recorded, where a desk with a new name resumes) are in the store; the
follower reads on from that block, so a deposit that landed while the sidecar was down
is seen too (up to the follower's `max_lag` of 1,200 blocks, an hour; beyond that the
skipped blocks are logged, and the sweeper's `POST /v1/ensure` covers them).

Neighbours: `controller.py` builds and runs it, `service.py` serves its API.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from engine.core.clock import Clock
from engine.core.deposits import CloseReason, DepositNeed, NeedState, NewDeposit
from engine.observe.address_sources import FileSource, PostgresSource
from engine.observe.chain import ChainError, ChainReader
from engine.observe.deposits import BlockTransfers, DepositWatch, scan_transfers
from engine.observe.following import BlockFollower, BlockReport
from engine.sidecar.deposit_buying import (
    DepositReader,
    DepositSettings,
    SweepBuyer,
    deposit_budgets,
)
from engine.sidecar.webhooks import WebhookSender
from engine.store import OrderPhase, Store, StoreError
from policies.deposits import DepositPolicy, address_file_path
from policies.policyset import PolicySet
from providers.base import Provider as Adapter

log = logging.getLogger("energyctl.deposits")

CLAIM_TIMEOUT = 600.0
"""Seconds after which an episode claimed for an order that was never recorded is looked
at again (its order, if one was placed, is on the address: the decision then waits)."""
CLAIM_AFTER_RESTART = 5.0
"""Seconds after which an unrecorded claim made BEFORE this desk started is looked at
again: after a restart its claimer is most likely the process that died. A claim's
intent is written moments after it, and once written the address's open order makes the
decision wait; before that, the store's one open order per address still refuses a
second order, so looking again early never buys twice."""
SHARED_CURSOR = "*"
"""The furthest block any desk has recorded the deposits of (each desk moves it forward,
never back), where a desk whose own name has no cursor resumes: `energyctl run`'s
default replica name holds its process id, so a restarted sidecar has a new name. The
desk that wrote it had recorded every block up to it, so resuming after it loses no
deposit, and re-reads as few blocks as possible."""
FREEZE_AT = 100_000
"""A source's set this large is kept out of the cyclic garbage collector's walks."""


class UnknownDepositAddress(LookupError):
    """The address is not a deposit address of any policy."""


class DepositDesk:
    """See the module docstring. `wake_tracking()` asks the controller to track now."""

    def __init__(
        self,
        policies: Mapping[str, DepositPolicy],
        *,
        store: Store,
        reader: DepositReader,
        providers: Mapping[str, Adapter],
        clock: Clock,
        sources: Mapping[str, FileSource | PostgresSource] | None = None,
        settings: DepositSettings | None = None,
        webhooks: WebhookSender | None = None,
        wake_tracking: Callable[[], None] = lambda: None,
        call_timeout: float | None = None,
        follower_start: int | None = None,
        cursor: str = "energyctl",
    ) -> None:
        self.policies: dict[str, DepositPolicy] = dict(policies)
        self.store, self.reader, self.providers, self.clock = store, reader, providers, clock
        self.settings = settings or DepositSettings()
        self.webhooks = webhooks
        self.wake_tracking = wake_tracking
        self.call_timeout = call_timeout
        self.watch = DepositWatch(self.policies)
        self.sources: dict[str, FileSource | PostgresSource] = dict(sources or {})
        self.cursor = cursor  # the name its progress is kept under in the store
        self._follower_start = follower_start
        self._saved: int | None = None  # the last block written as the cursor
        self.follower = self._follower(follower_start)
        self._found: list[tuple[float, BlockTransfers]] = []  # (perf_counter, block)
        self.buyer = SweepBuyer(
            self.policies,
            store=store,
            reader=reader,
            providers=providers,
            clock=clock,
            settings=self.settings,
            wake_tracking=wake_tracking,
            call_timeout=call_timeout,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._notifying: set[int] = set()  # episodes whose webhook is being delivered
        self._act_lock = asyncio.Lock()
        self._last_net: float | None = None
        self._started = False
        self._began: float | None = None  # when start() ran (clock time)
        self.detect_cpu: list[float] = []  # seconds of CPU per scanned block
        self.last_error: str | None = None

    # ------------------------------------------------------------------ addresses

    def _follower(self, start: int | None) -> BlockFollower:
        return BlockFollower(
            cast(ChainReader, self.reader),  # it reads heads, blocks and infos only
            frozenset(),
            start=start,
            on_block=self._on_block,
        )

    async def start(self) -> None:
        """Where following resumes (the block after the stored cursor), run-time address
        changes from the store, then every source's first set."""
        if self._follower_start is None:
            saved = await self.store.deposit_cursor(self.cursor)
            if saved is None:  # a new name (the default one holds the process id)
                saved = await self.store.deposit_cursor(SHARED_CURSOR)
            if saved is not None:
                self._saved = saved
                self.follower = self._follower(saved + 1)
        for policy, address, present in await self.store.deposit_addresses():
            if policy in self.policies:
                self.watch.change(policy, address, present)
        await self.poll_sources(force=True)
        self._began = self.clock.now()
        self._started = True

    async def poll_sources(self, *, force: bool = False) -> None:
        for name, source in self.sources.items():
            if isinstance(source, PostgresSource):
                found = await source.poll(force=force)
            else:
                found = await source.poll()
            if found is not None:
                self.watch.set_base(name, found)
                if len(found) >= FREEZE_AT:
                    # A set of a million addresses is one container the cyclic garbage
                    # collector would walk entry by entry at each full collection (tens of
                    # milliseconds, in the middle of a block's orders). It holds no cycles
                    # (bytes only; reference counting frees a replaced set at once), so
                    # everything alive now is moved out of the collector's sight.
                    gc.freeze()
                log.info(
                    "deposit addresses loaded",
                    extra={"event": "deposits", "policy": name, "count": len(found)},
                )
            elif source.state.problem:
                log.warning(
                    "deposit address source failed",
                    extra={"event": "deposits", "policy": name, "error": source.state.problem},
                )

    async def add_address(self, policy: str, address: str) -> None:
        await self.store.set_deposit_address(policy, address, True)
        self.watch.change(policy, address, True)

    async def remove_address(self, policy: str, address: str) -> None:
        await self.store.set_deposit_address(policy, address, False)
        self.watch.change(policy, address, False)
        for need in await self.store.deposit_needs(addresses=[address]):
            await self._close(need, CloseReason.REMOVED)

    def problems(self) -> list[str]:
        """Why a source or the last round is not as it should be (for `/readyz`)."""
        found = [
            f"deposit policy {name}: {source.state.problem}"
            for name, source in self.sources.items()
            if source.state.problem
        ]
        if self.last_error:
            found.append(f"deposits: {self.last_error}")
        return found

    # ------------------------------------------------------------------ following

    def _on_block(self, report: BlockReport, infos: Sequence[Mapping[str, Any]]) -> None:
        started = time.process_time()
        found = scan_transfers(report.number, infos, self.watch.watched)
        self.detect_cpu.append(time.process_time() - started)
        del self.detect_cpu[:-1000]
        if found.deposits or found.sweeps:
            self._found.append((time.perf_counter(), found))

    async def follow_once(self) -> list[DepositNeed]:
        """Read new blocks; record what they carry; act on the episodes opened. The
        episodes acted on come back."""
        update = await self.follower.poll()
        if update.skipped is not None:  # fell more than an hour behind: those blocks unread
            first, last = update.skipped
            log.warning(
                "deposit blocks skipped",
                extra={"event": "deposits", "first": first, "last": last},
            )
        found = list(self._found)  # dropped once recorded: a store failure keeps them
        opened: dict[int, DepositNeed] = {}
        seen: dict[int, float] = {}
        for read_at, block in found:
            # in the block's order: deposits are recorded in batches, and a batch is
            # written before a sweep from one of its addresses, so that sweep closes the
            # episode its deposit opened (a sweep before a deposit closes only older ones)
            batch: list[NewDeposit] = []
            for is_deposit, item in block.in_order():
                if is_deposit:
                    batch.append(
                        NewDeposit(
                            item.policy,
                            item.address,
                            item.token,
                            item.txid,
                            item.block,
                            item.amount,
                            item.log,
                        )
                    )
                    continue
                if any(d.address == item.address for d in batch):
                    await self._record(batch, opened, seen, read_at)
                    batch = []
                for need in await self.store.deposit_needs(addresses=[item.address]):
                    if need.deposit_block <= item.block:
                        await self._close(need, CloseReason.SWEPT)
                        opened.pop(need.id, None)
            await self._record(batch, opened, seen, read_at)
        del self._found[: len(found)]
        await self._save_cursor()
        if opened:
            await self.act(list(opened.values()), seen=seen)
        return list(opened.values())

    async def _record(
        self,
        batch: list[NewDeposit],
        opened: dict[int, DepositNeed],
        seen: dict[int, float],
        read_at: float,
    ) -> None:
        if not batch:
            return
        for need, _new in await self.store.record_deposits(batch):
            if need.state is NeedState.OPEN:
                opened[need.id] = need
                seen.setdefault(need.id, read_at)

    async def _save_cursor(self) -> None:
        """Keep the last block read (its deposits are recorded) for a restart."""
        upto = self.follower.next_height
        if upto is not None and upto - 1 != self._saved and upto > 0:
            await self.store.set_deposit_cursor(self.cursor, upto - 1)
            shared = await self.store.deposit_cursor(SHARED_CURSOR)
            if shared is None or shared < upto - 1:
                await self.store.set_deposit_cursor(SHARED_CURSOR, upto - 1)
            self._saved = upto - 1

    # ------------------------------------------------------------------ acting

    async def act(
        self, needs: Sequence[DepositNeed], *, seen: Mapping[int, float] | None = None
    ) -> None:
        """Decide and buy for episodes in state `open` (others are left alone); `seen`:
        when each episode's block was read (perf_counter), for `buyer.placements`."""
        todo = [n for n in needs if n.state is NeedState.OPEN and n.policy in self.policies]
        if not todo:
            return
        async with self._act_lock:
            ready = await self.buyer.buy(todo, seen or {})
        for decision in ready:
            await self._ready(decision.need, decision.energy, decision.available)

    # ------------------------------------------------------------------ ready and closed

    async def _ready(self, need: DepositNeed, energy: int, available: int | None) -> None:
        done = await self.store.update_deposit_need(
            need.id,
            expect={NeedState.OPEN, NeedState.ORDERED},
            state=NeedState.READY,
            energy=energy,
            ready_at=self.clock.now(),
            note=f"{available} energy on chain",
        )
        if done is not None:
            self._spawn(self.notify(done, available))

    async def _swept(self, need: DepositNeed, policy: DepositPolicy) -> bool:
        """The address's token balance fell below `minDeposit`: swept (unreadable: no)."""
        try:
            left = await self.reader.token_balance(need.token, need.address)
        except ChainError:
            return False
        return left < policy.spec.min_deposit

    async def notify(self, need: DepositNeed, available: int | None = None) -> bool:
        """Send the policy's webhook for a ready episode, once (retried inside)."""
        policy = self.policies.get(need.policy)
        hook = policy.spec.webhook if policy is not None else None
        if hook is None or self.webhooks is None or need.notified_at is not None:
            return False
        if need.id in self._notifying:
            return False
        self._notifying.add(need.id)
        try:
            return await self._deliver(
                need, hook.url, hook.secret.get().get_secret_value(), available
            )
        finally:
            self._notifying.discard(need.id)

    async def _deliver(
        self, need: DepositNeed, url: str, secret: str, available: int | None
    ) -> bool:
        assert self.webhooks is not None
        event = {
            "event": "energy.ready",
            "policy": need.policy,
            "address": need.address,
            "energy": need.energy,
            "available": available,
            "depositTx": need.deposit_txid,
            "deposits": need.deposits,
            "order": need.client_order_id,
            "episode": need.id,
            "readyAt": need.ready_at,
        }
        delivered = await self.webhooks.deliver(url, secret, f"{need.policy}-{need.id}", event)
        if delivered:
            await self.store.update_deposit_need(need.id, notified_at=self.clock.now())
        return delivered

    async def _close(self, need: DepositNeed, reason: CloseReason) -> None:
        await self.store.update_deposit_need(
            need.id, state=NeedState.CLOSED, closed_at=self.clock.now(), close_reason=str(reason)
        )
        log.info(
            "deposit episode closed",
            extra={"event": "deposits", "address": need.address, "reason": str(reason)},
        )

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("deposit background work failed", extra={"event": "deposits"})

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ the safety net

    async def check_orders(self) -> None:
        """Episodes whose order ended: delivered -> ready; failed -> open (bought again)."""
        ordered = [n for n in await self.store.deposit_needs() if n.state is NeedState.ORDERED]
        again: list[DepositNeed] = []
        now = self.clock.now()
        for need in ordered:
            if need.client_order_id is None:  # claimed; the claimer died before recording
                inherited = self._began is not None and need.updated_at < self._began
                timeout = CLAIM_AFTER_RESTART if inherited else CLAIM_TIMEOUT
                if now - need.updated_at > timeout:
                    back = await self.store.update_deposit_need(
                        need.id,
                        expect={NeedState.ORDERED},
                        state=NeedState.OPEN,
                        note="the order's placement was not recorded; looking again",
                    )
                    if back is not None:  # an order it placed holds the address: WAIT
                        again.append(back)
                continue
            try:
                order = await self.store.get_order(need.client_order_id)
            except StoreError:
                continue
            if order.phase is OrderPhase.DELIVERED:
                await self._ready(need, need.energy or order.energy, None)
            elif not order.is_open:
                back = await self.store.update_deposit_need(
                    need.id,
                    expect={NeedState.ORDERED},
                    state=NeedState.OPEN,
                    note=f"order {order.client_order_id} ended {order.phase}",
                )
                if back is not None:
                    again.append(back)
        if again:
            await self.act(again)

    async def safety_net(self) -> None:
        """Only the open episodes: retry the held, close the expired, resend webhooks."""
        now = self.clock.now()
        needs = await self.store.deposit_needs()
        waiting = [n for n in needs if n.state is NeedState.OPEN and n.policy in self.policies]
        for need in needs:
            policy = self.policies.get(need.policy)
            if policy is None or need.state is not NeedState.READY:
                continue
            if await self._swept(need, policy):  # a sweep the blocks did not show us
                await self._close(need, CloseReason.SWEPT)
            elif need.ready_at is not None and now - need.ready_at > policy.spec.sweep_within:
                await self._close(need, CloseReason.EXPIRED)
            elif need.notified_at is None and need.id not in self._notifying:
                self._spawn(self.notify(need))
        if waiting:
            await self.act(waiting)

    async def round(self) -> None:
        """One round: follow, check orders, and when due the sources and the safety net
        (`start()` first, once). A chain or store failure is kept in `last_error`."""
        try:
            if not self._started:
                await self.start()
            await self.follow_once()
            await self.check_orders()
            now = self.clock.now()
            if self._last_net is None or now - self._last_net >= self.settings.interval:
                self._last_net = now
                await self.poll_sources()
                await self.safety_net()
            self.last_error = None
        except (ChainError, StoreError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("deposit round failed", extra={"error": self.last_error})

    async def run(self, stopping: Callable[[], bool]) -> None:
        """Rounds every `follow_interval` until `stopping()`."""
        while not stopping():
            await self.round()
            await self.clock.sleep(self.settings.follow_interval)

    async def settle(self) -> None:
        """Wait for the background work (webhook deliveries) started so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.webhooks is not None:
            await self.webhooks.aclose()

    # ------------------------------------------------------------------ requests

    def policy_of(self, address: str) -> str | None:
        return self.watch.policy_of(address)

    async def ensure(self, address: str, wait: float) -> dict[str, Any]:
        """The sweeper asks for its energy now: the address's episode (opened if there is
        none), acted on, and awaited up to `wait` seconds for `ready`."""
        policy = self.policy_of(address)
        if policy is None:
            raise UnknownDepositAddress(f"{address} is not a deposit address of any policy")
        need = await self._episode(address)
        if need is None or not need.is_open:
            need, _ = await self.store.record_deposit(
                policy=policy,
                address=address,
                token=self.policies[policy].spec.tokens[0],
                txid="ensure",
                block=0,
                amount=0,
            )
        await self.act([need])
        deadline = self.clock.now() + wait
        while True:
            now_need = await self._episode(address) or need
            if now_need.state is not NeedState.OPEN and now_need.state is not NeedState.ORDERED:
                break
            if self.clock.now() >= deadline:
                break
            await self.check_orders()
            await self.clock.sleep(0.5)
        return await self.view(address)

    async def _episode(self, address: str) -> DepositNeed | None:
        found = await self.store.deposit_needs(open_only=False, addresses=[address], limit=1)
        return found[0] if found else None

    async def view(self, address: str) -> dict[str, Any]:
        """`GET /v1/addresses/{address}`: its episode, that episode's order, its energy."""
        policy = self.policy_of(address)
        need = await self._episode(address)
        order = None
        if need is not None and need.client_order_id:
            with contextlib.suppress(StoreError):
                order = (await self.store.get_order(need.client_order_id)).model_dump(mode="json")
        chain: dict[str, Any] | None
        try:
            snap = await self.reader.snapshot(address)
            chain = {
                "activated": snap.activated,
                "available": snap.available,
                "limit": snap.limit,
                "block": snap.block,
            }
        except ChainError as exc:
            chain = {"error": str(exc)}
        return {
            "address": address,
            "policy": policy,
            "watched": policy is not None,
            "episode": need.to_json() if need is not None else None,
            "energyReady": need is not None and need.state is NeedState.READY,
            "order": order,
            "chain": chain,
        }

    def status(self) -> dict[str, Any]:
        return {
            name: {
                "addresses": self.watch.count(name),
                "source": self.sources[name].state.to_json() if name in self.sources else None,
                "addedAtRunTime": len(self.watch.added[name]),
                "removedAtRunTime": len(self.watch.removed[name]),
            }
            for name in self.policies
        }


def make_sources(policy_set: PolicySet, clock: Clock) -> dict[str, FileSource | PostgresSource]:
    """The address source of each deposit policy that has one (a file is taken as read at
    load time, so a million lines are not read twice)."""
    sources: dict[str, FileSource | PostgresSource] = {}
    for name, policy in policy_set.deposit_policies.items():
        origin = policy.spec.addresses_from
        if origin is None:
            continue
        if origin.file is not None:
            policy_file = policy_set.source(policy).raw.file
            path = address_file_path(policy_file, origin.file)
            sources[name] = FileSource(path, clock, policy_set.address_files.get(name))
        elif origin.postgres is not None:
            ref = origin.postgres.password
            secret = ref.get() if ref is not None and ref.resolved else None
            sources[name] = PostgresSource(origin.postgres, clock, password=secret)
    return sources


__all__ = [
    "DepositDesk",
    "DepositReader",
    "DepositSettings",
    "UnknownDepositAddress",
    "deposit_budgets",
    "make_sources",
]
