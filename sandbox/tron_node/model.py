"""The resource arithmetic of the emulated node, as java-tron computes it: pure functions.

Everything here is integer (or IEEE-double where java-tron uses `double`, so results match
bit for bit) and free of state, clocks and HTTP. `state.py` applies these functions to
accounts; the property tests in `tests/sandbox/tron_node/` exercise them directly.

Sources (java-tron, https://github.com/tronprotocol/java-tron: `ResourceProcessor`,
`EnergyProcessor`, `UnDelegateResourceActuator`, `FreezeV2Util`, and the constants of
`common/src/main/java/org/tron/core/config/Parameter.java`):
usage decays linearly to 0 over a window of 28,800 slots (24 h of 3 s blocks); a slot is
`block_timestamp_ms // 3000` (mainnet genesis timestamp is 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BLOCK_INTERVAL_MS = 3000
WINDOW_SLOTS = 24 * 3600 * 1000 // BLOCK_INTERVAL_MS  # 28,800
PRECISION = 1_000_000
WINDOW_PRECISION = 1000
TRX = 1_000_000  # sun per TRX


def java_round(x: float) -> int:
    """`Math.round(double)`: half rounds up (towards positive infinity)."""
    return math.floor(x + 0.5)


def divide_ceil(numerator: int, denominator: int) -> int:
    """`ResourceProcessor.divideCeil` for the non-negative operands it is used with."""
    return numerator // denominator + (1 if numerator % denominator > 0 else 0)


@dataclass(frozen=True, slots=True)
class Usage:
    """One account's usage of one resource: stored value, last consumption slot, window.

    `window_raw`/`optimized` are `energy_window_size`/`energy_window_optimized` as stored:
    raw 0 means the default 24 h; optimized windows are in slot x 1000 units.
    """

    used: int = 0
    latest_slot: int = 0
    window_raw: int = 0
    optimized: bool = False

    @property
    def window(self) -> int:
        """`AccountCapsule.getWindowSize`: the window in slots."""
        if self.window_raw == 0:
            return WINDOW_SLOTS
        if self.optimized:
            if self.window_raw < WINDOW_PRECISION:
                return WINDOW_SLOTS
            return self.window_raw // WINDOW_PRECISION
        return self.window_raw

    @property
    def window_v2(self) -> int:
        """`AccountCapsule.getWindowSizeV2`: the window in slot x 1000 units."""
        if self.window_raw == 0:
            return WINDOW_SLOTS * WINDOW_PRECISION
        return self.window_raw if self.optimized else self.window_raw * WINDOW_PRECISION


def decay(last_usage: int, last_slot: int, now: int, window: int = WINDOW_SLOTS) -> int:
    """`ResourceProcessor.increase(lastUsage, 0, lastTime, now, window)`: usage left at `now`.

    This is `recovery()`: the linear 24 h recovery (65,000 -> 43,333 after 8 h).
    """
    return increase_simple(last_usage, 0, last_slot, now, window)


def increase_simple(
    last_usage: int, usage: int, last_slot: int, now: int, window: int = WINDOW_SLOTS
) -> int:
    """`ResourceProcessor.increase(lastUsage, usage, lastTime, now, window)` (free net)."""
    average_last = divide_ceil(last_usage * PRECISION, window)
    average_new = divide_ceil(usage * PRECISION, window)
    if last_slot != now:
        if last_slot + window > now:
            delta = now - last_slot
            average_last = java_round(average_last * ((window - delta) / window))
        else:
            average_last = 0
    return (average_last + average_new) * window // PRECISION


def increase_v2(usage: Usage, amount: int, now: int) -> Usage:
    """`ResourceProcessor.increaseV2`: decay `usage` to `now`, add `amount`, remix the window.

    The returned `latest_slot` is unchanged: java-tron's read path (`updateUsage`) leaves the
    last-consumption time alone, and its write path (`useEnergy`) sets it separately.
    """
    old_window = usage.window
    average_last = divide_ceil(usage.used * PRECISION, old_window)
    average_new = divide_ceil(amount * PRECISION, WINDOW_SLOTS)
    if usage.latest_slot != now:
        if usage.latest_slot + old_window > now:
            delta = now - usage.latest_slot
            average_last = java_round(average_last * ((old_window - delta) / old_window))
        else:
            average_last = 0
    new_used = (average_last * old_window + average_new * WINDOW_SLOTS) // PRECISION
    remain = average_last * old_window // PRECISION
    full = WINDOW_SLOTS * WINDOW_PRECISION
    if remain == 0:
        return Usage(new_used, usage.latest_slot, full, True)
    remain_window = usage.window_v2 - (now - usage.latest_slot) * WINDOW_PRECISION
    new_window = divide_ceil(remain * remain_window + amount * full, new_used)
    return Usage(new_used, usage.latest_slot, min(new_window, full), True)


def consume(usage: Usage, amount: int, now: int) -> Usage:
    """`EnergyProcessor.useEnergy` under Stake 2.0: add `amount` at slot `now`."""
    raised = increase_v2(usage, amount, now)
    return Usage(raised.used, now, raised.window_raw, raised.optimized)


def energy_limit(frozen_sun: int, total_limit: int, total_weight: int) -> int:
    """`EnergyProcessor.calculateGlobalEnergyLimitV2`: energy from stake (doubles, then long)."""
    if total_weight == 0:
        return 0
    return int((frozen_sun / TRX) * (total_limit / total_weight))


def sun_for_energy(energy: int, total_limit: int, total_weight: int) -> int:
    """Smallest whole-TRX amount (in sun, >= 1 TRX) whose `energy_limit` is >= `energy`."""
    if total_limit <= 0 or total_weight <= 0:
        raise ValueError("no energy can be bought while the energy pool or weight is 0")
    trx = max(1, divide_ceil(energy * total_weight, total_limit))
    # The ceiling is exact in integers; the node computes in doubles, so check it that way.
    while energy_limit(trx * TRX, total_limit, total_weight) < energy:
        trx += 1
    return trx * TRX


def energy_usage_in_sun(used: int, total_limit: int, total_weight: int) -> int:
    """Used energy expressed as stake (`DelegateResourceActuator.validate`, ENERGY case)."""
    if total_limit == 0:
        return 0
    return int(used * TRX * (total_weight / total_limit))


def undelegate_transfer(
    receiver_used: int, balance: int, receiver_frozen: int, total_limit: int, total_weight: int
) -> int:
    """Used energy moved from receiver to owner when `balance` sun is undelegated.

    `UnDelegateResourceActuator.execute`: the receiver's (already decayed) usage times the
    share of its energy stake being withdrawn, capped at the energy that stake yields.
    """
    if receiver_frozen <= 0 or total_weight == 0:
        return 0
    cap = int(balance / TRX * (total_limit / total_weight))
    share = int(receiver_used * (balance / receiver_frozen))
    return min(cap, share)


def undelegate_increase_v2(owner: Usage, receiver_window_v2: int, transfer: int, now: int) -> Usage:
    """`ResourceProcessor.unDelegateIncreaseV2`: the owner takes `transfer` used energy."""
    own = increase_v2(owner, 0, now)
    total = own.used + transfer
    full = WINDOW_SLOTS * WINDOW_PRECISION
    if total == 0:
        return Usage(0, now, full, True)
    window = divide_ceil(
        own.used * max(0, own.window_v2) + transfer * max(0, receiver_window_v2), total
    )
    return Usage(total, now, min(window, full), True)


@dataclass(frozen=True, slots=True)
class EnergyBill:
    """How a contract call's energy was paid (`ReceiptCapsule.payEnergyBill`)."""

    from_pool: int  # receipt.energy_usage: taken from staked/delegated energy
    burned_sun: int  # receipt.energy_fee: TRX burned for the rest
    total: int  # receipt.energy_usage_total: what the call consumed
    ok: bool  # False: OUT_OF_ENERGY (the balance or fee limit could not pay the rest)


def pay_energy(needed: int, available: int, balance: int, fee: int, fee_limit: int) -> EnergyBill:
    """Pool first, then burn `fee` sun per missing energy; too little money -> OUT_OF_ENERGY.

    As in java-tron, the call's energy limit is what the pool holds plus what
    `min(balance, fee_limit)` can buy; a call that needs more fails and consumes that whole
    limit (the pool is emptied and the affordable TRX is burned).
    """
    available = max(0, available)
    if needed <= available:
        return EnergyBill(needed, 0, needed, True)
    shortfall = needed - available
    if fee <= 0:
        return EnergyBill(available, 0, needed, True)
    affordable = min(balance, fee_limit) // fee
    if shortfall <= affordable:
        return EnergyBill(available, shortfall * fee, needed, True)
    return EnergyBill(available, affordable * fee, available + affordable, False)
