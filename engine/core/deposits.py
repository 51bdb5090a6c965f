"""The deposit vocabulary: an episode of need that a deposit opens and a sweep closes.

A `DepositNeed` is one episode of one deposit address: it opens when a watched address
receives a token transfer worth a sweep, buys (at most) one sweep's energy, turns `ready`
when that energy is on chain, and closes when the sweep is seen (a transfer out of the
address), when the energy ran out unused, or when the address left the watch list.
Several deposits before the sweep belong to one episode (`deposits` counts them).

States: `open` (a deposit seen, nothing bought yet or the last order failed), `ordered`
(an order is open for it), `ready` (the sweep's energy is on chain), `closed`.

Neighbours: stored by `engine/store/` (table `deposit_needs`), decided on by
`engine/decide/deposits.py`, moved on by `engine/sidecar/depositing.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict


class NeedState(enum.StrEnum):
    OPEN = "open"
    ORDERED = "ordered"
    READY = "ready"
    CLOSED = "closed"


class CloseReason(enum.StrEnum):
    SWEPT = "swept"  # a transfer out of the address was seen: the sweep happened
    ENERGY_SPENT = "energy_spent"  # the address used the energy (its sweep, seen late)
    EXPIRED = "expired"  # no sweep within the rented energy's duration
    REMOVED = "removed"  # the address is no longer watched


@dataclass(frozen=True, slots=True)
class NewDeposit:
    """A deposit seen in a block, to be recorded (`Store.record_deposits`)."""

    policy: str
    address: str
    token: str
    txid: str
    block: int
    amount: int
    # the log's place in its transaction: with `txid`, the transfer's identity, recorded
    # once (a re-read block neither opens nor joins an episode); None for a request that
    # is no chain transfer (the sweeper's `ensure`), never deduplicated
    log: int | None = None

    def values(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "address": self.address,
            "token": self.token,
            "txid": self.txid,
            "block": self.block,
            "amount": str(self.amount),
            "log": self.log,
        }


class DepositNeed(BaseModel):
    """One deposit episode as stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    policy: str
    address: str
    token: str
    deposit_txid: str
    deposit_block: int
    amount: str  # uint256 as decimal text (a token amount may exceed 64 bits)
    deposits: int
    state: NeedState
    energy: int | None = None  # the sweep's energy, once decided
    client_order_id: str | None = None
    note: str | None = None
    opened_at: float
    updated_at: float
    ready_at: float | None = None
    notified_at: float | None = None
    closed_at: float | None = None
    close_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not NeedState.CLOSED

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


__all__ = ["CloseReason", "DepositNeed", "NeedState", "NewDeposit"]
