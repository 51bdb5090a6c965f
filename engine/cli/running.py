"""`energyctl run`: the sidecar, the reconciliation loop plus its HTTP API, until SIGTERM.

Parses the options (each also read from an ENERGYCTL_* variable) and the alert settings
(`engine/sidecar/alerting.py`) at start-up, before anything runs: a bad value is one line on
stderr naming the flag or variable, what was wrong and what would be valid, and exit 1
(never click's usage text and exit 2, never a traceback). Then hands them to
`engine/sidecar/running.py`; logging is set up by `engine/sidecar/logs.py`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from engine.cli.common import FILES


def _setting_name(exc: click.UsageError) -> str:
    """The flag, or the variable when the bad value came from the environment."""
    param = getattr(exc, "param", None)
    if not isinstance(param, click.Parameter):
        return ""
    ctx = exc.ctx
    source = ctx.get_parameter_source(param.name) if ctx is not None and param.name else None
    if source is ParameterSource.ENVIRONMENT and isinstance(param.envvar, str):
        return f"{param.envvar}: "
    return f"{param.opts[-1] if param.opts else param.name}: "


def _expected(param: click.Parameter | None) -> str:
    """What a numeric option takes, for click's "'x' is not a valid float range"."""
    kind = getattr(param, "type", None)
    if isinstance(kind, (click.FloatRange, click.IntRange)):
        what = "seconds" if isinstance(kind, click.FloatRange) else "a whole number"
        return f"; expected {what}, {kind._describe_range()}"
    return ""


def _allowed(entries: tuple[str, ...]) -> tuple[str, ...]:
    """`--allow-secret` entries, checked at start-up (`engine/sidecar/admitting.py` reads them)."""
    from engine.sidecar.admitting import AllowListError, parse_allowed

    try:
        parse_allowed(entries)
    except AllowListError as exc:
        raise click.BadParameter(str(exc)) from exc
    return entries


class _Settings(click.Command):
    """`run`'s options: a bad one is one line and exit 1 (see the module docstring)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:  # fmt: skip
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
                message = exc.message.rstrip(".")
                line = f"{_setting_name(exc)}{message}{_expected(exc.param)}"
            else:
                line = exc.format_message()
            line = " ".join(line.split())
            click.echo(f"error: {line}", err=True)
            sys.exit(1)


class _Seconds(click.ParamType[float]):
    """Seconds: a bare number (`0.2`, `15`) or a duration with its unit (`90s`, `10m`, `1h`)."""

    name = "seconds"

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        from policies.units import parse_duration

        bare = isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,9}(\.[0-9]{1,6})?\s*", value)
        if isinstance(value, (int, float)) or bare:
            seconds = float(value)
        else:
            try:
                seconds = float(parse_duration(value))
            except ValueError as exc:
                self.fail(f"{exc}, or a bare number of seconds", param, ctx)
        if seconds < self.minimum:
            self.fail(f"{value!r} is less than the least allowed, {self.minimum:g}s", param, ctx)
        return seconds


def _listen(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from engine.sidecar.running import parse_listen

    if value is not None:
        try:
            parse_listen(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


@click.command(cls=_Settings)
@FILES
@click.option(
    "--listen",
    envvar="ENERGYCTL_LISTEN",
    callback=_listen,
    help="HOST:PORT for the HTTP API (default: EngineConfig http.listen, 127.0.0.1:8080).",
)
@click.option(
    "--log-format",
    envvar="ENERGYCTL_LOG_FORMAT",
    type=click.Choice(["auto", "json", "text"]),
    default="auto",
    show_default=True,
    help="auto: text on a terminal, JSON lines otherwise.",
)
@click.option(
    "--log-level",
    envvar="ENERGYCTL_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--reload-interval",
    envvar="ENERGYCTL_RELOAD_INTERVAL",
    type=_Seconds(0.1),
    default=5.0,
    show_default=True,
    help="Seconds between checks of the policy files for changes.",
)
@click.option(
    "--stop-grace",
    envvar="ENERGYCTL_STOP_GRACE",
    type=_Seconds(0),
    default=20.0,
    show_default=True,
    help="On SIGTERM, seconds to let the pass in flight (and its vendor calls) finish.",
)
@click.option(
    "--replica",
    envvar="ENERGYCTL_REPLICA",
    help="This replica's name, unique among the replicas of one store (default HOST-PID).",
)
@click.option(
    "--shards",
    envvar="ENERGYCTL_SHARDS",
    type=click.IntRange(min=0, max=4096),
    help="Address shards leased among replicas (default: 64 on PostgreSQL, 0 = off on SQLite).",
)
@click.option(
    "--lease-ttl",
    envvar="ENERGYCTL_LEASE_TTL",
    type=_Seconds(0.3),
    default=15.0,
    show_default=True,
    help="Seconds a shard lease lives unrenewed: a killed replica's addresses move on after it.",
)
@click.option(
    "--intent-grace",
    envvar="ENERGYCTL_INTENT_GRACE",
    type=_Seconds(0),
    help="Seconds before another process's intent is resolved (default: 0 without shards, "
    "max(60, 4 x lease ttl) with them).",
)
@click.option(
    "--allow-secret",
    "allowed_secrets",
    envvar="ENERGYCTL_ALLOW_SECRETS",
    multiple=True,
    metavar="env:NAME|file:PATH",
    callback=lambda ctx, param, value: _allowed(value),
    help="A secret a policy set sent over the API (POST /v1/policies) may use for any "
    "provider, beyond those the policy files use (repeatable; docs/security.md).",
)
def run(
    paths: tuple[Path, ...],
    listen: str | None,
    log_format: str,
    log_level: str,
    reload_interval: float,
    stop_grace: float,
    replica: str | None,
    shards: int | None,
    lease_ttl: float,
    intent_grace: float | None,
    allowed_secrets: tuple[str, ...] = (),
) -> None:
    """The sidecar: the reconciliation loop plus its HTTP API, until SIGTERM.

    Passes run every observation interval and at once on a new block (follow mode), an
    ensure request or a provider callback. Edits to the policy files take effect when
    valid; an invalid edit is logged and reported in /v1/status, and the last good set
    stays in force. Alerts are configured by environment (docs/sidecar.md). Replicas on
    one PostgreSQL store share the addresses through shard leases (docs/operations.md).
    Exit 0 after SIGTERM or SIGINT, 1 if it cannot start.
    """
    import asyncio
    import os
    import socket

    from engine.sidecar.alerting import AlertSettings, SettingError
    from engine.sidecar.controller import ControllerSettings
    from engine.sidecar.logs import configure
    from engine.sidecar.running import SidecarOptions, run_sidecar

    try:
        alerts = AlertSettings.from_env()
    except SettingError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    configure(log_format, log_level)
    options = SidecarOptions(
        allowed_secrets=allowed_secrets,
        paths=paths,
        listen=listen,
        alerts=alerts,
        settings=ControllerSettings(
            reload_interval=reload_interval,
            stop_grace=stop_grace,
            replica=replica or f"{socket.gethostname()}-{os.getpid()}",
            shards=shards,
            lease_ttl=lease_ttl,
            intent_grace=intent_grace,
        ),
    )
    sys.exit(asyncio.run(run_sidecar(options)))
