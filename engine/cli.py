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


# --------------------------------------------------------------------------- plan / apply

_FILES = click.option(
    "-f",
    "--file",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Policy file or directory (repeatable).",
)
_STORE = click.option("--store", "store_url", help="Store URL (default: EngineConfig store.url).")
_NODE = click.option("--node", "node_url", help="Node URL (default: EngineConfig node.url).")
_OUTPUT = click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)


def _load_or_exit(paths: tuple[Path, ...], *, secrets: bool = True) -> Any:
    """The policy set, secrets REQUIRED unless `secrets` is False (an unresolved one is an
    error naming the variable or file), or exit 1."""
    from engine.validating import ENGINE_CHECKS
    from policies.loading import SecretMode, load

    mode = SecretMode.REQUIRED if secrets else SecretMode.OPTIONAL
    result = load(paths, secrets=mode, checks=ENGINE_CHECKS)
    for diagnostic in result.diagnostics:
        click.echo(str(diagnostic), err=True)
    if result.policy_set is None:
        click.echo(f"invalid: errors {len(result.errors)}", err=True)
        sys.exit(1)
    return result.policy_set


def _run_or_exit(coro: Any) -> Any:
    """Run a session coroutine; an engine error is one line on stderr and exit 1."""
    import asyncio

    from engine.chain import ChainError
    from engine.providing import ProvidingError
    from engine.store import StoreError

    try:
        return asyncio.run(coro)
    except (StoreError, ProvidingError, ChainError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@main.command()
@_FILES
@_OUTPUT
@_STORE
@_NODE
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
    action, provider and estimated cost. Never buys and never writes orders.

    Exit codes: 0 success (with --detailed-exitcode: nothing to do), 2 purchases pending
    (only with --detailed-exitcode), 1 error.
    """
    from engine.rendering import plan_table
    from engine.session import Session

    policy_set = _load_or_exit(paths)

    async def run() -> Any:
        async with Session(policy_set, store_url=store_url, node_url=node_url) as session:
            return await session.reconciler.reconcile_once(apply=False)

    result = _run_or_exit(run())
    if output == "json":
        click.echo(json.dumps(result.plan.to_json(), indent=2))
    else:
        click.echo(plan_table(result.plan), nl=False)
    sys.exit(2 if detailed_exitcode and result.pending else 0)


@main.command()
@_FILES
@_OUTPUT
@_STORE
@_NODE
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
    held and why. Records the policy revision in the store.

    Confirmation is asked on a terminal unless --yes; without a terminal, --yes is
    required. Exit codes: 0 every purchase placed (or nothing to do), 2 some purchases
    held or failed, 1 error (including a refused confirmation).

    With --server URL the set is validated here (secrets may stay unresolved: the sidecar
    resolves them) and handed to a running sidecar, which validates it again and puts it
    in force between passes; exit 0 when it accepted the set, 1 otherwise.
    """
    if server is not None:
        _push(paths, server, token_env, output)
        return
    from engine.applying import OutcomeKind
    from engine.rendering import outcomes_text, plan_table, tracked_text
    from engine.session import Session
    from engine.tracking import TrackingSettings

    policy_set = _load_or_exit(paths)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    tracking = TrackingSettings(intent_grace=intent_grace)

    async def run() -> dict[str, Any]:
        async with Session(
            policy_set, store_url=store_url, node_url=node_url, tracking=tracking
        ) as session:
            rec = session.reconciler
            observations, tracked, decided = await rec.prepare(apply=True)
            if output == "table":
                click.echo(tracked_text(tracked), nl=False)
                click.echo(plan_table(decided), nl=False)
            if decided.actions and not yes:
                if not interactive:
                    return {"refused": "not a terminal: pass --yes to apply without asking"}
                if not click.confirm("Buy these top-ups?", default=False):
                    return {"refused": "not confirmed"}
            outcomes, notes = await rec.execute(decided, observations)
            followed = await _follow(session, outcomes, wait) if wait > 0 else []
            return {
                "plan": decided,
                "outcomes": outcomes,
                "notes": notes,
                "tracked": tracked + followed,
                "revision": policy_set.revision,
            }

    result = _run_or_exit(run())
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
        }
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(outcomes_text(outcomes), nl=False)
        click.echo(tracked_text(result["tracked"]), nl=False)
        for note in result["notes"]:
            click.echo(f"note: {note}", err=True)
    sys.exit(0 if all(o.kind is OutcomeKind.BOUGHT for o in outcomes) else 2)


