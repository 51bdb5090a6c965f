"""Provider instances from a policy set: Provider documents -> adapters, and their lifetime.

`build_provider(document, clock=...)` turns one Provider document into a
`providers.base.Provider`: the adapter class comes from `providers.registry` by
`spec.type`, and every other spec field becomes a constructor keyword (camelCase key ->
snake_case argument; `baseUrl` -> `base_url`, `network` -> `network`), with secret
references replaced by the `SecretStr` the loader resolved. An unresolved reference is a
`ProvidingError` naming the key and the variable or file, never a value.

`ProviderPool(policy_set, clock=...)` builds one adapter per Provider document on entry
(then lets each read what its vendor publishes about the account, `Provider.start`, at
once; a failure there is logged, never fatal) and closes them all on exit:

    async with ProviderPool(policy_set, clock=clock) as pool:
        quote = await pool["itrx"].quote(request)

Seams (tests and the sandbox): `transports` (name -> httpx transport, e.g. an emulator's
ASGI app), `base_urls` (name -> URL, overriding the document's `baseUrl`) and `retry`.

Neighbours: `policies` (documents, resolved secrets), `providers.registry` and the
adapters; used by the CLI (`energyctl providers`), `engine/act/surveying.py` and the engine's
apply path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel

from engine.core.clock import Clock, SystemClock
from engine.core.errors import EngineError
from policies.models import Provider as ProviderDocument
from policies.models import SecretRef, UnresolvedSecretError
from policies.policyset import PolicySet
from providers import registry
from providers.base import Provider, ProviderError
from providers.http import RetryPolicy

log = logging.getLogger("energyctl.providers")


class ProvidingError(EngineError):
    """A Provider document cannot become an adapter (unresolved secret, unknown type)."""


def adapter_kwargs(document: ProviderDocument) -> dict[str, Any]:
    """Constructor keywords for the document's adapter, secrets resolved (never logged)."""
    spec = document.spec
    kwargs: dict[str, Any] = {}
    for field, info in type(spec).model_fields.items():
        if field == "type":
            continue
        value = getattr(spec, field)
        if value is None:
            continue
        if isinstance(value, SecretRef):
            try:
                value = value.get()
            except UnresolvedSecretError as exc:
                raise ProvidingError(
                    f"provider {document.metadata.name!r}: spec.{info.alias or field}: {exc}"
                ) from None
        elif isinstance(value, BaseModel):
            raise ProvidingError(  # pragma: no cover - no built-in spec nests models
                f"provider {document.metadata.name!r}: spec.{info.alias or field} is not a "
                "constructor argument"
            )
        kwargs[field] = value
    return kwargs


def build_provider(
    document: ProviderDocument,
    *,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None = None,
    base_url: str | None = None,
    retry: RetryPolicy | None = None,
) -> Provider:
    """The adapter for one Provider document. Raises ProvidingError."""
    kwargs = adapter_kwargs(document)
    kwargs["clock"] = clock
    if base_url is not None:
        kwargs["base_url"] = base_url
    if transport is not None:
        kwargs["transport"] = transport
    if retry is not None:
        kwargs["retry"] = retry
    try:
        return registry.create(document.spec.type, document.metadata.name, **kwargs)
    except registry.UnknownProviderType as exc:
        raise ProvidingError(f"provider {document.metadata.name!r}: {exc}") from exc


class ProviderPool(Mapping[str, Provider]):
    """One adapter per Provider document of a policy set, by `metadata.name`.

    Use as an async context manager: adapters are built on entry (all or none: a
    ProvidingError closes those already built) and closed on exit.
    """

    def __init__(
        self,
        policy_set: PolicySet,
        *,
        clock: Clock | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        base_urls: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._policy_set = policy_set
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._transports = dict(transports or {})
        self._base_urls = dict(base_urls or {})
        self._retry = retry
        self._providers: dict[str, Provider] = {}
        unknown = (set(self._transports) | set(self._base_urls)) - set(policy_set.providers)
        if unknown:
            raise ProvidingError(f"overrides for undefined providers: {sorted(unknown)}")

    async def __aenter__(self) -> ProviderPool:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Build every adapter (idempotent)."""
        if self._providers:
            return
        built: dict[str, Provider] = {}
        try:
            for name, document in self._policy_set.providers.items():
                built[name] = build_provider(
                    document,
                    clock=self.clock,
                    transport=self._transports.get(name),
                    base_url=self._base_urls.get(name),
                    retry=self._retry,
                )
        except BaseException:
            for provider in built.values():
                await provider.aclose()
            raise
        self._providers = built
        await asyncio.gather(*(self._start(name, p) for name, p in built.items()))

    async def _start(self, name: str, provider: Provider) -> None:
        """The adapter's `start` (what the vendor publishes about the account); a failure
        is logged and leaves the adapter's declared capabilities in force."""
        try:
            await provider.start()
        except ProviderError as exc:
            log.warning(
                "%s: could not read the vendor's account details at start: %s",
                name,
                exc,
                extra={"event": "provider_start_failed", "provider": name},
            )

    async def aclose(self) -> None:
        providers, self._providers = self._providers, {}
        for provider in providers.values():
            await provider.aclose()

    def __getitem__(self, name: str) -> Provider:
        if not self._providers:
            raise RuntimeError("the pool is not open: use `async with ProviderPool(...)`")
        return self._providers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)

    def document(self, name: str) -> ProviderDocument:
        """The Provider document an adapter was built from."""
        return self._policy_set.provider(name)

    def __repr__(self) -> str:
        return f"ProviderPool({sorted(self._policy_set.providers)}, open={bool(self._providers)})"
