"""Bounded waiting: a call given up after a number of seconds on the injected clock.

`bounded(clock, seconds, call)` is how the engine keeps a provider that never answers
from stalling a pass: the caller decides what a call without an answer means (a create:
ambiguous; a read: temporary).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from engine.core.clock import Clock
from engine.core.errors import EngineError

_T = TypeVar("_T")


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a given-up call's late exception as seen (it is not the caller's any more)."""
    if not task.cancelled():
        task.exception()


class CallTimeout(EngineError):
    """A provider call outlived its `call_timeout` on the engine's clock."""


async def bounded(clock: Clock, seconds: float | None, call: Awaitable[_T]) -> _T:
    """Await `call`, giving up after `seconds` of `clock` time (None: no bound).

    The call is cancelled on expiry and `CallTimeout` raised: the caller decides what a
    call without an answer means (a create: ambiguous; a read: temporary).
    """
    if seconds is None:
        return await call
    task = asyncio.ensure_future(call)
    task.add_done_callback(_retrieve)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        done, _ = await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()  # on expiry, or when the caller itself is cancelled
    if task not in done:
        raise CallTimeout(f"no answer within {seconds:g}s")
    return task.result()
