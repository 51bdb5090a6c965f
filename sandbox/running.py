"""`energyctl sandbox`: the served World, a workload spending energy, and the engine's passes.

`SandboxRun(options)` builds a `World` on a `ScaledClock` (`speed` emulated seconds per
real second), serves it on loopback, writes its policy files (the same documents as
`examples/sandbox/`, pointed at the served ports) into a directory with a fresh SQLite
store, and loads them with the sandbox credentials. `await run.run(stop)` then loops until
`duration` real seconds have passed or `stop` is set:

- the workload (`sandbox/workload.py`, the `payments` profile by default) makes the
  transfers that are due on the emulated chain, burning TRX where energy is short;
- every observation interval of emulated time, one `Reconciler.reconcile_once(apply=True)`
  through an `engine.session.Session`: the engine talks HTTP to the node and the four
  vendor emulators like it would to the real ones;
- after each pass `on_pass(state)` receives a `SandboxState` (energy per address against
  its threshold, orders, spend per provider, transfers and burns) for the live view.

Every watched address starts with no energy (drained), so the first pass tops them all up.
Neighbours: `sandbox/world.py`, `sandbox/workload.py`, `sandbox/live.py` (terminal view),
`sandbox/reporting.py` (totals); the CLI's `sandbox` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.clock import ScaledClock
from engine.reconciling import PassResult
from engine.session import Session
from engine.store import OrderFilter, OrderRecord
from engine.validating import ENGINE_CHECKS
from policies.loading import SecretMode, load
from policies.policyset import PolicySet
from sandbox import demo
from sandbox.reporting import ProviderTotals, provider_totals
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
    fixed_ports: bool = False  # demo.DEFAULT_PORTS (as examples/sandbox/) instead of free ones
    interval: float | None = None  # emulated seconds between passes; default: the policies'


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


class SandboxRun:
    """One `energyctl sandbox` session; see the module docstring."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.clock = ScaledClock(speed=options.speed)
        ports = demo.DEFAULT_PORTS if options.fixed_ports else None
        self.world = World(clock=self.clock, ports=ports, watched_trx=10_000)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.policy_set: PolicySet | None = None

    def start(self) -> SandboxRun:
        """Serve the world and write and load the policy files (SandboxError if it cannot)."""
        try:
            self.world.start()
        except OSError as exc:
            raise SandboxError(f"cannot serve the sandbox world on loopback: {exc}") from exc
        directory = self.options.directory
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="energyctl-sandbox-")
            directory = Path(self._tmp.name)
        self.directory = self.world.write_policies(directory)
        self.policy_set = load_sandbox_policies(self.directory, self.world.env())
        return self

    def stop(self) -> None:
        self.world.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SandboxRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def run(
        self,
        stop: asyncio.Event | None = None,
        on_pass: Callable[[SandboxState], None] | None = None,
    ) -> SandboxState:
        """Workload and passes until `duration` (real seconds) or `stop`; the final state."""
        policy_set = self.policy_set
        if policy_set is None:
            raise RuntimeError("start() the sandbox first")
        stop = stop or asyncio.Event()
        clock, chain = self.clock, self.world.chain
        workload = self.options.workload or profile(
            "payments", self.world.watched, days=30, seed=self.options.seed
        )
        spender = Spender(chain, workload, start=clock.now(), seed=self.options.seed)
        interval = self.options.interval or float(policy_set.settings.observation.interval)
        state = SandboxState(started_at=clock.now(), now=clock.now())
        deadline = None if self.options.duration is None else time.monotonic()
        if deadline is not None and self.options.duration is not None:
            deadline += self.options.duration
        async with Session(policy_set, clock=clock, applied_by="energyctl sandbox") as session:
            next_pass = clock.now()
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                state.transfers += spender.run_until(clock.now())
                if clock.now() >= next_pass:
                    next_pass = clock.now() + interval
                    try:
                        state.last_pass = await session.reconciler.reconcile_once(apply=True)
                    except Exception as exc:
                        state.errors.append(f"{type(exc).__name__}: {exc}")
                    state.passes += 1
                    await self._refresh(state, session, policy_set)
                    if on_pass is not None:
                        on_pass(state)
                wait = min(next_pass, spender.next_at() or next_pass) - clock.now()
                await _wait(stop, max(0.0, min(wait, interval)) / clock.speed, deadline)
            await self._refresh(state, session, policy_set)
        return state

    async def _refresh(self, state: SandboxState, session: Session, ps: PolicySet) -> None:
        state.now = self.clock.now()
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


async def _wait(stop: asyncio.Event, seconds: float, deadline: float | None) -> None:
    if deadline is not None:
        seconds = min(seconds, max(0.0, deadline - time.monotonic()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.001, seconds))


def summary_lines(state: SandboxState) -> list[str]:
    """The plain-text summary printed when the sandbox stops."""
    minutes = (state.now - state.started_at) / 60.0
    burns = state.burns
    lines = [
        f"sandbox: {minutes:.1f} emulated minutes, {state.passes} passes, "
        f"{len(state.addresses)} addresses",
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
