"""What the HTTP vendor adapters share: `HttpProvider`, a `Provider` over a JSON API,
and the credential holders their `httpx.Auth` classes are built on (`KeyAuth`,
`SigningAuth`).

The plumbing is the same for every vendor: a clock (the system's unless one is injected),
one HTTP client with the vendor's `httpx.Auth`, a `JsonApi` with the retry policy, an
optional rate limiter and the vendor's mapping of HTTP errors. So is the treatment of an
answer: the vendor's envelope is opened (`_open`), and a `PayloadError` from it or from
any parser becomes the PROTOCOL error of that call (`_parsed`: Ambiguous after a create,
Temporary otherwise). What differs stays in each vendor module: signing, the envelope,
the `_build_*`/`_parse_*` functions, statuses and error codes.

Every answer's `Date` header measures the vendor's clock against ours (`clock_skew`,
seconds, vendor minus us); a skew above `SKEW_WARNING_S` is logged once (signed
timestamps are refused past a few seconds: Mefree's guide says 5). `answered` counts the
HTTP answers received, whatever their status.

Neighbours: `providers/base.py` (interface), `providers/http.py` (calls, error mapping),
`providers/wire.py` (`PayloadError`); subclassed by the vendor modules (`providers/<vendor>.py`).
"""

from __future__ import annotations

import abc
import functools
import logging
from collections.abc import Callable, Generator, Mapping
from typing import Any, ClassVar, Generic, TypeVar, TypeVarTuple

import httpx
from pydantic import SecretStr

from providers.base import (
    ErrorReason,
    OrderRequest,
    PermanentError,
    Provider,
    ProviderError,
    Quote,
    QuoteRequest,
    Receipt,
)
from providers.http import (
    DEFAULT_TIMEOUT,
    SKEW_WARNING_S,
    Clock,
    JsonApi,
    JsonResponse,
    RateLimiter,
    RetryPolicy,
    SystemClock,
    date_skew,
    make_client,
    on_create,
    protocol_error,
)
from providers.wire import PayloadError

#: what a vendor's envelope yields from one answer (its `data`, or `data` and the body)
PayloadT = TypeVar("PayloadT")
T = TypeVar("T")
Args = TypeVarTuple("Args")

#: the vendor's mapping of a non-2xx answer: (provider, status, decoded JSON or None)
VendorErrorMapper = Callable[[str, int, Any], ProviderError | None]

log = logging.getLogger("energyctl.providers")

#: the `Content-Type` of vendors that take (or sign) JSON bodies
JSON_CONTENT: Mapping[str, str] = {"Content-Type": "application/json"}


