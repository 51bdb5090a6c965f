"""Seeing deposits in the block they land in: TRC-20 `Transfer` events against watched sets.

A TRC-20 transfer emits `Transfer(address indexed from, address indexed to, uint256
value)`: in a transaction info's `log`, `topics[0]` is keccak-256 of that signature
(`ddf252ad...`), `topics[1]` and `topics[2]` the sender and receiver (32 bytes, the
20-byte address right-aligned), `data` the amount, and `address` the token contract's
20 bytes (https://eips.ethereum.org/EIPS/eip-20, https://developers.tron.network/docs/event).

`scan_transfers` is PURE and costs per log, never per watched address: each log's topic
and token are compared, then its receiver's and sender's 20 bytes are looked up in each
policy's `AddressSet` (a hash lookup). A transfer TO a watched address is a deposit; one
FROM a watched address (of a watched token) is a sweep, which closes the episode. Each
carries its log's place in the block (`index`), so a sweep in the same block as the
deposit it swept is told from one that came before it.

`DepositWatch` holds the live sets: per deposit policy, the union of its inline addresses,
its address source (file or PostgreSQL, `engine/observe/address_sources.py`) and the
run-time additions and removals kept in the store.

Neighbours: `engine/observe/following.py` (hands each accepted block's infos here),
`engine/sidecar/depositing.py` (acts on what is found).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.addresses import AddressSet, decode_base58check, encode_base58check
from policies.deposits import DepositPolicy

TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
"""keccak-256("Transfer(address,address,uint256)"), as TRON nodes print it (no 0x)."""


@dataclass(frozen=True, slots=True)
class TokenTransfer:
    """One watched token transfer touching a watched address of `policy`."""

    policy: str
    address: str  # the watched address (base58): receiver of a deposit, sender of a sweep
    token: str  # base58
    counterpart: str  # base58: the sender of a deposit, the receiver of a sweep
    amount: int
    txid: str
    block: int
    index: int = 0  # the log's place in its block (transactions in order, then logs)
    log: int = 0  # the log's place in its transaction: (txid, log) names the transfer


@dataclass(frozen=True, slots=True)
class BlockTransfers:
    number: int
    deposits: tuple[TokenTransfer, ...] = ()
    sweeps: tuple[TokenTransfer, ...] = ()

    def in_order(self) -> list[tuple[bool, TokenTransfer]]:
        """Deposits and sweeps as they happened in the block: (is_deposit, transfer).
        A sweep after a deposit to the same address in one block swept that deposit."""
        both = [(True, d) for d in self.deposits] + [(False, s) for s in self.sweeps]
        return sorted(both, key=lambda item: (item[1].index, not item[0]))


@dataclass(slots=True)
class WatchedPolicy:
    """One deposit policy's watched set and the tokens it watches (20-byte bodies)."""

    name: str
    addresses: AddressSet
    tokens: frozenset[bytes]
    min_deposit: int


def watched_policy(policy: DepositPolicy, addresses: AddressSet) -> WatchedPolicy:
    tokens = frozenset(b for b in (decode_base58check(t) for t in policy.spec.tokens) if b)
    return WatchedPolicy(policy.metadata.name, addresses, tokens, policy.spec.min_deposit)


def _body(topic: str) -> bytes | None:
    if len(topic) != 64:
        return None
    try:
        return bytes.fromhex(topic[24:])
    except ValueError:
        return None


