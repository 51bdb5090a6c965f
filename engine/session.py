"""An engine session: the store, the chain reader and the providers of one policy set.

`Session(policy_set, ...)` opens, as an async context manager, everything a pass needs and
closes it all on exit: the store (`EngineConfig` `store.url`, or the `store_url`
override; a PostgreSQL store gets `store.password`), the `ChainReader` (`node.url` and
its API key, or `node_url`), and a `ProviderPool` of adapters. `session.reconciler` is
the `Reconciler` over them; `make_reconciler` is the one place one is built (the sidecar
hands in its caching reader). The CLI's `plan`, `apply`, `status` and `orders` and the
sidecar all start here.

Neighbours: `engine/reconciling.py`, `engine/act/providing.py`, `engine/store/`,
`engine/observe/chain.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

import httpx
from pydantic import SecretStr

from engine.act.providing import ProviderPool
from engine.act.tracking import SnapshotSource, TrackingSettings
from engine.core.clock import Clock, SystemClock
from engine.observe.chain import ChainReader
from engine.reconciling import Reconciler
from engine.store import Store, open_store
from policies.policyset import PolicySet
from providers.base import Provider

#: bound on one provider call (quote, balance, create, status) in real time: a vendor that
#: never answers delays other addresses' purchases by at most this (docs/chaos.md)
DEFAULT_CALL_TIMEOUT = 30.0
#: in real time, a node whose head block is older than this is not following the chain:
#: its reads fail (never buy blind, never end an order on stale state)
DEFAULT_MAX_HEAD_AGE = 120.0


class _Default:
    """Marker: no call timeout was given."""


_DEFAULT = _Default()


def store_password(policy_set: PolicySet, url: str) -> SecretStr | None:
    """The store settings' password, for a PostgreSQL `url` (SQLite takes none)."""
    ref = policy_set.settings.store.password
    if ref is None or not ref.resolved or not url.lower().startswith(("postgresql:", "postgres:")):
        return None
    return ref.get()


class Session:
    """Store + reader + providers for one policy set; see the module docstring."""

    def __init__(
        self,
        policy_set: PolicySet,
        *,
        store_url: str | None = None,
        node_url: str | None = None,
        clock: Clock | None = None,
        tracking: TrackingSettings | None = None,
        node_transport: httpx.AsyncBaseTransport | None = None,
        provider_transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        applied_by: str = "energyctl",
        call_timeout: float | _Default | None = _DEFAULT,
    ) -> None:
        settings = policy_set.settings
        self.policy_set = policy_set
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.store_url = store_url or settings.store.url
        self.node_url = node_url or settings.node.url
        self._tracking = tracking
        self._node_transport = node_transport
        self._applied_by = applied_by
        self._real_time = isinstance(self.clock, SystemClock)
        if isinstance(call_timeout, _Default):
            # Real time: bound every provider call. In emulated time (a ScaledClock or a
            # VirtualClock) seconds are not wall seconds: callers choose the bound there.
            call_timeout = DEFAULT_CALL_TIMEOUT if self._real_time else None
        #: most seconds (clock time) one provider call may take, None: the HTTP timeouts only
        self.call_timeout: float | None = call_timeout
        self.pool = ProviderPool(policy_set, clock=self.clock, transports=provider_transports)
        self._store: Store | None = None
        self._reader: ChainReader | None = None
        self._reconciler: Reconciler | None = None

    async def __aenter__(self) -> Session:
        try:
            self._store = await open_store(
                self.store_url, self.clock, password=store_password(self.policy_set, self.store_url)
            )
            api_key = self.policy_set.settings.node.api_key
            self._reader = ChainReader(
                self.node_url,
                api_key=api_key.get() if api_key is not None else None,
                clock=self.clock,
                transport=self._node_transport,
                max_head_age=DEFAULT_MAX_HEAD_AGE if self._real_time else None,
            )
            await self.pool.open()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.pool.aclose()
        if self._reader is not None:
            await self._reader.aclose()
            self._reader = None
        if self._store is not None:
            await self._store.close()
            self._store = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the session is not open")
        return self._store

    @property
    def reader(self) -> ChainReader:
        if self._reader is None:
            raise RuntimeError("the session is not open")
        return self._reader

    @property
    def reconciler(self) -> Reconciler:
        """The session's Reconciler over its own store, reader and providers (built once)."""
        if self._reconciler is None:
            self._reconciler = self.make_reconciler()
        return self._reconciler

    def make_reconciler(
        self,
        *,
        reader: SnapshotSource | None = None,
        providers: Mapping[str, Provider] | None = None,
        tracking: TrackingSettings | None = None,
        quote_ttl: float = 0.0,
    ) -> Reconciler:
        """The one place a Reconciler is built, for every command and for the sidecar.

        Every Reconciler of a session bounds provider calls by the session's
        `call_timeout`. The sidecar passes its caching `reader`, its wrapped `providers`,
        its `tracking` settings and a `quote_ttl`; the commands take the session's own.
        """
        return Reconciler(
            self.policy_set,
            store=self.store,
            reader=reader if reader is not None else self.reader,
            providers=providers if providers is not None else self.pool,
            clock=self.clock,
            tracking=tracking if tracking is not None else self._tracking,
            quote_ttl=quote_ttl,
            applied_by=self._applied_by,
            call_timeout=self.call_timeout,
        )
