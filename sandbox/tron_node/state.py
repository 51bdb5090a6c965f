"""The emulated chain's state and the transactions that change it (no HTTP here).

`ChainState` holds accounts, delegations and the block log, and applies the transactions
the sandbox needs: FreezeBalanceV2 (energy), DelegateResource / UnDelegateResource
(Stake 2.0, energy, with lock periods) and USDT-like TRC-20 transfers. Validation messages
are java-tron's. Arithmetic comes from `model.py`; `wire.py`/`app.py` print what the read
methods return; `control.py` exposes the write methods over HTTP.

Timing follows java-tron: a transaction executes at once against the head state (as a
node's pending state does, so reads see it immediately) at the head block's slot, and is
recorded in the next block (head + 1), which becomes visible when the clock reaches its
3 s slot. Blocks are produced lazily from the clock (`produce_blocks`, in `reads.py` with
the storage). All public methods take one re-entrant lock: the HTTP server and the
emulators call from different threads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sandbox.tron_node import model
from sandbox.tron_node.accounts import (
    USDT_CONTRACT_HEX,
    Account,
    Delegation,
    TronError,
    to_base58,
    to_hex,
)
from sandbox.tron_node.blocks import Receipt, Transaction, make_raw
from sandbox.tron_node.model import BLOCK_INTERVAL_MS, TRX
from sandbox.tron_node.reads import ChainView

DEFAULT_LOCK_PERIOD = 3 * 24 * 3600 * 1000 // BLOCK_INTERVAL_MS  # 86,400 blocks
TRANSFER_SELECTOR = "a9059cbb"


class ChainState(ChainView):
    """Accounts, delegations and blocks of one emulated chain, driven by a Clock."""

    def advance(self, seconds: float) -> int:
        """Step a VirtualClock (control API `advance`); returns the new head number."""
        step = getattr(self.clock, "advance", None)
        if step is None:
            raise TronError("this node's clock runs by itself and cannot be advanced")
        step(seconds)
        return self.produce_blocks()

    # -- accounts and TRX --------------------------------------------------------------

    def _account(self, address: str, template: str = "Account[{}] not exists") -> Account:
        hex_address = to_hex(address)
        account = self._accounts.get(hex_address)
        if account is None:
            raise TronError(template.format(hex_address))
        return account

    def create_account(self, address: str, balance_sun: int = 0) -> None:
        """Activate `address` (off chain: no transaction is recorded) with `balance_sun`."""
        if balance_sun < 0:
            raise TronError("balance must be >= 0")
        with self._lock:
            self.produce_blocks()
            hex_address = to_hex(address)
            if hex_address in self._accounts:
                raise TronError("Account has existed")
            now_ms = self.blocks.timestamp(self._head)
            self._accounts[hex_address] = Account(
                hex=hex_address,
                base58=to_base58(hex_address),
                balance=balance_sun,
                create_time_ms=now_ms,
                latest_operation_ms=now_ms,
            )

    def fund(self, address: str, sun: int) -> None:
        """Add `sun` to the balance; like a TRX transfer, this activates a new address."""
        if sun <= 0:
            raise TronError("amount must be greater than 0")
        with self._lock:
            if to_hex(address) not in self._accounts:
                self.create_account(address)
            self._accounts[to_hex(address)].balance += sun

    def mark_usdt_holder(self, address: str) -> None:
        """Record that `address` holds USDT (transfers to it cost the lower energy)."""
        with self._lock:
            self._usdt_holders.add(to_hex(address))

    # -- recording transactions --------------------------------------------------------

    def _use_bandwidth(self, account: Account, size: int) -> tuple[int, int]:
        """Free daily bandwidth if it covers the whole transaction, else burn TRX for it."""
        now = self._slot()
        free_used = model.decay(account.free_net_used, account.free_net_slot, now)
        if size <= self.params.free_net_limit - free_used:
            account.free_net_used = model.increase_simple(free_used, size, now, now)
            account.free_net_slot = now
            return size, 0
        fee = size * self.params.transaction_fee
        if account.balance < fee:
            raise TronError(
                f"Account[{account.hex}] has insufficient bandwidth[{size}] and balance"
                f"[{account.balance}] to create new transaction"
            )
        account.balance -= fee
        return 0, fee

    def _record(
        self,
        owner: Account,
        contract_type: str,
        value: dict[str, Any],
        receipt: Receipt,
        *,
        ret: str = "SUCCESS",
        fee_limit: int = 0,
        contract_address: str = "",
    ) -> str:
        self._nonce += 1
        now_ms = self._now_ms()
        ref = self.blocks.ref_for(self._head)
        raw_hex, txid = make_raw(contract_type, value, now_ms, ref, self._nonce)
        self.blocks.add(
            Transaction(
                txid=txid,
                block_number=self._head + 1,
                timestamp_ms=now_ms,
                contract_type=contract_type,
                value=value,
                ret=ret,
                receipt=receipt,
                ref_block_bytes=ref[0],
                ref_block_hash=ref[1],
                raw_data_hex=raw_hex,
                fee_limit=fee_limit,
                contract_address=contract_address,
            )
        )
        owner.latest_operation_ms = self.blocks.timestamp(self._head)
        return txid

    # -- Stake 2.0 ---------------------------------------------------------------------

    def stake_energy(self, address: str, sun: int) -> str:
        """FreezeBalanceV2 for ENERGY; raises TronError as java-tron's validation does."""
        with self._lock:
            self.produce_blocks()
            account = self._account(address)
            if sun <= 0:
                raise TronError("frozenBalance must be positive")
            if sun < TRX:
                raise TronError("frozenBalance must be greater than or equal to 1 TRX")
            if sun > account.balance:
                raise TronError("frozenBalance must be less than or equal to accountBalance")
            net = self._use_bandwidth(account, self.params.resource_tx_bytes)
            before = (account.frozen_energy + account.delegated_out_energy) // TRX
            account.balance -= sun
            account.frozen_energy += sun
            after = (account.frozen_energy + account.delegated_out_energy) // TRX
            self.total_energy_weight += after - before
            value = {"owner_address": account.hex, "frozen_balance": sun, "resource": "ENERGY"}
            return self._record(account, "FreezeBalanceV2Contract", value, Receipt(*_net(net)))

    def delegate_energy(
        self, owner: str, receiver: str, sun: int, lock_period_blocks: int | None = None
    ) -> str:
        """DelegateResource ENERGY; `lock_period_blocks` None = unlocked, 0 = 3 days."""
        with self._lock:
            self.produce_blocks()
            src = self._account(owner)
            if sun < TRX:
                raise TronError("delegateBalance must be greater than or equal to 1 TRX")
            src_used = model.decay(
                src.energy.used, src.energy.latest_slot, self._slot(), src.energy.window
            )
            used_sun = model.energy_usage_in_sun(
                src_used, self.params.total_energy_limit, self.total_energy_weight
            )
            if src.frozen_energy - max(0, used_sun - src.acquired_energy) < sun:
                raise TronError(
                    "delegateBalance must be less than or equal to available FreezeEnergyV2 balance"
                )
            if to_hex(receiver) == src.hex:
                raise TronError("receiverAddress must not be the same as ownerAddress")
            dst = self._account(receiver)
            now_ms = self.blocks.timestamp(self._head)
            record = self._delegations.get((src.hex, dst.hex))
            lock = lock_period_blocks is not None
            period = lock_period_blocks or DEFAULT_LOCK_PERIOD
            if lock:
                limit = self.params.max_delegate_lock_period
                if period < 0 or period > limit:
                    raise TronError(
                        "The lock period of delegate resource cannot be less than 0 and "
                        f"cannot exceed {limit}!"
                    )
                remain = record.expire_ms - now_ms if record and record.locked else 0
                if period * BLOCK_INTERVAL_MS < remain:
                    raise TronError(
                        "The lock period for ENERGY this time cannot be less than the remaining "
                        f"time[{remain}ms] of the last lock period for ENERGY!"
                    )
            net = self._use_bandwidth(src, self.params.resource_tx_bytes)
            if record is None:
                record = self._delegations[(src.hex, dst.hex)] = Delegation(src.hex, dst.hex)
            record.unlock_expired(now_ms)
            if lock:
                record.locked += sun
                record.expire_ms = now_ms + period * BLOCK_INTERVAL_MS
            else:
                record.unlocked += sun
            src.frozen_energy -= sun
            src.delegated_out_energy += sun
            dst.acquired_energy += sun
            src.to_accounts[dst.hex] = None
            dst.from_accounts[src.hex] = None
            value: dict[str, Any] = {
                "owner_address": src.hex,
                "receiver_address": dst.hex,
                "balance": sun,
                "resource": "ENERGY",
            }
            if lock:
                value.update(lock=True, lock_period=period)
            return self._record(src, "DelegateResourceContract", value, Receipt(*_net(net)))

    def undelegate_energy(self, owner: str, receiver: str, sun: int) -> str:
        """UnDelegateResource ENERGY: the receiver's used energy moves back proportionally."""
        with self._lock:
            self.produce_blocks()
            src = self._account(owner, "Account[{}] does not exist")
            dst_hex = to_hex(receiver)
            if dst_hex == src.hex:
                raise TronError("receiverAddress must not be the same as ownerAddress")
            record = self._delegations.get((src.hex, dst_hex))
            if record is None:
                raise TronError("delegated Resource does not exist")
            if sun <= 0:
                raise TronError("unDelegateBalance must be more than 0 TRX")
            now_ms, now = self.blocks.timestamp(self._head), self._slot()
            if record.available(now_ms) < sun:
                raise TronError(
                    f"insufficient delegateFrozenBalance(Energy), request={sun}, "
                    f"unlock_balance={record.available(now_ms)}"
                )
            net = self._use_bandwidth(src, self.params.resource_tx_bytes)
            dst = self._accounts.get(dst_hex)
            transfer = 0
            if dst is not None:
                decayed = model.increase_v2(dst.energy, 0, now)  # EnergyProcessor.updateUsage
                if dst.acquired_energy < sun:
                    dst.acquired_energy = 0
                else:
                    transfer = model.undelegate_transfer(
                        decayed.used,
                        sun,
                        dst.frozen_for_energy,
                        self.params.total_energy_limit,
                        self.total_energy_weight,
                    )
                    dst.acquired_energy -= sun
                dst.energy = dataclasses.replace(
                    decayed, used=decayed.used - transfer, latest_slot=now
                )
                self.reclaims.append((self.clock.now(), dst_hex, transfer))
            record.unlock_expired(now_ms)
            record.unlocked -= sun
            src.delegated_out_energy -= sun
            src.frozen_energy += sun
            if dst is not None and transfer > 0:
                src.energy = model.undelegate_increase_v2(
                    src.energy, dst.energy.window_v2, transfer, now
                )
            if record.total == 0:
                del self._delegations[(src.hex, dst_hex)]
                src.to_accounts.pop(dst_hex, None)
                if dst is not None:
                    dst.from_accounts.pop(src.hex, None)
            value = {
                "owner_address": src.hex,
                "receiver_address": dst_hex,
                "balance": sun,
                "resource": "ENERGY",
            }
            return self._record(src, "UnDelegateResourceContract", value, Receipt(*_net(net)))

    def sun_for_energy(self, energy: int) -> int:
        """Sun to delegate so a receiver gains >= `energy` at the current weight (>= 1 TRX)."""
        with self._lock:
            return model.sun_for_energy(
                energy, self.params.total_energy_limit, self.total_energy_weight
            )

    # -- USDT-like transfers -----------------------------------------------------------

    def transfer_usdt(
        self, sender: str, recipient: str, amount: int = 1_000_000, fee_limit: int | None = None
    ) -> str:
        """A TRC-20 `transfer` on the USDT contract; returns the txid (even when it fails).

        Energy: 64,285 if the recipient holds USDT, else 130,285; taken from the sender's
        pool, the rest burned at `energy_fee`. If balance (or fee limit) cannot pay, the
        transaction is recorded as OUT_OF_ENERGY and the recipient receives nothing.
        """
        with self._lock:
            self.produce_blocks()
            src = self._account(sender, "account [{}] does not exist")
            dst_hex = to_hex(recipient)
            limit = self.params.default_fee_limit if fee_limit is None else fee_limit
            net = self._use_bandwidth(src, self.params.usdt_bytes)
            holder = dst_hex in self._usdt_holders
            needed = self.params.usdt_energy_holder if holder else self.params.usdt_energy_fresh
            now = self._slot()
            used = model.decay(src.energy.used, src.energy.latest_slot, now, src.energy.window)
            bill = model.pay_energy(
                needed,
                self.energy_limit(src) - used,
                src.balance,
                self.params.energy_fee,
                limit,
            )
            if bill.from_pool > 0:
                src.energy = model.consume(src.energy, bill.from_pool, now)
            src.balance -= bill.burned_sun
            ret = "SUCCESS" if bill.ok else "OUT_OF_ENERGY"
            if bill.ok:
                self._usdt_holders.add(dst_hex)
            data = TRANSFER_SELECTOR + dst_hex[2:].rjust(64, "0") + f"{amount:064x}"
            value = {"data": data, "owner_address": src.hex, "contract_address": USDT_CONTRACT_HEX}
            receipt = Receipt(
                bill.from_pool, bill.burned_sun, bill.total, net[0], net[1], result=ret
            )
            return self._record(
                src,
                "TriggerSmartContract",
                value,
                receipt,
                ret=ret,
                fee_limit=limit,
                contract_address=USDT_CONTRACT_HEX,
            )


def _net(net: tuple[int, int]) -> tuple[int, int, int, int, int]:
    """Receipt fields of a transaction that only pays bandwidth."""
    return 0, 0, 0, net[0], net[1]
