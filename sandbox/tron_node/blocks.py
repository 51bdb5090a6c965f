"""Blocks and transactions of the emulated chain: a block every 3 s slot, most of them empty.

Only non-empty blocks are stored; an empty block's header is synthesised on demand from
its number, so a stepped clock can jump a day (28,800 blocks) at no cost. `blockID` keeps
java-tron's layout: the big-endian block number in its first 8 bytes, a hash after.
Neighbours: `state.py` appends transactions; `wire.py` prints blocks and receipts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sandbox.tron_node.model import BLOCK_INTERVAL_MS

WITNESS_COUNT = 27
WITNESSES = [
    "41" + hashlib.sha256(f"energyctl-sandbox-witness-{i}".encode()).hexdigest()[:40]
    for i in range(WITNESS_COUNT)
]
EMPTY_ROOT = "00" * 32
BLOCK_VERSION = 32


@dataclass(frozen=True)
class Receipt:
    """`ResourceReceipt` of one transaction (zero fields are omitted when printed)."""

    energy_usage: int = 0
    energy_fee: int = 0
    energy_usage_total: int = 0
    net_usage: int = 0
    net_fee: int = 0
    result: str = ""  # contract result, "" for non-contract transactions (enum 0, omitted)


@dataclass(frozen=True)
class Transaction:
    """One transaction as it sits in a block, with its receipt."""

    txid: str
    block_number: int
    timestamp_ms: int
    contract_type: str  # e.g. "TriggerSmartContract", "DelegateResourceContract"
    value: dict[str, Any]  # the contract's parameter value; addresses in hex
    ret: str  # contractRet: "SUCCESS" or e.g. "OUT_OF_ENERGY"
    receipt: Receipt
    ref_block_bytes: str
    ref_block_hash: str
    raw_data_hex: str
    fee_limit: int = 0
    contract_address: str = ""  # hex; set for contract calls

    @property
    def fee(self) -> int:
        """`TransactionInfo.fee`: total sun burned."""
        return self.receipt.energy_fee + self.receipt.net_fee


def make_raw(
    contract_type: str, value: dict[str, Any], timestamp_ms: int, ref: tuple[str, str], nonce: int
) -> tuple[str, str]:
    """A deterministic stand-in for the serialised `raw_data` and its txID = sha256(raw).

    The bytes are canonical JSON, not protobuf: clients never decode `raw_data_hex`, and
    `txID == sha256(bytes.fromhex(raw_data_hex))` holds as on the real chain.
    """
    raw = json.dumps(
        [contract_type, value, timestamp_ms, ref[0], ref[1], nonce],
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return raw.hex(), hashlib.sha256(raw).hexdigest()


@dataclass
class BlockLog:
    """Block numbering and the non-empty blocks of one chain.

    Block `n` has timestamp `genesis_ms + (n - genesis_number) * 3000`.
    """

    genesis_ms: int
    genesis_number: int = 0
    _blocks: dict[int, list[Transaction]] = field(default_factory=dict)
    _txs: dict[str, Transaction] = field(default_factory=dict)

    def number_at(self, now_ms: int) -> int:
        """The number of the last block whose timestamp is <= `now_ms`."""
        return self.genesis_number + max(0, now_ms - self.genesis_ms) // BLOCK_INTERVAL_MS

    def timestamp(self, number: int) -> int:
        return self.genesis_ms + (number - self.genesis_number) * BLOCK_INTERVAL_MS

    def transactions(self, number: int) -> list[Transaction]:
        return self._blocks.get(number, [])

    def transaction(self, txid: str) -> Transaction | None:
        return self._txs.get(txid)

    def add(self, tx: Transaction) -> None:
        self._blocks.setdefault(tx.block_number, []).append(tx)
        self._txs[tx.txid] = tx

    def tx_root(self, number: int) -> str:
        txs = self._blocks.get(number)
        if not txs:
            return EMPTY_ROOT
        return hashlib.sha256("".join(t.txid for t in txs).encode()).hexdigest()

    def block_id(self, number: int) -> str:
        """sha256 of the header with its first 8 bytes replaced by the block number."""
        digest = hashlib.sha256(
            f"{number}|{self.timestamp(number)}|{self.tx_root(number)}".encode()
        ).hexdigest()
        return f"{number:016x}{digest[16:]}"

    def header(self, number: int) -> dict[str, Any]:
        """`block_header` as java-tron prints it (hex addresses; the caller converts)."""
        raw: dict[str, Any] = {
            "number": number,
            "txTrieRoot": self.tx_root(number),
            "witness_address": WITNESSES[number % WITNESS_COUNT],
            "parentHash": self.block_id(number - 1) if number > 0 else EMPTY_ROOT,
            "version": BLOCK_VERSION,
            "timestamp": self.timestamp(number),
        }
        if number == 0:
            del raw["number"]  # zero is omitted
        signature = hashlib.sha256(f"sig|{number}".encode()).hexdigest()
        return {"raw_data": raw, "witness_signature": signature * 2 + "00"}

    def ref_for(self, head: int) -> tuple[str, str]:
        """TAPoS reference of a transaction built on `head`: ref_block_bytes/hash."""
        block_id = self.block_id(head)
        return f"{head & 0xFFFF:04x}", block_id[16:32]