def scan_transfers(
    number: int, infos: Iterable[Mapping[str, Any]], watched: Sequence[WatchedPolicy]
) -> BlockTransfers:
    """Pure: the deposits to and sweeps from watched addresses in one block's infos.

    A deposit below its policy's `minDeposit` is not reported; a failed transaction has no
    logs (the node prints none), so it is never a deposit. Malformed logs are skipped."""
    deposits: list[TokenTransfer] = []
    sweeps: list[TokenTransfer] = []
    all_tokens: frozenset[bytes] = frozenset().union(*(w.tokens for w in watched))
    index = -1
    for info in infos:
        logs = info.get("log")
        if not logs:
            continue
        txid = str(info.get("id", ""))
        for log_no, entry in enumerate(logs):
            index += 1
            topics: Sequence[str] = entry.get("topics") or ()
            if len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
                continue
            token = _token_body(entry.get("address", ""))
            if token is None or token not in all_tokens:
                continue
            receiver, sender = _body(topics[2]), _body(topics[1])
            if receiver is None or sender is None:
                continue
            for policy in watched:
                if token not in policy.tokens:
                    continue
                into = policy.addresses.has_body(receiver)
                out = policy.addresses.has_body(sender)
                if not (into or out):
                    continue
                amount = _amount(entry.get("data", ""))
                if into and amount >= policy.min_deposit:
                    deposits.append(
                        _transfer(
                            policy.name,
                            receiver,
                            token,
                            sender,
                            amount,
                            txid,
                            number,
                            index,
                            log_no,
                        )
                    )
                if out:
                    sweeps.append(
                        _transfer(
                            policy.name,
                            sender,
                            token,
                            receiver,
                            amount,
                            txid,
                            number,
                            index,
                            log_no,
                        )
                    )
    return BlockTransfers(number, tuple(deposits), tuple(sweeps))


def _token_body(address: str) -> bytes | None:
    if len(address) == 40:
        try:
            return bytes.fromhex(address)
        except ValueError:
            return None
    if len(address) == 42 and address.startswith("41"):
        return _token_body(address[2:])
    if len(address) == 34:
        return decode_base58check(address)
    return None


def _amount(data: str) -> int:
    try:
        return int(data[:64] or "0", 16)
    except ValueError:
        return 0


def _transfer(
    policy: str,
    watched: bytes,
    token: bytes,
    other: bytes,
    amount: int,
    txid: str,
    block: int,
    index: int,
    log: int,
) -> TokenTransfer:
    return TokenTransfer(
        policy,
        encode_base58check(watched),
        encode_base58check(token),
        encode_base58check(other),
        amount,
        txid,
        block,
        index,
        log,
    )


class DepositWatch:
    """The live watched sets of every deposit policy.

    A policy's set is its inline addresses, plus its source's last good set
    (`set_base`: a file or a query), plus the run-time additions, minus the run-time
    removals (`change`, kept in the store). A run-time change edits the live set in place
    (one hash operation, whatever its size); a new base rebuilds it once."""

    def __init__(self, policies: Mapping[str, DepositPolicy]) -> None:
        self.policies = dict(policies)
        self.added: dict[str, set[str]] = {name: set() for name in policies}
        self.removed: dict[str, set[str]] = {name: set() for name in policies}
        self._live: dict[str, WatchedPolicy] = {}
        for name, policy in self.policies.items():
            self._live[name] = watched_policy(policy, AddressSet.of(policy.spec.addresses))

    @property
    def watched(self) -> list[WatchedPolicy]:
        return list(self._live.values())

    def set_base(self, policy: str, addresses: AddressSet) -> None:
        """The source's new set (the caller's object is taken over, not copied)."""
        live = addresses
        for address in self.policies[policy].spec.addresses:
            live.add(address)
        for address in self.added[policy]:
            live.add(address)
        for address in self.removed[policy]:
            live.discard(address)
        self._live[policy] = watched_policy(self.policies[policy], live)

    def change(self, policy: str, address: str, present: bool) -> None:
        """A run-time addition (`present`) or removal of one address."""
        (self.added if present else self.removed)[policy].add(address)
        (self.removed if present else self.added)[policy].discard(address)
        live = self._live[policy].addresses
        if present:
            live.add(address)
        else:
            live.discard(address)

    def policy_of(self, address: str) -> str | None:
        body = decode_base58check(address)
        if body is None:
            return None
        for item in self._live.values():
            if item.addresses.has_body(body):
                return item.name
        return None

    def count(self, policy: str | None = None) -> int:
        return sum(len(w.addresses) for w in self._live.values() if policy in (None, w.name))


__all__ = [
    "TRANSFER_TOPIC",
    "BlockTransfers",
    "DepositWatch",
    "TokenTransfer",
    "WatchedPolicy",
    "scan_transfers",
    "watched_policy",
]
