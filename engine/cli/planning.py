"""`energyctl plan`, `apply`, `status` and `orders`: one pass against the node and the store.

plan, apply and status open a `Session` and call the same reconciler as the sidecar
(`engine/reconciling.py`); orders reads the store only, and `orders resolve` ends a held
order by hand once the chain allows it (`engine/act/resolving.py`). Rendering is in
`rendering.py`; `apply --server` hands the set to a sidecar (`engine/sidecar/pushing.py`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.cli.common import (
    FILES,
    NODE,
    OUTPUT,
    STORE,
    exit_if_unobserved,
    load_or_exit,
    run_or_exit,
)

if TYPE_CHECKING:
    from engine.store import Store
    from policies.policyset import PolicySet


@click.command()
@FILES
@OUTPUT
@STORE
@NODE
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing is to be bought, 2 when purchases are pending, 1 on error.",
)
def plan(
    paths: tuple[Path, ...],
    output: str,
    store_url: str | None,
    node_url: str | None,
    detailed_exitcode: bool,
) -> None:
    """Show what apply would buy: every address with its energy, threshold, condition,
    action, provider and estimated cost; each DepositPolicy as one line (it buys only in
    `energyctl run`, when a deposit lands). Never buys and never writes orders.

    Exit codes: 0 success (with --detailed-exitcode: nothing to do), 2 purchases pending
    (only with --detailed-exitcode), 1 error, also when --node is not a URL or no address
    could be read from the node (every one blocked: the plan would say nothing).
    """
    from engine.cli.rendering import deposits_text, plan_table
    from engine.session import Session

    policy_set = load_or_exit(paths)

    async def run() -> Any:
        async with Session(policy_set, store_url=store_url, node_url=node_url) as session:
            passed = await session.reconciler.run_pass(apply=False)
            return passed, await deposit_summaries(policy_set, session.store)

    result, deposits = run_or_exit(run())
    if output == "json":
        click.echo(json.dumps({**result.plan.to_json(), "deposits": deposits}, indent=2))
    else:
        click.echo(plan_table(result.plan), nl=False)
        click.echo(deposits_text(deposits), nl=False)
    exit_if_unobserved([entry.reason for entry in result.plan.entries])
    sys.exit(2 if detailed_exitcode and result.pending else 0)


@click.command()
@FILES
@OUTPUT
@STORE
@NODE
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--wait",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to follow the new orders until the chain shows them (0: do not wait).",
)
@click.option(
    "--intent-grace",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="An order intent younger than this may belong to a process still calling its "
    "provider, and is left alone. 0 when no other energyctl uses this store (restarting "
    "after a crash).",
)
@click.option(
    "--server",
    metavar="URL",
    help="Hand the validated policy set to the sidecar at URL (POST /v1/policies) instead "
    "of applying it here; prints the sidecar's answer.",
)
@click.option(
    "--token-env",
    default="ENERGYCTL_API_TOKEN",
    show_default=True,
    metavar="NAME",
    help="With --server: the environment variable holding the sidecar's API token.",
)
def apply(
    paths: tuple[Path, ...],
    output: str,
    store_url: str | None,
    node_url: str | None,
    yes: bool,
    wait: float,
    intent_grace: float,
    server: str | None,
    token_env: str,
) -> None:
    """Plan, then buy: open orders are followed first, then the plan is shown and, once
    confirmed, carried out. Prints what was bought, from whom, at what cost, and what was
    held and why. Records the policy revision in the store. DepositPolicies are shown as
    one line each and bought for only by `energyctl run`, when a deposit lands.

    Confirmation is asked on a terminal unless --yes; without a terminal, --yes is
    required. Exit codes: 0 every purchase placed (or nothing to do), 2 some purchases
    held or failed, 1 error (including a refused confirmation, and no address readable
    from the node).

    With --server URL the set is validated here (secrets may stay unresolved: the sidecar
    resolves them) and handed to a running sidecar, which validates it again and puts it
    in force between passes; exit 0 when it accepted the set, 1 otherwise.
    """
    if server is not None:
        _push(paths, server, token_env, output)
        return
    from engine.act.applying import OutcomeKind
    from engine.act.tracking import TrackingSettings, TrackResult
    from engine.cli.rendering import deposits_text, outcomes_text, plan_table, tracked_text
    from engine.decide.plans import Plan
    from engine.session import Session

    policy_set = load_or_exit(paths)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    tracking = TrackingSettings(intent_grace=intent_grace)

    async def run() -> dict[str, Any]:
        async with Session(
            policy_set, store_url=store_url, node_url=node_url, tracking=tracking
        ) as session:
            refused: list[str] = []

            async def confirm(decided: Plan, tracked: list[TrackResult]) -> bool:
                if output == "table":
                    click.echo(tracked_text(tracked), nl=False)
                    click.echo(plan_table(decided), nl=False)
                if decided.actions and not yes:
                    if not interactive:
                        refused.append("not a terminal: pass --yes to apply without asking")
                    elif not click.confirm("Buy these top-ups?", default=False):
                        refused.append("not confirmed")
                return not refused

            passed = await session.reconciler.run_pass(apply=True, confirm=confirm)
            if refused:
                return {"refused": refused[0]}
            decided, tracked = passed.plan, list(passed.tracked)
            outcomes, notes = list(passed.outcomes), list(passed.notes)
            followed = await _follow(session, outcomes, wait) if wait > 0 else []
            return {
                "plan": decided,
                "outcomes": outcomes,
                "notes": notes,
                "tracked": tracked + followed,
                "revision": policy_set.revision,
                "deposits": await deposit_summaries(policy_set, session.store),
            }

    result = run_or_exit(run())
    if "refused" in result:
        click.echo(f"error: {result['refused']}; nothing was bought", err=True)
        sys.exit(1)
    outcomes = result["outcomes"]
    if output == "json":
        report = {
            "revision": result["revision"],
            "plan": result["plan"].to_json(),
            "outcomes": [o.to_json() for o in outcomes],
            "tracked": [t.to_json() for t in result["tracked"] if t.moved or t.alert],
            "notes": result["notes"],
            "deposits": result["deposits"],
        }
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(outcomes_text(outcomes), nl=False)
        click.echo(tracked_text(result["tracked"]), nl=False)
        click.echo(deposits_text(result["deposits"]), nl=False)
        for note in result["notes"]:
            click.echo(f"note: {note}", err=True)
    exit_if_unobserved([entry.reason for entry in result["plan"].entries])
    sys.exit(0 if all(o.kind is OutcomeKind.BOUGHT for o in outcomes) else 2)


async def deposit_summaries(policy_set: PolicySet, store: Store) -> list[dict[str, Any]]:
    """Each DepositPolicy as plan and apply show it: deposit-triggered, served by the
    sidecar (`energyctl run`), never bought for here. Its watched addresses (inline, the
    address file as loaded, and the run-time changes kept in the store; a PostgreSQL
    query is not run) and its open episodes in the store."""
    from engine.observe.deposits import DepositWatch

    policies = policy_set.deposit_policies
    if not policies:
        return []
    watch = DepositWatch(policies)
    for name, loaded in policy_set.address_files.items():
        if name in policies:
            watch.set_base(name, loaded.addresses)  # taken over: plan is done with it
    for name, address, present in await store.deposit_addresses():
        if name in policies:
            watch.change(name, address, present)
    episodes = await store.deposit_needs()
    out = []
    for name, policy in policies.items():
        origin = policy.spec.addresses_from
        query = origin is not None and origin.postgres is not None
        out.append(
            {
                "policy": name,
                "kind": "DepositPolicy",
                "servedBy": "energyctl run",
                "addresses": watch.count(name),
                "addressesFromQuery": query,
                "openEpisodes": sum(1 for n in episodes if n.policy == name),
            }
        )
    return out


def _push(paths: tuple[Path, ...], server: str, token_env: str, output: str) -> None:
    """`apply --server`: validate, send to the sidecar, print its answer, exit."""
    import os

    from pydantic import SecretStr

    from engine.sidecar.pushing import PushError, policy_files, push_policies

    load_or_exit(paths, secrets=False)
    token = os.environ.get(token_env)
    if not token:
        click.echo(f"warning: {token_env} is not set: sending no token", err=True)
    try:
        status, answer = push_policies(
            server, policy_files(paths), SecretStr(token) if token else None
        )
    except PushError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if output == "json":
        click.echo(json.dumps({"status": status, "answer": answer}, indent=2))
    elif status == 200 and isinstance(answer, dict):
        click.echo(f"applied by the sidecar: revision {answer.get('revision')}")
    else:
        click.echo(f"the sidecar refused the policy set (HTTP {status}):", err=True)
        message = answer.get("error") if isinstance(answer, dict) else answer
        click.echo(f"  {message}", err=True)
        for line in answer.get("errors", []) if isinstance(answer, dict) else []:
            click.echo(f"  {line}", err=True)
    sys.exit(0 if status == 200 else 1)


async def _follow(session: Any, outcomes: list[Any], wait: float) -> list[Any]:
    """Track the orders just placed until none is open or `wait` seconds have passed."""
    mine = {o.client_order_id for o in outcomes if o.client_order_id}
    results: list[Any] = []
    deadline = session.clock.now() + wait
    while mine:
        still = [o for o in await session.store.open_orders() if o.client_order_id in mine]
        if not still:
            break
        results += [r for r in await session.reconciler.tracker.track(still) if r.moved]
        if session.clock.now() >= deadline:
            break
        await session.clock.sleep(min(1.0, max(0.0, deadline - session.clock.now())))
    return results


@click.command()
@FILES
@OUTPUT
@STORE
@NODE
def status(
    paths: tuple[Path, ...], output: str, store_url: str | None, node_url: str | None
) -> None:
    """Each watched address: a fresh read of its energy, its condition and reason, and its
    open orders from the store. Read-only. Exit 0, or 1 on error (also when no address
    could be read from the node)."""
    from engine.cli.rendering import status_table
    from engine.decide.planning import assess
    from engine.session import Session

    policy_set = load_or_exit(paths)

    async def run() -> tuple[Any, Any]:
        async with Session(policy_set, store_url=store_url, node_url=node_url) as session:
            rec = session.reconciler
            observations = await rec.observe()
            await rec.learn(observations, save=False)
            inputs = await rec.inputs(observations)
            return assess(inputs), inputs.open_orders

    assessments, open_orders = run_or_exit(run())
    by_address: dict[str, list[Any]] = {}
    for order in open_orders:
        by_address.setdefault(order.address, []).append(order)
    if output == "json":
        rows = [
            {
                "address": a.address,
                "policy": a.policy.metadata.name,
                "available": a.available,
                "threshold": a.threshold,
                "condition": str(a.condition),
                "reason": str(a.reason),
                "detail": a.detail,
                "open_orders": [o.client_order_id for o in by_address.get(a.address, [])],
                "expected_use": a.use.to_json() if a.use is not None else None,
            }
            for a in assessments
        ]
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(status_table(assessments, by_address), nl=False)
    exit_if_unobserved([a.reason for a in assessments])


@click.group(invoke_without_command=True, subcommand_metavar="[resolve|history ...]")
@click.option(
    "-f",
    "--file",
    "paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Policy file or directory (repeatable). Required.",
)
@OUTPUT
@STORE
@click.option("--address", help="Only orders for this receiver.")
@click.option("--provider", help="Only orders from this provider (instance name).")
@click.option("--state", "states", multiple=True, help="Phase (repeatable), or 'open'.")
@click.option("--since", help="Only orders created in the last DURATION (e.g. 1h, 2d).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.pass_context
def orders(
    ctx: click.Context,
    paths: tuple[Path, ...],
    output: str,
    store_url: str | None,
    address: str | None,
    provider: str | None,
    states: tuple[str, ...],
    since: str | None,
    limit: int,
) -> None:
    """Order history from the store, newest first, with filters. Exit 0, or 1 on error.

    `energyctl orders resolve ID ...` ends a held order by hand, `energyctl orders history
    ID ...` shows one order's events (see their --help)."""
    if ctx.invoked_subcommand is not None:
        if paths or store_url or address or provider or states or since:
            raise click.UsageError(
                f"options go after the subcommand: energyctl orders {ctx.invoked_subcommand} "
                "... -f PATH"
            )
        return
    if not paths:
        raise click.UsageError("Missing option '-f' / '--file'.")
    import time

    from engine.cli.rendering import orders_table
    from engine.store import OPEN_PHASES, OrderFilter, OrderPhase, open_store
    from policies.units import parse_duration

    phases: set[OrderPhase] = set()
    for state in states:
        if state == "open":
            phases |= OPEN_PHASES
        elif state in {p.value for p in OrderPhase}:
            phases.add(OrderPhase(state))
        else:
            known = ", ".join(["open", *(p.value for p in OrderPhase)])
            raise click.BadParameter(f"{state!r} is not one of {known}", param_hint="--state")
    try:
        seconds = parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    policy_set = load_or_exit(paths, secrets=False)  # the store only: no vendor is called
    selection = OrderFilter(
        phases=frozenset(phases) if phases else None,
        address=address,
        provider=provider,
        since=time.time() - seconds if seconds is not None else None,
        limit=limit,
    )

    async def run() -> list[Any]:
        from engine.core.clock import SystemClock
        from engine.session import store_password

        url = store_url or policy_set.settings.store.url
        store = await open_store(url, SystemClock(), password=store_password(policy_set, url))
        async with store:
            return await store.orders(selection)

    found = run_or_exit(run())
    if output == "json":
        click.echo(json.dumps([o.model_dump(mode="json") for o in found], indent=2))
    else:
        click.echo(orders_table(found), nl=False)


