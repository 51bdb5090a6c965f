"""Time, injected: the system clock and a virtual clock for simulation and tests.

Every component that needs "now" takes a `Clock`, never the system time. `Clock` and
`SystemClock` are the providers' (`providers/http.py`): one protocol for the whole
program, defined in the lower layer and handed on here. Times are
float seconds since the Unix epoch (UTC); money and energy never pass through here.
Neighbours: used by `engine/*` and by `sandbox/` (the emulated node's block clock).
"""

from __future__ import annotations

import asyncio
import time

from providers.http import Clock, SystemClock

__all__ = ["Clock", "ScaledClock", "SystemClock", "VirtualClock"]


class ScaledClock:
    """Real time running `speed` times faster, starting at `start` (epoch seconds).

    Used by the sandbox's `--speed N`: one real second is N emulated seconds.
    """

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._origin_real = time.monotonic()
        self._origin = time.time() if start is None else start
        self.speed = speed

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._origin_real) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class VirtualClock:
    """Time that moves only when told to (`advance`), for tests and simulation.

    `sleep` waits until another task advances the clock far enough, so code written
    against a Clock runs unchanged in emulated time.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError(f"time cannot go backwards (advance by {seconds})")
        self._now += seconds
        still: list[tuple[float, asyncio.Future[None]]] = []
        for deadline, fut in self._waiters:
            if deadline <= self._now:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((deadline, fut))
        self._waiters = still

    def set(self, when: float) -> None:
        """Jump to an absolute time (never backwards)."""
        self.advance(when - self._now)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._now + seconds, fut))
        await fut
