"""`energyctl sandbox`: the served World, a workload spending energy, and the engine's passes.

`SandboxRun(options)` builds a `World` on a `ScaledClock` (`speed` emulated seconds per
real second), serves it on loopback, binds a loopback port for the engine's HTTP API
(`demo.API_PORT` with fixed ports), writes its policy files (the same documents as
`examples/sandbox/`, pointed at the served ports) into a directory with a fresh SQLite
store, and loads them with the sandbox credentials. `await run.run(stop)` then runs
until `duration` real seconds have passed or `stop` is set:

- the engine is the sidecar's: `engine.sidecar.controller.Controller` (passes, tracking, wake-ups,
  policy reload) on the sandbox's ScaledClock, with its HTTP API
  (`engine.sidecar.service.create_app`: `/healthz`, `/readyz`, `/metrics`, `/v1/status`,
  `/v1/orders`, ...) served on `run.api_url`. `energyctl run` (`engine/sidecar/running.py`) does
  the same on the system clock; its entry point takes no clock, so the sandbox assembles
  the same public parts itself. The engine talks HTTP to the node and the vendor
  emulators as it would to the real ones;
- the workload (`sandbox/workload.py`, the `payments` profile by default) makes the
  transfers that are due on the emulated chain, burning TRX where energy is short;
- after each pass of the engine `on_pass(state)` receives a `SandboxState` (energy per
  address against its threshold, orders, spend per provider, transfers and burns) for the
  live view.

Every watched address starts with no energy (drained), so the first pass tops them all up.
Neighbours: `sandbox/world.py`, `sandbox/workload.py`, `sandbox/live.py` (terminal view),
`sandbox/reporting.py` (totals); the CLI's `sandbox` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from engine.act.validating import ENGINE_CHECKS
from engine.core.clock import ScaledClock
from engine.reconciling import PassResult
from engine.session import Session
from engine.sidecar.controller import Controller, ControllerError, ControllerSettings
from engine.sidecar.metrics import Metrics
from engine.sidecar.reloading import PolicySource
from engine.sidecar.service import create_app
from engine.store import OrderFilter, OrderRecord
from policies.loading import SecretMode, load
from policies.policyset import PolicySet
from sandbox import demo
from sandbox.providers.readings import Readings
from sandbox.reporting import ProviderTotals, provider_totals
from sandbox.sweeping import Customers, Sweeper, deposit_schedule
from sandbox.workload import Spender, TransferRecord, Workload, profile
from sandbox.world import World

TRX = 1_000_000


class SandboxError(Exception):
    """The sandbox could not start (ports in use, policy files invalid)."""


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    duration: float | None = None  # real seconds; None: until stopped
    speed: float = 60.0
    workload: Workload | None = None  # default: the `payments` profile over the demo addresses
    seed: int = 0
    directory: Path | None = None  # policy files and store; default: a temporary directory
    fixed_ports: bool = False  # demo.DEFAULT_PORTS and API_PORT (as examples/sandbox/)
    readings: Readings | None = None  # the emulators' readings; None: every default
    #: `--workload deposits`: this many customer deposit addresses under a DepositPolicy,
    #: customers paying in and a sweeper sweeping when the engine says energy is ready
    deposits: int = 0


@dataclass(frozen=True, slots=True)
class AddressState:
    address: str
    policy: str
    available: int
    threshold: int


@dataclass(slots=True)
class SandboxState:
    """What the sandbox has seen so far (the live view and the summary read it)."""

    started_at: float  # emulated
    now: float  # emulated
    passes: int = 0
    addresses: list[AddressState] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    providers: dict[str, ProviderTotals] = field(default_factory=dict)
    transfers: list[TransferRecord] = field(default_factory=list)
    last_pass: PassResult | None = None
    errors: list[str] = field(default_factory=list)
    deposits: int = 0  # deposits made by customers (the deposits workload)
    sweeps: list[TransferRecord] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return sum(t.delivered for t in self.providers.values())

    @property
    def spent_sun(self) -> int:
        return sum(t.spent_sun for t in self.providers.values())

    @property
    def burns(self) -> list[TransferRecord]:
        return [r for r in self.transfers if r.burned_sun > 0]


def load_sandbox_policies(directory: Path, env: dict[str, str]) -> PolicySet:
    result = load(directory, secrets=SecretMode.REQUIRED, checks=ENGINE_CHECKS, env=env)
    if result.policy_set is None:
        problems = "; ".join(str(d) for d in result.errors)
        raise SandboxError(f"the sandbox policy files do not load: {problems}")
    return result.policy_set


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the sandbox's command owns Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class SandboxRun:
    """One `energyctl sandbox` session; see the module docstring."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.clock = ScaledClock(speed=options.speed)
        ports = demo.DEFAULT_PORTS if options.fixed_ports else None
        self.world = World(
            clock=self.clock, ports=ports, watched_trx=10_000, readings=options.readings
        )
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._socket: socket.socket | None = None
        self.policy_set: PolicySet | None = None
        self.api_url = ""

    def start(self) -> SandboxRun:
        """Serve the world, bind the API's port, write and load the policy files
        (SandboxError if it cannot)."""
        try:
            self.world.start()
            self._socket = _bind(demo.API_PORT if self.options.fixed_ports else 0)
        except OSError as exc:
            self.stop()
            raise SandboxError(f"cannot serve the sandbox on loopback: {exc}") from exc
        host, port = self._socket.getsockname()[:2]
        self.api_url = f"http://{host}:{port}"
        directory = self.options.directory
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="energyctl-sandbox-")
            directory = Path(self._tmp.name)
        directory.mkdir(parents=True, exist_ok=True)
        store = f"sqlite:///{(directory / 'energyctl.db').resolve()}"
        files = demo.render_policy_files(self.world.urls(), store, demo.DEMO_POLICIES)
        if self.options.deposits:
            files.update(demo.render_deposit_files(self.options.deposits))
            for n in range(self.options.deposits):  # activated, with TRX for a burned sweep
                self.world.fund(demo.deposit_address(n), 30)
        for name, text in files.items():
            (directory / name).write_text(text)
        self.directory = directory
        self.policy_set = load_sandbox_policies(directory, self.world.env())
        return self

    def stop(self) -> None:
        self.world.stop()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SandboxRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _controller(self) -> Controller:
        clock = self.clock

        def session(policy_set: PolicySet) -> Session:
            return Session(policy_set, clock=clock, applied_by="energyctl sandbox")

        return Controller(
            PolicySource([self.directory], env=self.world.env()),
            clock=clock,
            settings=ControllerSettings(stop_grace=5.0),
            session_factory=session,
        )

    async def run(
        self,
        stop: asyncio.Event | None = None,
        on_pass: Callable[[SandboxState], None] | None = None,
    ) -> SandboxState:
        """Engine, API and workload until `duration` (real seconds) or `stop`; the final
        state."""
        if self.policy_set is None or self._socket is None:
            raise RuntimeError("start() the sandbox first")
        stop = stop or asyncio.Event()
        clock = self.clock
        controller = self._controller()
        try:
            await controller.start()
        except ControllerError as exc:
            raise SandboxError(f"the engine cannot start: {exc}") from exc
        metrics = Metrics()
        controller.observers.append(metrics.observe_pass)
        config = uvicorn.Config(
            create_app(controller, metrics), lifespan="off", access_log=False, log_config=None
        )
        server = _Server(config)
        server_task = asyncio.create_task(server.serve(sockets=[self._socket]))
        engine_task = asyncio.create_task(controller.run())
        spender = Spender(
            self.world.chain, self._workload(), start=clock.now(), seed=self.options.seed
        )
        customers, sweeper, api = self._deposit_traffic(clock.now())
        state = SandboxState(started_at=clock.now(), now=clock.now())
        deadline = None
        if self.options.duration is not None:
            deadline = time.monotonic() + self.options.duration
        seen = 0
        try:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                if engine_task.done():
                    state.errors.append("the engine stopped")
                    break
                state.transfers += spender.run_until(clock.now())
                if customers is not None and sweeper is not None:
                    await _deposit_step(state, customers, sweeper, clock.now())
                if controller.passes != seen:
                    seen = controller.passes
                    await self._refresh(state, controller)
                    if on_pass is not None:
                        on_pass(state)
                due = spender.next_at()
                wait = 1.0 if due is None else min(1.0, max(0.0, due - clock.now()))
                await _wait(stop, wait / clock.speed, deadline)
            await self._refresh(state, controller)
        finally:
            await controller.stop()
            if api is not None:
                await api.aclose()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(engine_task, timeout=10.0)
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await server_task
        return state

    def _workload(self) -> Workload:
        if self.options.deposits:  # the watched EnergyPolicy addresses stay quiet
            return Workload("deposits", ())
        return self.options.workload or profile(
            "payments", self.world.watched, days=30, seed=self.options.seed
        )

    def _deposit_traffic(
        self, start: float
    ) -> tuple[Customers | None, Sweeper | None, httpx.AsyncClient | None]:
        """`--workload deposits`: customers paying in, and a sweeper asking the sidecar's
        `GET /v1/addresses/{address}` whether the energy is ready."""
        count = self.options.deposits
        if not count:
            return None, None, None
        addresses = [demo.deposit_address(n) for n in range(count)]
        schedule = deposit_schedule(addresses, days=30, seed=self.options.seed)
        customers = Customers(self.world.chain, schedule, start=start)
        api = httpx.AsyncClient(base_url=self.api_url, timeout=10.0)

        async def ready(address: str) -> bool:
            try:
                answer = await api.get(f"/v1/addresses/{address}")
            except httpx.HTTPError:
                return False
            return answer.status_code == 200 and bool(answer.json().get("energyReady"))

        return customers, Sweeper(self.world.chain, demo.SINK, ready=ready), api

    async def _refresh(self, state: SandboxState, controller: Controller) -> None:
        ps, session = controller.policy_set, controller.session
        state.now = self.clock.now()
        state.passes = controller.passes
        state.last_pass = controller.last_pass
        error = controller.last_pass_error
        if error is not None and (not state.errors or state.errors[-1] != error):
            state.errors.append(error)
        if ps is None or session is None:
            return
        state.addresses = [
            AddressState(
                address,
                policy.metadata.name,
                self.world.chain.available_energy(address),
                policy.spec.threshold,
            )
            for address in ps.addresses
            if (policy := ps.policy_for(address)) is not None
        ]
        state.orders = await session.store.orders(OrderFilter(limit=10_000))
        state.providers = provider_totals(state.orders)


