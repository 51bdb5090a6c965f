"""What the emulated chain stores: accounts, Stake 2.0 delegation records, chain parameters.

Plain mutable records with no behaviour beyond small derived values; `state.py` owns and
mutates them under its lock, `model.py` does the arithmetic, `wire.py` prints them.
Addresses are kept as 42-char lower-case hex (`41...`), the form java-tron stores; the
base58 form is cached next to it for `visible: true` output.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from tronpy import keys

from sandbox.tron_node.model import TRX, Usage

USDT_CONTRACT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
USDT_CONTRACT_HEX = "41a614f803b6fd780986a42c78ec9c7f77e6ded13c"


class TronError(ValueError):
    """A transaction or request the node refuses; the message is java-tron's wording."""


@functools.lru_cache(maxsize=262_144)
def to_hex(address: str) -> str:
    """Any tronpy-accepted address form -> `41...` hex; `TronError` when malformed."""
    try:
        return str(keys.to_hex_address(address))
    except Exception as exc:  # tronpy raises BadAddress, ValueError or IndexError
        raise TronError(f"Invalid address: {address!r}") from exc


@functools.lru_cache(maxsize=262_144)
def to_base58(hex_address: str) -> str:
    """`41...` hex -> base58check `T...` (cached: output of `visible: true` is hot)."""
    return str(keys.to_base58check_address(hex_address))


@dataclass(frozen=True)
class ChainParams:
    """Global parameters; mainnet-like defaults (`/wallet/getchainparameters`, java-tron's
    `Wallet.getChainParameters`; values from the resource-model page of TRON's docs,
    https://github.com/tronprotocol/documentation-en, `resource.md`)."""

    total_energy_limit: int = 180_000_000_000
    # Whole TRX staked network-wide for energy at genesis (moves as accounts stake).
    total_energy_weight: int = 19_000_000_000
    energy_fee: int = 100  # sun per energy (getEnergyFee)
    transaction_fee: int = 1000  # sun per bandwidth byte (getTransactionFee)
    free_net_limit: int = 600
    total_net_limit: int = 43_200_000_000
    total_net_weight: int = 68_305_209_098
    max_delegate_lock_period: int = 864_000  # blocks (30 days)
    unfreeze_delay_days: int = 14
    usdt_energy_holder: int = 64_285  # recipient already holds USDT
    usdt_energy_fresh: int = 130_285  # recipient's USDT balance slot is empty
    usdt_bytes: int = 345  # bandwidth of a TRC-20 transfer
    resource_tx_bytes: int = 280  # bandwidth of a stake/delegate/undelegate transaction
    default_fee_limit: int = 100_000_000  # sun; the fee_limit given to emulated transfers
    solid_lag_blocks: int = 19


@dataclass
class Account:
    """One activated account (`protocol.Account`, the fields the emulator models)."""

    hex: str
    base58: str
    balance: int = 0
    create_time_ms: int = 0
    latest_operation_ms: int = 0
    frozen_energy: int = 0  # frozenV2[ENERGY]: own stake not delegated out
    frozen_bandwidth: int = 0  # frozenV2[BANDWIDTH]
    delegated_out_energy: int = 0  # delegated_frozenV2_balance_for_energy
    acquired_energy: int = 0  # acquired_delegated_frozenV2_balance_for_energy
    energy: Usage = field(default_factory=Usage)
    free_net_used: int = 0
    free_net_slot: int = 0
    # Who delegated to this account / to whom it delegated, in first-delegation order
    # (`DelegatedResourceAccountIndex` V2); dicts used as ordered sets.
    from_accounts: dict[str, None] = field(default_factory=dict)
    to_accounts: dict[str, None] = field(default_factory=dict)

    @property
    def frozen_for_energy(self) -> int:
        """`getAllFrozenBalanceForEnergy` (Stake 2.0 only: own + delegated in)."""
        return self.frozen_energy + self.acquired_energy

    @property
    def tron_power(self) -> int:
        """TRON Power in whole TRX: every V2 stake this account froze, delegated or not."""
        return (self.frozen_energy + self.frozen_bandwidth + self.delegated_out_energy) // TRX


@dataclass
class Delegation:
    """The two `DelegatedResource` records (unlocked, locked) of one (from, to) pair."""

    from_hex: str
    to_hex: str
    unlocked: int = 0  # frozen_balance_for_energy of the unlocked record
    locked: int = 0  # frozen_balance_for_energy of the locked record
    expire_ms: int = 0  # expire_time_for_energy of the locked record

    def unlock_expired(self, now_ms: int) -> None:
        """`DelegatedResourceStore.unLockExpireResource`: expired lock -> unlocked record."""
        if self.locked and self.expire_ms < now_ms:
            self.unlocked += self.locked
            self.locked = 0
            self.expire_ms = 0

    def available(self, now_ms: int) -> int:
        """What may be undelegated now (unlocked plus expired locked)."""
        return self.unlocked + (self.locked if self.expire_ms < now_ms else 0)

    @property
    def total(self) -> int:
        return self.unlocked + self.locked
