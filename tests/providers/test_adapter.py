"""providers/adapter.py: the plumbing every HTTP adapter shares, on a minimal vendor."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import SecretStr

from providers.adapter import JSON_CONTENT, HttpProvider, KeyAuth, SigningAuth
from providers.base import (
    AmbiguousError,
    Capabilities,
    ErrorReason,
    OrderRequest,
    OrderStatus,
    PermanentError,
    ProviderError,
    Quote,
    QuoteRequest,
    Receipt,
    TemporaryError,
)
from providers.http import NO_WAIT, Clock, JsonResponse
from providers.wire import PayloadError, as_object, get_id, get_int
from tests.providers.conftest import RECEIVER, Recorder, RecordingClock, make_order, reply


class StampAuth(httpx.Auth):
    """Stamps the clock's time on each request, as a signing vendor would."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Stamp"] = str(int(self.clock.now()))
        yield request


def map_teapot(provider: str, status: int, body: Any) -> ProviderError | None:
    if status == 418:
        return PermanentError(provider, f"teapot {body}", reason=ErrorReason.BALANCE)
    return None


def open_envelope(provider: str, body: Any) -> Mapping[str, Any]:
    obj = as_object(body)
    if get_int(obj, "code") != 0:
        raise PermanentError(provider, "refused", reason=ErrorReason.RECEIVER)
    return obj


class Vendor(HttpProvider[Mapping[str, Any]]):
    type_name: ClassVar[str] = "vendor"
    capabilities: ClassVar[Capabilities] = Capabilities(durations=(3600,), min_amount=10_000)
    unsold: ClassVar[str] = "amount or duration not sold by the vendor"

    def __init__(self, name: str, recorder: Recorder, clock: Clock, **kw: Any) -> None:
        super().__init__(
            name,
            base_url="https://vendor.test",
            auth=StampAuth,
            map_error=map_teapot,
            clock=clock,
            transport=recorder.transport,
            retry=NO_WAIT,
            **kw,
        )

    def _open(self, response: JsonResponse) -> Mapping[str, Any]:
        return open_envelope(self.name, response.body)

    async def quote(self, request: QuoteRequest) -> Quote:
        self._check(request.energy, request.duration)
        data = await self._data("GET", "/price")
        return self._quote(request, self._parsed(get_int, data, "total"), dict(data))

    async def place(self, order: OrderRequest) -> Receipt:
        self._check(order.energy, order.duration)
        data = await self._data("POST", "/order", create=True)
        order_id = self._parsed(get_id, data, "id", create=True)
        return self._receipt(order, order_id, cost_sun=7, raw=dict(data))

    async def status(self, receipt: Receipt) -> OrderStatus:
        raise NotImplementedError

    async def balance(self) -> int:
        return self._parsed(get_int, await self._data("GET", "/balance"), "balance")


def vendor(recorder: Recorder, clock: RecordingClock, **kw: Any) -> Vendor:
    return Vendor("v1", recorder, clock, **kw)


async def test_a_call_goes_through_auth_with_the_injected_clock(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {"code": 0, "balance": 5}))
    p = vendor(rec, clock, headers=JSON_CONTENT)
    assert await p.balance() == 5
    (request,) = rec.requests
    assert request.headers["X-Stamp"] == str(int(clock.now()))
    assert request.headers["Content-Type"] == "application/json"
    assert str(request.url) == "https://vendor.test/balance"
    await p.aclose()


async def test_quote_and_receipt_carry_the_request_and_the_instance_name(
    clock: RecordingClock,
) -> None:
    rec = Recorder(reply(200, {"code": 0, "total": 900}), reply(200, {"code": 0, "id": "X1"}))
    p = vendor(rec, clock)
    q = await p.quote(QuoteRequest(receiver=RECEIVER, energy=65_000, duration=3600))
    assert (q.provider, q.energy, q.duration, q.total_sun) == ("v1", 65_000, 3600, 900)
    assert q.raw == {"code": 0, "total": 900}
    order = make_order()
    r = await p.place(order)
    assert (r.provider, r.provider_order_id, r.cost_sun) == ("v1", "X1", 7)
    assert (r.client_order_id, r.receiver) == (order.client_order_id, order.receiver)
    assert (r.energy, r.duration) == (order.energy, order.duration)


