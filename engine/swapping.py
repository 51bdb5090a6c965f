"""Putting a new policy set in force in a running sidecar, from its files or from HTTP.

`PolicySwaps` is the part of `engine/controller.py`'s `Controller` that owns policy
changes: `reload()` polls the policy files' fingerprint (`engine/reloading.py`) and puts
a valid change in force; an invalid one is logged once, kept in `reload_errors` (shown by
`/v1/status`) and ignored, the last good set stays in force. `replace(loaded, origin)`
swaps the session between passes and tracking rounds (it takes both locks), for the files
and for `POST /v1/policies` (`origin` "api": such a set stays until the files change).

Neighbours: `engine/controller.py` (the class this is part of), `engine/reloading.py`.
"""

from __future__ import annotations

import asyncio
import logging

from engine.clock import Clock
from engine.reloading import Loaded, PolicySource

log = logging.getLogger("energyctl.controller")


class ControllerError(Exception):
    """The controller cannot start (no valid policy set, store or node unreachable)."""


class PolicySwaps:
    """Policy changes of a `Controller` (which provides the attributes declared here)."""

    source: PolicySource
    clock: Clock
    fingerprint: str
    reload_errors: tuple[str, ...]
    stopping: bool
    _lock: asyncio.Lock
    _track_lock: asyncio.Lock
    _reload_every: float  # seconds (clock time) between polls of the files

    async def _install(self, loaded: Loaded, origin: str) -> None:
        raise NotImplementedError

    def wake(self, reason: str) -> None:
        raise NotImplementedError

    async def replace(self, loaded: Loaded, origin: str) -> None:
        """Put a validated set in force between passes and tracking rounds."""
        async with self._track_lock, self._lock:
            if not self.stopping:
                await self._install(loaded, origin)
        self.wake("policies")

    async def reload(self) -> bool:
        """Load the files if they changed; True when a new set was put in force."""
        if await asyncio.to_thread(self.source.fingerprint) == self.fingerprint:
            return False
        loaded = await asyncio.to_thread(self.source.load)
        if loaded.policy_set is None:
            if loaded.errors != self.reload_errors:
                log.error(
                    "policy change rejected; the last good set stays in force",
                    extra={"event": "policies", "errors": list(loaded.errors)},
                )
            self.reload_errors, self.fingerprint = loaded.errors, loaded.fingerprint
            return False
        try:
            await self.replace(loaded, "files")
        except ControllerError as exc:
            self.reload_errors = (str(exc),)
            log.error("policy change not applied", extra={"event": "policies", "error": str(exc)})
            return False
        return True

    async def _watch_files(self) -> None:
        while not self.stopping:
            await self.clock.sleep(self._reload_every)
            try:
                await self.reload()
            except Exception:
                log.exception("policy reload failed", extra={"event": "policies"})


__all__ = ["ControllerError", "PolicySwaps"]
