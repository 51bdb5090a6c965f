"""ChainState: activation, staking, delegation with locks, undelegation, transfers, blocks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.clock import VirtualClock
from sandbox.tron_node import ChainParams, ChainState, TronError
from sandbox.tron_node.accounts import to_hex
from tests.sandbox.tron_node.conftest import FRESH, OTHER, PROVIDER, TRX, USER, addr

HOLDER, FRESH_ENERGY = 64_285, 130_285


def test_staking_yields_energy_at_limit_over_weight(chain: ChainState) -> None:
    weight = chain.total_energy_weight
    assert weight == ChainParams().total_energy_weight + 10_000_000
    expected = int(10_000_000 * (180_000_000_000 / weight))
    assert chain.available_energy(PROVIDER) == expected
    assert chain.balance(PROVIDER) == 10_000_000 * TRX


def test_stake_validation(chain: ChainState) -> None:
    with pytest.raises(TronError, match=r"Account\[41[0-9a-f]{40}\] not exists"):
        chain.stake_energy(FRESH, 10 * TRX)
    with pytest.raises(TronError, match="greater than or equal to 1 TRX"):
        chain.stake_energy(USER, TRX - 1)
    with pytest.raises(TronError, match="less than or equal to accountBalance"):
        chain.stake_energy(USER, 101 * TRX)


def test_delegation_moves_energy_and_validates_like_java_tron(chain: ChainState) -> None:
    sun = chain.sun_for_energy(65_000)
    chain.delegate_energy(PROVIDER, USER, sun)
    assert chain.available_energy(USER) >= 65_000
    assert chain.available_energy(USER) < 65_000 + 20  # at most one TRX's worth above
    with pytest.raises(TronError, match=r"^Account\[" + to_hex(FRESH) + r"\] not exists$"):
        chain.delegate_energy(PROVIDER, FRESH, sun)
    with pytest.raises(TronError, match="available FreezeEnergyV2 balance"):
        chain.delegate_energy(PROVIDER, USER, 10_000_001 * TRX)
    with pytest.raises(TronError, match="must not be the same"):
        chain.delegate_energy(PROVIDER, PROVIDER, sun)
    with pytest.raises(TronError, match="greater than or equal to 1 TRX"):
        chain.delegate_energy(PROVIDER, USER, TRX // 2)


def test_lock_period_blocks_undelegation_until_expiry(
    chain: ChainState, clock: VirtualClock
) -> None:
    chain.delegate_energy(PROVIDER, USER, 1000 * TRX, lock_period_blocks=100)
    chain.delegate_energy(PROVIDER, USER, 500 * TRX)
    with pytest.raises(TronError, match="request=1500000000, unlock_balance=500000000"):
        chain.undelegate_energy(PROVIDER, USER, 1500 * TRX)
    with pytest.raises(TronError, match="cannot be less than the remaining time"):
        chain.delegate_energy(PROVIDER, USER, 10 * TRX, lock_period_blocks=10)
    with pytest.raises(TronError, match="cannot exceed 864000"):
        chain.delegate_energy(PROVIDER, USER, 10 * TRX, lock_period_blocks=864_001)
    clock.advance(100 * 3 + 3)
    chain.undelegate_energy(PROVIDER, USER, 1500 * TRX)
    assert chain.available_energy(USER) == 0
    with pytest.raises(TronError, match="delegated Resource does not exist"):
        chain.undelegate_energy(PROVIDER, USER, TRX)


def test_transfer_costs_fresh_then_holder_energy(chain: ChainState) -> None:
    chain.delegate_energy(PROVIDER, USER, chain.sun_for_energy(300_000))
    before = chain.available_energy(USER)
    chain.transfer_usdt(USER, OTHER)
    assert before - chain.available_energy(USER) == FRESH_ENERGY
    chain.transfer_usdt(USER, OTHER)
    assert before - chain.available_energy(USER) == FRESH_ENERGY + HOLDER
    # The first transfer's 345 bytes fit in the 600 free; the second's do not: burned.
    assert chain.balance(USER) == 100 * TRX - 345 * 1000


@settings(max_examples=60, deadline=None)
@given(delegated_trx=st.integers(0, 20_000), holder=st.booleans())
def test_transfer_short_of_energy_burns_exactly_the_shortfall(
    delegated_trx: int, holder: bool
) -> None:
    chain = ChainState(VirtualClock())
    chain.create_account(PROVIDER, 10_000_000 * TRX)
    chain.stake_energy(PROVIDER, 5_000_000 * TRX)
    chain.create_account(USER, 1_000 * TRX)
    if delegated_trx:
        chain.delegate_energy(PROVIDER, USER, delegated_trx * TRX)
    if holder:
        chain.mark_usdt_holder(OTHER)
    available = chain.available_energy(USER)
    needed = HOLDER if holder else FRESH_ENERGY
    receipt = chain.receipt_summary(chain.transfer_usdt(USER, OTHER))
    shortfall = max(0, needed - available)
    assert receipt["result"] == "SUCCESS"
    assert receipt["energy_usage"] == needed - shortfall
    assert receipt["energy_fee"] == shortfall * 100
    assert chain.balance(USER) == 1_000 * TRX - shortfall * 100
    assert chain.available_energy(USER) == max(0, available - needed)


def test_transfer_without_energy_burns_and_fails_when_broke(chain: ChainState) -> None:
    chain.create_account(OTHER, 5 * TRX)
    tx = chain.transfer_usdt(OTHER, USER)
    receipt = chain.receipt_summary(tx)
    assert receipt["result"] == "OUT_OF_ENERGY"
    assert receipt["energy_fee"] == 5 * TRX
    assert chain.balance(OTHER) == 0
    assert not chain.holds_usdt(USER)


def test_bandwidth_free_then_burned(chain: ChainState) -> None:
    chain.delegate_energy(PROVIDER, USER, chain.sun_for_energy(300_000))
    first = chain.receipt_summary(chain.transfer_usdt(USER, OTHER))
    second = chain.receipt_summary(chain.transfer_usdt(USER, OTHER))
    assert (first["net_usage"], first["net_fee"]) == (345, 0)
    assert (second["net_usage"], second["net_fee"]) == (0, 345 * 1000)


def test_undelegation_moves_used_energy_proportionally(chain: ChainState) -> None:
    chain.delegate_energy(PROVIDER, USER, 20_000 * TRX)
    chain.transfer_usdt(USER, OTHER)  # 130,285 used from the pool
    used = chain.account_resource_json(to_hex(USER))["EnergyUsed"]  # type: ignore[index]
    assert used == FRESH_ENERGY
    chain.undelegate_energy(PROVIDER, USER, 5_000 * TRX)
    after = chain.account_resource_json(to_hex(USER))["EnergyUsed"]  # type: ignore[index]
    owner = chain.account_resource_json(to_hex(PROVIDER))["EnergyUsed"]  # type: ignore[index]
    moved = int(FRESH_ENERGY * (5_000 / 20_000))
    assert after == FRESH_ENERGY - moved
    assert owner == moved


def test_blocks_are_lazy_and_solid_lags(chain: ChainState, clock: VirtualClock) -> None:
    assert chain.head_block_number() == 0
    tx = chain.transfer_usdt(USER, OTHER)
    assert chain.transaction_info_json(tx) is None  # still pending in block 1
    clock.advance(3)
    assert chain.head_block_number() == 1
    assert chain.transaction_info_json(tx)["blockNumber"] == 1  # type: ignore[index]
    clock.advance(86_400)  # a day: 28,800 empty blocks, synthesised only when read
    assert chain.head_block_number() == 1 + 28_800
    assert chain.solid_block_number() == 1 + 28_800 - 19
    block = chain.block_json(28_000)
    assert block is not None and "transactions" not in block
    assert int(block["blockID"][:16], 16) == 28_000
    assert block["block_header"]["raw_data"]["parentHash"] == chain.blocks.block_id(27_999)
    assert chain.block_json(28_802) is None


def test_fund_activates_and_create_refuses_duplicates(chain: ChainState) -> None:
    assert not chain.has_account(FRESH)
    chain.fund(FRESH, 3 * TRX)
    assert chain.has_account(FRESH) and chain.balance(FRESH) == 3 * TRX
    with pytest.raises(TronError, match="Account has existed"):
        chain.create_account(FRESH)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["transfer", "advance", "delegate", "undelegate", "weight"]),
        st.integers(1, 4),
        st.integers(1, 40_000),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_available_energy_is_never_negative_and_money_is_conserved(
    ops: list[tuple[str, int, int]],
) -> None:
    clock = VirtualClock()
    chain = ChainState(clock)
    chain.create_account(PROVIDER, 10_000_000 * TRX)
    chain.stake_energy(PROVIDER, 5_000_000 * TRX)
    users = [addr(10 + i) for i in range(5)]
    for u in users:
        chain.create_account(u, 30 * TRX)
    for op, who, n in ops:
        user = users[who]
        try:
            if op == "transfer":
                chain.transfer_usdt(user, users[(who + 1) % 5])
            elif op == "advance":
                clock.advance(n * 3)
            elif op == "delegate":
                chain.delegate_energy(PROVIDER, user, n * TRX)
            elif op == "undelegate":
                chain.undelegate_energy(PROVIDER, user, n * TRX)
            else:  # someone else stakes: everyone's limit shrinks, used may exceed it
                chain.fund(addr(100 + n), n * 10_000 * TRX)
                chain.stake_energy(addr(100 + n), n * 10_000 * TRX)
        except TronError:
            pass
        for u in [*users, PROVIDER]:
            assert chain.available_energy(u) >= 0
            resource = chain.account_resource_json(to_hex(u))
            assert resource is not None and resource["EnergyUsed"] >= 0
            assert chain.balance(u) >= 0
