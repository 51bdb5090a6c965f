"""The emulated chain's storage, clock-driven head, and the read side the HTTP API serves.

`ChainView` owns the data (accounts, delegations, block log, global weight) and answers
the node's queries with JSON-ready dicts named like java-tron's protobuf fields, addresses
in hex, zero values still present: `wire.py` strips defaults and applies `visible`.
Usage is decayed to the head slot on a copy, never persisted, as `Wallet.getAccount` does.
`state.py` subclasses it with the transactions that change the chain.
"""

from __future__ import annotations

import threading
from typing import Any

from engine.core.clock import Clock
from sandbox.tron_node import model
from sandbox.tron_node.accounts import Account, ChainParams, Delegation, to_hex
from sandbox.tron_node.blocks import BlockLog, Transaction
from sandbox.tron_node.model import BLOCK_INTERVAL_MS, TRX, WINDOW_SLOTS

ACTIVE_OPERATIONS = "7fff1fc0033efb0f000000000000000000000000000000000000000000000000"


class ChainView:
    """Data of one chain and the queries on it; time comes from `clock`."""

    def __init__(
        self, clock: Clock, params: ChainParams | None = None, *, genesis_number: int = 0
    ) -> None:
        self.clock = clock
        self.params = params or ChainParams()
        self.total_energy_weight = self.params.total_energy_weight
        now_ms = self._now_ms()
        self.blocks = BlockLog(now_ms - now_ms % BLOCK_INTERVAL_MS, genesis_number)
        self._head = genesis_number
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._delegations: dict[tuple[str, str], Delegation] = {}
        self._usdt_holders: set[str] = set()
        self._nonce = 0
        #: (clock seconds, receiver hex, used energy moved to the owner) per UnDelegateResource
        self.reclaims: list[tuple[float, str, int]] = []

    # -- time and blocks ---------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def produce_blocks(self) -> int:
        """Catch the head up to the clock (one block per 3 s slot); returns the head number.

        Empty blocks cost nothing (they are synthesised when read), so this is O(1).
        """
        with self._lock:
            self._head = max(self._head, self.blocks.number_at(self._now_ms()))
            return self._head

    def head_block_number(self) -> int:
        return self.produce_blocks()

    def solid_block_number(self) -> int:
        """The solidified head: `solid_lag_blocks` (19) behind the head."""
        head = self.produce_blocks()
        return max(self.blocks.genesis_number, head - self.params.solid_lag_blocks)

    def head_timestamp_ms(self) -> int:
        return self.blocks.timestamp(self.produce_blocks())

    def _slot(self) -> int:
        """The head slot: `(head_ts - genesis_ts) / 3000` with mainnet's genesis_ts = 0."""
        return self.blocks.timestamp(self._head) // BLOCK_INTERVAL_MS

    def energy_limit(self, account: Account) -> int:
        return model.energy_limit(
            account.frozen_for_energy, self.params.total_energy_limit, self.total_energy_weight
        )

    # -- simple reads (Python API) -----------------------------------------------------

    def available_energy(self, address: str) -> int:
        """max(0, EnergyLimit - EnergyUsed) at the current head; 0 for an unknown address."""
        with self._lock:
            self.produce_blocks()
            account = self._accounts.get(to_hex(address))
            if account is None:
                return 0
            u = account.energy
            used = model.decay(u.used, u.latest_slot, self._slot(), u.window)
            return max(0, self.energy_limit(account) - used)

    def balance(self, address: str) -> int:
        """TRX balance in sun (0 for an unknown address)."""
        with self._lock:
            account = self._accounts.get(to_hex(address))
            return account.balance if account else 0

    def holds_usdt(self, address: str) -> bool:
        with self._lock:
            return to_hex(address) in self._usdt_holders

    def has_account(self, address: str) -> bool:
        with self._lock:
            return to_hex(address) in self._accounts

    # -- node queries (hex addresses in, JSON-ready dicts out) -------------------------

    def account_json(self, hex_address: str) -> dict[str, Any] | None:
        """`/wallet/getaccount`: `protocol.Account` after `Wallet.getAccount`'s massaging."""
        with self._lock:
            self.produce_blocks()
            a = self._accounts.get(hex_address)
            if a is None:
                return None
            now = self._slot()
            energy = model.increase_v2(a.energy, 0, now)
            free_net = model.decay(a.free_net_used, a.free_net_slot, now)
            keys = [{"address": a.hex, "weight": 1}]
            return {
                "address": a.hex,
                "balance": a.balance,
                "create_time": a.create_time_ms,
                "latest_opration_time": a.latest_operation_ms,
                "free_net_usage": free_net,
                "latest_consume_free_time": a.free_net_slot * BLOCK_INTERVAL_MS,
                # Staked bandwidth is never used here: its window shows a full 24 h.
                "net_window_size": WINDOW_SLOTS * model.WINDOW_PRECISION,
                "net_window_optimized": True,
                "account_resource": {
                    "energy_usage": energy.used,
                    "latest_consume_time_for_energy": a.energy.latest_slot * BLOCK_INTERVAL_MS,
                    "energy_window_size": energy.window_raw,
                    "energy_window_optimized": energy.optimized,
                    "delegated_frozenV2_balance_for_energy": a.delegated_out_energy,
                    "acquired_delegated_frozenV2_balance_for_energy": a.acquired_energy,
                },
                "owner_permission": {"permission_name": "owner", "threshold": 1, "keys": keys},
                "active_permission": [
                    {
                        "type": "Active",
                        "id": 2,
                        "permission_name": "active",
                        "threshold": 1,
                        "operations": ACTIVE_OPERATIONS,
                        "keys": keys,
                    }
                ],
                "frozenV2": [
                    {"amount": a.frozen_bandwidth},  # BANDWIDTH is enum 0: no "type" key
                    {"type": "ENERGY", "amount": a.frozen_energy},
                    {"type": "TRON_POWER"},
                ],
            }

    def _resource_common(self, a: Account) -> dict[str, Any]:
        free_net = model.decay(a.free_net_used, a.free_net_slot, self._slot())
        return {
            "freeNetUsed": free_net,
            "freeNetLimit": self.params.free_net_limit,
            "TotalNetLimit": self.params.total_net_limit,
            "TotalNetWeight": self.params.total_net_weight,
        }

    def account_resource_json(self, hex_address: str) -> dict[str, Any] | None:
        """`/wallet/getaccountresource` (`AccountResourceMessage`)."""
        with self._lock:
            self.produce_blocks()
            a = self._accounts.get(hex_address)
            if a is None:
                return None
            out = self._resource_common(a)
            u = a.energy
            out.update(
                tronPowerLimit=a.tron_power,
                EnergyUsed=model.decay(u.used, u.latest_slot, self._slot(), u.window),
                EnergyLimit=self.energy_limit(a),
                TotalEnergyLimit=self.params.total_energy_limit,
                TotalEnergyWeight=self.total_energy_weight,
            )
            return out

    def account_net_json(self, hex_address: str) -> dict[str, Any] | None:
        """`/wallet/getaccountnet` (`AccountNetMessage`)."""
        with self._lock:
            self.produce_blocks()
            a = self._accounts.get(hex_address)
            return None if a is None else self._resource_common(a)

    def delegated_resource_json(self, from_hex: str, to_hex_: str) -> dict[str, Any]:
        """`/wallet/getdelegatedresourcev2`: the unlocked record, then the locked one."""
        with self._lock:
            d = self._delegations.get((from_hex, to_hex_))
            if d is None:
                return {}
            records: list[dict[str, Any]] = []
            if d.unlocked:
                records.append({"from": from_hex, "to": to_hex_, **_energy_record(d.unlocked)})
            if d.locked:
                records.append(
                    {"from": from_hex, "to": to_hex_, **_energy_record(d.locked, d.expire_ms)}
                )
            return {"delegatedResource": records}

    def delegation_index_json(self, hex_address: str) -> dict[str, Any]:
        """`/wallet/getdelegatedresourceaccountindexv2`."""
        with self._lock:
            a = self._accounts.get(hex_address)
            out: dict[str, Any] = {"account": hex_address}
            if a is not None:
                out["fromAccounts"] = list(a.from_accounts)
                out["toAccounts"] = list(a.to_accounts)
            return out

    def can_delegate_max_json(self, hex_address: str, resource_type: int) -> dict[str, Any]:
        """`/wallet/getcandelegatedmaxsize` (`Wallet.calcCanDelegatedEnergyMaxSize`)."""
        with self._lock:
            self.produce_blocks()
            a = self._accounts.get(hex_address)
            if a is None:
                return {}
            if resource_type == 1:
                u = a.energy
                used = model.decay(u.used, u.latest_slot, self._slot(), u.window)
                used_sun = model.energy_usage_in_sun(
                    used, self.params.total_energy_limit, self.total_energy_weight
                )
                size = max(0, a.frozen_energy - max(0, used_sun - a.acquired_energy))
            else:
                size = a.frozen_bandwidth
            return {"max_size": size if size >= TRX else 0}

    def block_json(self, number: int, limit: int | None = None) -> dict[str, Any] | None:
        """A block as `Util.printBlockToJSON` prints it; None beyond `limit` (default head)."""
        with self._lock:
            top = self.produce_blocks() if limit is None else limit
            if number < self.blocks.genesis_number or number > top:
                return None
            out: dict[str, Any] = {
                "blockID": self.blocks.block_id(number),
                "block_header": self.blocks.header(number),
            }
            txs = self.blocks.transactions(number)
            if txs:
                out["transactions"] = [_tx_json(t) for t in txs]
            return out

    def block_number_of_id(self, block_id: str) -> int | None:
        """The number of the block with this 64-hex id, if it exists."""
        if len(block_id) != 64:
            return None
        try:
            number = int(block_id[:16], 16)
        except ValueError:
            return None
        with self._lock:
            if number > self.produce_blocks() or number < self.blocks.genesis_number:
                return None
            return number if self.blocks.block_id(number) == block_id.lower() else None

    def transaction_info_json(self, txid: str, limit: int | None = None) -> dict[str, Any] | None:
        """`/wallet/gettransactioninfobyid`: None while the transaction's block is pending."""
        with self._lock:
            top = self.produce_blocks() if limit is None else limit
            tx = self.blocks.transaction(txid.lower())
            if tx is None or tx.block_number > top:
                return None
            return self._info_json(tx)

    def transaction_infos_json(self, number: int, limit: int | None = None) -> list[dict[str, Any]]:
        """`/wallet/gettransactioninfobyblocknum` for a block <= `limit` (default head)."""
        with self._lock:
            top = self.produce_blocks() if limit is None else limit
            if number > top:
                return []
            return [self._info_json(t) for t in self.blocks.transactions(number)]

    def receipt_summary(self, txid: str) -> dict[str, Any]:
        """Block and receipt of a recorded transaction, even before its block is out."""
        with self._lock:
            tx = self.blocks.transaction(txid)
            if tx is None:
                return {}
            r = tx.receipt
            return {
                "block": tx.block_number,
                "result": tx.ret,
                "energy_usage": r.energy_usage,
                "energy_fee": r.energy_fee,
                "energy_usage_total": r.energy_usage_total,
                "net_usage": r.net_usage,
                "net_fee": r.net_fee,
            }

    def _info_json(self, tx: Transaction) -> dict[str, Any]:
        r = tx.receipt
        out: dict[str, Any] = {
            "id": tx.txid,
            "fee": tx.fee,
            "blockNumber": tx.block_number,
            "blockTimeStamp": self.blocks.timestamp(tx.block_number),
            "contractResult": [_call_result(tx)] if tx.contract_address else [],
            "contract_address": tx.contract_address,
            "log": _transfer_log(tx),
            "receipt": {
                "energy_usage": r.energy_usage,
                "energy_fee": r.energy_fee,
                "energy_usage_total": r.energy_usage_total,
                "net_usage": r.net_usage,
                "net_fee": r.net_fee,
                "result": r.result,
            },
        }
        if tx.ret != "SUCCESS":
            out["result"] = "FAILED"
            out["resMessage"] = b"Not enough energy for 'SSTORE' operation executing".hex()
        return out


TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def _call_result(tx: Transaction) -> str:
    """The ABI-encoded return value of `transfer` (true), empty when the call failed."""
    return f"{1:064x}" if tx.ret == "SUCCESS" else ""


def _transfer_log(tx: Transaction) -> list[dict[str, Any]]:
    """The TRC-20 `Transfer(from, to, value)` event of a successful USDT-like transfer."""
    data = tx.value.get("data", "")
    if tx.ret != "SUCCESS" or not str(data).startswith("a9059cbb"):
        return []
    sender = str(tx.value["owner_address"])[2:].rjust(64, "0")
    return [
        {
            "address": tx.contract_address[2:],  # 20 bytes, as TVM logs carry it
            "topics": [TRANSFER_TOPIC, sender, data[8:72]],
            "data": data[72:136],
        }
    ]


def _energy_record(balance: int, expire_ms: int = 0) -> dict[str, Any]:
    return {"frozen_balance_for_energy": balance, "expire_time_for_energy": expire_ms}


def _tx_json(tx: Transaction) -> dict[str, Any]:
    """`Util.printTransactionToJSON` for the contract types the emulator records."""
    raw: dict[str, Any] = {
        "contract": [
            {
                "parameter": {
                    "value": tx.value,
                    "type_url": f"type.googleapis.com/protocol.{tx.contract_type}",
                },
                "type": tx.contract_type,
            }
        ],
        "ref_block_bytes": tx.ref_block_bytes,
        "ref_block_hash": tx.ref_block_hash,
        "expiration": tx.timestamp_ms + 60_000,
        "fee_limit": tx.fee_limit,
        "timestamp": tx.timestamp_ms,
    }
    return {
        "ret": [{"contractRet": tx.ret}],
        "signature": [tx.txid * 2 + "1b"],
        "txID": tx.txid,
        "raw_data": raw,
        "raw_data_hex": tx.raw_data_hex,
    }
