"""Observation without HTTP: `ChainReader`'s snapshots read straight from a `ChainState`.

`energyctl simulate` runs hundreds of thousands of engine passes; read over the node's
HTTP API in process (httpx -> ASGI -> the emulated node -> JSON -> tronpy), observation was
more than half of a pass. `StateReader(chain, clock)` answers what the `Reconciler` and its
`Tracker` ask of a reader (`snapshots(addresses, delegators=...)`, plus `snapshot` and
`heads`) from the node's own query functions, so the values are the ones the node would
have put on the wire: the same `EnergySnapshot`s as `ChainReader` over the node, field for
field (a test compares the two). Only observation is shortcut: the provider adapters still
talk to the vendor emulators over ASGI in their real wire formats.

It mirrors `engine/observe/chain.py`'s rules: available energy is `max(0, EnergyLimit -
EnergyUsed)`; an unactivated address is a snapshot with `activated=False`; a malformed
address is a `ChainPermanentError`; an account resource without the network totals a
node always sends is a `ChainTemporaryError` (junk, never 0 energy); every snapshot of a
batch carries the head read once before it. Neighbours: `engine/observe/chain.py` (the reader it
stands in for), `sandbox/tron_node` (the chain), `sandbox/simulating.py` (its user).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from engine.core.clock import Clock
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import (
    ALWAYS_SENT_RESOURCE,
    ChainError,
    ChainTemporaryError,
    NodeHeads,
    canonical_address,
)
from sandbox.tron_node import ChainState
from sandbox.tron_node.accounts import to_hex

_ACQUIRED = (
    "acquired_delegated_frozenV2_balance_for_energy",
    "acquired_delegated_frozen_balance_for_energy",
)


def _int(data: Mapping[str, Any], key: str) -> int:
    return int(data.get(key, 0))


class StateReader:
    """A `SnapshotSource` over a `ChainState`; see the module docstring."""

    node = "in-memory chain"

    def __init__(self, chain: ChainState, clock: Clock) -> None:
        self.chain = chain
        self._clock = clock

    def __repr__(self) -> str:
        return "StateReader(in-memory chain)"

    async def __aenter__(self) -> StateReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to close; here so that it can stand where a `ChainReader` stands."""

    async def heads(self) -> NodeHeads:
        """Head block number and id, and the solidified block, as `getnodeinfo` gives them."""
        head = self.chain.head_block_number()
        return NodeHeads(head, self.chain.blocks.block_id(head), self.chain.solid_block_number())

    async def snapshot(self, address: str, *, delegators: bool = False) -> EnergySnapshot:
        """One address's energy now; ChainPermanentError for a malformed address."""
        canonical = canonical_address(address)
        return self._read(canonical, self.chain.head_block_number(), delegators)

    async def snapshots(
        self, addresses: Iterable[str], *, delegators: bool = False
    ) -> dict[str, EnergySnapshot | ChainError]:
        """Snapshots of many addresses, keyed as given; a failure is that address's value."""
        todo = list(dict.fromkeys(addresses))
        block = self.chain.head_block_number()
        results: dict[str, EnergySnapshot | ChainError] = {}
        for given in todo:
            try:
                results[given] = self._read(canonical_address(given), block, delegators)
            except ChainError as exc:
                results[given] = exc
        return results

    async def block(self, number: int) -> dict[str, Any] | None:
        """Block `number` as `getblockbynum` prints it (visible), None if not produced yet."""
        return self.chain.block_json(number, self.chain.head_block_number())

    async def block_infos(self, number: int) -> list[dict[str, Any]]:
        """The transaction infos of block `number` (`gettransactioninfobyblocknum`)."""
        return self.chain.transaction_infos_json(number)

    async def token_balance(self, token: str, owner: str) -> int:
        """The USDT-like token's `balanceOf(owner)` (the emulator's one token)."""
        return self.chain.usdt_balance(to_hex(owner))

    def _read(self, address: str, block: int, with_delegators: bool) -> EnergySnapshot:
        hex_address = to_hex(address)
        resource = self.chain.account_resource_json(hex_address)
        if resource is None:  # `{}` on the wire: unactivated
            return EnergySnapshot(address, False, 0, 0, 0, 0, block, self._clock.now())
        missing = [key for key in ALWAYS_SENT_RESOURCE if key not in resource]
        if missing:  # as ChainReader: an answer without the network totals is junk
            raise ChainTemporaryError(f"in-memory chain: no {missing[0]} in the account resource")
        read_at = self._clock.now()
        limit, used = _int(resource, "EnergyLimit"), _int(resource, "EnergyUsed")
        account = self.chain.account_json(hex_address) or {}
        res = account.get("account_resource", {})
        return EnergySnapshot(
            address=address,
            activated=True,
            available=max(0, limit - used),
            limit=limit,
            used=used,
            delegated_in=sum(_int(res, key) for key in _ACQUIRED),
            block=block,
            read_at=read_at,
            total_energy_limit=_int(resource, "TotalEnergyLimit"),
            total_energy_weight=_int(resource, "TotalEnergyWeight"),
            delegators=self._delegators(hex_address) if with_delegators else None,
        )

    def _delegators(self, hex_address: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for sender_hex in self.chain.delegation_index_json(hex_address).get("fromAccounts", []):
            answer = self.chain.delegated_resource_json(sender_hex, hex_address)
            amount = sum(
                _int(r, "frozen_balance_for_energy") for r in answer.get("delegatedResource", [])
            )
            if amount > 0:
                out[canonical_address(sender_hex)] = amount
        return out


__all__ = ["StateReader"]
