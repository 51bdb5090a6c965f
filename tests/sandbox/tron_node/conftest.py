"""Fixtures for the emulated node: a chain on a stepped clock, funded accounts, a served node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tronpy.keys import to_base58check_address

from engine.core.clock import VirtualClock
from sandbox.tron_node import ChainState, TronNode

TRX = 1_000_000


def addr(i: int) -> str:
    """A deterministic base58 address (no key needed: the emulator never checks signatures)."""
    return str(to_base58check_address(b"\x41" + (0xE0E0 + i).to_bytes(20, "big")))


PROVIDER, USER, OTHER, FRESH = addr(1), addr(2), addr(3), addr(4)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def chain(clock: VirtualClock) -> ChainState:
    """A provider with 10M TRX staked for energy, and an activated user with 100 TRX."""
    state = ChainState(clock)
    state.create_account(PROVIDER, 20_000_000 * TRX)
    state.stake_energy(PROVIDER, 10_000_000 * TRX)
    state.create_account(USER, 100 * TRX)
    return state


@pytest.fixture
def node(chain: ChainState) -> Iterator[TronNode]:
    with TronNode.start(chain) as running:
        yield running
