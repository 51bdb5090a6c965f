"""engine/sidecar/ensuring.py: an ensure with `wait` polls the chain on the injected clock."""

from __future__ import annotations

import asyncio

from engine.core.clock import VirtualClock
from engine.core.snapshots import EnergySnapshot
from engine.sidecar.ensuring import wait_for_energy

ADDRESS = "TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw"


async def _turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_an_ensure_wait_runs_out_on_emulated_time() -> None:
    """A 30 s wait with a 10 s poll reads at 0, 10, 20 and 30 s of clock time and ends
    when the clock says so: no wall-clock second passes in this test."""
    clock = VirtualClock()
    start = clock.now()
    reads: list[float] = []
    nudges: list[float] = []

    async def read(address: str) -> EnergySnapshot:
        reads.append(clock.now() - start)
        return EnergySnapshot(ADDRESS, True, 1_000, 1_000, 0, 0, 1, clock.now())

    task = asyncio.create_task(
        wait_for_energy(
            read, ADDRESS, 65_000, 30.0, poll=10.0, clock=clock,
            stopping=lambda: False, nudge=lambda: nudges.append(clock.now() - start),
        )
    )  # fmt: skip
    for _ in range(3):
        await _turns()
        assert not task.done()
        clock.advance(10.0)
    await _turns()
    assert task.done(), "the wait did not end on the clock's time"
    assert task.result() == {"satisfied": False, "available": 1_000, "timed_out": True}
    assert reads == [0.0, 10.0, 20.0, 30.0] and nudges == [0.0, 10.0, 20.0]


async def test_an_ensure_wait_ends_when_the_energy_shows() -> None:
    clock = VirtualClock()
    seen = iter([1_000, 70_000])

    async def read(address: str) -> EnergySnapshot:
        return EnergySnapshot(ADDRESS, True, next(seen), 0, 0, 0, 1, clock.now())

    task = asyncio.create_task(
        wait_for_energy(
            read, ADDRESS, 65_000, 30.0, poll=10.0, clock=clock,
            stopping=lambda: False, nudge=lambda: None,
        )
    )  # fmt: skip
    await _turns()
    clock.advance(10.0)
    await _turns()
    assert task.result() == {"satisfied": True, "available": 70_000, "timed_out": False}
