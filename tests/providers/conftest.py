"""Shared helpers for the adapter tests: pinned payloads, a recording clock, MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.base import OrderRequest

PAYLOADS = Path(__file__).resolve().parent / "payloads"
RECEIVER = "TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def load(vendor: str, name: str) -> Any:
    return json.loads((PAYLOADS / vendor / name).read_text())


class RecordingClock:
    """Fixed time that moves only by the sleeps it is asked for; records them."""

    def __init__(self, start: float = START) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += max(0.0, seconds)


Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport that answers from a list of handlers (the last one repeats)."""

    def __init__(self, *handlers: Handler) -> None:
        self.handlers = list(handlers)
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        index = min(len(self.requests), len(self.handlers)) - 1
        return self.handlers[index](request)


def reply(status: int, body: Any = None, **headers: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


def raw(status: int, content: bytes, content_type: str = "text/html") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"content-type": content_type})

    return handler


def fail(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


def make_order(**overrides: Any) -> OrderRequest:
    values: dict[str, Any] = {
        "client_order_id": "ord-0001",
        "receiver": RECEIVER,
        "energy": 65_000,
        "duration": 3600,
    }
    values.update(overrides)
    return OrderRequest(**values)


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()
