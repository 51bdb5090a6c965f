"""Crash tests: `energyctl apply` killed (exit 137, `ENERGYCTL_TEST_CRASH_AT`) between the
intent and the provider call, and between the provider's answer and the store write,
then restarted. No order may be lost (the intent is found and resolved or held) and none
doubled (one order at the vendor at most, one open order per address at most).

One drained address per case, so the crash happens on a known vendor: `settlement`
(Mefree first: resolved exactly by its idempotency key) and `deposit-sweep` (eopen first:
no lookup, resolved by the chain or held).
"""

from __future__ import annotations

import pytest

from engine.store import OrderPhase
from tests.e2e.sandboxed import Sandbox, sandbox

__all__ = ["sandbox"]

pytestmark = pytest.mark.slow

RESTART = ("--intent-grace", "0", "--wait", "20")


def crash(box: Sandbox, policy: str, point: str) -> str:
    address = box.policy_set.policy(policy).spec.addresses[0]
    box.drain([address])
    result = box.apply(crash_at=point)
    assert result.returncode == 137, result.stdout + result.stderr
    [order] = box.orders()  # the intent was committed before the crash
    assert order.address == address and order.phase is OrderPhase.INTENT
    return address


@pytest.mark.parametrize("point", ["after_intent", "after_place"])
def test_mefree_crash_is_resolved_exactly_once(sandbox: Sandbox, point: str) -> None:
    box = sandbox
    address = crash(box, "settlement", point)
    placed_before = len(box.vendor_orders("mefree"))
    assert placed_before == (1 if point == "after_place" else 0)
    result = box.apply(*RESTART)
    assert result.returncode == 0, result.stdout + result.stderr
    box.wait_for_energy(address, box.threshold(address))
    box.apply(*RESTART)  # settles it if the first restart's wait ended before the chain
    [order] = box.orders()  # the intent itself was resolved: no second intent
    assert order.phase is OrderPhase.DELIVERED, order
    assert len(box.vendor_orders("mefree")) == 1  # re-placing the same id never doubles
    assert box.vendor_receivers() == {address: ["mefree"]}


def test_eopen_crash_before_the_call_holds_the_address(sandbox: Sandbox) -> None:
    box = sandbox
    address = crash(box, "deposit-sweep", "after_intent")
    result = box.apply(*RESTART)
    assert result.returncode == 0, result.stdout + result.stderr
    [order] = box.orders()
    # never sent, but eopen has no lookup: held until the chain or an operator says
    assert order.phase is OrderPhase.UNKNOWN
    assert box.vendor_receivers() == {}  # and nothing bought elsewhere in the meantime
    assert "unknown@eopen" in box.energyctl("status", "-f", str(box.directory)).stdout
    assert address in box.energyctl("orders", "-f", str(box.directory), "--state", "open").stdout


def test_eopen_crash_after_the_answer_is_found_on_chain(sandbox: Sandbox) -> None:
    box = sandbox
    address = crash(box, "deposit-sweep", "after_place")
    assert len(box.vendor_orders("eopen")) == 1
    box.wait_for_energy(address, box.threshold(address))
    result = box.apply(*RESTART)
    assert result.returncode == 0, result.stdout + result.stderr
    [order] = box.orders()
    assert order.phase is OrderPhase.DELIVERED, order
    assert box.vendor_receivers() == {address: ["eopen"]}
