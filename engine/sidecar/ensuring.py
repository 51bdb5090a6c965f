"""What the sidecar answers to "ensure this address has N energy now", and pass reporting.

`ensure_answer(result, address, energy)` turns the pass that carried an ensure demand
into the JSON answer of `POST /v1/ensure` (the address's plan entry, the order this pass
placed for it, `satisfied`); `wait_for_energy` polls the chain for `wait` seconds until the
address shows the energy. `busy_addresses(result)` lists the addresses with an order in
flight or a purchase tried (the controller has them re-read at the next pass) and
`log_pass` writes the decision and order-state log lines of a pass.

`EnsureDesk` is the object of the controller that takes ensure requests: the demand is
folded into the next pass's, the answer comes from that pass. With shards, an address
this replica does not hold is refused with `NotOwner` naming the holder (`POST
/v1/ensure` answers 409 with it: the caller retries there).

Neighbours: `controller.py` (calls all of these), `service.py` (serves the
answer), `engine/reconciling.py` (`PassResult`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from engine.core.clock import Clock
from engine.core.snapshots import EnergySnapshot
from engine.reconciling import PassResult
from engine.sidecar.sharding import NotOwner
from engine.sidecar.swapping import ControllerError

log = logging.getLogger("energyctl.controller")

Reader = Callable[[str], Awaitable[EnergySnapshot]]


class UnknownAddress(ControllerError):
    """An ensure request for an address no policy watches."""


class EnsureDesk:
    """Ensure requests: each one's demand waits here for the next pass, then its answer.

    The controller passes in what the desk needs of it: `watched(address)` (a policy
    watches it), `owned()` (the addresses this replica holds, None: all), `owner(address)`
    (who holds it, from the store), `read(address)` (a fresh snapshot), `wake(reason)`
    and `stopping()`. The pass takes the demands and waiters with `take()` and answers
    every waiter with its result.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        poll: float,
        watched: Callable[[str], bool],
        owned: Callable[[], frozenset[str] | None],
        owner: Callable[[str], Awaitable[str | None]],
        read: Reader,
        wake: Callable[[str], None],
        stopping: Callable[[], bool],
    ) -> None:
        self.clock = clock
        self.poll = poll  # seconds between reads of the address, with `wait`
        self._watched = watched
        self._owned = owned
        self._owner = owner
        self._read = read
        self._wake = wake
        self._stopping = stopping
        self.demands: dict[str, int] = {}
        self.waiters: list[asyncio.Future[PassResult]] = []

    def take(self) -> tuple[dict[str, int], list[asyncio.Future[PassResult]]]:
        """The demands and waiters gathered so far, for the pass that starts now."""
        demands, self.demands = self.demands, {}
        waiters, self.waiters = self.waiters, []
        return demands, waiters

    def fail_all(self, error: Exception) -> None:
        """Answer every waiting request with `error` (the sidecar is stopping)."""
        _, waiters = self.take()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    async def ensure(self, address: str, energy: int, wait: float = 0.0) -> dict[str, Any]:
        """Buy now if `address` needs it for `energy`; with `wait`, return once the chain
        shows that much available energy or `wait` seconds have passed."""
        if not self._watched(address):
            raise UnknownAddress(f"{address} is not watched by any policy")
        owned = self._owned()
        if owned is not None and address not in owned:
            raise NotOwner(address, await self._owner(address))
        if self._stopping():
            raise ControllerError("the sidecar is stopping")
        waiter: asyncio.Future[PassResult] = asyncio.get_running_loop().create_future()
        self.demands[address] = max(self.demands.get(address, 0), energy)
        self.waiters.append(waiter)
        self._wake("ensure")
        result = await waiter
        answer = ensure_answer(result, address, energy)
        if wait > 0 and not answer["satisfied"]:
            answer.update(
                await wait_for_energy(
                    self._read,
                    address,
                    energy,
                    wait,
                    poll=self.poll,
                    clock=self.clock,
                    stopping=self._stopping,
                    nudge=lambda: self._wake("ensure-wait"),
                )
            )
        return answer


def busy_addresses(result: PassResult) -> set[str]:
    """Addresses with an order placed, tracked, pending or blocked in this pass, and every
    address a purchase was tried for: one the store refused (another process holds its
    open order) must not be planned again on the reading that made this pass buy."""
    busy = {o.address for o in result.outcomes}
    busy |= {t.address for t in result.tracked}
    busy |= {
        e.address for e in result.plan.entries if str(e.condition) in ("TopUpPending", "Blocked")
    }
    return busy


def ensure_answer(result: PassResult, address: str, energy: int) -> dict[str, Any]:
    """The JSON answer for one ensure request, from the pass that carried its demand."""
    entry = next((e for e in result.plan.entries if e.address == address), None)
    outcome = next((o for o in result.outcomes if o.address == address), None)
    available = entry.available if entry is not None else None
    return {
        "address": address,
        "energy": energy,
        "available": available,
        "satisfied": available is not None and available >= energy,
        "condition": str(entry.condition) if entry else None,
        "reason": str(entry.reason) if entry else None,
        "detail": entry.detail if entry else None,
        "order": outcome.to_json() if outcome is not None else None,
        "timed_out": False,
    }


async def wait_for_energy(
    read: Reader,
    address: str,
    energy: int,
    wait: float,
    *,
    poll: float,
    clock: Clock,
    stopping: Callable[[], bool],
    nudge: Callable[[], None],
) -> dict[str, Any]:
    """Read `address` every `poll` seconds until it has `energy` available, `wait`
    seconds pass, or the sidecar stops; `nudge()` after each miss (wakes tracking).
    Seconds of `clock` time, like the passes' and tracking's."""
    deadline = clock.now() + wait
    available: int | None = None
    while not stopping():
        try:
            available = (await read(address)).available
        except Exception as exc:  # a failed read: try again until the deadline
            log.debug("ensure read failed", extra={"error": str(exc)})
        if available is not None and available >= energy:
            return {"satisfied": True, "available": available, "timed_out": False}
        if clock.now() >= deadline:
            break
        nudge()
        await clock.sleep(min(poll, max(0.0, deadline - clock.now())))
    return {"satisfied": False, "available": available, "timed_out": True}


def log_pass(result: PassResult, elapsed: float, reasons: list[str]) -> None:
    """One `decision` line per purchase attempt, one `order` line per order moved."""
    for outcome in result.outcomes:
        log.info("decision", extra={"event": "decision", "data": outcome.to_json()})
    for tracked in result.tracked:
        if tracked.moved or tracked.alert:
            log.info("order state", extra={"event": "order", "data": tracked.to_json()})
    log.debug(
        "pass",
        extra={
            "event": "pass",
            "seconds": round(elapsed, 4),
            "actions": len(result.plan.actions),
            "woken_by": reasons,
        },
    )


__all__ = [
    "EnsureDesk",
    "UnknownAddress",
    "busy_addresses",
    "ensure_answer",
    "log_pass",
    "wait_for_energy",
]
