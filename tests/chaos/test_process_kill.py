"""The real process kill: `energyctl apply` dies (`os._exit(137)`) at crash points the
in-process chaos runs emulate, and a restarted process finds what the dead one left.

Reuses `tests/e2e/test_crash.py`'s served sandbox. `before_intent`: nothing was written
or sent, the restart buys once. `before_move` (tracking, after the purchase): the order
is found open and followed to the chain; still one order at the vendor.
"""

from __future__ import annotations

import pytest

from engine.store import OrderPhase
from tests.e2e.sandboxed import Sandbox, sandbox

__all__ = ["sandbox"]

pytestmark = pytest.mark.slow

RESTART = ("--intent-grace", "0", "--wait", "20")


def test_killed_before_the_intent_buys_once_on_restart(sandbox: Sandbox) -> None:
    box = sandbox
    address = box.policy_set.policy("settlement").spec.addresses[0]
    box.drain([address])
    result = box.apply(crash_at="before_intent")
    assert result.returncode == 137, result.stdout + result.stderr
    assert box.orders() == [] and box.vendor_receivers() == {}
    result = box.apply(*RESTART)
    assert result.returncode == 0, result.stdout + result.stderr
    box.wait_for_energy(address, box.threshold(address))
    assert box.vendor_receivers() == {address: ["mefree"]}


def test_killed_while_tracking_is_followed_on_restart(sandbox: Sandbox) -> None:
    box = sandbox
    address = box.policy_set.policy("settlement").spec.addresses[0]
    box.drain([address])
    result = box.apply("--wait", "20", crash_at="before_move")
    assert result.returncode == 137, result.stdout + result.stderr
    [order] = box.orders()
    assert order.phase is OrderPhase.SUBMITTED, order  # bought; the move never written
    box.wait_for_energy(address, box.threshold(address))
    result = box.apply(*RESTART)
    assert result.returncode == 0, result.stdout + result.stderr
    [order] = box.orders()
    assert order.phase is OrderPhase.DELIVERED, order
    assert box.vendor_receivers() == {address: ["mefree"]}
