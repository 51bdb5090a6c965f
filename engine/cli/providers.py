"""`energyctl providers`: each configured provider's capabilities, a quote and the balance;
`energyctl providers check`: read-only checks of every vendor account, and canary orders.

`providers` is a group that runs its own listing when no subcommand is given, so
`energyctl providers -f PATH --amount 65k --duration 1h` works as it always did.

Neighbours: `engine/act/surveying.py` (asks every provider, renders the table),
`engine/act/checking.py` (the checks and the canary), `engine/act/providing.py` (the provider
pool), `engine/cli/common.py`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from engine.cli.common import FILES, OUTPUT, load_or_exit, parsed

_PLACEHOLDER_RECEIVER = "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"  # quotes only: nothing is bought


def _optional(unit: str) -> Callable[[click.Context, click.Parameter, str | None], int | None]:
    """`parsed(unit)` for an option that may be absent (None stays None)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        return None if value is None else parsed(unit)(ctx, param, value)

    return callback


def _missing(ctx: click.Context, name: str) -> click.MissingParameter:
    param = next(p for p in ctx.command.params if p.name == name)
    return click.MissingParameter(ctx=ctx, param=param)


@click.group(
    invoke_without_command=True,
    short_help="Each provider's quote and balance; `check` tests the accounts.",
)
@click.option(
    "-f",
    "--file",
    "paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Policy file or directory (repeatable).",
)
@click.option("--amount", callback=_optional("energy"), help="Energy: 65k.")
@click.option("--duration", callback=_optional("duration"), help="1h, 1d.")
@click.option("--address", help="Receiver to quote for (default: the first watched address).")
@OUTPUT
@click.pass_context
def providers(
    ctx: click.Context,
    paths: tuple[Path, ...],
    amount: int | None,
    duration: int | None,
    address: str | None,
    output: str,
) -> None:
    """List each configured provider: capabilities, a quote for one order, the balance.

    `energyctl providers -f PATH --amount 65k --duration 1h`. Exit 0 when the policies
    load (a provider that cannot quote says why in its row), 1 when they do not. Secrets
    must resolve (as for every command that calls vendors).

    `energyctl providers check -f PATH` checks each vendor account with read-only calls
    (see `energyctl providers check --help`).
    """
    if ctx.invoked_subcommand is not None:
        if paths or amount is not None or duration is not None or address:
            raise click.UsageError(
                f"options go after the subcommand: energyctl providers "
                f"{ctx.invoked_subcommand} -f PATH ..."
            )
        return
    if not paths:
        raise _missing(ctx, "paths")
    if amount is None:
        raise _missing(ctx, "amount")
    if duration is None:
        raise _missing(ctx, "duration")
    _survey(paths, amount, duration, address, output)


def _survey(
    paths: tuple[Path, ...], amount: int, duration: int, address: str | None, output: str
) -> None:
    import asyncio

    from engine.act.providing import ProviderPool, ProvidingError
    from engine.act.surveying import render_table, survey
    from engine.core.clock import SystemClock

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


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from policies.units import validate_address

    try:
        return validate_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _skew(ctx: click.Context, param: click.Parameter, value: str) -> float:
    text = value.strip().removesuffix("s").strip()
    try:
        seconds = float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number of seconds (2, 2s, 0.5s)") from None
    if not 0 <= seconds < float("inf"):
        raise click.BadParameter(f"{value!r}: must be a positive number of seconds")
    return seconds


