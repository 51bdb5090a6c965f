"""The sidecar's HTTP surface and alerts, in process (no loop running, no network).

A `Controller` is given a loaded policy set (the sandbox's, with a token) but never
started; `Service` is called through `httpx.ASGITransport`; alerts go to an
`httpx.MockTransport`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from engine.decide.planning import Condition, Plan, Reason
from engine.reconciling import PassResult
from engine.sidecar.alerting import Alerter, AlertSettings
from engine.sidecar.controller import Controller
from engine.sidecar.openapi import document
from engine.sidecar.reloading import PolicySource
from engine.sidecar.service import Service
from sandbox import demo
from sandbox.world import World

TOKEN = "unit-token"
PORTS = {"node": 1, **{vendor: 2 + n for n, vendor in enumerate(demo.VENDORS)}}


@pytest.fixture
def controller(tmp_path: Path) -> Controller:
    World(ports=PORTS).write_policies(tmp_path)
    with (tmp_path / "engine.yaml").open("a") as f:
        f.write("  http:\n    apiToken: {fromEnv: UNIT_TOKEN}\n")
    env = {**demo.env_values(), "UNIT_TOKEN": TOKEN}
    source = PolicySource([tmp_path], env=env)
    loaded = source.load()
    assert loaded.policy_set is not None, loaded.errors
    c = Controller(source)
    c.policy_set = loaded.policy_set
    return c


async def call(c: Controller, method: str, path: str, **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=Service(c).app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        return await client.request(method, path, **kw)


async def test_mutating_endpoints_need_the_token(controller: Controller) -> None:
    body = {"address": controller.policy_set.addresses[0], "energy": 1}  # type: ignore[union-attr]
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        for path in ("/v1/ensure", "/v1/policies"):
            answer = await call(controller, "POST", path, json=body, headers=headers)
            assert answer.status_code == 401, (path, headers)
    wrong_shape = await call(
        controller, "POST", "/v1/policies", json={"files": []},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip
    assert wrong_shape.status_code == 422  # the token passed; the body did not


async def test_no_token_configured_refuses_mutations(
    controller: Controller, tmp_path: Path
) -> None:
    text = (tmp_path / "engine.yaml").read_text().split("  http:\n")[0]
    (tmp_path / "engine.yaml").write_text(text)
    loaded = controller.source.load()
    controller.policy_set = loaded.policy_set
    answer = await call(
        controller, "POST", "/v1/ensure", json={}, headers={"Authorization": "Bearer "}
    )
    assert answer.status_code == 403


async def test_invalid_policies_are_refused_with_their_errors(controller: Controller) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = await call(controller, "POST", "/v1/policies", headers=auth,
                     json={"files": {"p.yaml": "kind: EnergyPolicy\n"}})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["errors"]
    escape = await call(controller, "POST", "/v1/policies", headers=auth,
                        json={"files": {"../p.yaml": "x: 1\n"}})  # fmt: skip
    assert escape.status_code == 422 and "file names only" in escape.json()["errors"][0]


async def test_oversized_and_non_json_bodies(controller: Controller) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = await call(controller, "POST", "/v1/ensure", headers=auth, content=b"{" * 70_000)
    assert big.status_code == 413
    junk = await call(controller, "POST", "/v1/ensure", headers=auth, content=b"[1]")
    assert junk.status_code == 400


async def test_callbacks_for_unknown_or_unsigned_providers(controller: Controller) -> None:
    assert (
        await call(controller, "POST", "/v1/callbacks/mefree", content=b"{}")
    ).status_code == 404
    unsigned = await call(controller, "POST", "/v1/callbacks/itrx", content=b"{}")
    assert unsigned.status_code == 401
    assert not controller._wake.is_set()  # a refused callback wakes nothing


def test_openapi_describes_every_route(controller: Controller) -> None:
    routes = {r.path for r in Service(controller).app.routes if isinstance(r, Route)}
    assert set(document()["paths"]) == routes
    json.dumps(document())


def _result(condition: Condition, reason: Reason, available: int) -> PassResult:
    from engine.decide.planning import AddressPlan

    entry = AddressPlan("TAddr", "payouts", condition, reason, "", available, available, 65_000)
    return PassResult(Plan((entry,), 0.0), True)


async def test_alerts_once_per_episode_to_webhook_and_telegram(controller: Controller) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), json.loads(request.content)))
        return httpx.Response(200, json={"ok": True})

    settings = AlertSettings(
        webhook_url="http://hooks.test/alert",
        telegram_token=__import__("pydantic").SecretStr("123:abc"),
        telegram_chat="42",
        telegram_api="http://telegram.test",
        below_for=0.0,
    )
    alerter = Alerter(controller, settings, transport=httpx.MockTransport(handler))
    budget = _result(Condition.BLOCKED, Reason.BUDGET, 10)
    for _ in range(3):  # one episode over three passes
        alerter.observe_pass(controller, budget, 0.0)
    healthy = _result(Condition.HEALTHY, Reason.ENOUGH_ENERGY, 100_000)
    alerter.observe_pass(controller, healthy, 0.0)  # episode over
    alerter.observe_pass(controller, budget, 0.0)  # a new one
    while not alerter._queue.empty():
        await alerter.deliver(alerter._queue.get_nowait())
    await alerter.aclose()
    kinds = [a.kind for a in alerter.sent]
    assert kinds.count("budget") == 2 and kinds.count("below") == 2
    urls = {url for url, _ in seen}
    assert urls == {"http://hooks.test/alert", "http://telegram.test/bot123:abc/sendMessage"}
    assert all(body.get("chat_id") == "42" for url, body in seen if "telegram" in url)
