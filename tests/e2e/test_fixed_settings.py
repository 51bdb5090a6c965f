"""A running `energyctl run` keeps its store, node and listener until it restarts.

Issue 13, finding 5: a reload or a `POST /v1/policies` that changed `store.url` or the
node, or a pushed set without an `EngineConfig` (whose defaults name another store and
the public node), was applied live: the open orders and the day's spend were forgotten
and the addresses with orders in flight were bought again. Here such changes are refused
with their reason (the API answer, `/readyz`, `/v1/status`) while orders are in flight,
and each drained address gets exactly one order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sandboxed import Sandbox
from tests.e2e.test_run_sidecar import AUTH, Sidecar, _box

pytestmark = pytest.mark.slow


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    yield from _box(tmp_path)


def test_store_and_node_changes_wait_for_a_restart(box: Sandbox) -> None:
    car = Sidecar(box, interval="60s").start()
    try:
        drained = list(box.policy_set.policy("payouts").spec.addresses[:3])
        box.drain(drained)
        for address in drained:  # orders in flight from here on
            body = {"address": address, "energy": box.threshold(address)}
            assert car.post("/v1/ensure", body, AUTH).json()["order"]["outcome"] == "bought"
        files = {p.name: p.read_text() for p in sorted(box.directory.glob("*.yaml"))}
        engine = files["engine.yaml"]
        assert box.store_url.endswith("/energyctl.db") and box.store_url in engine
        revision = car.status()["revision"]

        moved = files | {"engine.yaml": engine.replace("/energyctl.db", "/elsewhere.db")}
        answer = car.post("/v1/policies", {"files": moved}, AUTH)
        assert answer.status_code == 409, answer.text
        assert answer.json()["restartRequired"][0].startswith("store.url:")
        assert "restart" in answer.json()["error"]
        assert "store.url" in car.get("/readyz").json()["restartRequired"][0]

        bare = {name: text for name, text in files.items() if name != "engine.yaml"}
        answer = car.post("/v1/policies", {"files": bare}, AUTH)
        assert 400 <= answer.status_code < 500, answer.text
        assert "EngineConfig" in answer.text or "apiToken" in answer.text
        assert car.status()["revision"] == revision

        node = box.policy_set.settings.node.url
        path = box.directory / "engine.yaml"
        path.write_text(engine.replace(node, "http://127.0.0.1:9"))
        car.wait_for(lambda: any("node.url" in e for e in car.status()["reloadErrors"]), "refused")
        assert any("node.url" in r for r in car.get("/readyz").json()["restartRequired"])
        assert "policy change refused until a restart" in car.logs()
        path.write_text(engine)  # back as it was: accepted again, nothing to restart for
        car.wait_for(lambda: car.status()["reloadErrors"] == [], "the files agree again")
        car.wait_for(lambda: "restartRequired" not in car.get("/readyz").json(), "ready")

        for address in drained:
            box.wait_for_energy(address, box.threshold(address), timeout=30)
        assert sorted(o.address for o in box.orders()) == sorted(drained)  # once each
        assert car.status()["revision"] == revision
        assert not (box.directory / "elsewhere.db").exists()
    finally:
        assert car.terminate() == 0, car.logs()[-4000:]