@providers.command()
@FILES
@click.option(
    "--max-skew",
    default="2s",
    show_default=True,
    callback=_skew,
    help="Largest tolerated difference between a vendor's clock (its Date header) and this host's.",
)
@click.option(
    "--canary",
    "canary_address",
    metavar="ADDRESS",
    callback=_address,
    help="Then buy the smallest order each vendor sells for ADDRESS and follow it until "
    "the chain shows the delegation. Costs money: asks first unless --yes.",
)
@click.option("--yes", "-y", is_flag=True, help="Place the canary orders without asking.")
@click.option(
    "--deadline",
    default="2m",
    show_default=True,
    callback=parsed("duration"),
    help="How long to follow each canary order before calling it not delivered.",
)
@OUTPUT
def check(
    paths: tuple[Path, ...],
    max_skew: float,
    canary_address: str | None,
    yes: bool,
    deadline: int,
    output: str,
) -> None:
    """Check every configured vendor account with its real credentials, calling only read
    endpoints: the balance, a quote for each policy's top-up (the smallest order sold
    when no policy lists the vendor) and the status of an order id that does not exist.

    Per vendor: reachable, authenticated, clock skew (its Date header against this
    host's clock), balance, quote, and whether each answer had the documented shape.
    A failed vendor is named with the cause. Run it first with a new vendor account.

    With --canary ADDRESS, the vendors that passed then each get the smallest order they
    sell, to ADDRESS, one after the other; each is followed (the vendor's answers printed
    at each step) until the node of the EngineConfig shows the energy on ADDRESS or
    --deadline passes.

    Exit 0 only when every check (and every canary) passed; 1 otherwise or when the
    policies do not load; 2 for bad options.
    """
    import asyncio

    from engine.act.checking import CanaryResult, VendorCheck, render_checks
    from engine.act.providing import ProviderPool, ProvidingError
    from engine.core.clock import SystemClock

    policy_set = load_or_exit(paths)
    as_json = output == "json"
    clock = SystemClock()

    async def run() -> tuple[list[VendorCheck], dict[str, CanaryResult] | None]:
        from engine.act.checking import check as check_all

        async with ProviderPool(policy_set, clock=clock) as pool:
            reports = await check_all(pool, policy_set, max_skew=max_skew)
            if canary_address is None:
                return reports, None
            if not as_json:
                click.echo(render_checks(reports), nl=False)
            return reports, await _canaries(pool, policy_set, reports, canary_address)

    async def _canaries(
        pool: Any, policy_set: Any, reports: list[VendorCheck], receiver: str
    ) -> dict[str, CanaryResult]:
        from engine.act.checking import plan_canary, render_step, run_canary
        from engine.observe.chain import ChainReader

        passed = [r.name for r in reports if r.ok]
        if not passed:
            click.echo("canary: no vendor passed the checks; nothing ordered", err=as_json)
            return {}
        plans = [await plan_canary(pool[name], receiver) for name in passed]
        click.echo("canary orders:", err=as_json)
        for plan in plans:
            click.echo(f"  {plan.text()}", err=as_json)
        if not yes and not click.confirm("Place these orders?", err=as_json):
            click.echo("canary: not ordered", err=as_json)
            return {}
        node = policy_set.settings.node
        api_key = node.api_key.get() if node.api_key is not None else None
        results: dict[str, CanaryResult] = {}
        async with ChainReader(node.url, api_key=api_key, clock=clock, concurrency=2) as chain:
            for plan in plans:
                results[plan.provider] = await run_canary(
                    pool[plan.provider],
                    chain,
                    plan,
                    clock=clock,
                    deadline=deadline,
                    on_step=lambda step: click.echo(render_step(step), err=as_json),
                )
        return results

    try:
        reports, canaries = asyncio.run(run())
    except ProvidingError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    ok = all(r.ok for r in reports)
    if canaries is not None:
        ok = ok and len(canaries) == len(reports) and all(c.delivered for c in canaries.values())
    if as_json:
        items = []
        for report in reports:
            item = report.to_dict()
            if canaries is not None:
                result = canaries.get(report.name)
                item["canary"] = None if result is None else result.to_dict()
            items.append(item)
        click.echo(json.dumps(items, indent=2))
    elif canaries is None:
        click.echo(render_checks(reports), nl=False)
    else:
        for name, result in canaries.items():
            verdict = "delivered on the chain" if result.delivered else f"FAIL ({result.cause})"
            click.echo(f"canary {name}: {verdict}")
        skipped = [r.name for r in reports if r.name not in canaries]
        if skipped:
            click.echo(f"canary not placed: {', '.join(skipped)}")
    sys.exit(0 if ok else 1)
