"""providers/http.py: retry policy, error mapping, hostile answers, rate limiting."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from engine.core.clock import VirtualClock
from providers.base import (
    AmbiguousError,
    ErrorReason,
    PermanentError,
    ProviderError,
    TemporaryError,
)
from providers.http import (
    NO_WAIT,
    JsonApi,
    RateLimiter,
    RetryPolicy,
    make_client,
    retry_after_seconds,
)
from tests.providers.conftest import START, Recorder, RecordingClock, fail, raw, reply

OK = reply(200, {"ok": True})


def api(recorder: Recorder, clock: RecordingClock, **kw: object) -> JsonApi:
    client = make_client("https://vendor.test", transport=recorder.transport)
    return JsonApi("vendor", client, clock=clock, retry=NO_WAIT, **kw)  # type: ignore[arg-type]


async def test_read_is_retried_after_5xx(clock: RecordingClock) -> None:
    rec = Recorder(reply(503), OK)
    response = await api(rec, clock).call("GET", "/x")
    assert response.body == {"ok": True}
    assert len(rec.requests) == 2


async def test_read_gives_up_after_bounded_attempts(clock: RecordingClock) -> None:
    rec = Recorder(reply(502))
    with pytest.raises(TemporaryError) as info:
        await api(rec, clock).call("GET", "/x")
    assert len(rec.requests) == NO_WAIT.attempts
    assert info.value.reason is ErrorReason.UNAVAILABLE


@pytest.mark.parametrize(
    "handler",
    [reply(500), reply(504), fail(httpx.ReadTimeout), fail(httpx.RemoteProtocolError)],
    ids=["500", "504", "read-timeout", "dropped"],
)
async def test_create_is_never_retried_when_it_may_have_been_received(
    clock: RecordingClock, handler: object
) -> None:
    rec = Recorder(handler, OK)  # type: ignore[arg-type]
    with pytest.raises(AmbiguousError):
        await api(rec, clock).call("POST", "/order", create=True)
    assert len(rec.requests) == 1


async def test_create_ambiguity_chains_the_transport_error(clock: RecordingClock) -> None:
    rec = Recorder(fail(httpx.ReadTimeout))
    with pytest.raises(AmbiguousError) as info:
        await api(rec, clock).call("POST", "/order", create=True)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


async def test_create_is_retried_when_nothing_was_sent(clock: RecordingClock) -> None:
    rec = Recorder(fail(httpx.ConnectError), OK)
    response = await api(rec, clock).call("POST", "/order", create=True)
    assert response.status == 200
    assert len(rec.requests) == 2


async def test_create_connect_refused_every_time_is_temporary(clock: RecordingClock) -> None:
    rec = Recorder(fail(httpx.ConnectError))
    with pytest.raises(TemporaryError) as info:
        await api(rec, clock).call("POST", "/order", create=True)
    assert info.value.reason is ErrorReason.UNAVAILABLE
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_idempotent_create_is_retried_after_timeout(clock: RecordingClock) -> None:
    rec = Recorder(fail(httpx.ReadTimeout), reply(500), OK)
    response = await api(rec, clock).call("POST", "/order", create=True, idempotent=True)
    assert response.body == {"ok": True}
    assert len(rec.requests) == 3


async def test_429_retry_after_is_honoured_on_reads(clock: RecordingClock) -> None:
    rec = Recorder(reply(429, {"m": "slow"}, **{"Retry-After": "7"}), OK)
    await api(rec, clock).call("GET", "/x")
    assert clock.slept == [7.0]


async def test_429_on_create_is_temporary_with_delay_and_not_retried(
    clock: RecordingClock,
) -> None:
    rec = Recorder(reply(429, None, **{"Retry-After": "3"}), OK)
    with pytest.raises(TemporaryError) as info:
        await api(rec, clock).call("POST", "/order", create=True)
    assert info.value.reason is ErrorReason.RATE_LIMITED
    assert info.value.delay == 3.0
    assert len(rec.requests) == 1


async def test_long_retry_after_is_not_waited_for(clock: RecordingClock) -> None:
    rec = Recorder(reply(429, None, **{"Retry-After": "3600"}), OK)
    with pytest.raises(TemporaryError) as info:
        await api(rec, clock).call("GET", "/x")
    assert info.value.delay == 3600.0
    assert clock.slept == []


def test_retry_after_http_date() -> None:
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", START) == 30.0
    assert retry_after_seconds("soon", START) is None
    assert retry_after_seconds(None, START) is None


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failures_are_permanent(clock: RecordingClock, status: int) -> None:
    rec = Recorder(reply(status, {"x": 1}))
    with pytest.raises(PermanentError) as info:
        await api(rec, clock).call("GET", "/x")
    assert info.value.reason is ErrorReason.AUTH
    assert len(rec.requests) == 1


async def test_vendor_mapping_sees_4xx_first(clock: RecordingClock) -> None:
    seen: list[tuple[int, object]] = []

    def mapper(status: int, body: object) -> ProviderError:
        seen.append((status, body))
        return PermanentError("vendor", "mapped", reason=ErrorReason.BALANCE)

    rec = Recorder(reply(400, {"code": 7}))
    with pytest.raises(PermanentError) as info:
        await api(rec, clock, map_error=mapper).call("POST", "/order", create=True)
    assert info.value.reason is ErrorReason.BALANCE
    assert seen == [(400, {"code": 7})]


HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


async def test_html_page_on_read_is_temporary_protocol(clock: RecordingClock) -> None:
    rec = Recorder(raw(200, HTML))
    with pytest.raises(TemporaryError) as info:
        await api(rec, clock).call("GET", "/x")
    assert info.value.reason is ErrorReason.PROTOCOL


async def test_unparseable_2xx_on_create_is_ambiguous(clock: RecordingClock) -> None:
    rec = Recorder(raw(200, HTML))
    with pytest.raises(AmbiguousError) as info:
        await api(rec, clock).call("POST", "/order", create=True)
    assert info.value.reason is ErrorReason.PROTOCOL
    assert len(rec.requests) == 1


async def test_html_4xx_falls_back_to_status_mapping(clock: RecordingClock) -> None:
    rec = Recorder(raw(404, HTML))
    with pytest.raises(PermanentError) as info:
        await api(rec, clock, map_error=lambda s, b: None).call("GET", "/x")
    assert info.value.reason is ErrorReason.NOT_FOUND


async def test_huge_body_is_refused(clock: RecordingClock) -> None:
    big = b'{"a": "' + b"x" * 5000 + b'"}'
    rec = Recorder(raw(200, big, "application/json"))
    with pytest.raises(TemporaryError) as info:
        await api(rec, clock, max_body_bytes=1000).call("GET", "/x")
    assert "too large" in str(info.value)


async def test_slow_retries_use_exponential_backoff(clock: RecordingClock) -> None:
    rec = Recorder(reply(503))
    client = make_client("https://vendor.test", transport=rec.transport)
    policy = RetryPolicy(attempts=4, initial_wait=1.0, max_wait=3.0, jitter=0.0)
    with pytest.raises(TemporaryError):
        await JsonApi("vendor", client, clock=clock, retry=policy).call("GET", "/x")
    assert clock.slept == [1.0, 2.0, 3.0]


async def test_rate_limiter_holds_the_sixteenth_call_until_time_passes() -> None:
    vclock = VirtualClock()
    limiter = RateLimiter(15, clock=vclock)
    done: list[int] = []

    async def one(i: int) -> None:
        await limiter.acquire()
        done.append(i)

    tasks = [asyncio.create_task(one(i)) for i in range(20)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(done) == 15
    vclock.advance(1 / 15)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(done) == 16
    vclock.advance(1.0)
    await asyncio.gather(*tasks)
    assert sorted(done) == list(range(20))


def test_rate_limiter_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, clock=RecordingClock())


def test_every_client_verifies_tls_with_one_shared_context() -> None:
    import ssl

    from providers.http import tls_context

    context = tls_context()
    assert context is tls_context()  # built once: each build reads the whole CA bundle
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0
