"""`energyctl orders resolve` against the sandbox: an operator ends a held order by hand.

The held order is made as in the crash tests: `apply` killed between the intent and the
call on `deposit-sweep` (eopen first: no lookup), then restarted, which holds it as
`unknown` (nothing on chain). Each test tries what must be refused: an unknown id, no
confirmation, a terminal order, a delegation to the address on chain since the order.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.store import OrderPhase, OrderRecord
from tests.e2e.sandboxed import Sandbox, sandbox

__all__ = ["sandbox"]

pytestmark = pytest.mark.slow


def held_order(box: Sandbox) -> OrderRecord:
    address = box.policy_set.policy("deposit-sweep").spec.addresses[0]
    box.drain([address])
    crashed = box.apply(crash_at="after_intent")
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    restarted = box.apply("--intent-grace", "0")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    [order] = box.orders()
    assert (order.address, order.provider, order.phase) == (address, "eopen", OrderPhase.UNKNOWN)
    assert box.vendor_receivers() == {}  # never sent
    return order


def resolve(box: Sandbox, coid: str, *args: str) -> Any:
    return box.energyctl("orders", "resolve", coid, "-f", str(box.directory), *args)


def test_an_unknown_id_is_refused_with_exit_1(sandbox: Sandbox) -> None:
    result = resolve(sandbox, "ec-nope", "--as", "failed", "--reason", "x", "--yes")
    assert result.returncode == 1
    assert "no order with client order id 'ec-nope'" in result.stderr


def test_a_held_order_is_resolved_failed_once_and_the_address_bought_again(
    sandbox: Sandbox,
) -> None:
    box = sandbox
    order = held_order(box)
    coid = order.client_order_id
    why = ("--as", "failed", "--reason", "eopen support: never received", "--by", "alice")
    unconfirmed = resolve(box, coid, *why)  # no terminal and no --yes
    assert unconfirmed.returncode == 1
    assert "pass --yes" in unconfirmed.stderr
    assert [o.phase for o in box.orders()] == [OrderPhase.UNKNOWN]

    done = resolve(box, coid, *why, "--yes", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert (report["from"], report["to"], report["resolved_by"]) == ("unknown", "failed", "alice")
    assert "no delegation" in report["chain"]
    history = box.history(coid)
    last = history[-1]
    assert (last.from_phase, last.to_phase) == (OrderPhase.UNKNOWN, OrderPhase.FAILED)
    assert last.detail["resolved_by"] == "alice"
    assert last.detail["reason"] == "eopen support: never received"
    assert box.spent("deposit-sweep") == 0  # the reservation is released
    shown = box.energyctl("orders", "history", coid, "-f", str(box.directory))
    assert shown.returncode == 0, shown.stderr
    assert "unknown -> failed" in shown.stdout and '"resolved_by": "alice"' in shown.stdout
    missing = box.energyctl("orders", "history", "ec-nope", "-f", str(box.directory))
    assert missing.returncode == 1 and "'ec-nope'" in missing.stderr

    again = resolve(box, coid, "--as", "delivered", "--reason", "changed my mind", "--yes")
    assert again.returncode == 1
    assert "already failed (terminal phases are final)" in again.stderr
    assert len(box.history(coid)) == len(history)

    bought = box.apply()  # the address is no longer held
    assert bought.returncode == 0, bought.stdout + bought.stderr
    assert box.vendor_receivers() == {order.address: ["eopen"]}


def test_failed_is_refused_while_a_delegation_from_the_vendor_is_on_chain(
    sandbox: Sandbox,
) -> None:
    box = sandbox
    order = held_order(box)
    coid = order.client_order_id
    # eopen's delegating account delegates a little to the address, as a late or partial
    # delivery would; too little for tracking to call the order delivered
    box.world.delegators["eopen"].delegate(order.address, 5_000, 3600)
    refused = resolve(box, coid, "--as", "failed", "--reason", "looks dead", "--yes")
    assert refused.returncode == 1
    err = refused.stderr
    assert "the chain shows a delegation" in err and "from eopen" in err, err
    assert "nothing was changed" in err
    assert [o.phase for o in box.orders()] == [OrderPhase.UNKNOWN]

    delivered = resolve(box, coid, "--as", "delivered", "--reason", "it came late", "--yes")
    assert delivered.returncode == 0, delivered.stderr
    [now] = box.orders()
    assert now.phase is OrderPhase.DELIVERED and now.cost_sun == order.reserved_sun
    assert box.spent("deposit-sweep") == order.reserved_sun  # the budget stays spent
    assert box.history(coid)[-1].detail["resolved_by"]  # the OS user, or $ENERGYCTL_OPERATOR
