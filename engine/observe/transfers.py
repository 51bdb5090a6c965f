"""Reading what watched addresses paid for energy over a window of past blocks.

`energyctl report` needs, for each watched address, every contract call it sent in the
window with its receipt: the energy drawn from its pool (`energy_usage`), the energy the
call needed (`energy_usage_total`) and the TRX burned for the rest (`energy_fee`). A full
node has no index by address, so the window's blocks are read in order, 100 at a time
(`ChainReader.blocks`, `/wallet/getblockbylimitnext`), and a block's receipts
(`/wallet/gettransactioninfobyblocknum`) only when a watched address sent a call in it.
At most `in_flight` ranges are read at once and each range is reduced to its few
transfers before the next is asked for, so memory stays bounded whatever the window.

`window_start` finds the first block at or after a time by bisecting block timestamps
(a block every 3 s at most, so the search starts from a bound, never from genesis).
`block_transfers` is the pure part. Neighbours: `chain.py` (reads), `following.py` (the
same joining of receipts to transactions for the blocks as they come).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any

from engine.core.costs import TransferCost
from engine.observe.chain import BLOCKS_PER_CALL, ChainReader, ChainTemporaryError
from engine.observe.following import _base58

SLOT_MS = 3_000  # one block per 3 s slot at most
_CALLS = frozenset({"TriggerSmartContract", "CreateSmartContract"})


def block_time_ms(block: Mapping[str, Any]) -> int:
    return int(block["block_header"]["raw_data"].get("timestamp", 0))


def block_number(block: Mapping[str, Any]) -> int:
    return int(block["block_header"]["raw_data"].get("number", 0))


def watched_calls(block: Mapping[str, Any], watched: Container[str]) -> dict[str, str]:
    """txID -> owner (base58) of the block's contract calls sent by a watched address."""
    calls: dict[str, str] = {}
    for tx in block.get("transactions", ()):
        contract = tx["raw_data"]["contract"][0]
        if contract.get("type") not in _CALLS:
            continue
        owner = _base58(contract["parameter"]["value"].get("owner_address", ""))
        if owner in watched:
            calls[tx["txID"]] = owner
    return calls


def block_transfers(
    calls: Mapping[str, str], infos: Iterable[Mapping[str, Any]]
) -> list[TransferCost]:
    """Pure: each watched call's receipt as a `TransferCost` (a call without a receipt
    yet is left out). Raises ValueError on a malformed receipt."""
    out = []
    try:
        for info in infos:
            owner = calls.get(str(info.get("id", "")))
            if owner is None:
                continue
            receipt = info.get("receipt") or {}
            out.append(
                TransferCost(
                    sender=owner,
                    energy_used=int(receipt.get("energy_usage", 0)),
                    energy_total=int(receipt.get("energy_usage_total", 0)),
                    burned_sun=int(receipt.get("energy_fee", 0)),
                )
            )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"malformed receipt: {type(exc).__name__}: {exc}") from exc
    return out


async def window_start(reader: ChainReader, since_ms: int, head: int, head_ms: int) -> int:
    """The first block whose timestamp is at or after `since_ms` (head + 1 if none)."""
    if head_ms < since_ms:
        return head + 1
    # blocks are at least a slot apart: the block this many slots back is before `since`
    low = max(-1, head - (head_ms - since_ms) // SLOT_MS - 1)  # known before (or absent)
    high = head  # known at or after
    while high - low > 1:
        middle = (low + high) // 2
        block = await reader.block(middle)
        if block is not None and block_time_ms(block) >= since_ms:
            high = middle
        else:
            low = middle
    return high


async def read_transfers(
    reader: ChainReader,
    watched: Container[str],
    first: int,
    last: int,
    on_transfer: Callable[[TransferCost], None],
    *,
    progress: Callable[[int], None] | None = None,
    in_flight: int = 4,
) -> int:
    """Every watched address's contract calls in blocks `first` .. `last`, in order, each
    handed to `on_transfer`; `progress(blocks)` after each range. Returns the blocks
    read. A block the node does not serve (pruned, or not produced) is a
    ChainTemporaryError: the report would be short without saying so."""
    starts = list(range(first, last + 1, BLOCKS_PER_CALL))
    read = 0

    async def one(start: int) -> list[TransferCost]:
        end = min(start + BLOCKS_PER_CALL, last + 1)
        blocks = await reader.blocks(start, end)
        numbers = [block_number(b) for b in blocks]
        if numbers != list(range(start, end)):
            raise ChainTemporaryError(
                f"node {reader.node}: blocks {start}..{end - 1} not all served "
                f"({len(blocks)} of {end - start}): pruned or not produced yet"
            )
        found: list[TransferCost] = []
        for block in blocks:
            try:
                calls = watched_calls(block, watched)
            except (KeyError, IndexError, TypeError, AttributeError) as exc:
                raise ChainTemporaryError(f"node {reader.node}: malformed block: {exc}") from exc
            if not calls:
                continue
            infos = await reader.block_infos(block_number(block))
            try:
                found += block_transfers(calls, infos)
            except ValueError as exc:
                raise ChainTemporaryError(f"node {reader.node}: {exc}") from exc
        return found

    for i in range(0, len(starts), in_flight):
        chunk = starts[i : i + in_flight]
        for found in await asyncio.gather(*(one(s) for s in chunk)):
            for transfer in found:
                on_transfer(transfer)
        read += sum(min(s + BLOCKS_PER_CALL, last + 1) - s for s in chunk)
        if progress is not None:
            progress(read)
    return read


__all__ = ["block_transfers", "read_transfers", "watched_calls", "window_start"]
