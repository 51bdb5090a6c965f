"""What every vendor emulator shares: state, emulated time, the request pipeline, faults.

`EmulatorBase` holds the account balance, the `DeliveryBook`, the injected `Clock` and
`Faults`, and builds the Starlette app (`.app`) from the routes a vendor subclass lists.
Each route runs through one pipeline:

    rate limit (vendor default or Faults.rate_limit; the vendor's own 429 body)
    -> tick() (orders advance to clock.now(); a pending Faults.set_balance applies)
    -> queued fault for this operation (5xx or a given answer, before or after processing;
       a hold on the clock)
    -> the vendor handler

Where the vendor's docs allow two answers, the emulator gives the one its `Readings`
choose (`self.reading(key)`; `readings.py`); the default is the most likely.

Time only comes from the clock, so a test stepping a `VirtualClock` is deterministic:
advance the clock, then make a request (or call `tick()` / `await step()`). The world's
loop calls `await run()` to advance orders and send callbacks in the background.

Each emulator also has its own notion of the time of day, `now()`: the clock plus
`clock_offset_s` (0 unless set), as a vendor's server clock may be off from ours. It
stamps the HTTP `Date` header of every answer and is what signed timestamps are checked
against; orders and deliveries stay on the shared clock (the chain's).

Neighbours: `base.py`, `delivery.py`, `faults.py`; subclasses `mefree.py`, `itrx.py`,
`eopen.py`, `tronsave.py`.
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.core.clock import Clock
from sandbox.providers.base import Delegator
from sandbox.providers.delivery import Delivery, DeliveryBook, DeliveryState
from sandbox.providers.faults import Faults, Injected
from sandbox.providers.readings import Readings

Handler = Callable[[Request], Awaitable[Response]]

_PROXY_REASONS = {
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


class DateHeader:
    """ASGI middleware: a `Date` header (RFC 9110 HTTP-date) from `now()` on every answer,
    replacing any the app set."""

    def __init__(self, app: ASGIApp, now: Callable[[], float]) -> None:
        self.app = app
        self.now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                stamp = email.utils.formatdate(self.now(), usegmt=True).encode("ascii")
                message = {**message, "headers": [*headers, (b"date", stamp)]}
            await send(message)

        await self.app(scope, receive, dated)


_PLAIN_HEADERS = frozenset(
    {"host", "accept", "accept-encoding", "connection", "content-length", "content-type",
     "user-agent"}
)  # fmt: skip


def _credentials(request: Request) -> str:
    """The request's non-standard header values (its key, signature, timestamp)."""
    return " ".join(v for k, v in request.headers.items() if k.lower() not in _PLAIN_HEADERS)


@dataclass(frozen=True)
class Call:
    """One request the emulator answered (for tests: 'was create called twice?')."""

    op: str
    method: str
    path: str
    status: int
    at: float


class Refundable(Protocol):
    """An emulated order that is refunded in full when its delivery fails."""

    refunded: bool

    @property
    def delivery(self) -> Delivery | None: ...
    @property
    def amount_sun(self) -> int: ...


def refund_failed(orders: Iterable[Refundable], delivery: Delivery) -> int:
    """Mark the orders of a failed `delivery` refunded (once each) and return the sun to
    give back: the vendors whose docs say nothing on a failed order are emulated as
    refunding it in full (the adapters book the charge the vendor reports)."""
    if delivery.state is not DeliveryState.FAILED:
        return 0
    refund = 0
    for order in orders:
        if order.delivery is delivery and not order.refunded:
            order.refunded = True
            refund += order.amount_sun
    return refund


