"""Sidecar API requests that answered 500, found while fuzzing: now regression tests.

Each is valid JSON sent with the right bearer token: a NUL in a pushed file name, a lone
surrogate in a pushed file, a lone surrogate in an ensure address echoed in the 404.
Without any token: a `limit` or `Content-Length` of a Unicode digit (`'\u00b2'.isdigit()`
is true, `int('\u00b2')` fails); itrx callbacks with a fresh timestamp and any signature
plus a Unicode-digit or 5,000-digit `TIMESTAMP`, a UTF-16 body, or a body holding a lone
surrogate escape.
In process, through `httpx.ASGITransport`, like tests/engine/test_service.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from engine.sidecar.controller import Controller
from engine.sidecar.reloading import PolicySource
from engine.sidecar.service import Service
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


def _send(
    c: Controller, method: str, path: str, body: bytes = b"", headers: dict[str, Any] | None = None
) -> int:
    async def send() -> int:
        transport = httpx.ASGITransport(app=Service(c).app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            answer = await client.request(method, path, content=body, headers=headers)
            return answer.status_code

    return asyncio.run(send())


def test_orders_with_a_unicode_digit_limit_is_a_422(controller: Controller) -> None:
    controller.session = cast(Any, SimpleNamespace())  # the limit is refused before any read
    assert _send(controller, "GET", "/v1/orders?limit=%C2%B2") == 422
    assert _send(controller, "GET", "/v1/orders?limit=" + "9" * 5000) == 422


def test_a_unicode_digit_content_length_is_a_4xx(controller: Controller) -> None:
    # Starlette reads header bytes as latin-1: b"\xb2" is "\u00b2"
    headers = {"content-length": b"\xb2"}
    status = _send(controller, "POST", "/v1/callbacks/itrx", b"{}", headers)
    assert 400 <= status < 500


def _callback(c: Controller, body: bytes, timestamp: bytes | None = None) -> int:
    stamp = timestamp if timestamp is not None else str(int(time.time())).encode()
    headers = {"TIMESTAMP": stamp, "SIGNATURE": b"00" * 32, "Content-Type": b"application/json"}
    return _send(c, "POST", "/v1/callbacks/itrx", body, headers)


@pytest.mark.parametrize(
    ("body", "timestamp"),
    [
        (b'{"serial": "1", "status": 40}', b"\xb2"),
        (b'{"serial": "1", "status": 40}', b"1" * 5000),
        ('{"serial": "1", "status": 40}'.encode("utf-16"), None),
        (b'{"serial": "\\ud800", "status": 40}', None),
    ],
    ids=["unicode-digit-timestamp", "5000-digit-timestamp", "utf-16-body", "lone-surrogate"],
)
def test_hostile_itrx_callbacks_are_a_4xx(
    controller: Controller, body: bytes, timestamp: bytes | None
) -> None:
    status = _callback(controller, body, timestamp)
    assert 400 <= status < 500
    assert not controller._wake.is_set()


def test_a_plain_badly_signed_callback_is_a_401(controller: Controller) -> None:
    assert _callback(controller, b'{"serial": "1", "status": 40}') == 401


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


def test_ensure_with_a_nan_or_infinite_wait_is_a_422(controller: Controller) -> None:
    address = controller.policy_set.addresses[0]  # type: ignore[union-attr]
    for wait in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"address": "%s", "energy": 1, "wait": %s}' % (address.encode(), wait)
        assert _post(controller, "/v1/ensure", body) == 422
