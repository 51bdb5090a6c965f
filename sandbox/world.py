"""The sandbox world: an emulated TRON node and the vendor emulators, on one clock.

`World()` builds everything in memory: a `ChainState`, one staked provider account per
vendor (`sandbox.demo.provider_address`), each vendor emulator delivering through its own
`ChainDelegator`, the demo's watched addresses activated and funded, and a USDT recipient.
Two ways to use it:

- **in-process** (tests): nothing listens. `world.transport("itrx")` and
  `world.node_transport()` are ASGI transports for adapters and `ChainReader`; with a
  `VirtualClock`, `world.advance(s)` moves time and every emulator's orders with it
  (`await world.step()` also sends due itrx callbacks).
- **served** (`with World(...) as world:` or `start()`/`stop()`): the node and the emulators
  listen on loopback (`sandbox.serving.serve`) in background threads, so a subprocess
  (`energyctl ...`) can talk to them. When the clock runs by itself (`ScaledClock`, the
  sandbox's `--speed`), each emulator's background loop runs in its server's event loop
  and deliveries progress with time; with a `VirtualClock`, `advance()` ticks each emulator
  in its own loop.

`write_policies(dir)` writes Provider documents with `baseUrl` at the emulators and
`{fromEnv: ...}` credential references, an EngineConfig (node URL, store URL) and the demo
policies; `env()` gives the variables to set; `describe()` is a JSON-ready summary (URLs and
sandbox credentials). A subprocess signs with the real time: give a served world a clock
near it (`VirtualClock(time.time())` or `ScaledClock()`), or Mefree refuses the timestamp.

Neighbours: `sandbox/demo.py` (fixed accounts, credentials, policy files),
`sandbox/tron_node` (the chain), `sandbox/providers` (emulators, `ChainDelegator`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.core.clock import Clock, ScaledClock, VirtualClock
from sandbox import demo
from sandbox.providers import VENDORS as EMULATED
from sandbox.providers.chain_delegator import ChainDelegator
from sandbox.providers.emulating import EmulatorBase
from sandbox.providers.readings import Readings
from sandbox.serving import LoopbackServer
from sandbox.tron_node import ChainState, create_app

TRX = 1_000_000
PING_PATH = "/__world/ping"


class _Attached:
    """ASGI wrapper that learns its server's event loop at the first request.

    `World.start()` pings each server once so the loop is known before any client calls;
    `PING_PATH` is answered here and never reaches the emulator (its `calls` stay clean).
    """

    def __init__(self, app: ASGIApp, on_attach: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self._on_attach = on_attach

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.loop is None and scope["type"] == "http":
            self.loop = asyncio.get_running_loop()
            self._on_attach(self.loop)
        if scope["type"] == "http" and scope["path"] == PING_PATH:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class World:
    """The emulated node and the vendor emulators, sharing one chain and one clock."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        watched: int = demo.WATCHED,
        watched_trx: int = 1_000,
        provider_stake_trx: int = 5_000_000,
        vendor_balance_trx: int = 100_000,
        ports: Mapping[str, int] | None = None,
        tick_interval: float = 1.0,
        clock_offsets: Mapping[str, float] | None = None,
        readings: Readings | None = None,
    ) -> None:
        """`clock_offsets` (vendor -> seconds) sets vendor emulators' server clocks ahead
        of the world's (negative: behind): their `Date` headers and signed-timestamp checks
        use it, as a vendor whose clock is off would. `readings`: the emulators' answers
        where the vendors' docs allow two (`sandbox/providers/readings.py`); None: every
        default."""
        self.readings = readings if readings is not None else Readings()
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.chain = ChainState(self.clock)
        self.ports = dict(ports or {})
        self.tick_interval = tick_interval
        self.delegators: dict[str, ChainDelegator] = {}
        for vendor in demo.VENDORS:
            address = demo.provider_address(vendor)
            self.chain.create_account(address, (provider_stake_trx + 10_000) * TRX)
            self.chain.stake_energy(address, provider_stake_trx * TRX)
            self.delegators[vendor] = ChainDelegator(self.chain, address)
        balance = vendor_balance_trx * TRX
        d, c, r = self.delegators, self.clock, self.readings
        self.emulators: dict[str, EmulatorBase] = {
            v.name: v.emulator(
                d[v.name], clock=c, balance_sun=balance, readings=r, **v.credential_kwargs()
            )
            for v in EMULATED
        }
        for vendor, offset in (clock_offsets or {}).items():
            if vendor not in self.emulators:
                raise ValueError(f"clock offset for {vendor!r}: not one of {list(demo.VENDORS)}")
            self.emulators[vendor].clock_offset_s = float(offset)
        self.chain.create_account(demo.SINK, 0)
        self.chain.mark_usdt_holder(demo.SINK)
        self.watched = [demo.watched_address(n) for n in range(watched)]
        for address in self.watched:
            self.fund(address, watched_trx)
        self._servers: dict[str, LoopbackServer] = {}
        self._attached: dict[str, _Attached] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ in-process

    def transport(self, vendor: str) -> httpx.ASGITransport:
        """An in-process transport to a vendor emulator (adapters' `transport=`)."""
        return httpx.ASGITransport(app=self.emulators[vendor].app)

    def node_transport(self) -> httpx.ASGITransport:
        """An in-process transport to the node (`ChainReader(..., transport=)`)."""
        return httpx.ASGITransport(app=create_app(self.chain))

    def advance(self, seconds: float) -> None:
        """Move a VirtualClock forward and every emulator's orders with it."""
        if not isinstance(self.clock, VirtualClock):
            raise TypeError("advance() needs a VirtualClock; this world's clock runs by itself")
        self.clock.advance(seconds)
        self.chain.produce_blocks()
        for vendor, emulator in self.emulators.items():
            attached = self._attached.get(vendor)
            if attached is not None and attached.loop is not None:
                future = asyncio.run_coroutine_threadsafe(emulator.step(), attached.loop)
                future.result(timeout=10)
            else:
                emulator.tick()

    async def step(self) -> None:
        """In-process: tick every emulator and run what is due (itrx callbacks)."""
        for emulator in self.emulators.values():
            await emulator.step()

    # ------------------------------------------------------------------ chain helpers

    def fund(self, address: str, trx: int) -> None:
        """Give `address` TRX, activating it if needed."""
        if self.chain.has_account(address):
            self.chain.fund(address, trx * TRX)
        else:
            self.chain.create_account(address, trx * TRX)

    def available_energy(self, address: str) -> int:
        return self.chain.available_energy(address)

    def spend(self, address: str, transfers: int = 1) -> list[str]:
        """`transfers` USDT-like transfers from `address` to the sink; their txids."""
        return [self.chain.transfer_usdt(address, demo.SINK) for _ in range(transfers)]

    def drain(self, addresses: Iterable[str], *, limit: int = 100) -> int:
        """Spend until each address has less energy than one transfer; transfers made."""
        per_transfer = self.chain.params.usdt_energy_holder
        made = 0
        for address in addresses:
            for _ in range(limit):
                if self.available_energy(address) < per_transfer:
                    break
                self.spend(address)
                made += 1
        return made

    # ------------------------------------------------------------------ served

    def __enter__(self) -> World:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def start(self) -> World:
        """Serve the node and the emulators on loopback in background threads."""
        if self.running:
            raise RuntimeError("the world is already running")
        try:
            node = LoopbackServer(create_app(self.chain), port=self.ports.get("node", 0))
            self._servers["node"] = node.start()
            for vendor, emulator in self.emulators.items():
                attached = _Attached(emulator.app, self._on_attach(emulator))
                port = self.ports.get(vendor, 0)
                server = LoopbackServer(attached, port=port, date_header=False).start()
                self._servers[vendor], self._attached[vendor] = server, attached
                httpx.get(server.url + PING_PATH, timeout=10).raise_for_status()
        except BaseException:
            self.stop()
            raise
        return self

    def _on_attach(self, emulator: EmulatorBase) -> Any:
        def attach(loop: asyncio.AbstractEventLoop) -> None:
            if isinstance(self.clock, VirtualClock):
                return  # advance() ticks; nothing moves by itself
            task = loop.create_task(emulator.run(self.tick_interval))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return attach

    def stop(self) -> None:
        """Stop every server (held answers are released first); idempotent."""
        for emulator in self.emulators.values():
            emulator.faults.release_hangs()
        for server in reversed(list(self._servers.values())):
            server.stop()
        self._servers.clear()
        self._attached.clear()

    def url(self, name: str) -> str:
        """Base URL of "node" or a vendor: as served, else on the configured port."""
        server = self._servers.get(name)
        if server is not None:
            base = server.url
        elif name in self.ports:
            base = f"http://{demo.HOST}:{self.ports[name]}"
        else:
            raise RuntimeError(f"{name} is not served: start() the world or give its port")
        return base + demo.BASE_PATHS.get(name, "")

    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in ("node", *demo.VENDORS)}

    # ------------------------------------------------------------------ configuration

    def env(self) -> dict[str, str]:
        """Environment variables the written Provider documents refer to."""
        return demo.env_values()

    def write_policies(self, directory: str | Path, *, store_url: str | None = None) -> Path:
        """Write providers.yaml, engine.yaml and policies.yaml into `directory`."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        store = store_url or f"sqlite:///{(path / 'energyctl.db').resolve()}"
        for name, text in demo.render_policy_files(self.urls(), store).items():
            (path / name).write_text(text)
        return path

    def describe(self) -> dict[str, Any]:
        """URLs, accounts and sandbox credentials, JSON-ready (`energyctl sandbox --world-only`)."""
        clock: dict[str, Any] = {"kind": type(self.clock).__name__, "now": self.clock.now()}
        if isinstance(self.clock, ScaledClock):
            clock["speed"] = self.clock.speed
        offsets = {v: e.clock_offset_s for v, e in self.emulators.items() if e.clock_offset_s}
        if offsets:
            clock["vendorOffsets"] = offsets
        urls = self.urls() if self.running or self.ports else {}
        return {
            "clock": clock,
            "readings": self.readings.chosen(),
            "node": {"url": urls.get("node")},
            "providers": {
                vendor: {
                    "type": vendor,
                    "baseUrl": urls.get(vendor),
                    "account": demo.provider_address(vendor),
                    "credentials": dict(demo.CREDENTIALS[vendor]),
                    "env": {
                        demo.ENV[vendor][key]: value
                        for key, value in demo.CREDENTIALS[vendor].items()
                    },
                }
                for vendor in demo.VENDORS
            },
            "watched": list(self.watched),
            "sink": demo.SINK,
            "env": self.env(),
        }