class EmulatorBase(abc.ABC):
    """Base of the four vendor emulators. Subclasses define `_routes()` and the hooks."""

    #: seconds between acceptance and delegation, unless Faults.slow_delivery says otherwise
    default_delivery_delay: float = 3.0
    #: the vendor's name in reading names (`mefree.duplicate`)
    vendor: ClassVar[str]

    def __init__(
        self,
        delegator: Delegator,
        *,
        clock: Clock,
        balance_sun: int,
        faults: Faults | None = None,
        seed: int = 0,
        delivery_delay: float | None = None,
        rate_limit_per_s: int | None = None,
        readings: Readings | None = None,
    ) -> None:
        self.delegator = delegator
        self.readings = readings if readings is not None else Readings()
        self.clock = clock
        self.faults = faults if faults is not None else Faults()
        self.balance_sun = balance_sun
        self.rng = random.Random(seed)
        delay = self.default_delivery_delay if delivery_delay is None else delivery_delay
        self.book = DeliveryBook(delegator, delay=delay)
        #: requests per emulated second before the vendor's "rate limited" answer (None: none)
        self.rate_limit_per_s = rate_limit_per_s
        self.calls: list[Call] = []
        #: seconds this vendor's server clock is ahead of the shared clock (negative: behind)
        self.clock_offset_s = 0.0
        self.app = Starlette(
            routes=[self._route(*spec) for spec in self._routes()],
            exception_handlers={404: self._http_error, 405: self._http_error},
            middleware=[Middleware(DateHeader, now=self.now)],
        )

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        """This vendor's time of day: the clock plus `clock_offset_s` (its `Date` header,
        and what signed timestamps are checked against)."""
        return self.clock.now() + self.clock_offset_s

    def tick(self) -> None:
        """Advance every order to the clock's now (runs on every request, too)."""
        now = self.clock.now()
        sun = self.faults.take_balance()
        if sun is not None:
            self.balance_sun = sun
        for delivery in self.book.tick(now):
            self._delivery_changed(delivery, now)

    async def step(self) -> None:
        """`tick()`, then any asynchronous side effect that is due (itrx callbacks)."""
        self.tick()
        await self._after_tick()

    async def run(self, interval: float = 1.0) -> None:
        """Background loop for the world: step every `interval` seconds of the clock."""
        while True:
            await self.step()
            await self.clock.sleep(interval)

    def reading(self, key: str) -> str:
        """This emulator's value of reading `vendor.key` (`readings.py`)."""
        return self.readings.value(self.vendor, key)

    def count(self, op: str) -> int:
        """How many requests for operation `op` were answered (any status)."""
        return sum(1 for c in self.calls if c.op == op)

    # ------------------------------------------------------------------ hooks

    @abc.abstractmethod
    def _routes(self) -> list[tuple[str, Handler, list[str], str]]:
        """(path, handler, methods, operation name) for every vendor endpoint."""

    @abc.abstractmethod
    def _rate_limited(self) -> Response:
        """The vendor's answer when over the rate limit."""

    def _server_error(self, status: int) -> Response:
        """The vendor's answer to an injected 5xx; by default a proxy's HTML page."""
        reason = _PROXY_REASONS.get(status, "Internal Server Error")
        body = f"<html><head><title>{status} {reason}</title></head><body>"
        body += f"<center><h1>{status} {reason}</h1></center><hr><center>nginx</center>"
        return HTMLResponse(body + "</body></html>", status_code=status)

    def _refusal(self, message: str) -> Response:
        """The vendor's refusal of a request with `message` (the echo fault); by default
        a JSON 400 carrying it under the usual message keys."""
        body = {"code": 400, "error": True, "msg": message, "message": message}
        return JSONResponse(body, status_code=400)

    def _not_found(self, request: Request, status: int) -> Response:
        """The vendor's answer for an unknown route (404) or a wrong method (405)."""
        return Response("Not Found", status_code=404, media_type="text/plain")

    def _delivery_changed(self, delivery: Delivery, now: float) -> None:  # noqa: B027
        """Called by `tick()` for each delivery whose state changed."""

    async def _after_tick(self) -> None:  # noqa: B027
        """Asynchronous work due after a tick (callbacks)."""

    # ------------------------------------------------------------------ pipeline

    def _new_hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(digits * 4):0{digits}x}"

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return self._not_found(request, status)

    def _route(self, path: str, handler: Handler, methods: list[str], op: str) -> Route:
        async def guarded(request: Request) -> Response:
            response = await self._guarded(request, handler, op)
            self.calls.append(
                Call(op, request.method, request.url.path, response.status_code, self.clock.now())
            )
            return response

        return Route(path, guarded, methods=methods)

    async def _guarded(self, request: Request, handler: Handler, op: str) -> Response:
        if not self.faults.admit(self.clock.now(), self.rate_limit_per_s):
            return self._rate_limited()
        self.tick()
        fault = self.faults.take(op)
        if fault is not None and fault.kind == "echo":
            return self._refusal(f"invalid credentials: {_credentials(request)}")
        if fault is not None and not fault.after_accept:
            if fault.kind != "hang":
                return self._fault_answer(fault)
            await self._hold(fault.seconds)
            self.tick()
        response = await handler(request)
        if fault is not None and fault.after_accept:
            if fault.kind != "hang":
                return self._fault_answer(fault)
            await self._hold(fault.seconds)
        return response

    def _fault_answer(self, fault: Injected) -> Response:
        if fault.kind == "answer":
            return Response(fault.body, status_code=fault.status, media_type=fault.media_type)
        return self._server_error(fault.status)

    async def _hold(self, seconds: float) -> None:
        released = self.faults.hold_event()
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waiter = asyncio.ensure_future(released.wait())
        _, pending = await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
