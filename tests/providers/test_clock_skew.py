"""A vendor's clock against ours: `date_skew`, `HttpProvider.clock_skew`, and the emulators'
`Date` header with a per-emulator clock offset (in-process and served on loopback)."""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from engine.core.clock import VirtualClock
from providers.base import ProviderError, QuoteRequest
from providers.eopen import EopenProvider
from providers.http import NO_WAIT, date_skew
from sandbox.world import World

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_date_skew_reads_an_http_date() -> None:
    assert date_skew("Thu, 01 Jan 2026 00:00:30 GMT", NOW) == 30.5
    assert date_skew("Wed, 31 Dec 2025 23:59:50 GMT", NOW) == -9.5
    assert date_skew("Thu, 01 Jan 2026 00:00:00 -0000", NOW) == 0.5
    for bad in (None, "", "yesterday", "Thu, 99 Jan 2026 00:00:00 GMT"):
        assert date_skew(bad, NOW) is None


def _eopen(handler: Any, clock: VirtualClock) -> EopenProvider:
    return EopenProvider(
        "eopen",
        api_key=SecretStr("k"),
        base_url="http://eopen.test/api",
        clock=clock,
        transport=httpx.MockTransport(handler),
        retry=NO_WAIT,
    )


async def test_the_adapter_measures_every_answer_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(NOW)
    ahead = {"seconds": 30.0}

    def handler(request: httpx.Request) -> httpx.Response:
        date = email.utils.formatdate(clock.now() + ahead["seconds"], usegmt=True)
        if request.url.path.endswith("/v1/account"):
            return httpx.Response(401, json={"message": "no"}, headers={"Date": date})
        body = {"code": 0, "msg": "", "data": {"sun": "65", "trxPrice": "4.23"}}
        return httpx.Response(200, json=body, headers={"Date": date})

    provider = _eopen(handler, clock)
    assert provider.clock_skew is None and provider.answered == 0
    with caplog.at_level(logging.WARNING, logger="energyctl.providers"):
        with pytest.raises(ProviderError):  # a refusal still carries a Date
            await provider.balance()
        assert provider.clock_skew == 30.5 and provider.answered == 1
        request = QuoteRequest(receiver="T" * 34, energy=65_000, duration=3600)
        await provider.quote(request)
        ahead["seconds"] = 0.0
        await provider.quote(request)
        assert provider.clock_skew == 0.5 and provider.answered == 3
    warned = [r for r in caplog.records if r.getMessage().startswith("eopen: the vendor's clock")]
    assert len(warned) == 1 and "+30.5 s" in warned[0].getMessage()
    assert warned[0].__dict__["event"] == "provider_clock_skew"
    await provider.aclose()


async def test_an_emulator_dates_its_answers_with_its_own_clock() -> None:
    clock = VirtualClock(NOW)
    world = World(clock=clock, watched=1, clock_offsets={"itrx": -12.0})
    assert world.emulators["itrx"].now() == NOW - 12
    transport = world.transport("itrx")
    async with httpx.AsyncClient(transport=transport, base_url="http://itrx.test") as client:
        for path in ("/api/v1/frontend/index-data", "/no/such/route"):
            answer = await client.get(path)
            assert answer.headers.get_list("date") == ["Wed, 31 Dec 2025 23:59:48 GMT"], path
    with pytest.raises(ValueError, match="not one of"):
        World(clock=clock, watched=1, clock_offsets={"nobody": 1.0})


def test_a_served_emulator_sends_one_date_header() -> None:
    # uvicorn adds its own Date (the host's time) unless told not to
    with World(clock=VirtualClock(time.time()), watched=1, clock_offsets={"mefree": 30}) as world:
        answer = httpx.get(world.url("mefree") + "/api/config", timeout=10)
        assert answer.status_code == 401  # unsigned; still dated
        dates = answer.headers.get_list("date")
        assert len(dates) == 1
        skew = date_skew(dates[0], time.time())
        assert skew is not None and 28 < skew < 32
        assert world.describe()["clock"]["vendorOffsets"] == {"mefree": 30.0}
