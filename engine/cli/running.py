"""`energyctl run`: the sidecar, the reconciliation loop plus its HTTP API, until SIGTERM.

Parses the options (each also read from an ENERGYCTL_* variable) and hands them to
`engine/sidecar.py`; logging is set up by `engine/logs.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.cli.common import FILES


@click.command()
@FILES
@click.option(
    "--listen",
    envvar="ENERGYCTL_LISTEN",
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
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between checks of the policy files for changes.",
)
@click.option(
    "--stop-grace",
    envvar="ENERGYCTL_STOP_GRACE",
    type=click.FloatRange(min=0),
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
    type=click.FloatRange(min=0.3),
    default=15.0,
    show_default=True,
    help="Seconds a shard lease lives unrenewed: a killed replica's addresses move on after it.",
)
@click.option(
    "--intent-grace",
    envvar="ENERGYCTL_INTENT_GRACE",
    type=click.FloatRange(min=0),
    help="Seconds before another process's intent is resolved (default: 0 without shards, "
    "max(60, 4 x lease ttl) with them).",
)
@click.option(
    "--allow-secret",
    "allowed_secrets",
    envvar="ENERGYCTL_ALLOW_SECRETS",
    multiple=True,
    metavar="env:NAME|file:PATH",
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

    from engine.admitting import AllowListError, parse_allowed
    from engine.controller import ControllerSettings
    from engine.logs import configure
    from engine.sidecar import SidecarOptions, run_sidecar

    try:
        parse_allowed(allowed_secrets)
    except AllowListError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-secret") from exc
    configure(log_format, log_level)
    options = SidecarOptions(
        allowed_secrets=allowed_secrets,
        paths=paths,
        listen=listen,
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
