"""`energyctl`: the command line. Thin: parse, call the library, render, exit.

Library code never prints or exits; the commands do both. Exit codes: 0 success (for
`plan --detailed-exitcode`: nothing to do), 1 error, 2 purchases pending.

This module holds the group and registers the commands, one module per group of them:
`policies.py` (validate, schema), `providers.py` (providers), `planning.py` (plan,
apply, status, orders), `running.py` (run, the sidecar), `sandboxing.py` (sandbox,
simulate); shared options and helpers are in `common.py`, text tables in `rendering.py`.
The top room: may use every room of the engine (and, in `sandboxing.py`, the sandbox).
"""

from __future__ import annotations

import click

from engine import __version__
from engine.cli import planning, policies, providers, running, sandboxing
from providers import registry

registry.load()  # every vendor's settings known to validate and schema, plug-ins included

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="energyctl")
def main() -> None:
    """Declarative TRON energy policies: keep watched addresses supplied with energy."""


main.add_command(policies.validate)
main.add_command(policies.schema)
main.add_command(providers.providers)
main.add_command(planning.plan)
main.add_command(planning.apply)
main.add_command(planning.status)
main.add_command(planning.orders)
main.add_command(running.run)
main.add_command(sandboxing.sandbox)
main.add_command(sandboxing.simulate)