async def _deposit_step(
    state: SandboxState, customers: Customers, sweeper: Sweeper, now: float
) -> None:
    """Deposits that are due land; ready ones are swept."""
    for deposit in customers.run_until(now):
        sweeper.landed(deposit.address, now)
    state.deposits = len(customers.made)
    state.sweeps += await sweeper.run(now)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((demo.HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


async def _wait(stop: asyncio.Event, seconds: float, deadline: float | None) -> None:
    if deadline is not None:
        seconds = min(seconds, max(0.0, deadline - time.monotonic()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.001, seconds))


def summary_lines(state: SandboxState, api_url: str = "") -> list[str]:
    """The plain-text summary printed when the sandbox stops."""
    minutes = (state.now - state.started_at) / 60.0
    burns = state.burns
    lines = [
        f"sandbox: {minutes:.1f} emulated minutes, {state.passes} passes, "
        f"{len(state.addresses)} addresses" + (f", API at {api_url}" if api_url else ""),
        f"orders: {len(state.orders)} placed, {state.delivered} delivered on the emulated chain, "
        f"{sum(o.is_open for o in state.orders)} open",
    ]
    for name, totals in sorted(state.providers.items()):
        lines.append(
            f"  {name:<10} orders {totals.orders:>4}  delivered {totals.delivered:>4}  "
            f"energy {totals.energy:>10,}  spent {totals.spent_sun / TRX:>10.2f} TRX"
        )
    lines.append(f"spent: {state.spent_sun / TRX:.2f} TRX")
    lines.append(
        f"transfers: {len(state.transfers)}, {len(burns)} burned TRX for missing energy "
        f"({sum(r.burned_sun for r in burns) / TRX:.2f} TRX)"
    )
    if state.deposits:
        burned = [r for r in state.sweeps if r.burned_sun > 0]
        lines.append(
            f"deposits: {state.deposits} made, {len(state.sweeps)} swept, {len(burned)} "
            f"sweeps burned TRX ({sum(r.burned_sun for r in burned) / TRX:.2f} TRX)"
        )
    below = [a for a in state.addresses if a.available < a.threshold]
    lines.append(f"below threshold now: {len(below)} of {len(state.addresses)}")
    lines += [f"error: {message}" for message in state.errors[-5:]]
    return lines


def describe_line(world: World) -> dict[str, Any]:
    """`--world-only`: URLs, accounts and sandbox credentials (World.describe())."""
    return world.describe()


__all__ = [
    "AddressState",
    "SandboxError",
    "SandboxOptions",
    "SandboxRun",
    "SandboxState",
    "describe_line",
    "load_sandbox_policies",
    "summary_lines",
]
