"""The sidecar's unauthenticated inputs, fuzzed in process: never a 5xx.

What anyone can send without the token: the `GET /v1/orders` query (`limit`, `state`,
`address`, `provider`) and `POST /v1/callbacks/itrx` (`TIMESTAMP`, `SIGNATURE`,
`Content-Length` and the body). Header values are arbitrary latin-1 bytes (how Starlette
reads them), timestamps are often fresh so the body is reached, bodies are JSON with
arbitrary text (lone surrogate escapes included) in UTF-8, UTF-16 or UTF-32, or raw bytes.
schemathesis (tests/fuzz/test_api_schemathesis.py) cannot reach these: it does not know a
provider name that takes callbacks. Through `httpx.ASGITransport`, like test_api_found.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any, cast

import httpx
from hypothesis import given
from hypothesis import strategies as st

from engine.sidecar.controller import Controller
from engine.sidecar.service import Service
from engine.store import OrderPhase
from tests.fuzz.profiles import fuzz
from tests.fuzz.test_api_found import controller

__all__ = ["controller"]  # the fixture, shared

_digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6)
_header = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    _digits.map(lambda t: t.encode("latin-1", "replace")),
    st.integers(-(10**6), 10**30).map(lambda n: str(n).encode()),
    st.just(b"9" * 5000),
)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    data = draw(st.dictionaries(st.text(max_size=8), _json_value, max_size=4))
    text = json.dumps(data, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):  # a lone surrogate escape, valid JSON
        text = text.replace("{", '{"\\ud83d": "\\udfff", ', 1) if len(data) else '"\\ud800"'
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32"]))
    return text.encode(encoding, "surrogatepass")


def _request(c: Controller, method: str, url: str, body: bytes, headers: dict[str, bytes]) -> int:
    async def send() -> int:
        transport = httpx.ASGITransport(app=Service(c).app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            answer = await client.request(method, url, content=body, headers=headers)  # type: ignore[arg-type]
            return answer.status_code

    return asyncio.run(send())


def test_itrx_callbacks_never_answer_5xx(controller: Controller) -> None:
    @fuzz(150)
    @given(
        fresh=st.booleans(),
        timestamp=_header,
        signature=_header,
        length=st.none() | _header,
        body=_bodies(),
    )
    def run(
        fresh: bool, timestamp: bytes, signature: bytes, length: bytes | None, body: bytes
    ) -> None:
        headers = {
            "TIMESTAMP": str(int(time.time())).encode() if fresh else timestamp,
            "SIGNATURE": signature,
        }
        if length is not None:
            headers["Content-Length"] = length
        status = _request(controller, "POST", "/v1/callbacks/itrx", body, headers)
        assert status < 500, (headers, body)
        assert not controller._wake.is_set()

    run()


def test_the_orders_query_never_answers_5xx(controller: Controller) -> None:
    controller.session = cast(Any, SimpleNamespace())  # only invalid queries are sent on

    def valid(limit: str) -> bool:
        return limit.isascii() and limit.isdigit() and len(limit) < 6 and 1 <= int(limit) <= 10_000

    @fuzz(150)
    @given(
        limit=st.one_of(_digits, st.text(max_size=8), st.just("9" * 5000)).filter(
            lambda t: not valid(t)
        ),
        state=st.lists(st.sampled_from(["open", *(p.value for p in OrderPhase)]), max_size=2),
    )
    def run(limit: str, state: list[str]) -> None:
        query = httpx.QueryParams({"limit": limit, "state": state})
        status = _request(controller, "GET", f"/v1/orders?{query}", b"", {})
        assert status == 422, (limit, state)

    run()
