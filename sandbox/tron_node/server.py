"""`TronNode`: the emulated node served on a loopback port for the length of a `with` block.

A thin wrapper over `sandbox.serving.serve` and `app.create_app`: benches, the sandbox
world and tests start a node with `TronNode.start(state, latency=0.02)` and point tronpy
(or httpx) at `node.url`. The `ChainState` stays shared with the caller, so emulators in
the same process can drive it directly while clients read it over HTTP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from starlette.applications import Starlette

from sandbox.serving import LoopbackServer, serve
from sandbox.tron_node.app import create_app
from sandbox.tron_node.state import ChainState


@dataclass
class TronNode:
    """A running emulated node: its state, its ASGI app and its loopback server."""

    state: ChainState
    app: Starlette
    server: LoopbackServer

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:PORT` (tronpy appends `wallet/...`)."""
        return self.server.url

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        state: ChainState,
        latency: float = 0.0,
        api_key: str | None = None,
        port: int = 0,
    ) -> Iterator[TronNode]:
        """Serve `state` on 127.0.0.1 (`port` 0: chosen by the OS) until the block exits."""
        app = create_app(state, latency=latency, api_key=api_key)
        with serve(app, port=port) as server:
            yield cls(state, app, server)
