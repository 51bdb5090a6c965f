"""HTTP for the vendor adapters: the one module that knows httpx and tenacity.

It offers a client factory with a `transport=` seam (`make_client`), one call helper
(`JsonApi.call`) with the retry policy and the mapping of transport failures and HTTP
statuses onto `TemporaryError`, `PermanentError` and `AmbiguousError`, and a client-side
token-bucket rate limiter driven by an injected clock.

The rules (never buy twice for one need; an order that may exist is never forgotten):

- Reads are retried with exponential backoff and jitter, a bounded number of times, and
  honour `Retry-After`.
- A create-order call is retried only when the vendor deduplicates it (`idempotent=True`)
  or when the failure proves nothing was sent (the connection was never established).
  A timeout, a dropped connection, a 5xx, or a 2xx we cannot parse on a create is an
  `AmbiguousError`: an order may exist.
- On a create, only an answer the vendor documents as a refusal made before anything was
  bought (`ProviderError.refusal`) is definite, and only on the first attempt: once an
  attempt may have reached the vendor, any later refusal is ambiguous too (the earlier
  attempt may have bought), see `on_create`. `JsonResponse.retried` tells the adapter
  that a 2xx came after such an attempt, so an envelope refusal in it is ambiguous.
- 429 is Temporary(RATE_LIMITED) with the `Retry-After` delay; 401/403 are
  Permanent(AUTH); other 4xx go to the adapter's vendor error mapping first.

Neighbours: `providers/base.py` (errors), `providers/wire.py` (typed reads of decoded
JSON), the vendor modules (signing as `httpx.Auth`, vendor error codes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email.utils
import functools
import json
import math
import os
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import certifi
import httpx
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from providers.base import (
    AmbiguousError,
    ErrorReason,
    PermanentError,
    ProviderError,
    TemporaryError,
)

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_BODY_BYTES = 1_000_000
_JITTER = secrets.SystemRandom()

#: Maps a vendor's non-2xx answer (status, decoded JSON or None) to an error, or None to
#: fall back to the generic mapping by HTTP status.
ErrorMapper = Callable[[int, Any], ProviderError | None]


class Clock(Protocol):
    """The program's one clock protocol: adapters take it, and `engine.core.clock` hands it on."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time; the default when no clock is injected."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a call is retried. Waits are seconds."""

    attempts: int = 3
    initial_wait: float = 0.5
    max_wait: float = 8.0
    jitter: float = 0.5
    #: a Retry-After longer than this is not waited for in the call: the error carries it
    max_retry_after: float = 30.0


#: For tests and simulation: same number of attempts, no waiting between them.
NO_WAIT = RetryPolicy(initial_wait=0.0, max_wait=0.0, jitter=0.0)


