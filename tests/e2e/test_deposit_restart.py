"""Acceptance: `energyctl run` killed (SIGKILL) mid-run while deposit orders are in flight
and deposits keep landing, then started again on the same SQLite store.

The World (node + four vendor emulators, real-time clock) is served on loopback; a
DepositPolicy watches 50 addresses from a file and sends its webhook to a receiver in
this test. Customers pay into 40 of them, spread over the run (some while the sidecar is
down). At the end, counted at the vendor emulators and not only in the store: each
deposit episode got exactly one order, the quiet addresses none; every deposit got its
energy or is still open; the webhook, deduplicated by its delivery id (docs/deposits.md:
receivers deduplicate on `X-Energyctl-Delivery`), arrived once per episode, every
delivery signed validly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.core.deposits import NeedState
from engine.sidecar.webhooks import verify
from engine.store import OPEN_PHASES
from sandbox import demo
from sandbox.sweeping import customer_address
from tests.e2e.sandboxed import Sandbox
from tests.e2e.test_run_sidecar import Sidecar, _box

pytestmark = pytest.mark.slow

SECRET = "deposit-restart-secret"
ADDRESSES, QUIET = 50, 10
BEFORE = 20  # deposits made before the kill; the rest land while down and after


class Receiver:
    """The sweeper's webhook endpoint on loopback: keeps every delivery, answers 204."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ready"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    yield from _box(tmp_path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def deposit_policy(box: Sandbox, hook_url: str) -> list[str]:
    addresses = [demo.deposit_address(n) for n in range(ADDRESSES)]
    for address in addresses:  # activated, with TRX: any vendor may serve them
        box.world.fund(address, 20)
    (box.directory / "deposit-addresses.txt").write_text("\n".join(addresses) + "\n")
    (box.directory / "deposits.yaml").write_text(
        "apiVersion: energyctl/v1\nkind: DepositPolicy\nmetadata: {name: deposits}\nspec:\n"
        "  addressesFrom: {file: deposit-addresses.txt}\n"
        f"  sweepTo: {demo.SINK}\n  minDeposit: 1000000\n"
        "  providers: [mefree, eopen, itrx, tronsave]\n"
        "  maxPrice: 120 sun/energy\n  budget: {perDay: 20000 TRX}\n"
        f"  webhook: {{url: '{hook_url}', secret: {{fromEnv: DEPOSIT_WEBHOOK_SECRET}}}}\n"
    )
    box.env["DEPOSIT_WEBHOOK_SECRET"] = SECRET
    return addresses


class Customers:
    """Pays 5 USDT into each given address, one every `pause` seconds, in a thread."""

    def __init__(self, box: Sandbox, addresses: list[str], wallet: int, pause: float) -> None:
        self.chain, self.addresses, self.pause = box.world.chain, addresses, pause
        self.wallet = customer_address(wallet)
        self.chain.create_account(self.wallet, 1_000_000 * 1_000_000)
        self.made: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for address in self.addresses:
            self.chain.transfer_usdt(self.wallet, address, amount=5_000_000)
            self.made.append(address)
            time.sleep(self.pause)

    def start(self) -> Customers:
        self.thread.start()
        return self


def needs(box: Sandbox) -> list[Any]:
    import asyncio

    from engine.core.clock import SystemClock
    from engine.store import open_store

    async def read() -> list[Any]:
        store = await open_store(box.store_url, SystemClock())
        async with store:
            return await store.deposit_needs(open_only=False)

    return asyncio.run(read())


def test_a_killed_sidecar_loses_no_deposit_and_doubles_no_order(
    box: Sandbox, receiver: Receiver
) -> None:
    addresses = deposit_policy(box, receiver.url)
    paying, quiet = addresses[:-QUIET], addresses[-QUIET:]
    car = Sidecar(box)
    car.start()
    try:
        first = Customers(box, paying[:BEFORE], 0, pause=0.05).start()
        first.thread.join(10)

        def in_flight() -> bool:  # orders placed, some not delivered yet
            ordered = [n for n in needs(box) if n.state is NeedState.ORDERED]
            return bool(ordered) and bool(box.vendor_receivers())

        car.wait_for(in_flight, "ordering", 20)
        later = Customers(box, paying[BEFORE:], 1, pause=0.15).start()  # lands while down
        car.kill()
        at_kill = needs(box)
        time.sleep(1.5)
        car.start()
        later.thread.join(20)
        assert sorted(first.made + later.made) == sorted(paying)

        def settled() -> bool:
            found = needs(box)
            seen[:] = [
                (n.address[:6], f"{n.state}{n.notified_at is not None}", n.note)
                for n in found
                if n.state is not NeedState.READY or n.notified_at is None
            ]
            return len(found) == len(paying) and all(
                n.state is NeedState.READY and n.notified_at is not None for n in found
            )

        seen: list[tuple[str, str, str | None]] = []
        try:
            car.wait_for(settled, "every episode ready and notified", 25)
        except AssertionError:
            raise AssertionError(
                f"unsettled of {len(paying)}: {seen}\n{car.logs()[-3000:]}"
            ) from None
    finally:
        car.kill()
    assert any(n.state is NeedState.ORDERED for n in at_kill)  # the kill caught orders out

    # at the vendors: one order per deposit address, none for the quiet ones
    at_vendors = box.vendor_receivers()
    assert set(at_vendors) == set(paying), set(at_vendors) ^ set(paying)
    assert all(len(vendors) == 1 for vendors in at_vendors.values()), at_vendors
    assert not set(at_vendors) & set(quiet)
    # in the store: one episode per deposit, each with its one (delivered) order
    episodes = needs(box)
    assert Counter(n.address for n in episodes) == Counter(paying)
    orders = {o.address: o for o in box.orders()}
    assert len(orders) == len(box.orders()) and set(orders) == set(paying)
    assert not [o for o in orders.values() if o.phase in OPEN_PHASES]
    # an episode claimed when the kill came has no order id of its own: the restarted
    # sidecar found its address's order (placed or resolved) and waited for its energy
    assert all(n.client_order_id in (None, orders[n.address].client_order_id) for n in episodes)
    assert all(box.world.available_energy(a) >= 64_285 for a in paying)
    # the webhook: every delivery signed; one per episode by its delivery id
    now = time.time()
    assert receiver.deliveries
    assert all(verify(SECRET, headers, body, now) for headers, body in receiver.deliveries)
    by_id: dict[str, set[str]] = {}
    for headers, body in receiver.deliveries:
        event = json.loads(body)
        by_id.setdefault(headers["X-Energyctl-Delivery"], set()).add(event["address"])
    assert sorted(a for found in by_id.values() for a in found) == sorted(paying)
    assert {f"deposits-{n.id}" for n in episodes} == set(by_id)
