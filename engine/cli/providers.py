"""`energyctl providers`: each configured provider's capabilities, a quote and the balance.

Neighbours: `engine/surveying.py` (asks every provider, renders the table),
`engine/providing.py` (the provider pool), `engine/cli/common.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from engine.cli.common import FILES, OUTPUT, load_or_exit, parsed

_PLACEHOLDER_RECEIVER = "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"  # quotes only: nothing is bought


@click.command()
@FILES
@click.option("--amount", required=True, callback=parsed("energy"), help="Energy: 65k.")
@click.option("--duration", required=True, callback=parsed("duration"), help="1h, 1d.")
@click.option("--address", help="Receiver to quote for (default: the first watched address).")
@OUTPUT
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

    policy_set = load_or_exit(paths)
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
