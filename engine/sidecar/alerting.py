"""Alerts from the sidecar: a generic JSON webhook and a Telegram bot, once per episode.

After each pass `Alerter.observe_pass` works out which alert conditions hold:

- `budget`: a policy's budget stops a purchase (reason `Budget`, or the store refusing
  the intent's reservation);
- `providers`: every configured provider is failing: the last purchase attempt at each
  of them failed (definitely or ambiguously) and none has succeeded since; one alert for
  the whole outage, not one per address;
- `below`: an address below its threshold for longer than `below_for` seconds;
- `order`: an order unresolved past its deadline (tracking flags it);
- `price`: an order charged more than its quote (the price moved between the quote and
  the order) or than its price cap; one alert per order;
- `balance`: a provider's balance below `balance_floor_sun` (read every
  `balance_interval` seconds by `run()`);
- `abandoned`: an ambiguous order ended `failed` by its policy's abandonAfter (tracking
  flags it): the one place the engine accepts a small risk of buying twice.

A condition that starts holding opens an episode and sends one alert; while it holds
nothing more is sent; when it stops holding the episode ends (and a later one alerts
again). Sends go through a queue drained by `run()`, so a slow webhook never slows a
pass; failures are logged and dropped, and no failure ends the delivery task. The
Telegram token is part of the URL and is never logged. Configuration
(`AlertSettings.from_env`, checked at start-up: `SettingError` names a bad variable):
ENERGYCTL_ALERT_WEBHOOK_URL, ENERGYCTL_TELEGRAM_BOT_TOKEN and ENERGYCTL_TELEGRAM_CHAT_ID
(both or neither), ENERGYCTL_TELEGRAM_API_URL (default https://api.telegram.org),
ENERGYCTL_ALERT_BELOW_FOR (`10m`, `1h`, or bare seconds; default 600),
ENERGYCTL_ALERT_BALANCE_FLOOR_SUN (`5 TRX`, `5000000 sun` or bare sun; unset: no balance
alert).

Neighbours: `controller.py` (pass observer), `running.py` (starts `run`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from engine.reconciling import PassResult
from policies.redacting import remember
from policies.units import parse_duration, parse_sun

if TYPE_CHECKING:
    from engine.act.applying import ActionOutcome
    from engine.sidecar.controller import Controller

log = logging.getLogger("energyctl.alerts")


class SettingError(ValueError):
    """A bad ENERGYCTL_* setting: `name` is the variable; the message says what is wrong
    and what would be valid."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _url(name: str, value: str) -> str:
    """An http(s) URL with a host that httpx can send to (`http://[::1` is not one). The
    value is not echoed: a webhook URL often carries a token."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise SettingError(name, f"not a URL ({exc}); expected https://HOST/PATH") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise SettingError(name, "not an http:// or https:// URL with a host")
    if url.port is not None and not 0 < url.port < 65536:
        raise SettingError(name, f"port {url.port} is not 1..65535")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise SettingError(name, "the URL holds a space or a control character")
    return value


def _seconds(name: str, value: str) -> float:
    """A duration: `10m`, `1h`, `90s`, or a bare number of seconds (as documented before)."""
    text = value.strip()
    if re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,6})?", text):
        return float(text)
    try:
        return float(parse_duration(text))
    except ValueError as exc:
        raise SettingError(name, f"{exc}; a bare number is seconds") from None


def _sun(name: str, value: str) -> int:
    """Money: `5 TRX`, `5000000 sun`, or a bare whole number of sun (the variable's unit)."""
    text = value.strip()
    if re.fullmatch(r"[0-9]{1,18}", text):
        return int(text)
    try:
        return parse_sun(text)
    except ValueError as exc:
        raise SettingError(name, f"{exc}; a bare whole number is sun") from None


@dataclass(frozen=True)
class AlertSettings:
    webhook_url: str | None = None
    telegram_token: SecretStr | None = None
    telegram_chat: str | None = None
    telegram_api: str = "https://api.telegram.org"
    below_for: float = 600.0
    balance_floor_sun: int | None = None
    balance_interval: float = 300.0
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AlertSettings:
        """The settings from ENERGYCTL_* variables, each checked: SettingError names the
        first bad one, what was wrong and what would be valid."""
        e = os.environ if env is None else env
        token = e.get("ENERGYCTL_TELEGRAM_BOT_TOKEN") or None
        chat = e.get("ENERGYCTL_TELEGRAM_CHAT_ID") or None
        if (token is None) != (chat is None):
            have, lack = (
                ("ENERGYCTL_TELEGRAM_BOT_TOKEN", "ENERGYCTL_TELEGRAM_CHAT_ID")
                if token
                else ("ENERGYCTL_TELEGRAM_CHAT_ID", "ENERGYCTL_TELEGRAM_BOT_TOKEN")
            )
            raise SettingError(lack, f"{have} is set but {lack} is not: set both or neither")
        webhook = e.get("ENERGYCTL_ALERT_WEBHOOK_URL") or None
        remember(token, webhook)  # never in a stored or logged vendor text
        api = e.get("ENERGYCTL_TELEGRAM_API_URL") or cls.telegram_api
        below = e.get("ENERGYCTL_ALERT_BELOW_FOR") or None
        floor = e.get("ENERGYCTL_ALERT_BALANCE_FLOOR_SUN") or None
        return cls(
            webhook_url=None if webhook is None else _url("ENERGYCTL_ALERT_WEBHOOK_URL", webhook),
            telegram_token=SecretStr(token) if token else None,
            telegram_chat=chat,
            telegram_api=_url("ENERGYCTL_TELEGRAM_API_URL", api).rstrip("/"),
            below_for=cls.below_for
            if below is None
            else _seconds("ENERGYCTL_ALERT_BELOW_FOR", below),
            balance_floor_sun=None
            if floor is None
            else _sun("ENERGYCTL_ALERT_BALANCE_FLOOR_SUN", floor),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or (self.telegram_token and self.telegram_chat))


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    subject: str
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "message": self.message}


