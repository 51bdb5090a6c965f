"""Block following: the pure analysis on block JSON in the node's shapes, then the follower
against a stub chain (httpx.MockTransport) with gaps and reorganisations of the head."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tronpy.keys import to_base58check_address, to_hex_address

from engine.core.clock import VirtualClock
from engine.observe.chain import ChainReader, ChainTemporaryError
from engine.observe.following import BlockFollower, analyse_block

USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


def addr(i: int) -> str:
    return str(to_base58check_address(b"\x41" + i.to_bytes(20, "big")))


def txid(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def tx(kind: str, value: dict[str, Any], seed: str, ret: str | None = "SUCCESS") -> dict[str, Any]:
    """A transaction as getblockbynum prints it (reference/tron.md §2.4)."""
    out: dict[str, Any] = {
        "txID": txid(seed),
        "raw_data": {
            "contract": [
                {
                    "parameter": {
                        "value": value,
                        "type_url": f"type.googleapis.com/protocol.{kind}",
                    },
                    "type": kind,
                }
            ],
            "ref_block_bytes": "1c8b",
            "expiration": 1_777_437_813_000,
            "timestamp": 1_777_437_756_016,
        },
        "raw_data_hex": "0a02",
        "signature": ["00"],
    }
    if ret is not None:
        out["ret"] = [{"contractRet": ret}]
    return out


def info(t: dict[str, Any], number: int, **receipt: int) -> dict[str, Any]:
    """Its transaction info (§2.11): zero fields omitted."""
    return {
        "id": t["txID"],
        "blockNumber": number,
        "receipt": {k: v for k, v in receipt.items() if v} | {"result": "SUCCESS"},
    }


def usdt_call(owner: str, seed: str) -> dict[str, Any]:
    return tx(
        "TriggerSmartContract",
        {"owner_address": owner, "contract_address": USDT, "data": "a9059cbb00"},
        seed,
    )


def delegation(kind: str, owner: str, receiver: str, resource: str | None, seed: str) -> Any:
    value = {"owner_address": owner, "receiver_address": receiver, "balance": 10**9}
    if resource is not None:
        value["resource"] = resource
    return tx(kind, value, seed)


def block_json(number: int, parent: str, txs: list[dict[str, Any]], fork: str = "") -> Any:
    block_id = f"{number:016x}" + hashlib.sha256(f"{number}{fork}".encode()).hexdigest()[16:]
    out: dict[str, Any] = {
        "blockID": block_id,
        "block_header": {
            "raw_data": {"number": number, "parentHash": parent, "timestamp": 3000 * number},
            "witness_signature": "55",
        },
    }
    if txs:
        out["transactions"] = txs
    return out


# --------------------------------------------------------------------------- analysis


@dataclass
class Mixed:
    """A random block of every kind of transaction, and what it must report."""

    watched: set[str]
    txs: list[dict[str, Any]] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    spent: set[str] = field(default_factory=set)
    undelegated_from: set[str] = field(default_factory=set)
    delegated_to: set[str] = field(default_factory=set)
    stake_reduced: set[str] = field(default_factory=set)
    burned: list[tuple[str, int]] = field(default_factory=list)


def mixed_block(rng: random.Random, number: int, n_txs: int, n_watched: int) -> Mixed:
    population = [addr(i) for i in range(1, 2 * n_watched)]
    watched = set(rng.sample(population, n_watched))
    m = Mixed(watched)
    for i in range(n_txs):
        seed = f"{number}:{i}"
        owner, other = rng.choice(population), rng.choice(population)
        shown_owner = str(to_hex_address(owner)) if rng.random() < 0.2 else owner  # hex form
        kind = rng.randrange(9)
        if kind <= 2:  # a USDT transfer: from the pool, burned, or both
            t = usdt_call(shown_owner, seed)
            pool = rng.choice([0, 64_285, 30_000])
            fee = 0 if pool == 64_285 else (64_285 - pool) * 100
            m.infos.append(info(t, number, energy_usage=pool, energy_fee=fee, net_usage=345))
            if owner in watched:
                m.spent.add(owner)
                if fee:
                    m.burned.append((owner, fee))
        elif kind == 3:  # a reverted call still spent its energy
            t = tx("TriggerSmartContract", {"owner_address": shown_owner}, seed, ret="REVERT")
            m.infos.append(info(t, number, energy_usage=1_000))
            if owner in watched:
                m.spent.add(owner)
        elif kind == 4:  # TRX transfer: bandwidth only
            t = tx("TransferContract", {"owner_address": shown_owner, "to_address": other}, seed)
            m.infos.append(info(t, number, net_usage=268))
        elif kind == 5:
            resource = rng.choice(["ENERGY", None])
            t = delegation("DelegateResourceContract", shown_owner, other, resource, seed)
            m.infos.append(info(t, number, net_usage=280))
            if resource == "ENERGY":
                m.delegated_to |= {other} & watched
                m.stake_reduced |= {owner} & watched
        elif kind == 6:
            resource = rng.choice(["ENERGY", None])
            t = delegation("UnDelegateResourceContract", owner, other, resource, seed)
            m.infos.append(info(t, number, net_usage=280))
            if resource == "ENERGY":
                m.undelegated_from |= {other} & watched
        elif kind == 7:
            value = {"owner_address": owner, "unfreeze_balance": 10**6, "resource": "ENERGY"}
            t = tx("UnfreezeBalanceV2Contract", value, seed)
            m.infos.append(info(t, number, net_usage=280))
            m.stake_reduced |= {owner} & watched
        else:  # staking adds energy: nothing fell
            value = {"owner_address": owner, "frozen_balance": 10**6, "resource": "ENERGY"}
            t = tx("FreezeBalanceV2Contract", value, seed)
            m.infos.append(info(t, number, net_usage=280))
        m.txs.append(t)
    rng.shuffle(m.infos)
    return m


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_analysis_reports_exactly_the_watched_addresses(seed: int) -> None:
    rng = random.Random(seed)
    m = mixed_block(rng, 70_000_000 + seed, n_txs=900, n_watched=4000)
    block = block_json(70_000_000 + seed, "00" * 32, m.txs)
    report = analyse_block(block, m.infos, m.watched)
    assert report.number == 70_000_000 + seed
    assert report.block_id == block["blockID"]
    assert report.parent_hash == "00" * 32
    assert report.spent == m.spent
    assert report.undelegated_from == m.undelegated_from
    assert report.delegated_to == m.delegated_to
    assert report.stake_reduced == m.stake_reduced
    assert sorted(report.burned) == sorted(m.burned) and m.burned
    assert report.energy_fell == m.spent | m.undelegated_from | m.stake_reduced
    assert m.spent and m.undelegated_from and m.delegated_to and m.stake_reduced
    assert report.touched <= m.watched


def test_unwatched_activity_reports_nothing() -> None:
    m = mixed_block(random.Random(9), 5, n_txs=300, n_watched=2000)
    report = analyse_block(block_json(5, "00" * 32, m.txs), m.infos, set())
    assert report.touched == frozenset()


def test_empty_block() -> None:
    report = analyse_block(block_json(7, "ab" * 32, []), [], {addr(1)})
    assert (report.number, report.touched) == (7, frozenset())


def test_failed_undelegation_took_nothing() -> None:
    t = delegation("UnDelegateResourceContract", addr(1), addr(2), "ENERGY", "x")
    t["ret"] = [{"contractRet": "REVERT"}]
    report = analyse_block(block_json(3, "00" * 32, [t]), [info(t, 3)], {addr(1), addr(2)})
    assert report.undelegated_from == frozenset()


def test_call_without_receipt_is_assumed_to_have_spent() -> None:
    t = usdt_call(addr(1), "a")
    report = analyse_block(block_json(3, "00" * 32, [t]), [], {addr(1)})
    assert report.spent == {addr(1)}


def test_receipt_from_another_fork_is_refused() -> None:
    t, stranger = usdt_call(addr(1), "a"), usdt_call(addr(1), "b")
    with pytest.raises(ValueError, match="not in it"):
        analyse_block(block_json(3, "00" * 32, [t]), [info(stranger, 3)], {addr(1)})


def test_malformed_block_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        analyse_block({"blockID": "00"}, [], {addr(1)})


# --------------------------------------------------------------------------- following


class StubChain:
    """A node serving a list of blocks; `reorg()` replaces the newest ones with a fork."""

    def __init__(self, solid_lag: int = 4) -> None:
        self.blocks: list[dict[str, Any]] = []
        self.infos: list[list[dict[str, Any]]] = []
        self.solid_lag = solid_lag
        self.reads: list[int] = []
        self.broken: set[int] = set()  # heights whose block read answers HTTP 503
        self.extend(1)

    def extend(self, count: int, spenders: Iterator[str] | None = None, fork: str = "") -> None:
        for _ in range(count):
            number = len(self.blocks)
            parent = self.blocks[-1]["blockID"] if self.blocks else "00" * 32
            txs = [usdt_call(next(spenders), f"{fork}{number}")] if spenders else []
            self.blocks.append(block_json(number, parent, txs, fork))
            self.infos.append([info(t, number, energy_usage=64_285) for t in txs])

    def reorg(self, depth: int, count: int, spenders: Iterator[str], fork: str) -> None:
        del self.blocks[-depth:], self.infos[-depth:]
        self.extend(count, spenders, fork)

    @property
    def head(self) -> int:
        return len(self.blocks) - 1

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        path = request.url.path
        if path == "/wallet/getnodeinfo":
            head = self.blocks[-1]
            solid = max(0, self.head - self.solid_lag)
            answer: Any = {
                "block": f"Num:{self.head},ID:{head['blockID']}",
                "solidityBlock": f"Num:{solid},ID:{self.blocks[solid]['blockID']}",
            }
        elif path == "/wallet/getblockbynum":
            self.reads.append(body["num"])
            if body["num"] in self.broken:
                return httpx.Response(503, text="busy")
            answer = self.blocks[body["num"]] if body["num"] <= self.head else {}
        elif path == "/wallet/gettransactioninfobyblocknum":
            answer = self.infos[body["num"]] if body["num"] <= self.head else []
        else:
            return httpx.Response(404)
        return httpx.Response(200, json=answer)

    def reader(self) -> ChainReader:
        return ChainReader(
            "http://node.test",
            api_key=None,
            clock=VirtualClock(),
            transport=httpx.MockTransport(self.handle),
        )


def spenders(*indices: int) -> Iterator[str]:
    return iter([addr(i) for i in indices])


async def test_follows_block_by_block_and_reads_every_block_of_a_gap() -> None:
    chain = StubChain()
    watched = {addr(i) for i in range(1, 100)}
    async with chain.reader() as reader:
        follower = BlockFollower(reader, watched)
        first = await follower.poll()
        assert [r.number for r in first.reports] == [0]
        assert (await follower.poll()).reports == ()
        chain.extend(1, spenders(5))
        update = await follower.poll()
        assert [r.number for r in update.reports] == [1]
        assert update.addresses == {addr(5)}
        chain.extend(5, spenders(6, 200, 7, 8, 9))  # the head jumped five blocks
        update = await follower.poll()
    assert [r.number for r in update.reports] == [2, 3, 4, 5, 6]
    assert update.addresses == {addr(6), addr(7), addr(8), addr(9)}
    assert (update.rewound_to, update.skipped, update.orphaned) == (None, None, frozenset())
    assert chain.reads == [0, 1, 2, 3, 4, 5, 6]


async def test_reads_are_bounded_per_poll_and_a_long_lag_is_skipped() -> None:
    chain = StubChain()
    async with chain.reader() as reader:
        follower = BlockFollower(reader, {addr(1)}, start=0, max_blocks=3, max_lag=10)
        chain.extend(4)
        assert [r.number for r in (await follower.poll()).reports] == [0, 1, 2]
        assert [r.number for r in (await follower.poll()).reports] == [3, 4]
        chain.extend(20)
        update = await follower.poll()
    assert update.skipped == (5, 23)
    assert [r.number for r in update.reports] == [24]


async def test_reorganised_head_is_read_again_from_the_solid_block() -> None:
    chain = StubChain(solid_lag=4)
    async with chain.reader() as reader:
        follower = BlockFollower(reader, lambda: {addr(i) for i in range(1, 50)})
        await follower.poll()
        chain.extend(10, spenders(*range(1, 11)))
        await follower.poll()  # saw 1..10; solid is now 6
        chain.reorg(depth=2, count=3, spenders=spenders(20, 21, 22), fork="b")
        update = await follower.poll()
    # blocks 9 and 10 were replaced by 9', 10', 11': the new 11's parent is not the 10 we
    # saw, so everything above the solid block (7) is dropped and read again
    assert update.rewound_to == 7
    assert [r.number for r in update.reports] == [8, 9, 10, 11]
    assert update.orphaned == {addr(8), addr(9), addr(10)}
    assert update.addresses == {addr(8), addr(20), addr(21), addr(22), addr(9), addr(10)}


async def test_reorg_at_the_same_height_is_seen_from_the_head_id() -> None:
    chain = StubChain(solid_lag=2)
    async with chain.reader() as reader:
        follower = BlockFollower(reader, {addr(i) for i in range(1, 50)})
        await follower.poll()
        chain.extend(5, spenders(1, 2, 3, 4, 5))
        await follower.poll()
        chain.reorg(depth=1, count=1, spenders=spenders(30), fork="c")
        update = await follower.poll()
    assert update.rewound_to == 3
    assert [r.number for r in update.reports] == [4, 5]
    assert update.orphaned == {addr(4), addr(5)}
    assert update.reports[-1].spent == {addr(30)}


async def test_receipts_of_another_fork_are_a_temporary_error() -> None:
    chain = StubChain()
    chain.extend(1, spenders(1))
    chain.infos[1] = [info(usdt_call(addr(1), "elsewhere"), 1, energy_usage=5)]
    async with chain.reader() as reader:
        follower = BlockFollower(reader, {addr(1)}, start=1)
        with pytest.raises(ChainTemporaryError, match="not in it"):
            await follower.poll()
        assert follower.next_height == 1  # nothing consumed: the next poll retries it


async def test_a_failed_read_keeps_what_the_poll_learned_before_it() -> None:
    chain = StubChain()
    async with chain.reader() as reader:
        follower = BlockFollower(reader, {addr(i) for i in range(1, 9)}, start=1)
        chain.extend(4, spenders(1, 2, 3, 4))
        chain.broken = {3}
        first = await follower.poll()  # blocks 1 and 2, then the node fails
        assert [r.number for r in first.reports] == [1, 2]
        assert first.addresses == {addr(1), addr(2)}
        with pytest.raises(ChainTemporaryError, match="HTTP 503"):
            await follower.poll()  # nothing learned before the failure: raised
        chain.broken = set()
        second = await follower.poll()
    assert [r.number for r in second.reports] == [3, 4]
    assert second.addresses == {addr(3), addr(4)}


async def test_a_skip_is_reported_even_when_the_next_read_fails() -> None:
    chain = StubChain()
    async with chain.reader() as reader:
        follower = BlockFollower(reader, {addr(1)}, start=0, max_lag=5)
        chain.extend(10)
        chain.broken = {10}
        update = await follower.poll()
    assert update.skipped == (0, 9)
    assert update.reports == ()