@orders.command()
@click.argument("client_order_id")
@FILES
@STORE
@OUTPUT
def history(
    client_order_id: str, paths: tuple[Path, ...], store_url: str | None, output: str
) -> None:
    """One order and every event of its history, oldest first (who resolved it and why,
    for an order resolved by hand). Read-only. Exit 0, or 1 for an unknown id or an error."""
    import datetime as dt

    from engine.core.clock import SystemClock
    from engine.session import store_password
    from engine.store import open_store

    policy_set = load_or_exit(paths, secrets=False)  # the store only: no vendor is called
    url = store_url or policy_set.settings.store.url

    async def run() -> tuple[Any, Any]:
        store = await open_store(url, SystemClock(), password=store_password(policy_set, url))
        async with store:
            return (
                await store.get_order(client_order_id),
                await store.order_history(client_order_id),
            )

    order, events = run_or_exit(run())
    if output == "json":
        report = {
            "order": order.model_dump(mode="json"),
            "events": [e.model_dump(mode="json") for e in events],
        }
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"order {order.client_order_id}: {order.phase} at {order.provider}, {order.energy} "
        f"energy for {order.address} (policy {order.policy})"
    )
    for event in events:
        at = dt.datetime.fromtimestamp(event.at, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        step = f"{event.from_phase} -> {event.to_phase}" if event.from_phase else event.to_phase
        detail = json.dumps(dict(event.detail), sort_keys=True) if event.detail else ""
        click.echo(f"{at}Z  {step}  {detail}".rstrip())


def _operator() -> str:
    """Who resolves, by default: $ENERGYCTL_OPERATOR, else the OS user."""
    import getpass
    import os

    named = os.environ.get("ENERGYCTL_OPERATOR", "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment nor in the passwd file
        return "unknown"


@orders.command()
@click.argument("client_order_id")
@FILES
@STORE
@NODE
@click.option(
    "--as",
    "as_phase",
    type=click.Choice(["failed", "delivered"]),
    required=True,
    help="failed: nothing was bought; the reservation is released and the address may be "
    "bought for again (refused while the chain shows a delegation to it since the order "
    "was created). delivered: the energy came (your word); the budget stays spent.",
)
@click.option("--reason", required=True, help="Why: recorded in the order's history.")
@click.option(
    "--by",
    metavar="NAME",
    help="Who: recorded in the order's history (default: $ENERGYCTL_OPERATOR, else the OS user).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@OUTPUT
def resolve(
    client_order_id: str,
    paths: tuple[Path, ...],
    store_url: str | None,
    node_url: str | None,
    as_phase: str,
    reason: str,
    by: str | None,
    yes: bool,
    output: str,
) -> None:
    """End a held (open) order by hand, as failed or delivered, with who and why in its
    history: for an ambiguous order at a vendor without a lookup that the chain never
    settles. Refused, saying why, for a terminal order, and --as failed for an order whose
    address shows a delegation since the order was created (or cannot be read).

    Confirmation is asked on a terminal unless --yes; without a terminal, --yes is
    required. Exit codes: 0 resolved, 1 refused, not confirmed, unknown order or error.
    """
    from engine.act.resolving import check_resolution
    from engine.act.resolving import resolve as write_resolution
    from engine.core.clock import SystemClock
    from engine.observe.chain import ChainReader
    from engine.session import DEFAULT_MAX_HEAD_AGE, store_password
    from engine.store import OrderPhase, open_store

    if not reason.strip():
        raise click.BadParameter("must not be blank", param_hint="--reason")
    who = (by or "").strip() or _operator()
    policy_set = load_or_exit(paths, secrets=False)  # the store and the node only
    settings = policy_set.settings
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    clock = SystemClock()
    url = store_url or settings.store.url
    key = settings.node.api_key

    async def run() -> dict[str, Any]:
        store = await open_store(url, clock, password=store_password(policy_set, url))
        async with (
            store,
            ChainReader(
                node_url or settings.node.url,
                api_key=key.get() if key is not None and key.resolved else None,
                clock=clock,
                max_head_age=DEFAULT_MAX_HEAD_AGE,
            ) as reader,
        ):
            check = await check_resolution(
                store, reader, client_order_id, OrderPhase(as_phase), clock=clock
            )
            order = check.order
            if output == "table":
                click.echo(
                    f"order {order.client_order_id}: {order.phase} at {order.provider}, "
                    f"{order.energy} energy for {order.address} (policy {order.policy})"
                )
                if check.chain:
                    click.echo(f"chain: {check.chain}")
            if check.refusal is not None:
                return {"refused": check.refusal}
            if not yes:
                if not interactive:
                    return {"refused": "not a terminal: pass --yes to resolve without asking"}
                if not click.confirm(f"Resolve it as {as_phase}?", default=False):
                    return {"refused": "not confirmed"}
            done = await write_resolution(store, check, by=who, reason=reason)
            return {"check": check, "order": done}

    result = run_or_exit(run())
    if "refused" in result:
        click.echo(f"refused: {result['refused']}; nothing was changed", err=True)
        sys.exit(1)
    check, done = result["check"], result["order"]
    if output == "json":
        report = {
            "client_order_id": done.client_order_id,
            "from": str(check.order.phase),
            "to": str(done.phase),
            "resolved_by": who,
            "reason": reason.strip(),
            "chain": check.chain or None,
            "order": done.model_dump(mode="json"),
        }
        click.echo(json.dumps(report, indent=2))
        return
    money = (
        f"the reservation of {check.order.reserved_sun} sun is released; the address may be "
        "bought for again"
        if done.phase is OrderPhase.FAILED
        else f"{done.cost_sun} sun stays spent"
    )
    click.echo(f"resolved as {done.phase} by {who}: {reason.strip()} ({money})")
