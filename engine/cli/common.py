"""Shared pieces of the commands: the common options, unit parsing, loading and running.

Loading the policy set or running a session either succeeds or prints one line per
problem on stderr and exits 1, so each command reads top to bottom. Used by the command
modules of `engine/cli/`; calls `policies/loading.py` and `engine/act/validating.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

FILES = click.option(
    "-f",
    "--file",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Policy file or directory (repeatable).",
)
STORE = click.option("--store", "store_url", help="Store URL (default: EngineConfig store.url).")


def _node_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--node` checked like `node.url`: a bad one is one line and exit 1 (not click's
    exit 2, which `plan --detailed-exitcode` means as "purchases pending")."""
    from policies.base import check_http_url

    if value is not None:
        try:
            check_http_url("--node", value)
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
    return value


NODE = click.option(
    "--node", "node_url", callback=_node_url, help="Node URL (default: EngineConfig node.url)."
)
OUTPUT = click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)


def parsed(unit: str) -> Callable[[click.Context, click.Parameter, str], int]:
    """An option callback: the value through `policies.units.parse_<unit>` (65k, 1h)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str) -> int:
        from policies import units

        parse: Callable[[object], int] = getattr(units, f"parse_{unit}")
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc

    return callback


def load_or_exit(paths: tuple[Path, ...], *, secrets: bool = True) -> Any:
    """The policy set, secrets REQUIRED unless `secrets` is False (an unresolved one is an
    error naming the variable or file), or exit 1."""
    from engine.act.validating import ENGINE_CHECKS
    from policies.loading import SecretMode, load

    mode = SecretMode.REQUIRED if secrets else SecretMode.OPTIONAL
    result = load(paths, secrets=mode, checks=ENGINE_CHECKS)
    for diagnostic in result.diagnostics:
        click.echo(str(diagnostic), err=True)
    if result.policy_set is None:
        click.echo(f"invalid: errors {len(result.errors)}", err=True)
        sys.exit(1)
    return result.policy_set


def exit_if_unobserved(reasons: list[Any]) -> None:
    """Exit 1 with one line when every address is blocked because its energy could not be
    read: a plan of "0 purchases" then says nothing about the addresses (a wrong --node)."""
    from engine.decide.plans import Reason

    blind = {Reason.OBSERVATION_ERROR, Reason.MISSING_OBSERVATION, Reason.STALE_OBSERVATION}
    if reasons and all(reason in blind for reason in reasons):
        click.echo(
            f"error: none of the {len(reasons)} addresses could be read from the node "
            "(see the reasons above): check --node or node.url",
            err=True,
        )
        sys.exit(1)


def run_or_exit(coro: Any) -> Any:
    """Run a session coroutine; an engine error is one line on stderr and exit 1."""
    import asyncio

    from engine.core.errors import EngineError

    try:
        return asyncio.run(coro)
    except EngineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
