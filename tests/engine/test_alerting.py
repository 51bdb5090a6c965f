"""Alert episodes in process: every configured provider failing, and the balance floor.

A fake controller carries a reconciler whose providers are fakes (a balance each); pass
results are built by hand; alerts are delivered to an `httpx.MockTransport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from engine.act.applying import ActionOutcome, Attempt, OutcomeKind
from engine.core.clock import VirtualClock
from engine.decide.planning import Plan
from engine.reconciling import PassResult
from engine.sidecar.alerting import Alerter, AlertSettings, SettingError
from providers.base import ProviderError


class FakeProvider:
    def __init__(self, balance: int) -> None:
        self.sun: int | Exception = balance

    async def balance(self) -> int:
        if isinstance(self.sun, Exception):
            raise self.sun
        return self.sun


def _controller(**providers: FakeProvider) -> Any:
    return SimpleNamespace(
        reconciler=SimpleNamespace(providers=providers),
        clock=SimpleNamespace(now=lambda: 1_767_225_600.0),
    )


def _pass(*attempts: tuple[str, str, str]) -> PassResult:
    """One outcome per (address, provider, result) of a purchase attempt."""
    outcomes = tuple(
        ActionOutcome(
            address, "pay", OutcomeKind.BOUGHT if result == "accepted" else OutcomeKind.FAILED,
            result, attempts=(Attempt(provider, "ec-1", result, f"{provider} said no"),),
        )
        for address, provider, result in attempts
    )  # fmt: skip
    return PassResult(Plan((), 0.0), True, outcomes)


def _alerter(controller: Any, **settings: Any) -> tuple[Alerter, list[dict[str, Any]]]:
    posted: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(204)

    alerter = Alerter(
        controller,
        AlertSettings(webhook_url="http://hooks.test/a", **settings),
        transport=httpx.MockTransport(handler),
    )
    return alerter, posted


async def _drain(alerter: Alerter) -> None:
    while not alerter._queue.empty():
        await alerter.deliver(alerter._queue.get_nowait())


async def test_every_configured_provider_failing_alerts_once_per_episode() -> None:
    c = _controller(a=FakeProvider(0), b=FakeProvider(0), c=FakeProvider(0))
    alerter, posted = _alerter(c)
    # many addresses, every candidate they tried failed, but provider c was never tried
    alerter.observe_pass(c, _pass(("T1", "a", "failed"), ("T2", "b", "ambiguous")), 0.0)
    alerter.observe_pass(c, _pass(("T3", "a", "failed"), ("T4", "b", "failed")), 0.0)
    await _drain(alerter)
    assert posted == []  # c has not failed: not every provider is failing
    alerter.observe_pass(c, _pass(("T5", "c", "failed"), ("T6", "a", "failed")), 0.0)
    for n in range(5):  # the outage goes on over many passes and addresses
        alerter.observe_pass(c, _pass((f"T{n}", "b", "failed")), 0.0)
    await _drain(alerter)
    assert [(p["kind"], p["subject"]) for p in posted] == [("providers", "all")]
    assert "c: c said no" in posted[0]["message"]
    alerter.observe_pass(c, _pass(("T7", "b", "accepted")), 0.0)  # b is back: episode over
    alerter.observe_pass(c, _pass(("T8", "b", "failed")), 0.0)  # and failing again: new one
    await _drain(alerter)
    assert [p["kind"] for p in posted] == ["providers", "providers"]
    await alerter.aclose()


async def test_provider_balance_below_its_floor_alerts_once_per_episode() -> None:
    low, rich = FakeProvider(5_000_000), FakeProvider(900_000_000)
    c = _controller(low=low, rich=rich)
    alerter, posted = _alerter(c, balance_floor_sun=10_000_000)
    quiet = _pass()
    for _ in range(3):  # below the floor at every check: one alert
        await alerter.check_balances()
        alerter.observe_pass(c, quiet, 0.0)
    await _drain(alerter)
    assert [(p["kind"], p["subject"]) for p in posted] == [("balance", "low")]
    assert "5000000 sun < 10000000" in posted[0]["message"]
    low.sun = ProviderError("low", "unreachable")  # unknown: neither ends nor opens an episode
    await alerter.check_balances()
    alerter.observe_pass(c, quiet, 0.0)
    low.sun = 50_000_000  # topped up: the episode ends
    await alerter.check_balances()
    alerter.observe_pass(c, quiet, 0.0)
    assert ("balance", "low") not in alerter.active
    low.sun = 1  # below again: a new episode, a new alert
    await alerter.check_balances()
    alerter.observe_pass(c, quiet, 0.0)
    await _drain(alerter)
    assert [p["subject"] for p in posted] == ["low", "low"]
    await alerter.aclose()


async def test_no_floor_configured_means_no_balance_reads() -> None:
    provider = FakeProvider(0)
    provider.sun = AssertionError("balance read without a floor")
    c = _controller(p=provider)
    alerter, posted = _alerter(c)
    await alerter.check_balances()
    alerter.observe_pass(c, _pass(), 0.0)
    await _drain(alerter)
    assert posted == []
    await alerter.aclose()


async def test_balance_checks_are_timed_on_the_controller_s_clock() -> None:
    """The balance floor is checked every `balance_interval` seconds of the injected clock
    (emulated time in tests and simulation), not of the wall clock."""
    clock = VirtualClock()
    provider = FakeProvider(10)
    reads: list[float] = []
    inner = provider.balance

    async def balance() -> int:
        reads.append(clock.now())
        return await inner()

    provider.balance = balance  # type: ignore[method-assign]
    c = SimpleNamespace(reconciler=SimpleNamespace(providers={"a": provider}), clock=clock)
    alerter, _ = _alerter(c, balance_floor_sun=100, balance_interval=3600.0)
    task = asyncio.create_task(alerter.run())
    try:
        for _ in range(3):
            for _ in range(20):
                await asyncio.sleep(0)
            clock.advance(3600.0)
        for _ in range(20):
            await asyncio.sleep(0)
        start = 1_767_225_600.0
        assert reads == [start, start + 3600, start + 7200, start + 10800]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await alerter.aclose()


async def test_a_send_that_raises_never_ends_the_delivery_task() -> None:
    """A webhook URL httpx cannot send to (`http://[::1`, unchecked here) raised InvalidURL,
    which is not an HTTPError: the task died after the first alert."""
    from engine.sidecar.alerting import Alert

    c = _controller()
    alerter = Alerter(c, AlertSettings(webhook_url="http://[::1"))
    task = asyncio.create_task(alerter.run())
    try:
        for n in range(3):
            alerter._queue.put_nowait(Alert("below", f"T{n}", "below"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(alerter.sent) == 3:
                break
        assert not task.done(), task.exception()
        assert [a.subject for a in alerter.sent] == ["T0", "T1", "T2"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await alerter.aclose()


def test_settings_from_the_environment_take_units() -> None:
    settings = AlertSettings.from_env(
        {"ENERGYCTL_ALERT_BELOW_FOR": "10m", "ENERGYCTL_ALERT_BALANCE_FLOOR_SUN": "5 TRX"}
    )
    assert (settings.below_for, settings.balance_floor_sun) == (600.0, 5_000_000)
    bare = AlertSettings.from_env(
        {"ENERGYCTL_ALERT_BELOW_FOR": "90", "ENERGYCTL_ALERT_BALANCE_FLOOR_SUN": "2500000"}
    )
    assert (bare.below_for, bare.balance_floor_sun) == (90.0, 2_500_000)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENERGYCTL_ALERT_BELOW_FOR", "ten minutes"),
        ("ENERGYCTL_ALERT_BELOW_FOR", "\u0661\u0660m"),
        ("ENERGYCTL_ALERT_BALANCE_FLOOR_SUN", "5 USDT"),
        ("ENERGYCTL_ALERT_WEBHOOK_URL", "http://[::1"),
        ("ENERGYCTL_ALERT_WEBHOOK_URL", "mailto:ops@example.com"),
        ("ENERGYCTL_TELEGRAM_API_URL", "https://api.telegram.org:99999"),
    ],
)
def test_a_bad_setting_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingError) as caught:
        AlertSettings.from_env({name: value})
    assert caught.value.name == name and str(caught.value).startswith(f"{name}: ")
    if "URL" in name:
        assert value not in str(caught.value)  # a webhook URL may carry a token
