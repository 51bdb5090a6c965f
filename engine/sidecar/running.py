"""`energyctl run`: the controller and its HTTP API in one event loop, until SIGTERM.

`run_sidecar(options)` loads the policy set and opens its session (a failure returns 1
with the reason logged), serves the API with `uvicorn.Server` on `http.listen` (or
`options.listen`) in the same loop as the controller, and on SIGTERM or SIGINT: the
controller lets no new pass start and waits up to `stop_grace` for the pass in flight,
the server stops (requests in flight get `server_grace` seconds), the controller gives
its shard leases back (replicas on PostgreSQL: the others take the addresses at once),
the session and store close, and 0 is returned. With shard leases the metrics carry a
`replica` label. uvicorn's own signal handling is switched off: this module
owns the signals.

Neighbours: `controller.py`, `service.py`, `metrics.py`,
`logs.py`; called by `engine/cli/running.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from engine.sidecar.admitting import AllowListError, parse_allowed
from engine.sidecar.alerting import Alerter, AlertSettings
from engine.sidecar.controller import Controller, ControllerError, ControllerSettings
from engine.sidecar.metrics import Metrics
from engine.sidecar.reloading import PolicySource
from engine.sidecar.service import create_app

log = logging.getLogger("energyctl.sidecar")


@dataclass(frozen=True)
class SidecarOptions:
    paths: Sequence[Path]
    listen: str | None = None  # HOST:PORT; default EngineConfig http.listen
    settings: ControllerSettings = field(default_factory=ControllerSettings)
    server_grace: float = 5.0
    alerts: AlertSettings | None = None  # None: read from the environment
    #: `env:NAME` / `file:PATH`: secrets a set sent over the API may use anywhere
    allowed_secrets: Sequence[str] = ()


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the sidecar stops it itself)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


_LISTEN = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (`127.0.0.1:8080`, `0.0.0.0:8080`, `[::1]:8080`, `localhost:8080`) ->
    (host, port). ValueError saying what would be valid."""
    match = _LISTEN.match(listen)
    if match is None:
        raise ValueError(
            f"expected HOST:PORT such as 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080, "
            f"got {listen[:60]!r}"
        )
    port = int(match.group(2))
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not 1..65535, in {listen!r}")
    return match.group(1).strip("[]"), port


async def run_sidecar(options: SidecarOptions) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a clean stop, 1 if it cannot start."""
    metrics = Metrics()
    started = await _start(options, metrics)
    if started is None:
        return 1
    controller, alerter = started
    sock = await _listen(controller, options)
    if sock is None:
        return 1
    config = uvicorn.Config(
        create_app(controller, metrics),
        lifespan="off",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=max(1, int(options.server_grace)),
        backlog=2048,
    )
    server = _Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _log_serving(controller, sock)
    loop_task = asyncio.create_task(controller.run(), name="energyctl:loop")
    server_task = asyncio.create_task(server.serve(sockets=[sock]), name="energyctl:http")
    alert_task = asyncio.create_task(alerter.run(), name="energyctl:alerts")
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({loop_task, server_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping", extra={"event": "stop"})
    await _stop_loop(controller, loop_task, options.settings.stop_grace)
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await server_task
    await _cancel_helpers((alert_task, stopper))
    await alerter.aclose()
    sock.close()
    log.info("stopped", extra={"event": "stop"})
    return 0


async def _start(options: SidecarOptions, metrics: Metrics) -> tuple[Controller, Alerter] | None:
    """The controller, started, with its alerter; None (logged) if it cannot start."""
    try:
        allowed = parse_allowed(options.allowed_secrets)
    except AllowListError as exc:
        log.error("cannot start", extra={"event": "start", "error": str(exc)})
        return None
    controller = Controller(
        PolicySource(options.paths),
        settings=options.settings,
        observers=[metrics.observe_pass],
        wrap_providers=metrics.metered,
        listen_override=options.listen,  # then http.listen may change live
        allowed_secrets=allowed,
    )
    alerter = Alerter(controller, options.alerts)
    controller.observers.append(alerter.observe_pass)
    try:
        await controller.start()
    except ControllerError as exc:
        log.error("cannot start", extra={"event": "start", "error": str(exc)})
        return None
    assert controller.policy_set is not None
    if controller.leases is not None:  # replicas share the addresses: say whose series
        metrics.label_replica(controller.leases.replica)
    return controller, alerter


async def _listen(controller: Controller, options: SidecarOptions) -> socket.socket | None:
    """The bound listening socket; None (logged, the session closed) if it cannot bind."""
    assert controller.policy_set is not None
    try:
        host, port = parse_listen(options.listen or controller.policy_set.settings.http.listen)
    except ValueError as exc:
        log.error("cannot listen", extra={"event": "start", "error": str(exc)})
        if controller.session is not None:
            await controller.session.aclose()
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        log.error("cannot listen", extra={"event": "start", "error": str(exc)})
        sock.close()
        if controller.session is not None:
            await controller.session.aclose()
        return None
    return sock


def _log_serving(controller: Controller, sock: socket.socket) -> None:
    assert controller.policy_set is not None
    bound = sock.getsockname()
    log.info(
        "serving",
        extra={"event": "start", "listen": f"{bound[0]}:{bound[1]}",
               "revision": controller.policy_set.revision,
               "replica": controller.settings.replica,
               "shards": controller.leases.settings.shards if controller.leases else 0},
    )  # fmt: skip


async def _stop_loop(controller: Controller, loop_task: asyncio.Task[None], grace: float) -> None:
    """Stop the controller; a pass still running after `grace` seconds is cut off."""
    await controller.stop()
    try:
        await asyncio.wait_for(asyncio.shield(loop_task), timeout=grace)
    except TimeoutError:
        loop_task.cancel()  # cut off: the write-ahead intents are resolved at the next start
        log.warning("pass cut off at the stop deadline", extra={"event": "stop"})
    with contextlib.suppress(asyncio.CancelledError):
        await loop_task


async def _cancel_helpers(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # alerts are best effort: never the exit code of a stop
            log.error("alert task failed", extra={"event": "stop", "error": type(exc).__name__})


__all__ = ["SidecarOptions", "parse_listen", "run_sidecar"]
