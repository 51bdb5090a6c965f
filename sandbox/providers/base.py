"""How an emulated provider puts energy on the chain: the `Delegator` seam.

Every vendor emulator (`mefree.py`, `itrx.py`, `eopen.py`, `tronsave.py`) accepts orders
over HTTP and, as emulated time passes, delivers them through a `Delegator`. Two exist:

- `RecordingDelegator` (here): in memory, for tests of the emulators themselves. It can
  refuse unactivated receivers and run out of stake, like the chain would.
- `ChainDelegator` (`chain_delegator.py`): delegates on the emulated TRON node, so a
  client reading the chain sees the energy arrive and leave.

A delegator may also offer `ChainView` (activation and remaining stake); emulators use it
where a vendor's behaviour depends on it (itrx "inactive address", TronSave market fill).

Construct: `RecordingDelegator(capacity=10_000_000, inactive={"T..."})`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class DelegationError(Exception):
    """The delegation could not be made (receiver not activated, provider out of stake...)."""


@runtime_checkable
class Delegator(Protocol):
    """Puts energy on a receiver for a while, and takes it back."""

    def delegate(self, receiver: str, energy: int, duration: int) -> str:
        """Delegate `energy` to `receiver` for `duration` seconds; returns the txid.

        Raises `DelegationError` when the chain would refuse it.
        """
        ...

    def reclaim(self, txid: str) -> None:
        """Undo the delegation made by `txid` (undelegate); unknown txids raise DelegationError."""
        ...


@runtime_checkable
class ChainView(Protocol):
    """Optional extras a delegator can offer about the chain it delegates on."""

    def is_activated(self, address: str) -> bool:
        """Whether the account exists on chain (energy cannot be delegated otherwise)."""
        ...

    def activate(self, address: str) -> str:
        """Create the account (a small TRX transfer); returns the txid."""
        ...

    def available_energy(self) -> int:
        """How much more energy the provider can delegate now."""
        ...


def fake_txid(*parts: object) -> str:
    """A 64-hex transaction id derived from `parts` (deterministic)."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


@dataclass
class RecordedDelegation:
    """One delegation made by a `RecordingDelegator`."""

    txid: str
    receiver: str
    energy: int
    duration: int
    active: bool = True


class RecordingDelegator:
    """An in-memory delegator: records every delegation, enforces stake and activation.

    `capacity` is the provider's total delegable energy (None = unlimited); energy in
    active delegations is not available until reclaimed. Addresses in `inactive` are
    refused like unactivated accounts until `activate()` is called for them.
    """

    def __init__(self, *, capacity: int | None = None, inactive: Iterable[str] = ()) -> None:
        self.capacity = capacity
        self.inactive = set(inactive)
        self.delegations: dict[str, RecordedDelegation] = {}
        self.activations: list[str] = []
        self._seq = itertools.count(1)
        self._refuse_next = 0

    def refuse_next(self, n: int = 1) -> None:
        """Make the next `n` delegations fail (e.g. a node error on broadcast)."""
        self._refuse_next += n

    def delegate(self, receiver: str, energy: int, duration: int) -> str:
        if energy <= 0:
            raise DelegationError(f"energy must be positive, got {energy}")
        if self._refuse_next:
            self._refuse_next -= 1
            raise DelegationError("delegation refused (injected)")
        if receiver in self.inactive:
            raise DelegationError(f"Account[{receiver}] not exists")
        if energy > self.available_energy():
            raise DelegationError(
                f"provider out of stake: {energy} requested, {self.available_energy()} available"
            )
        txid = fake_txid("delegate", receiver, energy, duration, next(self._seq))
        self.delegations[txid] = RecordedDelegation(txid, receiver, energy, duration)
        return txid

    def reclaim(self, txid: str) -> None:
        record = self.delegations.get(txid)
        if record is None or not record.active:
            raise DelegationError(f"no active delegation {txid}")
        record.active = False

    def is_activated(self, address: str) -> bool:
        return address not in self.inactive

    def activate(self, address: str) -> str:
        self.inactive.discard(address)
        self.activations.append(address)
        return fake_txid("activate", address, next(self._seq))

    def available_energy(self) -> int:
        if self.capacity is None:
            return 10**15
        return self.capacity - sum(d.energy for d in self.delegations.values() if d.active)

    def energy_of(self, receiver: str) -> int:
        """Energy currently delegated to `receiver` by this delegator."""
        return sum(
            d.energy for d in self.delegations.values() if d.active and d.receiver == receiver
        )


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def is_tron_address(text: str) -> bool:
    """Whether `text` is a base58check TRON address (T..., 34 characters, 0x41 prefix)."""
    if len(text) != 34 or not text.startswith("T") or any(c not in _B58 for c in text):
        return False
    number = 0
    for char in text:
        number = number * 58 + _B58.index(char)
    raw = number.to_bytes(25, "big")
    check = hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()[:4]
    return raw[0] == 0x41 and raw[21:] == check
