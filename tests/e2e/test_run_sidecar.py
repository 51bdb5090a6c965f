"""`energyctl run` as a real process against the served sandbox World, driven over HTTP.

The World (node + four vendor emulators, real-time clock) is served on loopback by the
test process; the sidecar runs as a subprocess on the policy files the World writes, with
a short observation interval, a bearer token, and fast policy reloads. Every address
starts with 450k delegated energy (`tests/e2e/sandboxed.py`).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.core.clock import ScaledClock
from engine.store import OrderPhase
from sandbox import demo
from sandbox.world import World
from tests.e2e.sandboxed import ENERGYCTL, START_ENERGY, Sandbox

pytestmark = pytest.mark.slow

TOKEN = "test-token-3f9a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sidecar:
    """One `energyctl run` process; `url` is its API."""

    def __init__(
        self,
        box: Sandbox,
        *,
        interval: str = "1s",
        max_actions: int = 30,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.box, self.extra = box, extra
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        engine = box.directory / "engine.yaml"
        text = engine.read_text().replace("interval: 15s", f"interval: {interval}")
        text = text.replace("maxActionsPerPass: 30", f"maxActionsPerPass: {max_actions}")
        if "\n  http:\n" not in text:
            text += "  http:\n    apiToken: {fromEnv: ENERGYCTL_TEST_API_TOKEN}\n"
        engine.write_text(text)
        self.env = {**box.env, "ENERGYCTL_TEST_API_TOKEN": TOKEN}
        self.log = box.directory / f"sidecar-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sidecar:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [ENERGYCTL, "run", "-f", str(self.box.directory),
                 "--listen", f"127.0.0.1:{self.port}", "--reload-interval", "0.2",
                 "--stop-grace", "15", "--log-level", "debug", *self.extra],
                env=self.env, cwd=self.box.directory, stdout=out, stderr=out,
            )  # fmt: skip
        last: list[str] = []

        def ready() -> bool:
            answer = self.get("/readyz")
            last[:] = [answer.text]
            return answer.status_code == 200

        try:
            self.wait_for(ready, "ready", 30)
        except AssertionError as exc:
            self.kill()  # never leave a process behind a failed start
            raise AssertionError(f"{exc}\nlast /readyz answer: {last}") from None
        except BaseException:
            self.kill()  # never leave a process behind a failed start
            raise
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=headers, timeout=60)

    def status(self) -> dict[str, Any]:
        return dict(self.get("/v1/status").json())

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"sidecar exited {self.proc.returncode}:\n{self.logs()}")
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"never {what}:\n{self.logs()[-4000:]}")
            time.sleep(0.1)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise
        return self.proc.returncode


def _box(tmp_path: Path, watched: int = demo.WATCHED) -> Iterator[Sandbox]:
    with World(clock=ScaledClock(), watched=watched) as world:
        box = Sandbox(world, tmp_path)
        yield box
        box.assert_one_open_per_address()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    yield from _box(tmp_path)


@pytest.fixture
def sidecar(box: Sandbox) -> Iterator[Sidecar]:
    car = Sidecar(box)
    try:
        yield car.start()
    finally:
        if car.proc is not None:
            assert car.terminate() == 0, car.logs()[-4000:]


def test_drained_address_is_topped_up_and_metrics_parse(sidecar: Sidecar) -> None:
    box = sidecar.box
    address = box.policy_set.policy("payouts").spec.addresses[0]
    box.drain([address])
    box.wait_for_energy(address, box.threshold(address), timeout=20)
    [order] = box.orders()
    assert order.address == address and order.provider == box.first_provider(address)
    sidecar.wait_for(
        lambda: box.orders()[0].phase is OrderPhase.DELIVERED, "delivered in the store"
    )
    families = {f.name: f for f in text_string_to_metric_families(sidecar.get("/metrics").text)}
    energy = {s.labels["address"]: s.value for s in families["energyctl_address_energy"].samples}
    assert set(energy) == set(box.policy_set.addresses)
    assert "energyctl_pass_seconds" in families
    orders = families["energyctl_orders"].samples
    assert any(s.labels == {"provider": order.provider, "state": "delivered"} for s in orders)
    spent = {s.labels["policy"]: s.value for s in families["energyctl_spent_today_sun"].samples}
    assert spent["payouts"] > 0 and spent["treasury"] == 0
    lines = [json.loads(x) for x in sidecar.logs().splitlines() if x.startswith("{")]
    assert any(x.get("event") == "decision" and x["data"]["address"] == address for x in lines)
    assert TOKEN not in sidecar.logs()


def test_ensure_with_wait_answers_once_the_energy_is_on_chain(sidecar: Sidecar) -> None:
    box = sidecar.box
    address = box.policy_set.policy("treasury").spec.addresses[0]
    wanted = START_ENERGY + 100_000  # above what it has: only the ensure makes it buy
    answer = sidecar.post(
        "/v1/ensure", {"address": address, "energy": wanted, "wait": 20}, AUTH
    ).json()
    assert box.world.available_energy(address) >= wanted
    assert answer["satisfied"] is True and answer["available"] >= wanted, answer
    assert answer["order"]["outcome"] == "bought"
    assert [o.address for o in box.orders()] == [address]
    again = sidecar.post("/v1/ensure", {"address": address, "energy": wanted}, AUTH).json()
    assert again["satisfied"] is True and again["order"] is None  # nothing bought twice
    missing = sidecar.post("/v1/ensure", {"address": demo.SINK, "energy": 1}, AUTH)
    assert missing.status_code == 404


def test_refusals_change_nothing(sidecar: Sidecar) -> None:
    box = sidecar.box
    address = box.policy_set.addresses[0]
    body = {"address": address, "energy": START_ENERGY * 2}
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        assert sidecar.post("/v1/ensure", body, headers).status_code == 401
        assert sidecar.post("/v1/policies", {"files": {}}, headers).status_code == 401
    payload = json.dumps({"serial": "x", "status": 40}).encode()
    now = str(int(time.time()))
    forged = {"TIMESTAMP": now, "SIGNATURE": "00" * 32, "Content-Type": "application/json"}
    assert httpx.post(f"{sidecar.url}/v1/callbacks/itrx", content=payload,
                      headers=forged).status_code == 401  # fmt: skip
    from providers.itrx import sign

    secret = demo.CREDENTIALS["itrx"]["apiSecret"]
    old = str(int(time.time()) - 3600)
    stale = {"TIMESTAMP": old, "SIGNATURE": sign(secret, old, payload.decode())}
    assert httpx.post(f"{sidecar.url}/v1/callbacks/itrx", content=payload,
                      headers=stale).status_code == 401  # fmt: skip
    good = {"TIMESTAMP": now, "SIGNATURE": sign(secret, now, payload.decode())}
    assert httpx.post(f"{sidecar.url}/v1/callbacks/itrx", content=payload,
                      headers=good).status_code == 200  # fmt: skip
    big = sidecar.post("/v1/ensure", {"address": "T" * 100_000, "energy": 1}, AUTH)
    assert big.status_code == 413
    assert box.orders() == [] and box.vendor_receivers() == {}
    assert set(sidecar.get("/openapi.json").json()["paths"]) >= {"/v1/ensure", "/metrics"}


def test_policy_edits_take_effect_and_a_broken_one_is_rejected(sidecar: Sidecar) -> None:
    box = sidecar.box
    policies = box.directory / "policies.yaml"
    before = sidecar.status()["revision"]
    policies.write_text(policies.read_text().replace("threshold: 100k", "threshold: 90k"))

    def thresholds() -> set[int]:
        entries = sidecar.status()["addresses"]
        return {e["threshold"] for e in entries if e["policy"] == "settlement"}

    sidecar.wait_for(lambda: thresholds() == {90_000}, "the edit in force")
    good = sidecar.status()["revision"]
    assert good != before
    policies.write_text(policies.read_text().replace("threshold: 90k", "threshold: lots"))
    sidecar.wait_for(lambda: bool(sidecar.status()["reloadErrors"]), "the broken edit reported")
    status = sidecar.status()
    assert status["revision"] == good and "policies.yaml" in status["reloadErrors"][0]
    passes = status["passes"]
    sidecar.wait_for(lambda: sidecar.status()["passes"] > passes + 1, "passes continuing")
    assert thresholds() == {90_000}
    assert sidecar.get("/readyz").status_code == 200


async def _burst(url: str, addresses: list[str], energy: int, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{url}/v1/ensure",
                    json={"address": addresses[i % len(addresses)], "energy": energy},
                    headers=AUTH,
                )
                for i in range(n)
            )
        )


def test_burst_of_ensures_buys_once_per_address(tmp_path: Path) -> None:
    for box in _box(tmp_path, watched=50):
        extra = box.world.watched[demo.WATCHED :]
        (box.directory / "burst.yaml").write_text(
            "apiVersion: energyctl/v1\nkind: EnergyPolicy\nmetadata: {name: burst}\nspec:\n"
            f"  addresses: [{', '.join(extra)}]\n  threshold: 65k\n"
            "  topUp: {amount: 131k, duration: 1h}\n  providers: [itrx, mefree, tronsave]\n"
            "  maxPrice: 120 sun/energy\n  budget: {perDay: 5000 TRX}\n"
        )
        car = Sidecar(box, interval="30s", max_actions=100).start()
        try:
            addresses = list(box.world.watched)
            answers = asyncio.run(_burst(car.url, addresses, START_ENERGY + 50_000, 200))
            assert all(a.status_code == 200 for a in answers), answers[0].text
            orders = {a.json()["order"]["client_order_id"] for a in answers if a.json()["order"]}
            by_address = [o.address for o in box.orders()]
            assert len(by_address) == len(set(by_address)) == 50  # one per address, no more
            assert orders == {o.client_order_id for o in box.orders()}
            receivers = box.vendor_receivers()
            assert all(len(v) == 1 for v in receivers.values()), receivers
        finally:
            assert car.terminate() == 0, car.logs()[-4000:]


def test_sigterm_during_an_order_finishes_it_after_restart(box: Sandbox) -> None:
    address = box.policy_set.policy("payouts").spec.addresses[0]
    vendor = box.first_provider(address)
    box.world.emulators[vendor].faults.hang_next(1, seconds=3, on="create")
    car = Sidecar(box).start()
    try:
        box.drain([address])
        car.wait_for(lambda: bool(box.orders()), "the intent written")
        assert car.terminate() == 0  # waited for the vendor's answer, then stopped
        [order] = box.orders()
        assert order.phase in (OrderPhase.SUBMITTED, OrderPhase.DELEGATING), order
        assert "stopped" in car.logs()
    finally:
        if car.proc is not None and car.proc.poll() is None:
            car.terminate()
    again = Sidecar(box).start()
    try:
        again.wait_for(
            lambda: box.orders()[0].phase is OrderPhase.DELIVERED, "the order finished", 20
        )
        [order] = box.orders()
        assert box.vendor_receivers() == {address: [vendor]}
    finally:
        assert again.terminate() == 0, again.logs()[-4000:]


def test_run_refuses_an_invalid_policy_set(box: Sandbox) -> None:
    (box.directory / "policies.yaml").write_text("kind: Nonsense\n")
    result = subprocess.run(
        [ENERGYCTL, "run", "-f", str(box.directory), "--listen", f"127.0.0.1:{_free_port()}"],
        env=box.env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "policies.yaml" in result.stderr


__all__ = ["Sidecar", "box", "sidecar"]
