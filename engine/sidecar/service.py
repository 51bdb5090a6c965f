"""The sidecar's HTTP API: a Starlette app over one `Controller`.

Read endpoints: `GET /healthz` (the process answers), `GET /readyz` (store reachable, a
pass finished recently, observation fresh; 503 with the reasons otherwise; both say which
replica answers and which shards it holds until when), `GET /metrics` (Prometheus text),
`GET /v1/status`, `GET /v1/orders`, `GET /openapi.json`. An ensure for an address whose
shard another replica holds is answered 409 with that replica's name in `owner` (503
while no replica holds it): the caller sends it there, nothing is forwarded.

Mutating endpoints need `Authorization: Bearer <http.apiToken>` (compared in constant
time; with no token configured they are refused): `POST /v1/ensure` and
`POST /v1/policies`. `POST /v1/callbacks/{provider}` is authenticated by the vendor's
signature instead (itrx: `providers/itrx_callbacks.verify_callback`, stale timestamps
refused) - a vendor cannot send our token. A callback only wakes the loop; the pass
re-reads the provider and the chain, so a callback's content is never trusted as such.
Request bodies are bounded (`MAX_BODY`, 1 MiB for policy sets).

Neighbours: `controller.py` (the loop), `metrics.py`, `openapi.py`;
served by `running.py`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import math
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.sidecar.controller import Controller, ControllerError, NotOwner, UnknownAddress
from engine.sidecar.metrics import CONTENT_TYPE, Metrics
from engine.sidecar.openapi import document
from engine.sidecar.swapping import RestartRequired
from engine.store import OPEN_PHASES, OrderFilter, OrderPhase, StoreError
from policies.units import parse_energy
from providers import registry
from providers.base import CallbackRejected, CallbackUnverifiable

MAX_BODY = 64 * 1024
MAX_POLICY_BODY = 1024 * 1024
MAX_WAIT = 300.0


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _printable(message: str) -> str:
    """`message` as UTF-8 can carry it: a request may smuggle lone surrogates (valid JSON
    escapes) into text we echo, and encoding those would fail the response."""
    return message.encode("utf-8", "replace").decode("utf-8")


def _small_int(text: str, digits: int) -> int | None:
    """`text` as a non-negative integer of ASCII digits (at most `digits` of them), else None.

    `str.isdigit()` is true for Unicode digits like '\u00b2' that `int()` refuses, and
    `int()` refuses strings past 4,300 digits: neither may reach it from a request."""
    if not 1 <= len(text) <= digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": _printable(message), **extra}, status_code=status)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    size_declared = None if declared is None else _small_int(declared, 18)
    if declared is not None and (size_declared is None or size_declared > limit):
        raise _HttpError(413, f"request body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _HttpError(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request, limit: int = MAX_BODY) -> dict[str, Any]:
    try:
        data = json.loads(await _body(request, limit))
    except (ValueError, RecursionError) as exc:
        raise _HttpError(400, "the body is not JSON") from exc
    if not isinstance(data, dict):
        raise _HttpError(400, "the body must be a JSON object")
    return data


class Service:
    """Routes over a controller; `app` is the ASGI application."""

    def __init__(self, controller: Controller, metrics: Metrics | None = None) -> None:
        self.controller = controller
        self.metrics = metrics
        routes = [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/v1/status", self.status, methods=["GET"]),
            Route("/v1/orders", self.orders, methods=["GET"]),
            Route("/v1/ensure", self.ensure, methods=["POST"]),
            Route("/v1/policies", self.policies, methods=["POST"]),
            Route("/v1/callbacks/{provider}", self.callback, methods=["POST"]),
        ]
        self.app = Starlette(routes=routes, exception_handlers={_HttpError: self._http_error})

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _HttpError)
        return _error(exc.status, str(exc))

    def _authorize(self, request: Request) -> None:
        policy_set = self.controller.policy_set
        ref = policy_set.settings.http.api_token if policy_set is not None else None
        if ref is None or not ref.resolved:
            raise _HttpError(403, "mutating endpoints are off: set http.apiToken")
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        expected = ref.get().get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected):
            raise _HttpError(401, "a valid bearer token is required")

    # ------------------------------------------------------------------ reads

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _problems(self) -> list[str]:
        """Why the sidecar is not ready (empty: ready); `/readyz` and `energyctl_ready`."""
        c = self.controller
        problems: list[str] = []
        if c.session is None or c.policy_set is None:
            return ["no session"]
        try:
            await c.session.store.healthcheck()
        except StoreError as exc:
            problems.append(f"store: {exc}")
        interval = float(c.policy_set.settings.observation.interval)
        limit = max(120.0, 4.0 * interval)
        if c.last_pass_at is None:
            problems.append("no pass has finished yet")
        elif c.clock.now() - c.last_pass_at > limit:
            problems.append(f"the last pass finished more than {limit:.0f}s ago")
        age = c.observation_age()
        if age is None or age > limit:
            problems.append("observation is missing or stale")
        if c.stopping:
            problems.append("stopping")
        return problems

    async def readyz(self, request: Request) -> Response:
        c = self.controller
        problems = await self._problems()
        if c.session is None or c.policy_set is None:
            return _error(503, "not ready", problems=problems)
        replica = c.status()["replica"]
        # a refused change of the store, node or listener: ready (the running set is in
        # force), but the operator must restart to get the change
        pending = {"restartRequired": list(c.restart_required)} if c.restart_required else {}
        if problems:
            return _error(503, "not ready", problems=problems, replica=replica, **pending)
        return JSONResponse(
            {"status": "ready", "revision": c.policy_set.revision, "replica": replica} | pending
        )

    async def prometheus(self, request: Request) -> Response:
        if self.metrics is None:
            return _error(404, "metrics are off")
        self.metrics.ready.set(0.0 if await self._problems() else 1.0)
        with contextlib.suppress(StoreError):  # the other series are still worth scraping
            await self.metrics.refresh(self.controller)
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(document())

    async def status(self, request: Request) -> Response:
        return JSONResponse(self.controller.status())

    async def orders(self, request: Request) -> Response:
        c, q = self.controller, request.query_params
        if c.session is None:
            return _error(503, "no session")
        phases: set[OrderPhase] = set()
        for state in q.getlist("state"):
            if state == "open":
                phases |= OPEN_PHASES
            elif state in {p.value for p in OrderPhase}:
                phases.add(OrderPhase(state))
            else:
                return _error(422, f"unknown state {state!r}")
        limit = _small_int(q.get("limit", "100"), 5)
        if limit is None or not 1 <= limit <= 10_000:
            return _error(422, "limit must be 1..10000")
        selection = OrderFilter(
            phases=frozenset(phases) if phases else None,
            address=q.get("address"),
            provider=q.get("provider"),
            limit=limit,
        )
        found = await c.session.store.orders(selection)
        return JSONResponse([o.model_dump(mode="json") for o in found])

    # ------------------------------------------------------------------ writes

    async def ensure(self, request: Request) -> Response:
        self._authorize(request)
        data = await _json(request)
        address = data.get("address")
        if not isinstance(address, str):
            return _error(422, "address (a base58 string) is required")
        try:
            energy = parse_energy(data.get("energy"))
        except (ValueError, TypeError) as exc:
            return _error(422, f"energy: {exc}")
        wait = data.get("wait", 0)
        if (
            isinstance(wait, bool)
            or not isinstance(wait, (int, float))
            or not math.isfinite(wait)  # JSON as Python reads it allows NaN and Infinity
            or wait < 0
        ):
            return _error(422, "wait is seconds, a number >= 0")
        started = time.perf_counter()
        result = "refused"
        try:
            answer = await self.controller.ensure(address, energy, min(float(wait), MAX_WAIT))
            result = "satisfied" if answer.get("satisfied") else "unsatisfied"
        except UnknownAddress as exc:
            return _error(404, str(exc))
        except NotOwner as exc:  # another replica reconciles it: the caller goes there
            return _error(409 if exc.owner else 503, str(exc), owner=exc.owner)
        except ControllerError as exc:
            return _error(503, str(exc))
        finally:
            if self.metrics is not None:
                self.metrics.ensure_seconds.labels(result).observe(time.perf_counter() - started)
        return JSONResponse(answer)

    async def policies(self, request: Request) -> Response:
        self._authorize(request)
        data = await _json(request, MAX_POLICY_BODY)
        files = data.get("files")
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            return _error(422, 'send {"files": {"NAME.yaml": "TEXT", ...}}')
        loaded = self.controller.load_pushed(files)  # the token's limits: admitting.py
        if loaded.policy_set is None:
            return _error(422, "invalid policy set", errors=list(loaded.errors))
        try:
            await self.controller.replace(loaded, "api")
        except RestartRequired as exc:  # the store, node or listener would change
            return _error(409, str(exc), restartRequired=list(exc.reasons))
        except ControllerError as exc:
            return _error(503, str(exc))
        return JSONResponse({"revision": loaded.policy_set.revision, "applied": True})

    async def callback(self, request: Request) -> Response:
        c = self.controller
        name = request.path_params["provider"]
        document_ = c.policy_set.providers.get(name) if c.policy_set is not None else None
        adapter = registry.find(document_.spec.type) if document_ is not None else None
        if document_ is None or adapter is None or not adapter.capabilities.callbacks:
            return _error(404, f"no provider {name!r} that sends callbacks")
        body = await _body(request, MAX_BODY)
        try:  # the adapter checks the signature with its document's secret
            adapter.verify_callback(document_.spec, dict(request.headers), body, c.clock.now())
        except CallbackUnverifiable as exc:
            return _error(503, f"{name}: {exc}")
        except CallbackRejected as exc:
            return _error(401, f"callback refused: {exc}")
        c.wake(f"callback:{name}")
        return JSONResponse({"accepted": True})


def create_app(controller: Controller, metrics: Metrics | None = None) -> Starlette:
    return Service(controller, metrics).app


__all__ = ["MAX_BODY", "Service", "create_app"]