def _price_alert(outcome: ActionOutcome) -> str:
    what = (
        f"above its price cap {outcome.cap_sun} sun"
        if outcome.over_cap
        else f"above its quote {outcome.quote_sun} sun"
    )
    return (
        f"order {outcome.client_order_id} at {outcome.provider} for {outcome.address} "
        f"(policy {outcome.policy}) charged {outcome.cost_sun} sun, {what}"
    )


class Alerter:
    """Episodes of alert conditions, and their delivery; see the module docstring."""

    def __init__(
        self,
        controller: Controller,
        settings: AlertSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.controller = controller
        self.settings = settings if settings is not None else AlertSettings.from_env()
        self.active: dict[tuple[str, str], Alert] = {}
        self.sent: list[Alert] = []
        self._below_since: dict[str, float] = {}
        self._balance_alerts: dict[tuple[str, str], Alert] = {}
        self._failing: dict[str, str] = {}  # provider -> why its last purchase failed
        self._queue: asyncio.Queue[Alert] = asyncio.Queue()
        self._client = httpx.AsyncClient(timeout=self.settings.timeout, transport=transport)

    # ------------------------------------------------------------------ conditions

    def observe_pass(self, controller: Controller, result: PassResult | None, _: float) -> None:  # noqa: C901
        if result is None:
            return
        now = controller.clock.now()
        found: dict[tuple[str, str], Alert] = {}

        def add(kind: str, subject: str, message: str) -> None:
            found.setdefault((kind, subject), Alert(kind, subject, message))

        for entry in result.plan.entries:
            reason = str(entry.reason)
            if reason == "Budget":
                add("budget", entry.policy, f"policy {entry.policy}: budget exhausted")
            below = entry.available is not None and entry.available < entry.threshold
            if below:
                since = self._below_since.setdefault(entry.address, now)
                if now - since >= self.settings.below_for:
                    add("below", entry.address,
                        f"{entry.address} below its threshold {entry.threshold} "
                        f"for {now - since:.0f}s (has {entry.available})")  # fmt: skip
            else:
                self._below_since.pop(entry.address, None)
        for outcome in result.outcomes:
            if outcome.over_cap or outcome.over_quote:
                add("price", outcome.client_order_id or outcome.address, _price_alert(outcome))
            if any(
                a.result == "refused" and "budget exceeded" in a.detail for a in outcome.attempts
            ):
                # the store refused the reservation (the cap) although the quote fitted
                add("budget", outcome.policy, f"policy {outcome.policy}: budget exhausted")
            for attempt in outcome.attempts:
                if attempt.result == "accepted":
                    self._failing.pop(attempt.provider, None)
                elif attempt.result in ("failed", "ambiguous"):
                    self._failing[attempt.provider] = attempt.detail
        configured = self._configured()
        if configured and configured <= set(self._failing):
            add("providers", "all",
                "every provider is failing: " + "; ".join(
                    f"{name}: {self._failing[name]}" for name in sorted(configured)))  # fmt: skip
        for tracked in result.tracked:
            if tracked.alert:
                add("order", tracked.client_order_id,
                    f"order {tracked.client_order_id} at {tracked.provider} unresolved: "
                    f"{tracked.detail}")  # fmt: skip
            if tracked.abandoned:
                add("abandoned", tracked.client_order_id,
                    f"order {tracked.client_order_id} at {tracked.provider} for "
                    f"{tracked.address} abandoned as failed by abandonAfter; a new order may "
                    f"be placed: {tracked.detail}")  # fmt: skip
        found.update(self._balance_alerts)
        self._episodes(found)

    def _configured(self) -> set[str]:
        reconciler = self.controller.reconciler
        return set(reconciler.providers) if reconciler is not None else set()

    def _episodes(self, found: dict[tuple[str, str], Alert]) -> None:
        for key, alert in found.items():
            if key not in self.active:
                self._queue.put_nowait(alert)
        for key in set(self.active) - set(found):
            log.info("alert resolved", extra={"event": "alert", "data": self.active[key].to_json()})
        self.active = found

    async def check_balances(self) -> None:
        floor = self.settings.balance_floor_sun
        reconciler = self.controller.reconciler
        if floor is None or reconciler is None:
            return
        alerts: dict[tuple[str, str], Alert] = {}
        for name in list(reconciler.providers):
            try:
                balance = await reconciler.providers[name].balance()
            except Exception as exc:  # unknown: the episode (or its absence) goes on
                log.debug("balance unknown", extra={"provider": name, "error": str(exc)})
                kept = self._balance_alerts.get(("balance", name))
                if kept is not None:
                    alerts[kept.key] = kept
                continue
            if balance < floor:
                alert = Alert("balance", name, f"provider {name}: balance {balance} sun < {floor}")
                alerts[alert.key] = alert
        self._balance_alerts = alerts

    # ------------------------------------------------------------------ delivery

    async def run(self) -> None:
        """Deliver queued alerts; check balances every `balance_interval` seconds."""
        balance_task = asyncio.create_task(self._balances())
        try:
            while True:
                alert = await self._queue.get()
                try:
                    await self.deliver(alert)
                except Exception as exc:  # a send never ends the alert task
                    log.error("alert not delivered",
                              extra={"event": "alert", "error": type(exc).__name__})  # fmt: skip
        finally:
            balance_task.cancel()

    async def _balances(self) -> None:
        while self.settings.balance_floor_sun is not None:
            try:
                await self.check_balances()
            except Exception:
                log.exception("balance check failed", extra={"event": "alert"})
            await self.controller.clock.sleep(self.settings.balance_interval)

    async def deliver(self, alert: Alert) -> None:
        log.warning(alert.message, extra={"event": "alert", "data": alert.to_json()})
        self.sent.append(alert)
        s = self.settings
        if s.webhook_url:
            await self._post(s.webhook_url, {"source": "energyctl", **alert.to_json()}, "webhook")
        if s.telegram_token is not None and s.telegram_chat:
            url = f"{s.telegram_api}/bot{s.telegram_token.get_secret_value()}/sendMessage"
            body = {"chat_id": s.telegram_chat, "text": f"energyctl: {alert.message}"}
            await self._post(url, body, "telegram")

    async def _post(self, url: str, body: dict[str, Any], channel: str) -> None:
        try:
            response = await self._client.post(url, json=body)
            if response.status_code >= 400:
                log.error("alert not delivered",
                          extra={"event": "alert", "channel": channel,
                                 "status": response.status_code})  # fmt: skip
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            # the type only: a message could carry the URL, and the Telegram token in it
            log.error("alert not delivered",
                      extra={"event": "alert", "channel": channel,
                             "error": type(exc).__name__})  # fmt: skip

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = ["Alert", "AlertSettings", "Alerter", "SettingError"]
