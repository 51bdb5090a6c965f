"""Removing a provider that has an open order, with real `energyctl run` processes.

Regression (issue 13, finding 6): the tracker stopped at "provider not configured" and
never looked at the chain again, so the order stayed open after the chain showed the
energy and the address was never topped up again. Orders of a removed provider are now
followed by the chain and end; the address is bought for again when it next runs short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import OPEN_PHASES, OrderPhase
from tests.e2e.sandboxed import Sandbox
from tests.e2e.test_run_sidecar import Sidecar, _box

pytestmark = pytest.mark.slow


def _remove_provider(directory: Path, name: str) -> None:
    """Drop the Provider document `name` and every policy's reference to it."""
    providers = directory / "providers.yaml"
    docs = providers.read_text().split("---\n")
    kept = [doc for doc in docs if f"  name: {name}\n" not in doc]
    assert len(kept) == len(docs) - 1, f"no Provider {name} in {providers}"
    policies = directory / "policies.yaml"
    text = policies.read_text().replace(f"{name}, ", "").replace(f", {name}", "")
    policies.write_text(text)
    providers.write_text("---\n".join(kept))


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    yield from _box(tmp_path)


def test_an_order_of_a_removed_provider_ends_and_the_address_is_served_again(
    box: Sandbox,
) -> None:
    car = Sidecar(box).start()
    try:
        address = box.policy_set.policy("deposit-sweep").spec.addresses[0]
        assert box.first_provider(address) == "eopen"
        box.world.emulators["eopen"].faults.slow_delivery(8.0)  # open for a while
        box.drain([address])
        car.wait_for(
            lambda: any(o.phase is OrderPhase.SUBMITTED for o in box.orders()),
            "an open eopen order",
        )
        [first] = box.orders()
        assert first.provider == "eopen" and first.address == address
        revision = car.status()["revision"]
        _remove_provider(box.directory, "eopen")
        car.wait_for(lambda: car.status()["revision"] != revision, "the edit in force")
        assert car.status()["reloadErrors"] == []
        # eopen delegates after 8 s: the chain shows it, the order ends delivered
        car.wait_for(
            lambda: box.orders()[0].phase is OrderPhase.DELIVERED,
            "the removed provider's order delivered",
            timeout=30,
        )
        [done] = box.orders()
        assert done.cost_sun is not None and done.cost_sun > 0
        # the address is not wedged: short again, it is bought for, elsewhere
        box.drain([address])
        car.wait_for(lambda: len(box.orders()) == 2, "a second order", timeout=30)
        second = next(o for o in box.orders() if o.client_order_id != first.client_order_id)
        assert second.address == address and second.provider != "eopen"
        car.wait_for(
            lambda: all(o.phase not in OPEN_PHASES for o in box.orders()),
            "the second order ended",
            timeout=30,
        )
        assert len(box.vendor_orders("eopen")) == 1
    finally:
        assert car.terminate() == 0, car.logs()[-4000:]
