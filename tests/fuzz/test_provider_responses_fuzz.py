"""Fuzzing the four adapters with hostile vendor answers through `httpx.MockTransport`.

Each operation (quote, place, status, balance) of each adapter is answered with
hypothesis-generated responses: random status codes and headers (Retry-After in every
form), the vendor's pinned payloads (tests/providers/payloads/<vendor>/) mutated (wrong
types, missing fields, extra fields, huge numbers, negative amounts, empty strings,
wrapped in lists), HTML error pages, empty, huge (declared and streamed) and non-UTF-8
bodies, deeply nested JSON.

Properties (ARCHITECTURE.md section 4, invariants 3-4):

- only `ProviderError` subclasses escape; a retry delay is finite and not negative;
- `place` never returns a receipt without a provider order id, nor with a negative cost;
- a create answered 2xx with a body it cannot read (not JSON, too large) is Ambiguous,
  and so is any create failure blamed on the protocol after a 2xx.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from providers.base import (
    AmbiguousError,
    ErrorReason,
    OrderState,
    Provider,
    ProviderError,
    QuoteRequest,
    Receipt,
    TemporaryError,
)
from providers.eopen import EopenProvider
from providers.http import MAX_BODY_BYTES, NO_WAIT
from providers.itrx import ItrxProvider
from providers.mefree import MefreeProvider
from providers.tronsave import TronsaveProvider
from tests.fuzz.profiles import fuzz
from tests.providers.conftest import RECEIVER, RecordingClock, load, make_order

OPERATIONS = ("quote", "place", "status", "balance")
#: vendor -> operation -> pinned payload file of a successful answer
PAYLOADS: dict[str, dict[str, str]] = {
    "itrx": {"quote": "order_price.response.json", "place": "create_order.response.json",
             "status": "order_query.response.json", "balance": "index_data.response.json"},
    "mefree": {"quote": "config.response.json", "place": "create_order.response.json",
               "status": "order_query.response.json", "balance": "config.response.json"},
    "eopen": {"quote": "price.response.json", "place": "create_order.response.json",
              "status": "history.response.json", "balance": "account.response.json"},
    "tronsave": {"quote": "estimate.response.json", "place": "create_order.response.json",
                 "status": "order_details.response.json", "balance": "user_info.response.json"},
}  # fmt: skip
ADAPTERS: dict[str, Callable[..., Provider]] = {
    "itrx": ItrxProvider,
    "mefree": MefreeProvider,
    "eopen": EopenProvider,
    "tronsave": TronsaveProvider,
}
DURATION = 3600
ENERGY = 65_000


def _adapter(vendor: str, transport: httpx.MockTransport) -> Provider:
    creds: dict[str, Any] = {"api_key": SecretStr("fuzz-key")}
    if vendor in ("itrx", "mefree"):
        creds["api_secret"] = SecretStr("fuzz-secret")
    return ADAPTERS[vendor](
        vendor,
        base_url="http://vendor.test/api",
        clock=RecordingClock(),
        transport=transport,
        retry=NO_WAIT,
        **creds,
    )


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    status: int
    content: bytes | None  # None: a streamed body of `streamed` bytes, no Content-Length
    headers: tuple[tuple[bytes, bytes], ...]
    kind: str  # what the body is: "json", "html", "empty", "huge", "binary", ...
    streamed: int = 0

    @property
    def readable(self) -> bool:
        """The body decodes as JSON within the size limit."""
        return self.kind == "json"

    def response(self) -> httpx.Response:
        headers = list(self.headers)
        if self.content is None:
            return httpx.Response(self.status, headers=headers, content=_chunks(self.streamed))
        return httpx.Response(self.status, headers=headers, content=self.content)


async def _chunks(size: int) -> AsyncIterator[bytes]:
    block = b"x" * 65_536
    sent = 0
    while sent < size:
        yield block
        sent += len(block)


junk_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["", " ", "-1", "1e400", "NaN", "0x10", "１２", "²", "40", "COMPLETED",
                     "DELEGATION_CONFIRMED", "Completed", "TRX", "null"]),
)  # fmt: skip
junk = st.recursive(
    junk_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, payload: Any) -> Any:
    """The pinned payload with up to four mutations at drawn places."""
    data = copy.deepcopy(payload)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        path = draw(st.sampled_from(_paths(data)))
        if not path:
            data = draw(st.one_of(junk, st.just([data]), st.just({"data": data})))
            continue
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "negate", "negate", "empty", "extra"]))
        value = parent[path[-1]]
        if action == "replace":
            parent[path[-1]] = draw(junk)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "negate" and isinstance(value, (int, float)) and not isinstance(value, bool):
            parent[path[-1]] = -value - 1
        elif action == "empty" and isinstance(value, (str, list, dict)):
            parent[path[-1]] = type(value)()
        elif action == "extra" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(junk)
    return data


STATUSES = st.one_of(
    st.sampled_from([200, 200, 200, 200, 201, 202, 204, 301, 304, 400, 401, 403, 404, 408, 409,
                     418, 422, 429, 500, 502, 503, 504]),
    st.integers(min_value=100, max_value=599),
)  # fmt: skip
RETRY_AFTER = st.one_of(
    st.integers(min_value=0, max_value=10**400).map(str),
    st.sampled_from(["", "-1", "1.5", "²", "١٢", "soon", "Wed, 21 Oct 2015 07:28:00 GMT",
                     "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT",
                     "Sun, 06 Nov 1994 08:49:37 +9999"]),
    st.text(max_size=30),
)  # fmt: skip
#: body kinds; readable JSON (a mutated pinned payload) is drawn most often
KINDS = ("json",) * 6 + ("html", "empty", "huge", "streamed", "binary", "utf16", "deep", "bigint")
HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"


@st.composite
def answers(draw: st.DrawFn, payload: Any) -> Answer:
    status = draw(STATUSES)
    headers: list[tuple[bytes, bytes]] = []
    if draw(st.booleans()):
        headers.append((b"retry-after", draw(RETRY_AFTER).encode("utf-8")))
    kind = draw(st.sampled_from(KINDS))
    content: bytes | None
    streamed = 0
    if kind == "json":
        body = draw(mutated(payload))
        content = json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
        headers.append((b"content-type", b"application/json"))
    elif kind == "html":
        content = HTML
        headers.append((b"content-type", b"text/html"))
    elif kind == "empty":
        content = b""
    elif kind == "huge":
        content = b'{"a": "' + b"x" * MAX_BODY_BYTES + b'"}'
    elif kind == "streamed":
        content, streamed = None, MAX_BODY_BYTES + 1
    elif kind == "binary":
        content = draw(st.binary(max_size=200)) + b"\xff\xfe\xc3\x28"
    elif kind == "utf16":
        content = json.dumps(payload).encode("utf-16")
    elif kind == "deep":
        depth = draw(st.integers(min_value=500, max_value=100_000))
        content = b"[" * depth + b"]" * depth
    else:  # "bigint": a number past Python's int-from-text digit limit
        content = b'{"code": 0, "errno": 0, "balance": ' + b"9" * 5_000 + b"}"
    if kind == "utf16":
        kind = "json"  # json.loads reads UTF-16 with a BOM: a readable body
    return Answer(status, content, tuple(headers), kind, streamed)


# --------------------------------------------------------------------------- the calls


def _receipt(vendor: str) -> Receipt:
    return Receipt(
        provider=vendor,
        client_order_id="ord-fuzz",
        provider_order_id="58b451473d290f92443eabf0322b9907",
        receiver=RECEIVER,
        energy=ENERGY,
        duration=DURATION,
    )


async def _call(provider: Provider, operation: str) -> Any:
    try:
        if operation == "quote":
            request = QuoteRequest(receiver=RECEIVER, energy=ENERGY, duration=DURATION)
            return await provider.quote(request)
        if operation == "place":
            return await provider.place(make_order(energy=ENERGY, duration=DURATION))
        if operation == "status":
            return await provider.status(_receipt(provider.name))
        return await provider.balance()
    finally:
        await provider.aclose()


def _check_error(error: ProviderError) -> None:
    assert str(error) and error.provider
    assert isinstance(error.reason, ErrorReason)
    if isinstance(error, TemporaryError) and error.delay is not None:
        assert math.isfinite(error.delay) and error.delay >= 0, error.delay


CASES = [(vendor, operation) for vendor in PAYLOADS for operation in OPERATIONS]


@pytest.mark.parametrize(("vendor", "operation"), CASES, ids=[f"{v}-{o}" for v, o in CASES])
@fuzz(60)
@given(data=st.data())
def test_hostile_answers_give_mapped_errors(vendor: str, operation: str, data: Any) -> None:
    payload = load(vendor, PAYLOADS[vendor][operation])
    replies: list[Answer] = data.draw(st.lists(answers(payload), min_size=1, max_size=4))
    seen: list[Answer] = []

    def handle(request: httpx.Request) -> httpx.Response:
        reply = replies[min(len(seen), len(replies) - 1)]
        seen.append(reply)
        return reply.response()

    provider = _adapter(vendor, httpx.MockTransport(handle))
    try:
        result = asyncio.run(_call(provider, operation))
    except ProviderError as error:
        _check_error(error)
        if operation == "place" and seen and 200 <= seen[-1].status < 300:
            last = seen[-1]
            if not last.readable or error.reason is ErrorReason.PROTOCOL:
                assert isinstance(error, AmbiguousError), (error, last.kind)
        return
    # anything else escaping fails the test with its traceback
    if operation == "place":
        assert isinstance(result, Receipt)
        assert result.provider_order_id.strip(), result
        assert result.cost_sun is None or result.cost_sun >= 0, result
    elif operation == "quote":
        assert result.total_sun >= 0
    elif operation == "status":
        assert isinstance(result.state, OrderState) and result.delegated_energy >= 0
    else:
        assert isinstance(result, int) and not isinstance(result, bool)
