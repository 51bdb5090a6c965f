"""Serve an ASGI app on a loopback port from a background thread.

Every emulator (node, providers) and the sidecar in tests is started with `serve()`: the
port is chosen by the OS (port 0) unless given, and the context manager waits until the
server accepts connections and stops it on exit. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn


class LoopbackServer:
    """A uvicorn server on 127.0.0.1 running in its own thread and event loop."""

    def __init__(
        self, app: Any, port: int = 0, host: str = "127.0.0.1", *, date_header: bool = True
    ) -> None:
        """`date_header=False` leaves the `Date` header to the app (the vendor emulators
        stamp their own clock's time; uvicorn would add a second one)."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this; without it every answer waits ~40 ms (Nagle +
        # delayed ACK), since uvicorn does not set it on sockets passed in pre-bound.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=2048,
            date_header=date_header,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"serve:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self, timeout: float = 10.0) -> LoopbackServer:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self._server.started:
                return self
            deadline.wait(0.01)
        raise RuntimeError(f"server on {self.url} did not start within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()


@contextlib.contextmanager
def serve(app: Any, port: int = 0) -> Iterator[LoopbackServer]:
    """Run `app` on 127.0.0.1 for the duration of the block; yields the server (`.url`)."""
    server = LoopbackServer(app, port=port).start()
    try:
        yield server
    finally:
        server.stop()
