"""Deposit traffic for the emulated world: customers paying in, and the exchange's sweeper.

An exchange gives each customer a deposit address; customers send USDT there, and the
exchange's sweeper moves each deposit to its hot wallet with one transfer FROM the
deposit address. `deposit_schedule` says when deposits land: each day, the `deposits`
profile of `sandbox/workload.py` (every deposit address receives one deposit at a random
time of that day), a fresh seed per day. `Customers` makes those deposits on the chain
(USDT-like transfers from funded customer wallets, who pay their own energy).

`Sweeper` is the exchange's side: it waits for "energy ready" (`ready(address)`, which
asks the engine: the deposit episode's state, or the sidecar's `GET /v1/addresses` or
webhook) and then sweeps the address's whole token balance to the hot wallet. A deposit
not ready after `give_up` seconds is swept anyway, burning TRX for the energy (as a
sweeper with a deadline would): such a sweep is a *burned sweep*. Deposit addresses are
refilled with TRX when low, so a sweep never fails for want of TRX to burn.

Neighbours: `sandbox/simulating_deposits.py` (the simulator's loop), `sandbox/running.py`
(`energyctl sandbox --workload deposits`), `sandbox/tron_node` (the chain).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sandbox import demo
from sandbox.tron_node import ChainState
from sandbox.tron_node.accounts import to_hex
from sandbox.workload import DAY, TRX, TransferRecord, profile


@dataclass(frozen=True, slots=True)
class Deposit:
    at: float  # seconds from the start
    address: str
    amount: int  # token units (6 decimals)


def deposit_schedule(addresses: Sequence[str], *, days: float, seed: int = 0) -> list[Deposit]:
    """One deposit per address per day (the `deposits` profile, a seed per day)."""
    rng = random.Random(f"deposits/{seed}")
    out: list[Deposit] = []
    day = 0
    while day < days:
        span = min(1.0, days - day)
        for item in profile("deposits", addresses, days=span, seed=seed * 10_000 + day).transfers:
            out.append(Deposit(day * DAY + item.at, item.sender, rng.randint(5, 500) * 1_000_000))
        day += 1
    out.sort(key=lambda d: (d.at, d.address))
    return out


def customer_address(n: int) -> str:
    return demo.key_address("customer", n)


class Customers:
    """Plays a deposit schedule on the chain, from `start` (epoch seconds)."""

    def __init__(self, chain: ChainState, schedule: Sequence[Deposit], *, start: float) -> None:
        self.chain, self.schedule, self.start = chain, list(schedule), start
        self.wallets = [customer_address(n) for n in range(8)]
        for wallet in self.wallets:
            if not chain.has_account(wallet):
                chain.create_account(wallet, 1_000_000 * TRX)
        self._next = 0
        self.made: list[tuple[float, str, str]] = []  # (epoch, address, txid)

    def next_at(self) -> float | None:
        if self._next >= len(self.schedule):
            return None
        return self.start + self.schedule[self._next].at

    def run_until(self, now: float) -> list[Deposit]:
        landed: list[Deposit] = []
        while self._next < len(self.schedule) and self.start + self.schedule[self._next].at <= now:
            item = self.schedule[self._next]
            wallet = self.wallets[self._next % len(self.wallets)]
            self._next += 1
            if self.chain.balance(wallet) < 10_000 * TRX:
                self.chain.fund(wallet, 1_000_000 * TRX)
            txid = self.chain.transfer_usdt(wallet, item.address, amount=item.amount)
            self.made.append((self.chain.clock.now(), item.address, txid))
            landed.append(item)
        return landed


@dataclass
class Sweeper:
    """The exchange's sweeper; see the module docstring."""

    chain: ChainState
    hot: str
    ready: Callable[[str], Awaitable[bool]]
    earliest: float = 60.0  # a sweep is not started sooner after the deposit landed
    give_up: float = 1800.0  # then sweep anyway, burning TRX
    refill_below_trx: int = 50
    pending: dict[str, float] = field(default_factory=dict)  # address -> landed at (epoch)
    records: list[TransferRecord] = field(default_factory=list)
    burned_sweeps: int = 0

    def landed(self, address: str, at: float) -> None:
        self.pending.setdefault(address, at)

    async def run(self, now: float) -> list[TransferRecord]:
        """Sweep every pending address whose energy is ready (or that waited too long)."""
        done: list[TransferRecord] = []
        for address, at in sorted(self.pending.items(), key=lambda item: item[1]):
            if now - at < self.earliest:
                continue
            if not await self.ready(address) and now - at < self.give_up:
                continue
            del self.pending[address]
            record = self._sweep(address)
            if record is not None:
                done.append(record)
        self.records += done
        return done

    def _sweep(self, address: str) -> TransferRecord | None:
        chain = self.chain
        amount = chain.usdt_balance(to_hex(address))
        if amount <= 0:
            return None
        if chain.balance(address) < self.refill_below_trx * TRX:
            chain.fund(address, 100 * TRX)
        fresh = not chain.holds_usdt(self.hot)
        txid = chain.transfer_usdt(address, self.hot, amount=amount)
        receipt = chain.receipt_summary(txid)
        record = TransferRecord(
            at=chain.clock.now(),
            sender=address,
            fresh=fresh,
            txid=txid,
            ok=receipt.get("result") == "SUCCESS",
            energy_used=int(receipt.get("energy_usage", 0)),
            energy_total=int(receipt.get("energy_usage_total", 0)),
            burned_sun=int(receipt.get("energy_fee", 0)),
        )
        if record.burned_sun > 0:
            self.burned_sweeps += 1
        return record


__all__ = ["Customers", "Deposit", "Sweeper", "customer_address", "deposit_schedule"]
