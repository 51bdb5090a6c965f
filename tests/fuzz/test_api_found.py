"""Sidecar API requests that answered 500, found while fuzzing: now regression tests.

Each is valid JSON sent with the right bearer token: a NUL in a pushed file name, a lone
surrogate in a pushed file, a lone surrogate in an ensure address echoed in the 404.
In process, through `httpx.ASGITransport`, like tests/engine/test_service.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from engine.controller import Controller
from engine.reloading import PolicySource
from engine.service import Service
from sandbox import demo
from sandbox.world import World

TOKEN = "fuzz-token"
PORTS = {"node": 1, **{vendor: 2 + n for n, vendor in enumerate(demo.VENDORS)}}
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def controller(tmp_path: Path) -> Controller:
    World(ports=PORTS).write_policies(tmp_path)
    with (tmp_path / "engine.yaml").open("a") as f:
        f.write("  http:\n    apiToken: {fromEnv: FUZZ_TOKEN}\n")
    source = PolicySource([tmp_path], env={**demo.env_values(), "FUZZ_TOKEN": TOKEN})
    loaded = source.load()
    assert loaded.policy_set is not None, loaded.errors
    c = Controller(source)
    c.policy_set = loaded.policy_set
    return c


def _post(c: Controller, path: str, body: bytes) -> int:
    async def send() -> int:
        transport = httpx.ASGITransport(app=Service(c).app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            return (await client.post(path, content=body, headers=AUTH)).status_code

    return asyncio.run(send())


def test_policies_with_a_nul_in_a_file_name_are_refused(controller: Controller) -> None:
    assert _post(controller, "/v1/policies", b'{"files": {"a\\u0000.yaml": "x: 1"}}') == 422


def test_policies_with_a_lone_surrogate_are_refused(controller: Controller) -> None:
    assert _post(controller, "/v1/policies", b'{"files": {"a.yaml": "k: \\ud800"}}') == 422


def test_ensure_with_a_lone_surrogate_address_is_a_4xx(controller: Controller) -> None:
    status = _post(controller, "/v1/ensure", b'{"address": "T\\ud800", "energy": 1}')
    assert 400 <= status < 500


def test_the_same_requests_without_the_bad_characters_are_4xx(controller: Controller) -> None:
    assert _post(controller, "/v1/policies", b'{"files": {"a.yaml": "x: 1"}}') == 422
    assert _post(controller, "/v1/ensure", b'{"address": "T", "energy": 1}') == 404
