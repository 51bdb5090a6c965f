"""Putting a new policy set in force in a running sidecar, from its files or from HTTP.

`PolicySwapper` is the object `controller.py`'s `Controller` holds for policy
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

Neighbours: `controller.py` (holds one and passes in what it needs), `reloading.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

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


class PolicySwapper:
    """Policy changes of a running sidecar: what is in force, from where, and why not.

    Holds the policy source and the bookkeeping of changes (`policy_source`,
    `fingerprint`, `reload_errors`, `restart_required`); the controller passes in what a
    swap needs of it: `install(loaded)` opens the new set's session, `running()` is the
    set in force, `locks` are the pass and tracking locks a swap takes, `wake` starts a
    pass, `stopping()` says the process is stopping.
    """

    def __init__(
        self,
        source: PolicySource,
        clock: Clock,
        *,
        install: Callable[[Loaded], Awaitable[None]],
        running: Callable[[], PolicySet | None],
        locks: Sequence[asyncio.Lock],
        wake: Callable[[str], None],
        stopping: Callable[[], bool],
        reload_every: float,
        listen_override: str | None = None,
        allowed_secrets: frozenset[Source] = frozenset(),
    ) -> None:
        self.source = source
        self.clock = clock
        self._install = install
        self._running = running
        self._locks = tuple(locks)
        self._wake = wake
        self._stopping = stopping
        self._reload_every = reload_every  # seconds (clock time) between polls of the files
        #: `--listen` given at start-up: `http.listen` in the files is not the listener then
        self.listen_override = listen_override
        #: secrets a pushed set may use anywhere (`--allow-secret`, `admitting.py`)
        self.allowed_secrets = allowed_secrets
        #: why the last refused change needs a restart (empty once a set is put in force)
        self.restart_required: tuple[str, ...] = ()
        self.policy_source = "files"  # or "api"
        self.fingerprint = ""
        self.reload_errors: tuple[str, ...] = ()
        self._files_set: PolicySet | None = None  # the files' last set, while the API's runs

    def trusted_set(self) -> PolicySet | None:
        """The set last read from the policy files (the operator's; pushes are held to it)."""
        return self._running() if self.policy_source == "files" else self._files_set

    def load_pushed(self, files: Mapping[str, str]) -> Loaded:
        """Validate a set sent over HTTP under the push rules (`admitting.py`): its
        secrets are checked before any is read; a set that would lock the operator out is
        refused. The errors say why; nothing is put in force here."""
        rules = PushRules(self.trusted_set(), self.allowed_secrets)
        loaded = self.source.load_texts(files, secret_gate=rules.gate)
        if loaded.policy_set is None:
            return loaded
        problems = set_problems(loaded.policy_set, self._running())
        if problems:
            return Loaded(None, tuple(problems), loaded.fingerprint)
        return loaded

    async def put_in_force(self, loaded: Loaded, origin: str) -> None:
        """Install `loaded` (no lock taken: at start-up, or inside `replace`)."""
        assert loaded.policy_set is not None
        await self._install(loaded)
        if origin == "files":  # a set sent over HTTP stays until the files change
            self.fingerprint = loaded.fingerprint
        self.policy_source, self.reload_errors = origin, ()
        log.info(
            "policy set in force",
            extra={"event": "policies", "revision": loaded.policy_set.revision, "from": origin},
        )

    async def replace(self, loaded: Loaded, origin: str) -> None:
        """Put a validated set in force between passes and tracking rounds."""
        async with contextlib.AsyncExitStack() as held:
            for lock in self._locks:
                await held.enter_async_context(lock)
            if not self._stopping():
                self._check_fixed(loaded)
                if self.policy_source == "files":  # pushes stay held to the files' secrets
                    self._files_set = self._running()
                await self.put_in_force(loaded, origin)
                self.restart_required = ()
        self._wake("policies")

    def _check_fixed(self, loaded: Loaded) -> None:
        """`RestartRequired` if the set changes a setting fixed for the process's life."""
        running = self._running()
        if running is None or loaded.policy_set is None:
            return
        reasons = fixed_changes(running, loaded.policy_set, listen_override=self.listen_override)
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

    async def watch_files(self) -> None:
        while not self._stopping():
            await self.clock.sleep(self._reload_every)
            try:
                await self.reload()
            except Exception:
                log.exception("policy reload failed", extra={"event": "policies"})


__all__ = ["ControllerError", "PolicySwapper", "RestartRequired", "fixed_changes"]
