"""Block following: which watched addresses a new block touched, so only those are re-read.

Energy only falls through transactions in blocks: an owner's contract
call spends from its pool, an undelegation takes stake from its receiver, a delegation or
an unstake takes stake from its owner. For each new block the follower reads the block and
its transaction infos (two calls, whatever the number of watched addresses), joins receipts
to transactions on txID, and reports the watched addresses involved (`/wallet/getblockbynum`
and `/wallet/gettransactioninfobyblocknum`, https://developers.tron.network/reference).

`analyse_block` is the pure part (pinned JSON in, `BlockReport` out; its per-transaction
work is a few dict and set lookups, never anything per watched address). `BlockFollower`
does the I/O through `engine/observe/chain.py`'s `ChainReader`: it reads every block since the last
one it saw (a bounded number per poll), and when a block's parent is not the block it saw
at that height (a reorganisation of the head) it drops what it saw after the last solid
block and reads again from there. Neighbours: `engine/observe/chain.py` (reads), the controller
(calls `poll()` on each wake-up and re-reads `FollowUpdate.addresses`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tronpy.keys import to_base58check_address

from engine.observe.chain import ChainReader, ChainTemporaryError

Watched = Container[str] | Callable[[], Container[str]]

# contract types that move energy stake (java-tron's DelegateResourceActuator and
# UnDelegateResourceActuator, https://github.com/tronprotocol/java-tron)
_DELEGATE = "DelegateResourceContract"
_UNDELEGATE = "UnDelegateResourceContract"
_UNSTAKE = frozenset({"UnfreezeBalanceV2Contract", "UnfreezeBalanceContract"})
_CALLS = frozenset({"TriggerSmartContract", "CreateSmartContract"})


@dataclass(frozen=True, slots=True)
class BlockReport:
    """The watched addresses one block touched (base58), and the block's identity.

    spent: owners whose transaction used energy from their pool or burned TRX for it.
    undelegated_from: receivers of an energy undelegation (their limit fell).
    delegated_to: receivers of an energy delegation (their limit rose).
    stake_reduced: owners who delegated energy stake out or unstaked it (their limit fell).
    burned: (owner, sun) for each transaction of a watched owner that burned TRX for
        energy it lacked (its receipt's `energy_fee`).
    """

    number: int
    block_id: str
    parent_hash: str
    spent: frozenset[str] = frozenset()
    undelegated_from: frozenset[str] = frozenset()
    delegated_to: frozenset[str] = frozenset()
    stake_reduced: frozenset[str] = frozenset()
    burned: tuple[tuple[str, int], ...] = ()

    @property
    def energy_fell(self) -> frozenset[str]:
        return self.spent | self.undelegated_from | self.stake_reduced

    @property
    def touched(self) -> frozenset[str]:
        return self.energy_fell | self.delegated_to


@functools.lru_cache(maxsize=1 << 18)
def _from_hex(address: str) -> str:
    try:
        return str(to_base58check_address(address))
    except (ValueError, TypeError, IndexError):
        return ""  # never watched


def _base58(address: str) -> str:
    """Addresses arrive in base58 (visible) or `41...` hex (getnowblock ignores `visible`)."""
    if len(address) == 34 and address[0] == "T":
        return address
    return _from_hex(address)


def analyse_block(  # noqa: C901
    block: Mapping[str, Any], infos: Iterable[Mapping[str, Any]], watched: Container[str]
) -> BlockReport:
    """Pure: the block JSON and its transaction infos -> the watched addresses it touched.

    Raises ValueError when the two do not belong together (a receipt for a transaction not
    in the block: they were read from two different forks) or the JSON is malformed.
    """
    try:
        header = block["block_header"]["raw_data"]
        number = int(header.get("number", 0))
        owners: dict[str, str] = {}
        delegated_to: set[str] = set()
        undelegated_from: set[str] = set()
        stake_reduced: set[str] = set()
        calls: list[str] = []
        for tx in block.get("transactions", ()):
            contract = tx["raw_data"]["contract"][0]
            value = contract["parameter"]["value"]
            owner = _base58(value.get("owner_address", ""))
            owners[tx["txID"]] = owner
            kind = contract.get("type")
            if kind in _CALLS:
                calls.append(tx["txID"])
                continue
            if kind not in _UNSTAKE and kind != _DELEGATE and kind != _UNDELEGATE:
                continue
            ret: Any = tx.get("ret") or ({},)
            if ret[0].get("contractRet", "SUCCESS") != "SUCCESS":
                continue
            # an absent `resource` is BANDWIDTH (java-tron omits an enum equal to its first value)
            if value.get("resource") != "ENERGY":
                continue
            if kind == _UNDELEGATE:
                receiver = _base58(value.get("receiver_address", ""))
                if receiver in watched:
                    undelegated_from.add(receiver)
            elif kind == _DELEGATE:
                receiver = _base58(value.get("receiver_address", ""))
                if receiver in watched:
                    delegated_to.add(receiver)
                if owner in watched:
                    stake_reduced.add(owner)
            elif owner in watched:
                stake_reduced.add(owner)
        spent, burned, receipted = _receipts(number, infos, owners, watched)
        for txid in calls:  # no receipt (yet): assume the call spent, a re-read is cheap
            if txid not in receipted and owners[txid] in watched:
                spent.add(owners[txid])
        return BlockReport(
            number=number,
            block_id=str(block.get("blockID", "")),
            parent_hash=str(header.get("parentHash", "")),
            spent=frozenset(spent),
            undelegated_from=frozenset(undelegated_from),
            delegated_to=frozenset(delegated_to),
            stake_reduced=frozenset(stake_reduced),
            burned=tuple(burned),
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed block or receipts: {type(exc).__name__}: {exc}") from exc


def _receipts(
    number: int,
    infos: Iterable[Mapping[str, Any]],
    owners: Mapping[str, str],
    watched: Container[str],
) -> tuple[set[str], list[tuple[str, int]], set[str]]:
    """From a block's transaction infos: the watched payers that used energy or burned TRX
    for it, (payer, sun) per burning transaction, and the txids that have a receipt."""
    spent: set[str] = set()
    burned: list[tuple[str, int]] = []
    receipted: set[str] = set()
    for info in infos:
        txid = info.get("id", "")
        payer = owners.get(txid)
        if payer is None:
            raise ValueError(f"block {number}: receipt {txid!r} for a transaction not in it")
        receipted.add(txid)
        receipt = info.get("receipt") or {}
        fee = int(receipt.get("energy_fee", 0))
        if (receipt.get("energy_usage", 0) > 0 or fee > 0) and payer in watched:
            spent.add(payer)
            if fee > 0:
                burned.append((payer, fee))
    return spent, burned, receipted


@dataclass(frozen=True, slots=True)
class FollowUpdate:
    """What one `poll()` learned.

    reports: one per block read, in order (after a reorganisation, some heights again).
    rewound_to: set when the head was reorganised: what was seen after this block was
        dropped and read again. orphaned: watched addresses touched by the dropped blocks.
    skipped: (first, last) heights not read because the follower fell too far behind; the
        engine must then re-read every watched address.
    """

    head: int
    reports: tuple[BlockReport, ...] = ()
    rewound_to: int | None = None
    orphaned: frozenset[str] = frozenset()
    skipped: tuple[int, int] | None = None

    @property
    def addresses(self) -> frozenset[str]:
        """Watched addresses to re-read (the whole watch list too when `skipped`)."""
        touched: set[str] = set(self.orphaned)
        for report in self.reports:
            touched |= report.touched
        return frozenset(touched)


class BlockFollower:
    """Reads new blocks through `reader` and reports the watched addresses they touched.

    `watched` is a set of base58 addresses or a callable returning the current one (read
    once per poll). `start` is the first height to read (default: the head at the first
    poll). At most `max_blocks` blocks are read per poll; behind by more than `max_lag`, the
    follower jumps to the head and reports the skipped heights.
    """

    def __init__(
        self,
        reader: ChainReader,
        watched: Watched,
        *,
        start: int | None = None,
        max_blocks: int = 100,
        max_lag: int = 1200,
        keep: int = 256,
    ) -> None:
        self._reader = reader
        self._watched = watched
        self._next = start
        self._max_blocks = max_blocks
        self._max_lag = max_lag
        self._keep = keep
        self._seen: dict[int, tuple[str, frozenset[str]]] = {}  # height -> (id, touched)

    @property
    def next_height(self) -> int | None:
        return self._next

    def _watch_list(self) -> Container[str]:
        w = self._watched
        return w() if callable(w) else w

    def _rewind(self, to: int) -> frozenset[str]:
        """Forget every seen block above `to`; the addresses they touched."""
        dropped: set[str] = set()
        for height in [h for h in self._seen if h > to]:
            dropped |= self._seen.pop(height)[1]
        self._next = to + 1
        return frozenset(dropped)

    async def poll(self) -> FollowUpdate:
        """Read the blocks since the last poll.

        Raises ChainTemporaryError if the node fails before anything was learned; after
        that, returns what was learned and the next poll carries on.
        """
        reader, watched = self._reader, self._watch_list()
        heads = await reader.heads()
        if self._next is None:
            self._next = heads.number
        learned = _Progress()
        seen_head = self._seen.get(heads.number)
        if heads.number < self._next - 1 or (seen_head and seen_head[0] != heads.block_id):
            learned.rewind(self, min(heads.solid, heads.number - 1))
        if heads.number - self._next + 1 > self._max_lag:
            learned.skipped = (self._next, heads.number - 1)
            self._next = heads.number
        try:
            await self._read_blocks(heads.number, watched, learned)
        except ChainTemporaryError:
            if not (learned.reports or learned.rewound_to is not None or learned.skipped):
                raise
        return FollowUpdate(
            head=heads.number,
            reports=tuple(learned.reports),
            rewound_to=learned.rewound_to,
            orphaned=frozenset(a for a in learned.orphaned if a in watched),
            skipped=learned.skipped,
        )

    async def _read_blocks(self, head: int, watched: Container[str], learned: _Progress) -> None:
        """Read blocks up to `head` into `learned`, rewinding on a parent mismatch."""
        reader = self._reader
        budget, rewinds = self._max_blocks, 0
        while self._next is not None and self._next <= head and budget > 0:
            budget -= 1
            height = self._next
            block = await reader.block(height)
            if block is None:  # not served yet (another node behind a balancer)
                break
            infos = await reader.block_infos(height)
            try:
                report = analyse_block(block, infos, watched)
            except ValueError as exc:
                raise ChainTemporaryError(f"node {reader.node}: {exc}") from exc
            parent = self._seen.get(height - 1)
            if parent is not None and parent[0] != report.parent_hash:
                rewinds += 1
                if rewinds > 2:
                    raise ChainTemporaryError(
                        f"node {reader.node}: chain still reorganising at block {height}"
                    )
                learned.rewind(self, min((await reader.heads()).solid, height - 2))
                continue
            self._seen[height] = (report.block_id, report.touched)
            while len(self._seen) > self._keep:  # insertion order is height order
                del self._seen[next(iter(self._seen))]
            self._next = height + 1
            learned.reports.append(report)


@dataclass
class _Progress:
    """What one poll has learned so far (kept when a later read fails)."""

    reports: list[BlockReport] = field(default_factory=list)
    rewound_to: int | None = None
    orphaned: set[str] = field(default_factory=set)
    skipped: tuple[int, int] | None = None

    def rewind(self, follower: BlockFollower, to: int) -> None:
        self.rewound_to = to
        self.orphaned |= follower._rewind(to)
