"""`energyctl`: the command line. Thin: parse, call the library, render, exit.

Library code never prints or exits; this module does both. Exit codes: 0 success (for
`plan --detailed-exitcode`: nothing to do), 1 error, 2 purchases pending.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from engine import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="energyctl")
def main() -> None:
    """Declarative TRON energy policies: keep watched addresses supplied with energy."""


# --------------------------------------------------------------------------- policies


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: diagnostics on stderr, one per line; json: a report on stdout.",
)
@click.option(
    "--strict-secrets",
    is_flag=True,
    help="Treat unresolved secret references (unset variables, missing files) as errors.",
)
def validate(paths: tuple[Path, ...], output: str, strict_secrets: bool) -> None:
    """Check policy files and directories; exit 0 if valid, 1 otherwise.

    Every error is reported as FILE:LINE:COLUMN: error: MESSAGE. Unresolved secret
    references are warnings unless --strict-secrets is given, so this works in CI.
    """
    from engine.validating import ENGINE_CHECKS
    from policies.loading import SecretMode, load

    mode = SecretMode.REQUIRED if strict_secrets else SecretMode.OPTIONAL
    result = load(paths, secrets=mode, checks=ENGINE_CHECKS)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for diagnostic in result.diagnostics:
            click.echo(str(diagnostic), err=True)
        counts = result.summary()
        if result.ok:
            click.echo(
                f"valid: files {counts['files']}, providers {counts['Provider']}, "
                f"policies {counts['EnergyPolicy']}, engine configs {counts['EngineConfig']}, "
                f"warnings {len(result.warnings)}"
            )
        else:
            click.echo(
                f"invalid: errors {len(result.errors)}, warnings {len(result.warnings)}",
                err=True,
            )
    sys.exit(0 if result.ok else 1)


@main.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of the policy documents."""
    from policies.schema import json_schema_text

    click.echo(json_schema_text(), nl=False)


# --------------------------------------------------------------------------- providers

_PLACEHOLDER_RECEIVER = "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"  # quotes only: nothing is bought


def _parsed(unit: str) -> Callable[[click.Context, click.Parameter, str], int]:
    def callback(ctx: click.Context, param: click.Parameter, value: str) -> int:
        from policies import units

        parse: Callable[[object], int] = getattr(units, f"parse_{unit}")
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc

    return callback


@main.command()
@click.option(
    "-f",
    "--file",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Policy file or directory (repeatable).",
)
@click.option("--amount", required=True, callback=_parsed("energy"), help="Energy: 65k.")
@click.option("--duration", required=True, callback=_parsed("duration"), help="1h, 1d.")
@click.option("--address", help="Receiver to quote for (default: the first watched address).")
@click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def providers(
    paths: tuple[Path, ...], amount: int, duration: int, address: str | None, output: str
) -> None:
    """List each configured provider: capabilities, a quote for one order, the balance.

    Exit 0 when the policies load (a provider that cannot quote says why in its row),
    1 when they do not. Secrets must resolve (as for every command that calls vendors).
    """
    import asyncio

    from engine.clock import SystemClock
    from engine.providing import ProviderPool, ProvidingError
    from engine.surveying import render_table, survey
    from engine.validating import ENGINE_CHECKS
    from policies.loading import SecretMode, load

    result = load(paths, secrets=SecretMode.REQUIRED, checks=ENGINE_CHECKS)
    for diagnostic in result.diagnostics:
        click.echo(str(diagnostic), err=True)
    policy_set = result.policy_set
    if policy_set is None:
        click.echo(f"invalid: errors {len(result.errors)}", err=True)
        sys.exit(1)
    receiver = address or next(iter(policy_set.addresses), _PLACEHOLDER_RECEIVER)

    async def run() -> list[Any]:
        async with ProviderPool(policy_set, clock=SystemClock()) as pool:
            return await survey(pool, energy=amount, duration=duration, receiver=receiver)

    try:
        surveys = asyncio.run(run())
    except ProvidingError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if output == "json":
        click.echo(json.dumps([item.to_dict() for item in surveys], indent=2))
    else:
        click.echo(render_table(surveys), nl=False)
