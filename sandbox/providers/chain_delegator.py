"""A `Delegator` that delegates on the emulated TRON node, so the energy is really there.

An emulator built on `ChainDelegator(state, provider_address)` turns each delivered order
into a DelegateResource (ENERGY) transaction from the provider's staked TRX to the
receiver, sized with `ChainState.sun_for_energy` so the receiver gains at least the
ordered energy at the current total energy weight; reclaiming is an UnDelegateResource of
the same amount. A client reading the node (tronpy, the engine) sees energy arrive and
leave exactly as on mainnet. The node's validation errors become `DelegationError`.

Delegations are unlocked (lock=False) by default: the emulator reclaims at the end of
the order's duration by its own clock, and locks would make a shorter order to the same
receiver fail ("lock period ... cannot be less than the remaining time"); pass
`lock=True` to lock each delegation for the order's duration instead.

The provider account must exist and have staked TRX for energy (`ChainState.stake_energy`).
Construct: `ChainDelegator(state, "T...provider")`; also implements `ChainView`.
Neighbours: `base.py` (the protocols), `sandbox.tron_node` (the chain).
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.providers.base import DelegationError, fake_txid
from sandbox.tron_node import ChainState, TronError
from sandbox.tron_node.accounts import to_hex
from sandbox.tron_node.model import BLOCK_INTERVAL_MS, energy_limit


@dataclass(frozen=True)
class _Made:
    receiver: str
    sun: int


class ChainDelegator:
    """Delegates the provider's staked energy on a `ChainState`."""

    def __init__(self, state: ChainState, provider_address: str, *, lock: bool = False) -> None:
        self.state = state
        self.provider_address = provider_address
        self.lock = lock
        self.made: dict[str, _Made] = {}
        self._activations = 0

    def delegate(self, receiver: str, energy: int, duration: int) -> str:
        try:
            sun = self.state.sun_for_energy(energy)
            period = max(1, duration * 1000 // BLOCK_INTERVAL_MS) if self.lock else None
            txid = self.state.delegate_energy(self.provider_address, receiver, sun, period)
        except (TronError, ValueError) as exc:
            raise DelegationError(str(exc)) from exc
        self.made[txid] = _Made(receiver, sun)
        return txid

    def reclaim(self, txid: str) -> None:
        made = self.made.get(txid)
        if made is None:
            raise DelegationError(f"no delegation {txid} made by {self.provider_address}")
        try:
            self.state.undelegate_energy(self.provider_address, made.receiver, made.sun)
        except TronError as exc:
            raise DelegationError(str(exc)) from exc
        del self.made[txid]

    # ------------------------------------------------------------------ ChainView

    def is_activated(self, address: str) -> bool:
        return self.state.has_account(address)

    def activate(self, address: str) -> str:
        try:
            self.state.create_account(address)
        except TronError as exc:
            raise DelegationError(str(exc)) from exc
        self._activations += 1
        return fake_txid("activate", address, self._activations)

    def available_energy(self) -> int:
        """Energy the provider's free stake would give a receiver now."""
        free_sun = self.state.can_delegate_max_json(to_hex(self.provider_address), 1).get(
            "max_size", 0
        )
        limit = self.state.params.total_energy_limit
        return energy_limit(int(free_sun), limit, self.state.total_energy_weight)
