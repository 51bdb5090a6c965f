"""Putting a new policy set in force in a running sidecar, from its files or from HTTP.

`PolicySwaps` is the part of `controller.py`'s `Controller` that owns policy
changes: `reload()` polls the policy files' fingerprint (`reloading.py`) and puts
a valid change in force; an invalid one is logged once, kept in `reload_errors` (shown by
`/v1/status`) and ignored, the last good set stays in force. `replace(loaded, origin)`
swaps the session between passes and tracking rounds (it takes both locks), for the files
and for `POST /v1/policies` (`origin` "api": such a set stays until the files change).

**Settings fixed for the life of the process.** The settings that say which store, which
node and which HTTP listener the process uses (`store.url`, `node.url`, the `node.apiKey`
reference, `http.listen` unless `--listen` overrides it), and `observation.mode` (the
block follower starts with the process), never change while it runs:
swapping the store would forget the open orders and the day's spend (every order in
flight bought again), and the listener is bound once. A new set - from the files or from
HTTP - that changes one is refused whole with `RestartRequired`, naming each setting;
the running set stays in force, the reasons are logged once and shown in `/readyz`
(`restartRequired`), `/v1/status` (`reloadErrors`) and the answer of `POST
/v1/policies` (409), until the set agrees again or the process restarts. A set without
an `EngineConfig` takes every default (`./energyctl.db`, the public node), so it is
refused unless the running set uses those defaults too (`fixed_changes`).

Neighbours: `controller.py` (the class this is part of), `reloading.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from engine.core.clock import Clock
from engine.core.errors import EngineError
from engine.observe.chain import public_url
from engine.sidecar.admitting import PushRules, Source, set_problems
from engine.sidecar.reloading import Loaded, PolicySource
from policies.base import SecretRef
from policies.policyset import PolicySet

log = logging.getLogger("energyctl.controller")


class ControllerError(EngineError):
    """The controller cannot start (no valid policy set, store or node unreachable)."""


class RestartRequired(ControllerError):
    """A new set changes settings fixed for the life of the process (`reasons`)."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__(
            "; ".join(self.reasons) + ". The store, the node, the HTTP listener and the "
            "observation mode are fixed while energyctl runs: restart it to change them; "
            "the running set stays in force"
        )


def _ref(ref: SecretRef | None) -> str:
    return ref.describe() if ref is not None else "none"


def fixed_changes(
    running: PolicySet, new: PolicySet, *, listen_override: str | None = None
) -> list[str]:
    """What `new` changes among the settings fixed for the process's life (empty: none).

    `listen_override`: the `--listen` the process was started with (then `http.listen`
    is not the process's listener and may change). Never names a secret value.
    """
    old, now = running.settings, new.settings
    pairs = [
        ("store.url", old.store.url, now.store.url),
        ("node.url", public_url(old.node.url), public_url(now.node.url)),
        ("node.apiKey", _ref(old.node.api_key), _ref(now.node.api_key)),
        # the block follower is started with the process (`Controller.run`)
        ("observation.mode", old.observation.mode, now.observation.mode),
    ]
    if old.node.url != now.node.url and pairs[1][1] == pairs[1][2]:
        pairs[1] = ("node.url", "the running URL", "another URL (same host and path)")
    if listen_override is None:
        pairs.append(("http.listen", old.http.listen, now.http.listen))
    changes = [
        f"{name}: the new set says {want!r}, the running process uses {have!r}"
        for name, have, want in pairs
        if have != want
    ]
    if changes and new.engine is None and running.engine is not None:
        changes.insert(
            0, "the new set has no EngineConfig, so every engine setting takes its default"
        )
    return changes


class PolicySwaps:
    """Policy changes of a `Controller` (which provides the attributes declared here)."""

    source: PolicySource
    clock: Clock
    policy_set: PolicySet | None
    #: `--listen` given at start-up: `http.listen` in the files is not the listener then
    listen_override: str | None = None
    #: why the last refused change needs a restart (empty once a set is put in force)
    restart_required: tuple[str, ...] = ()
    policy_source: str  # "files" or "api"
    #: secrets a pushed set may use anywhere (`--allow-secret`, `admitting.py`)
    allowed_secrets: frozenset[Source] = frozenset()
    _files_set: PolicySet | None = None  # the files' last set, while one from the API runs
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

    def trusted_set(self) -> PolicySet | None:
        """The set last read from the policy files (the operator's; pushes are held to it)."""
        return self.policy_set if self.policy_source == "files" else self._files_set

    def load_pushed(self, files: Mapping[str, str]) -> Loaded:
        """Validate a set sent over HTTP under the push rules (`admitting.py`): its
        secrets are checked before any is read; a set that would lock the operator out is
        refused. The errors say why; nothing is put in force here."""
        rules = PushRules(self.trusted_set(), self.allowed_secrets)
        loaded = self.source.load_texts(files, secret_gate=rules.gate)
        if loaded.policy_set is None:
            return loaded
        problems = set_problems(loaded.policy_set, self.policy_set)
        if problems:
            return Loaded(None, tuple(problems), loaded.fingerprint)
        return loaded

    async def replace(self, loaded: Loaded, origin: str) -> None:
        """Put a validated set in force between passes and tracking rounds."""
        async with self._track_lock, self._lock:
            if not self.stopping:
                self._check_fixed(loaded)
                if self.policy_source == "files":  # pushes stay held to the files' secrets
                    self._files_set = self.policy_set
                await self._install(loaded, origin)
                self.restart_required = ()
        self.wake("policies")

    def _check_fixed(self, loaded: Loaded) -> None:
        """`RestartRequired` if the set changes a setting fixed for the process's life."""
        if self.policy_set is None or loaded.policy_set is None:
            return
        reasons = fixed_changes(
            self.policy_set, loaded.policy_set, listen_override=self.listen_override
        )
        if reasons:
            self.restart_required = tuple(reasons)
            raise RestartRequired(reasons)

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
        except RestartRequired as exc:  # kept until the files agree again: logged once
            if (str(exc),) != self.reload_errors:
                log.error(
                    "policy change refused until a restart",
                    extra={"event": "policies", "error": str(exc)},
                )
            self.reload_errors, self.fingerprint = (str(exc),), loaded.fingerprint
            return False
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


__all__ = ["ControllerError", "PolicySwaps", "RestartRequired", "fixed_changes"]