@dataclass(frozen=True)
class JsonResponse:
    status: int
    body: Any
    headers: Mapping[str, str]
    #: an earlier attempt of this create may have reached the vendor (see `on_create`)
    retried: bool = False


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The certificate checks httpx would make by default (`SSL_CERT_FILE` / `SSL_CERT_DIR`
    where set, else certifi's bundle), built once per process and shared by every client."""
    cafile: str | None = os.environ.get("SSL_CERT_FILE", "")
    capath: str | None = os.environ.get("SSL_CERT_DIR", "")
    cafile = cafile if cafile and os.path.isfile(cafile) else None
    capath = capath if capath and os.path.isdir(capath) else None
    if cafile is None and capath is None:
        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def make_client(
    base_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """The one way adapters get an HTTP client. `transport` is the test seam.

    Every client verifies TLS with one shared context (`tls_context`): building one per
    client reads the whole CA bundle again (~25 ms each, per adapter and per process)."""
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        verify=tls_context(),
        timeout=timeout,
        headers={"Accept": "application/json", **(headers or {})},
        auth=auth,
        follow_redirects=False,
    )


class RateLimiter:
    """Token bucket: at most `rate` calls a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, *, burst: int | None = None, clock: Clock) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1, int(rate))
        self._clock = clock
        self._tokens = float(self.burst)
        self._stamp = clock.now()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock.now()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        """Take one token, waiting (on the clock) until one is available."""
        async with self._lock:
            self._refill()
            # tolerance: epoch-sized floats lose ~1e-7 s, i.e. a few millionths of a token
            while self._tokens < 1.0 - 1e-3:
                await self._clock.sleep((1.0 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1.0


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Parse a Retry-After header (delta seconds or an HTTP date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() alone admits "²" and "١٢"
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - now)
    except (TypeError, ValueError, OverflowError):
        return None


#: a vendor's clock further than this from ours (seconds, by its `Date` header) is logged
SKEW_WARNING_S = 2.0


def date_skew(value: str | None, now: float) -> float | None:
    """How far the server's clock is ahead of `now` (negative: behind), in seconds, from
    its `Date` header; None when there is none or it cannot be read.

    An HTTP-date counts whole seconds, rounded down, so half a second is added: read on
    arrival, the result is within half a second plus the answer's latency.
    """
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp() + 0.5 - now


def protocol_error(provider: str, message: str, *, create: bool) -> ProviderError:
    """A response we cannot understand: Ambiguous after a create, Temporary otherwise."""
    if create:
        return AmbiguousError(provider, message, reason=ErrorReason.PROTOCOL)
    return TemporaryError(provider, message, reason=ErrorReason.PROTOCOL)


def on_create(error: ProviderError, *, retried: bool) -> ProviderError:
    """What `error` means as the answer to a create call.

    Definite (unchanged) only when the vendor documents it as a refusal made before
    anything was bought (`error.refusal`) and no earlier attempt with the same client
    order id may have reached the vendor (`retried`); otherwise an `AmbiguousError`
    keeping the reason and vendor code: an order may exist, so no other provider may be
    asked until it is resolved.
    """
    if isinstance(error, AmbiguousError) or (error.refusal and not retried):
        return error
    text = str(error).removeprefix(f"{error.provider}: ")
    if retried:
        what = f"create answered {text!r} after an attempt that may have been accepted"
    else:
        what = f"create answered {text!r}, which does not prove that nothing was bought"
    ambiguous = AmbiguousError(
        error.provider,
        f"{what}: an order may exist",
        reason=error.reason,
        vendor_code=error.vendor_code,
    )
    ambiguous.__cause__ = error
    return ambiguous


class _Failed(Exception):
    """One failed attempt: the error to raise and whether trying again is safe."""

    def __init__(self, error: ProviderError, *, retry: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry = retry


class JsonApi:
    """One vendor's HTTP API: calls with retries, limits and error mapping."""

    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        *,
        clock: Clock,
        retry: RetryPolicy = RetryPolicy(),
        limiter: RateLimiter | None = None,
        map_error: ErrorMapper | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.provider = provider
        self.client = client
        self.clock = clock
        self.retry = retry
        self.limiter = limiter
        self.map_error = map_error
        self.max_body_bytes = max_body_bytes

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        create: bool = False,
        idempotent: bool = False,
    ) -> JsonResponse:
        """One logical call. Returns a 2xx response with its decoded JSON body.

        `create=True` marks a call that may buy something; `idempotent=True` says the
        vendor deduplicates it, so it may be retried after an ambiguous failure.
        """
        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=stop_after_attempt(max(1, self.retry.attempts)),
            wait=self._wait,
            retry=lambda state: _should_retry(state),
            reraise=True,
        )
        maybe_sent = False  # an earlier attempt of this create may have reached the vendor
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        response = await self._once(
                            method, path, params, content, headers, create, idempotent
                        )
                    except _Failed as failed:
                        if not create:
                            raise
                        if maybe_sent:
                            error = on_create(failed.error, retried=True)
                            raise _Failed(error, retry=failed.retry) from failed.__cause__
                        maybe_sent = isinstance(failed.error, AmbiguousError)
                        raise
                    if maybe_sent:
                        return dataclasses.replace(response, retried=True)
                    return response
        except _Failed as failed:
            raise failed.error from failed.__cause__
        raise AssertionError("unreachable: tenacity ends in a return or a raise")

    async def _sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if (
            isinstance(exc, _Failed)
            and isinstance(exc.error, TemporaryError)
            and exc.error.delay is not None
        ):
            return exc.error.delay
        policy = self.retry
        growth = float(2 ** (state.attempt_number - 1))
        backoff = min(policy.max_wait, policy.initial_wait * growth)
        return backoff + (_JITTER.uniform(0.0, policy.jitter) if policy.jitter > 0 else 0.0)

    async def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        create: bool,
        idempotent: bool,
    ) -> JsonResponse:
        name = self.provider
        if self.limiter is not None:
            await self.limiter.acquire()
        request = self.client.build_request(
            method, path, params=params, content=content, headers=headers
        )
        try:
            response = await self.client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The connection was never established: nothing reached the vendor.
            err = TemporaryError(name, f"cannot connect ({type(exc).__name__})")
            raise _Failed(err, retry=True) from exc
        except httpx.TransportError as exc:
            # Timeouts, resets, protocol errors after connecting: the request may have
            # been received and acted on.
            what = f"no complete answer ({type(exc).__name__})"
            if create:
                raise _Failed(AmbiguousError(name, what), retry=idempotent) from exc
            raise _Failed(TemporaryError(name, what), retry=True) from exc
        try:
            raw = await self._read_limited(response)
        except httpx.TransportError as exc:
            what = f"answer cut short ({type(exc).__name__})"
            if create:
                raise _Failed(AmbiguousError(name, what), retry=idempotent) from exc
            raise _Failed(TemporaryError(name, what), retry=True) from exc
        finally:
            await response.aclose()
        return self._interpret(response, raw, create=create, idempotent=idempotent)

    async def _read_limited(self, response: httpx.Response) -> bytes | None:
        """The body, or None when it is larger than we accept."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _interpret(
        self, response: httpx.Response, raw: bytes | None, *, create: bool, idempotent: bool
    ) -> JsonResponse:
        name, status = self.provider, response.status_code
        body = _decode(raw)
        if status == 429:
            delay = retry_after_seconds(response.headers.get("retry-after"), self.clock.now())
            limited = TemporaryError(
                name, "rate limited (HTTP 429)", delay=delay, reason=ErrorReason.RATE_LIMITED
            )
            waitable = delay is None or delay <= self.retry.max_retry_after
            # A 429 was refused before any work, but a create is still not retried here
            # unless idempotent: the caller decides when to try again.
            raise _Failed(limited, retry=waitable and (not create or idempotent))
        if status >= 500:
            what = f"server error (HTTP {status})"
            if create:
                raise _Failed(AmbiguousError(name, what), retry=idempotent)
            raise _Failed(TemporaryError(name, what), retry=True)
        if status >= 400:
            decoded = None if body is _NOT_JSON else body
            mapped = self.map_error(status, decoded) if self.map_error else None
            raise _Failed(mapped or _generic_4xx(name, status), retry=False)
        if not 200 <= status < 300:
            err = protocol_error(name, f"unexpected HTTP {status}", create=create)
            raise _Failed(err, retry=not create or idempotent)
        if raw is None:
            err = protocol_error(name, "response body too large", create=create)
            raise _Failed(err, retry=not create or idempotent)
        if body is _NOT_JSON:
            err = protocol_error(name, f"HTTP {status} answer is not JSON", create=create)
            raise _Failed(err, retry=not create or idempotent)
        return JsonResponse(status=status, body=body, headers=dict(response.headers))


_NOT_JSON: Any = object()


def _decode(raw: bytes | None) -> Any:
    if raw is None:
        return _NOT_JSON
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # bad JSON or UTF, or an int over Python's digit limit
        return _NOT_JSON


def _generic_4xx(name: str, status: int) -> ProviderError:
    if status in (401, 403):
        return PermanentError(name, f"credentials refused (HTTP {status})", reason=ErrorReason.AUTH)
    if status == 408:
        return TemporaryError(name, "request timeout (HTTP 408)")
    if status == 404:
        return PermanentError(name, "not found (HTTP 404)", reason=ErrorReason.NOT_FOUND)
    return PermanentError(
        name, f"request refused (HTTP {status})", reason=ErrorReason.INVALID_REQUEST
    )


def _should_retry(state: RetryCallState) -> bool:
    exc = state.outcome.exception() if state.outcome else None
    return isinstance(exc, _Failed) and exc.retry
