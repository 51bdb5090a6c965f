"""`energyctl sandbox` and `energyctl simulate`: the system offline, live or as fast as possible.

The only CLI module that imports `sandbox`, and only inside these commands (the layer
contract in pyproject.toml allows it here). Neighbours: `sandbox/running.py`,
`sandbox/world.py`, `sandbox/simulating.py`, `sandbox/reporting.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.cli.common import parsed

if TYPE_CHECKING:
    from sandbox.providers.readings import Readings


def _seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else parsed("duration")(ctx, param, value)


def _offsets(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, float]:
    """`mefree=30` (repeatable) -> {vendor: seconds}; a vendor's server clock offset."""
    from sandbox import demo

    offsets: dict[str, float] = {}
    for value in values:
        vendor, sep, seconds = value.partition("=")
        if not sep or vendor not in demo.VENDORS:
            raise click.BadParameter(
                f"{value!r}: expected VENDOR=SECONDS, VENDOR one of {', '.join(demo.VENDORS)}"
            )
        try:
            offsets[vendor] = float(seconds)
        except ValueError:
            raise click.BadParameter(f"{value!r}: {seconds!r} is not a number of seconds") from None
    return offsets


@click.command()
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
    "--vendor-clock-offset",
    "clock_offsets",
    multiple=True,
    callback=_offsets,
    metavar="VENDOR=SECONDS",
    help="With --world-only: run that vendor emulator's server clock SECONDS ahead "
    "(negative: behind) of the world's, in its Date header and signed-timestamp checks "
    "(repeatable), to see what a skewed vendor clock does (`providers check`).",
)
@click.option(
    "--fixed-ports/--random-ports",
    default=None,
    help="Serve on the ports examples/sandbox/ names (node 18090, vendors from 18091, API 18095) "
    "or on free ones. "
    "Default: fixed with --world-only, random otherwise.",
)
@click.option(
    "--workload",
    default="payments",
    show_default=True,
    help="A profile (steady, daily, bursty, payments), `deposits` (customers paying into "
    "--deposit-addresses deposit addresses under a DepositPolicy, and a sweeper that sweeps "
    "each deposit once GET /v1/addresses says its energy is ready) or a CSV file of transfers.",
)
@click.option(
    "--deposit-addresses",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="With --workload deposits: how many deposit addresses.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Workload seed.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the policy files and the store here (default: a temporary directory).",
)
@click.option(
    "--reading",
    "readings",
    multiple=True,
    metavar="VENDOR.KEY=VALUE[,...]",
    help="Serve the emulated providers with this reading of a point their docs leave "
    "open, e.g. mefree.duplicate=error,eopen.params=body (repeatable; the list is in "
    "docs/sandbox-providers.md). Default: the most likely reading of each.",
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
    clock_offsets: dict[str, float],
    fixed_ports: bool | None,
    workload: str,
    deposit_addresses: int,
    seed: int,
    directory: Path | None,
    readings: tuple[str, ...],
    live: bool | None,
) -> None:
    """The whole system offline: an emulated TRON node, the emulated providers, a
    payment-processor workload and the engine on the sandbox policies. No network, no keys.

    Exit codes: 0 stopped by --duration or Ctrl-C with at least one order delivered on the
    emulated chain (or --world-only), 2 no order was delivered, 1 the sandbox could not start.
    """
    import asyncio
    import signal

    from sandbox.providers.readings import ReadingError, Readings
    from sandbox.running import SandboxError, SandboxOptions, SandboxRun, summary_lines
    from sandbox.workload import WorkloadError, load_workload

    try:
        chosen = Readings.parse(readings)
    except ReadingError as exc:
        raise click.BadParameter(str(exc), param_hint="--reading") from exc
    if world_only:
        _world_only(speed or 1.0, duration, fixed_ports is not False, clock_offsets, chosen)
        return
    if clock_offsets:
        raise click.UsageError("--vendor-clock-offset needs --world-only")
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
            workload=None
            if workload == "deposits"
            else load_workload(workload, senders, days=30, seed=seed),
            readings=chosen,
            deposits=deposit_addresses if workload == "deposits" else 0,
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


def _world_only(
    speed: float,
    duration: int | None,
    fixed_ports: bool,
    clock_offsets: dict[str, float],
    readings: Readings,
) -> None:
    import asyncio
    import contextlib
    import signal

    from engine.core.clock import ScaledClock
    from sandbox import demo
    from sandbox.world import World

    world = World(
        clock=ScaledClock(speed=speed),
        ports=demo.DEFAULT_PORTS if fixed_ports else None,
        clock_offsets=clock_offsets,
        readings=readings,
    )
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


def _export_workload(path: Path, workload: str, days: float, seed: int, target: Path) -> None:
    from sandbox.simulating import SimulationError, load_for_simulation
    from sandbox.workload import load_workload, write_csv

    try:
        addresses = list(load_for_simulation([path]).addresses)
        played = load_workload(workload, addresses, days=days, seed=seed)
    except (SimulationError, ValueError) as exc:
        click.echo(f"error: {path}: {exc}", err=True)
        sys.exit(1)
    count = write_csv(played, target)
    click.echo(f"{count} transfers of {len(played.senders)} senders written to {target}")


@click.command()
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
    help="A profile (steady, daily, bursty, payments, week, deposits) or a CSV file "
    "(time, sender, recipient_holds_usdt). A set with DepositPolicies takes `deposits`: "
    "customers pay into its deposit addresses and a sweeper sweeps each deposit when the "
    "engine says its energy is ready; it may hold no EnergyPolicy (simulate those as "
    "another set).",
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
    default=None,
    help="Emulated seconds per step. Default: the engine's reaction time (its poll "
    "interval; 15 s in follow mode), at most 60 s (deposits: 60 s).",
)
@click.option(
    "--drift-seed",
    type=int,
    default=None,
    help="Let the emulated vendors' prices move with this seed (a few percent a day per "
    "vendor, and eopen's time-of-day cycle); without it prices stay fixed.",
)
@click.option(
    "--export-workload",
    "export",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the workload (the profile with --seed and --days, for the first policy "
    "set's addresses) to this CSV file and exit without simulating; --workload FILE "
    "plays it back.",
)
def simulate(
    paths: tuple[Path, ...],
    workload: str,
    days: float,
    seed: int,
    out: Path,
    step: float | None,
    drift_seed: int | None,
    export: Path | None,
) -> None:
    """Run policy sets over days of emulated traffic, as fast as the machine allows, and
    report TRX spent per provider, TRX burned, waste, cost per transfer against burning,
    and spent against the floor. Exit 0, or 1 on error."""
    import asyncio

    if export is not None:
        _export_workload(paths[0], workload, days, seed, export)
        return

    from sandbox.market import Drift
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
                        drift=None if drift_seed is None else Drift(drift_seed),
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
    for report in reports:
        if "sweeps" in report:  # a set with DepositPolicies: the transfers are the sweeps
            click.echo(
                f"{report['name']}: {report['deposits']} deposits, {report['sweeps']} sweeps, "
                f"{report['burned_sweeps']} burned; cost per sweep "
                f"{report['cost_per_transfer_sun'] / 1e6:.3f} TRX against "
                f"{report['burn_per_transfer_sun'] / 1e6:.3f} TRX burning "
                f"(saving {report['saving_vs_burning']:.1%})"
            )
    click.echo(f"reports and charts in {out}/")
