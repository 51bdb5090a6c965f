"""`energyctl`: the command line. Thin: parse, call the library, render, exit.

Library code never prints or exits; the commands do both. Exit codes: 0 success (for
`plan --detailed-exitcode`: nothing to do), 1 error, 2 purchases pending.

This module holds the group and registers the commands, one module per group of them:
`policies.py` (validate, schema), `providers.py` (providers), `planning.py` (plan,
apply, status, orders), `reporting.py` (report), `running.py` (run, the sidecar),
`sandboxing.py` (sandbox, simulate); shared options and helpers are in `common.py`, text
tables in `rendering.py`.
The top room: may use every room of the engine (and, in `sandboxing.py`, the sandbox).
"""

from __future__ import annotations

import click

from engine import __version__
from engine.cli import planning, policies, providers, reporting, running, sandboxing
from engine.store.migrating import schema_version
from providers import registry

registry.load()  # every vendor's settings known to validate and schema, plug-ins included

__all__ = ["main"]


def _version(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    """`--version`: the package version and the store schema it migrates to (the count of
    shipped migrations, read from the package, so a new migration shows at once)."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"energyctl, version {__version__}, store schema {schema_version()}")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version and the store schema version, then exit.",
)
def main() -> None:
    """Declarative TRON energy policies: keep watched addresses supplied with energy.

    Shell completion (click's): eval "$(_ENERGYCTL_COMPLETE=bash_source energyctl)" in
    ~/.bashrc (zsh_source for zsh, fish_source for fish).
    """


main.add_command(policies.validate)
main.add_command(policies.schema)
main.add_command(providers.providers)
main.add_command(planning.plan)
main.add_command(planning.apply)
main.add_command(planning.status)
main.add_command(planning.orders)
main.add_command(reporting.report)
main.add_command(running.run)
main.add_command(sandboxing.sandbox)
main.add_command(sandboxing.simulate)
