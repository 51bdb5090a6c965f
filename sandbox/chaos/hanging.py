"""One pass with a provider that never answers: what it costs the other addresses.

`hang_pass(directory, ops=("create",), vendor="itrx")` builds the chaos world (ten
addresses in eight policies, each with another vendor first; `running.POLICIES`), drains
every address, makes `vendor` hold every answer to `ops` for an hour (it never answers
within the pass), and runs one engine pass driven on the clock (`injecting.drive`) with
`call_timeout` `running.CALL_TIMEOUT`. `HangResult` says, per address, which vendor is
first in its policy, where its order went, in which phase the pass left it, and how many
emulated seconds after the pass started its intent was written and the vendor accepted
it; and how long the whole pass took.

Neighbours: `running.py` (the world and engine), `bench/hang.py`, `tests/chaos/test_hang.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.store import OrderFilter
from sandbox.chaos import running
from sandbox.chaos.checking import vendor_orders
from sandbox.chaos.injecting import drive
from sandbox.chaos.running import POLICIES, ChaosRun
from sandbox.chaos.scenario import Scenario


@dataclass(frozen=True)
class AddressOutcome:
    address: str
    first: str  # the first vendor of its policy
    provider: str | None  # where its (last) order went; None: no order
    phase: str | None
    intent_s: float | None  # emulated seconds from the pass's start to its intent
    accepted_s: float | None  # ... to the vendor's acceptance


@dataclass
class HangResult:
    vendor: str
    ops: tuple[str, ...]
    timeout: float | None
    pass_s: float = 0.0
    addresses: list[AddressOutcome] = field(default_factory=list)


def _first_vendors() -> list[str]:
    out: list[str] = []
    for row in POLICIES:
        first = row[6].strip("[]").split(",")[0].strip()
        out += [first] * row[3]
    return out


async def hang_pass(
    directory: Path, *, ops: tuple[str, ...] = ("create",), vendor: str = "itrx"
) -> HangResult:
    chaos = ChaosRun(Scenario.fixed(0, [], {}), directory)
    world, clock = chaos.world, chaos.clock
    rec = await chaos.engine.start()
    store = chaos.engine.store
    assert store is not None
    result = HangResult(vendor, ops, running.CALL_TIMEOUT)
    try:
        world.drain(world.watched)
        world.advance(running.STEP)
        for op in ops:
            world.emulators[vendor].faults.hang_next(50, seconds=3600.0, on=op)
        start = clock.now()
        await drive(clock, rec.run_pass(apply=True), lambda: store.in_flight > 0)
        result.pass_s = clock.now() - start
        rows = await store.inner.orders(OrderFilter(limit=100, newest_first=False))
        accepted = {(v, d.receiver): d.accepted_at for v, d in vendor_orders(world)}
        for address, first in zip(world.watched, _first_vendors(), strict=True):
            mine = [r for r in rows if r.address == address]
            last = mine[-1] if mine else None
            at = accepted.get((last.provider, address)) if last else None
            result.addresses.append(
                AddressOutcome(
                    address,
                    first,
                    last.provider if last else None,
                    str(last.phase) if last else None,
                    last.created_at - start if last else None,
                    at - start if at is not None else None,
                )
            )
    finally:
        for emulator in world.emulators.values():
            emulator.faults.release_hangs()
        await chaos.engine.stop()
    return result


__all__ = ["AddressOutcome", "HangResult", "hang_pass"]