def _push(paths: tuple[Path, ...], server: str, token_env: str, output: str) -> None:
    """`apply --server`: validate, send to the sidecar, print its answer, exit."""
    import os

    from pydantic import SecretStr

    from engine.pushing import PushError, policy_files, push_policies

    _load_or_exit(paths, secrets=False)
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


# --------------------------------------------------------------------------- status / orders


@main.command()
@_FILES
@_OUTPUT
@_STORE
@_NODE
def status(
    paths: tuple[Path, ...], output: str, store_url: str | None, node_url: str | None
) -> None:
    """Each watched address: a fresh read of its energy, its condition and reason, and its
    open orders from the store. Read-only. Exit 0, or 1 on error."""
    from engine.planning import assess
    from engine.rendering import status_table
    from engine.session import Session

    policy_set = _load_or_exit(paths)

    async def run() -> tuple[Any, Any]:
        async with Session(policy_set, store_url=store_url, node_url=node_url) as session:
            rec = session.reconciler
            inputs = await rec.inputs(await rec.observe())
            return assess(inputs), inputs.open_orders

    assessments, open_orders = _run_or_exit(run())
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
            }
            for a in assessments
        ]
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(status_table(assessments, by_address), nl=False)


@main.command()
@_FILES
@_OUTPUT
@_STORE
@click.option("--address", help="Only orders for this receiver.")
@click.option("--provider", help="Only orders from this provider (instance name).")
@click.option("--state", "states", multiple=True, help="Phase (repeatable), or 'open'.")
@click.option("--since", help="Only orders created in the last DURATION (e.g. 1h, 2d).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
def orders(
    paths: tuple[Path, ...],
    output: str,
    store_url: str | None,
    address: str | None,
    provider: str | None,
    states: tuple[str, ...],
    since: str | None,
    limit: int,
) -> None:
    """Order history from the store, newest first, with filters. Exit 0, or 1 on error."""
    import time

    from engine.rendering import orders_table
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
    policy_set = _load_or_exit(paths, secrets=False)  # the store only: no vendor is called
    selection = OrderFilter(
        phases=frozenset(phases) if phases else None,
        address=address,
        provider=provider,
        since=time.time() - seconds if seconds is not None else None,
        limit=limit,
    )

    async def run() -> list[Any]:
        from engine.clock import SystemClock
        from engine.session import store_password

        url = store_url or policy_set.settings.store.url
        store = await open_store(url, SystemClock(), password=store_password(policy_set, url))
        async with store:
            return await store.orders(selection)

    found = _run_or_exit(run())
    if output == "json":
        click.echo(json.dumps([o.model_dump(mode="json") for o in found], indent=2))
    else:
        click.echo(orders_table(found), nl=False)


# --------------------------------------------------------------------------- run (sidecar)


@main.command()
@_FILES
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

    from engine.controller import ControllerSettings
    from engine.logs import configure
    from engine.sidecar import SidecarOptions, run_sidecar

    configure(log_format, log_level)
    options = SidecarOptions(
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


# --------------------------------------------------------------------------- sandbox


def _seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else _parsed("duration")(ctx, param, value)


@main.command()
@click.option(
    "--duration",
    callback=_seconds,
    help="Stop by itself after this much real time (60s, 5m) and print a summary; "
    "default: until Ctrl-C.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Emulated seconds per real second. Default: 60, or 1 with --world-only (your own "
    "tools sign requests with the real time, which the emulated vendors check).",
)
@click.option(
    "--world-only",
    is_flag=True,
    help="Only the emulated node and providers: print one JSON line with their URLs and "
    "the sandbox credentials, then serve until Ctrl-C (or --duration).",
)
@click.option(
    "--fixed-ports/--random-ports",
    default=None,
    help="Serve on the ports examples/sandbox/ names (18090-18094) or on free ones. "
    "Default: fixed with --world-only, random otherwise.",
)
@click.option(
    "--workload",
    default="payments",
    show_default=True,
    help="A profile (steady, daily, bursty, payments) or a CSV file of transfers.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Workload seed.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the policy files and the store here (default: a temporary directory).",
)
@click.option(
    "--live/--no-live",
    default=None,
    help="The live terminal view (default: on when stdout is a terminal).",
)
def sandbox(
    duration: int | None,
    speed: float | None,
    world_only: bool,
    fixed_ports: bool | None,
    workload: str,
    seed: int,
    directory: Path | None,
    live: bool | None,
) -> None:
    """The whole system offline: an emulated TRON node, the four emulated providers, a
    payment-processor workload and the engine on the sandbox policies. No network, no keys.

    Exit codes: 0 stopped by --duration or Ctrl-C with at least one order delivered on the
    emulated chain (or --world-only), 2 no order was delivered, 1 the sandbox could not start.
    """
    import asyncio
    import signal

    from sandbox.running import SandboxError, SandboxOptions, SandboxRun, summary_lines
    from sandbox.workload import WorkloadError, load_workload

    if world_only:
        _world_only(speed or 1.0, duration, fixed_ports is not False)
        return
    speed = 60.0 if speed is None else speed
    from sandbox import demo

    try:
        senders = [demo.watched_address(n) for n in range(demo.WATCHED)]
        options = SandboxOptions(
            duration=duration,
            speed=speed,
            seed=seed,
            directory=directory,
            fixed_ports=bool(fixed_ports),
            workload=load_workload(workload, senders, days=30, seed=seed),
        )
        run = SandboxRun(options)
        run.start()
    except (SandboxError, WorkloadError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    show_live = sys.stdout.isatty() if live is None else live
    click.echo(
        f"sandbox: speed {speed:g}x, policies in {run.directory}, node at "
        f"{run.world.url('node')}, API at {run.api_url}"
        + ("" if duration is None else f", for {duration} s"),
        err=show_live,
    )

    async def main_task() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if not show_live:
            return await run.run(stop)
        from sandbox.live import LiveView

        with LiveView() as view:
            return await run.run(stop, on_pass=view.update)

    try:
        state = asyncio.run(main_task())
    except SandboxError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        run.stop()
    for line in summary_lines(state, run.api_url):
        click.echo(line)
    sys.exit(0 if state.delivered else 2)


def _world_only(speed: float, duration: int | None, fixed_ports: bool) -> None:
    import asyncio
    import contextlib
    import signal

    from engine.clock import ScaledClock
    from sandbox import demo
    from sandbox.world import World

    world = World(clock=ScaledClock(speed=speed), ports=demo.DEFAULT_PORTS if fixed_ports else None)
    try:
        world.start()
    except OSError as exc:
        click.echo(f"error: cannot serve the sandbox world on loopback: {exc}", err=True)
        sys.exit(1)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)

    try:
        click.echo(json.dumps(world.describe(), separators=(",", ":")))
        sys.stdout.flush()
        asyncio.run(serve())
    finally:
        world.stop()


# --------------------------------------------------------------------------- simulate


@main.command()
@click.option(
    "-f",
    "--file",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A policy set (file or directory) to simulate; repeat to compare side by side.",
)
@click.option(
    "--workload",
    default="payments",
    show_default=True,
    help="A profile (steady, daily, bursty, payments) or a CSV file "
    "(time, sender, recipient_holds_usdt).",
)
@click.option("--days", type=click.FloatRange(min=0.001), default=7.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Workload seed.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("simulation"),
    show_default=True,
    help="Directory for NAME.json (the report) and NAME.png (the chart) per policy set.",
)
@click.option(
    "--step",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Emulated seconds per step.",
)
def simulate(
    paths: tuple[Path, ...], workload: str, days: float, seed: int, out: Path, step: float
) -> None:
    """Run policy sets over days of emulated traffic, as fast as the machine allows, and
    report TRX spent per provider, TRX burned, waste, cost per transfer against burning,
    and spent against the floor. Exit 0, or 1 on error."""
    import asyncio

    from sandbox.reporting import comparison_table, write_chart
    from sandbox.simulating import SimulationError
    from sandbox.simulating import simulate as run_simulation

    out.mkdir(parents=True, exist_ok=True)
    reports: list[dict[str, Any]] = []
    for path in paths:
        name = path.stem or path.name
        with click.progressbar(length=1000, label=f"simulating {name}", file=sys.stderr) as bar:
            done = [0]

            def progress(fraction: float, bar: Any = bar, done: list[int] = done) -> None:
                bar.update(int(fraction * 1000) - done[0])
                done[0] = int(fraction * 1000)

            try:
                result = asyncio.run(
                    run_simulation(
                        [path], workload, days=days, seed=seed, step=step, name=name,
                        progress=progress,
                    )
                )  # fmt: skip
            except SimulationError as exc:
                click.echo(f"error: {path}: {exc}", err=True)
                sys.exit(1)
        report = result.report()
        (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        write_chart(result, out / f"{name}.png")
        reports.append(report)
    click.echo(comparison_table(reports), nl=False)
    click.echo(f"reports and charts in {out}/")