@pytest.mark.parametrize(
    ("create", "error"), [(False, TemporaryError), (True, AmbiguousError)], ids=["read", "create"]
)
async def test_parsed_maps_a_payload_error_to_protocol(
    clock: RecordingClock, create: bool, error: type[ProviderError]
) -> None:
    p = vendor(Recorder(), clock)
    with pytest.raises(error) as info:
        p._parsed(get_int, {"total": "x"}, "total", create=create)
    assert info.value.reason is ErrorReason.PROTOCOL
    assert isinstance(info.value.__cause__, PayloadError)
    assert str(info.value) == "v1: field 'total' is not an integer"


async def test_parsed_lets_other_errors_through(clock: RecordingClock) -> None:
    p = vendor(Recorder(), clock)

    def refuse() -> int:
        raise PermanentError("v1", "no", reason=ErrorReason.AUTH)

    with pytest.raises(PermanentError):
        p._parsed(refuse)


async def test_an_envelope_of_the_wrong_shape_after_a_create_is_ambiguous(
    clock: RecordingClock,
) -> None:
    rec = Recorder(reply(200, ["not", "an", "object"]))
    with pytest.raises(AmbiguousError) as info:
        await vendor(rec, clock).place(make_order())
    assert info.value.reason is ErrorReason.PROTOCOL
    assert len(rec.requests) == 1


async def test_a_refusal_in_the_envelope_is_raised_as_the_vendor_mapped_it(
    clock: RecordingClock,
) -> None:
    rec = Recorder(reply(200, {"code": 3}))
    with pytest.raises(PermanentError) as info:
        await vendor(rec, clock).balance()
    assert info.value.reason is ErrorReason.RECEIVER


async def test_the_vendor_error_mapping_is_given_the_instance_name(clock: RecordingClock) -> None:
    rec = Recorder(reply(418, "short"))
    with pytest.raises(PermanentError) as info:
        await vendor(rec, clock).balance()
    assert info.value.reason is ErrorReason.BALANCE
    assert str(info.value) == "v1: teapot short"


@pytest.mark.parametrize(("energy", "duration"), [(9_999, 3600), (65_000, 7200)])
async def test_check_refuses_unsold_orders_before_any_call(
    clock: RecordingClock, energy: int, duration: int
) -> None:
    rec = Recorder(reply(200, {"code": 0, "total": 1}))
    with pytest.raises(PermanentError) as info:
        await vendor(rec, clock).quote(
            QuoteRequest(receiver=RECEIVER, energy=energy, duration=duration)
        )
    assert info.value.reason is ErrorReason.INVALID_REQUEST
    assert str(info.value) == "v1: amount or duration not sold by the vendor"
    assert rec.requests == []


async def test_requests_per_second_spaces_calls_on_the_clock(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {"code": 0, "balance": 1}))
    p = vendor(rec, clock, requests_per_second=1)
    for _ in range(3):
        await p.balance()
    assert clock.slept == pytest.approx([1.0, 1.0])


async def test_without_a_rate_calls_are_not_spaced(clock: RecordingClock) -> None:
    rec = Recorder(reply(200, {"code": 0, "balance": 1}))
    p = vendor(rec, clock)
    for _ in range(3):
        await p.balance()
    assert clock.slept == []


class Keyed(KeyAuth):
    key_header = "X-Key"


class Signed(SigningAuth):
    key_header = "X-Key"

    def _sign(self, request: httpx.Request) -> None:
        # sees the key header already set, and the clock and secret it was given
        seen = request.headers["X-Key"]
        request.headers["X-Sig"] = f"{seen}|{self._secret.get_secret_value()}|{self._clock.now()}"


def test_key_auth_sends_the_key_in_its_header_and_never_shows_it() -> None:
    auth = Keyed(SecretStr("canary-key"))
    sent = next(auth.sync_auth_flow(httpx.Request("GET", "https://vendor.test/")))
    assert sent.headers["X-Key"] == "canary-key"
    assert "X-Sig" not in sent.headers
    assert repr(auth) == "<Keyed>"
    assert not auth.requires_request_body


def test_signing_auth_signs_after_the_key_header_is_set(clock: RecordingClock) -> None:
    auth = Signed(SecretStr("canary-key"), SecretStr("canary-secret"), clock)
    sent = next(auth.sync_auth_flow(httpx.Request("POST", "https://vendor.test/", content=b"{}")))
    assert sent.headers["X-Sig"] == f"canary-key|canary-secret|{clock.now()}"
    assert repr(auth) == "<Signed>"
    assert "canary" not in repr(auth)
    assert auth.requires_request_body