class KeyAuth(httpx.Auth):
    """The API key in one header (`key_header`) on every request; `repr` hides it.

    Vendors that sign subclass it with the secret and the clock and add their headers in
    `_sign`, which sees the request after the key header is set."""

    key_header: ClassVar[str]

    def __init__(self, api_key: SecretStr) -> None:
        self._key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.key_header] = self._key.get_secret_value()
        self._sign(request)
        yield request

    def _sign(self, request: httpx.Request) -> None:
        """Add signature headers (none for a vendor that only checks the key)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class SigningAuth(KeyAuth):
    """A `KeyAuth` that also signs with a secret and a timestamp from the clock."""

    requires_request_body = True

    def __init__(self, api_key: SecretStr, api_secret: SecretStr, clock: Clock) -> None:
        super().__init__(api_key)
        self._secret = api_secret
        self._clock = clock


class HttpProvider(Provider, Generic[PayloadT]):
    """One vendor account behind a JSON HTTP API. Subclasses open the envelope."""

    #: the refusal of an amount or duration outside `capabilities` (`_check`)
    unsold: ClassVar[str] = "amount or duration not sold"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        auth: Callable[[Clock], httpx.Auth],
        map_error: VendorErrorMapper,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        requests_per_second: float | None = None,
    ) -> None:
        """`auth` is given the clock (signatures carry timestamps); `requests_per_second`
        adds a client-side token bucket shared by every call of this instance."""
        super().__init__(name)
        self._clock = clock or SystemClock()
        client = make_client(
            base_url,
            transport=transport,
            timeout=timeout,
            headers=headers,
            auth=auth(self._clock),
        )
        limiter = None
        if requests_per_second is not None:
            limiter = RateLimiter(requests_per_second, clock=self._clock)
        self._api = JsonApi(
            name,
            client,
            clock=self._clock,
            retry=retry or RetryPolicy(),
            limiter=limiter,
            map_error=functools.partial(map_error, name),
        )
        #: seconds the vendor's clock is ahead of ours (negative: behind), by the `Date`
        #: header of its latest answer; None until an answer carried one
        self.clock_skew: float | None = None
        #: HTTP answers received from the vendor (any status)
        self.answered = 0
        client.event_hooks["response"].append(self._on_answer)

    async def _on_answer(self, response: httpx.Response) -> None:
        """Count the answer and measure the vendor's clock by its `Date` header."""
        self.answered += 1
        skew = date_skew(response.headers.get("date"), self._clock.now())
        if skew is None:
            return
        before, self.clock_skew = self.clock_skew, skew
        if abs(skew) > SKEW_WARNING_S and (before is None or abs(before) <= SKEW_WARNING_S):
            log.warning(
                "%s: the vendor's clock is %+.1f s from ours (its Date header); signed "
                "requests may be refused: check this host's time (NTP)",
                self.name,
                skew,
                extra={"event": "provider_clock_skew", "provider": self.name, "skew_s": skew},
            )

    @abc.abstractmethod
    def _open(self, response: JsonResponse) -> PayloadT:
        """The vendor's envelope: its payload, or the vendor's refusal raised as a
        `ProviderError`; `PayloadError` when the answer has the wrong shape."""

    async def _data(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        create: bool = False,
        idempotent: bool = False,
        retried: bool = False,
    ) -> PayloadT:
        """One call (`JsonApi.call`, same arguments) and its opened envelope.

        On a create (`create=True`), an error is what it means as a create's answer
        (`on_create`): only a documented refusal of a first attempt stays definite.
        `retried` says an earlier create with the same client order id may have reached
        the vendor (`OrderRequest.retry`)."""
        response: JsonResponse | None = None
        try:
            response = await self._api.call(
                method,
                path,
                params=params,
                content=content,
                headers=headers,
                create=create,
                idempotent=idempotent,
            )
            return self._parsed(self._open, response, create=create)
        except ProviderError as exc:
            if not create:
                raise
            sent = retried or (response is not None and response.retried)
            error = on_create(exc, retried=sent)
            if error is exc:
                raise
            raise error from exc

    def _parsed(self, parse: Callable[[*Args], T], *args: *Args, create: bool = False) -> T:
        """`parse(*args)`; a `PayloadError` is the PROTOCOL error of a read or a create."""
        try:
            return parse(*args)
        except PayloadError as exc:
            raise protocol_error(self.name, str(exc), create=create) from exc

    def _check(self, energy: int, duration: int) -> None:
        """Refuse, before any call, an order this vendor does not sell."""
        caps = self.capabilities
        if not caps.accepts_duration(duration) or energy < caps.min_amount:
            raise PermanentError(self.name, self.unsold, reason=ErrorReason.INVALID_REQUEST)

    def _quote(self, request: QuoteRequest, total_sun: int, raw: Mapping[str, Any]) -> Quote:
        return Quote(
            provider=self.name,
            energy=request.energy,
            duration=request.duration,
            total_sun=total_sun,
            raw=raw,
        )

    def _receipt(
        self,
        order: OrderRequest,
        provider_order_id: str,
        *,
        cost_sun: int | None = None,
        raw: Mapping[str, Any],
    ) -> Receipt:
        return Receipt(
            provider=self.name,
            client_order_id=order.client_order_id,
            provider_order_id=provider_order_id,
            receiver=order.receiver,
            energy=order.energy,
            duration=order.duration,
            cost_sun=cost_sun,
            raw=raw,
        )

    async def aclose(self) -> None:
        await self._api.client.aclose()
