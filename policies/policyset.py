"""A validated set of policy documents, and the lookups the engine needs.

`PolicySet` is what `policies.loading.load` returns when every document is valid: providers
and policies by name, the policy that watches an address, the engine settings (defaults
when no `EngineConfig` document is given), a content revision, and `locate` to point a
diagnostic at the file, line and column of any field (for checks the engine adds).

Neighbours: built by `policies/loading.py` after `policies/checking.py` found no errors;
read by `engine/` (planning, the controller, the CLI).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from policies.addresses import AddressFile
from policies.deposits import DepositPolicy
from policies.diagnostics import Location
from policies.models import Document, EnergyPolicy, EngineConfig, EngineSpec, Provider, SecretRef
from policies.reading import RawDocument

AnyDocument = Document | DepositPolicy


@dataclass(frozen=True)
class Sourced:
    """A validated document and the YAML it came from."""

    document: AnyDocument
    raw: RawDocument

    @property
    def kind(self) -> str:
        return self.document.kind

    @property
    def name(self) -> str:
        return self.document.metadata.name

    def locate(self, *path: str | int, key: bool = False) -> Location:
        return self.raw.locate(path, key=key)


def secret_refs(document: AnyDocument) -> Iterator[tuple[tuple[str, ...], SecretRef]]:
    """Every secret reference in a document, with its path (YAML key names)."""
    yield from _refs_in(document.spec, ("spec",))


def _refs_in(model: object, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], SecretRef]]:
    for name, info in getattr(type(model), "model_fields", {}).items():
        value = getattr(model, name)
        alias = (info.alias or name,)
        if isinstance(value, SecretRef):
            yield (*path, *alias), value
        elif hasattr(type(value), "model_fields"):
            yield from _refs_in(value, (*path, *alias))


class PolicySet:
    """Providers, energy policies and engine settings that passed every check."""

    def __init__(
        self, documents: Sequence[Sourced], address_files: Mapping[str, AddressFile] | None = None
    ) -> None:
        self._documents = tuple(documents)
        providers: dict[str, Provider] = {}
        policies: dict[str, EnergyPolicy] = {}
        deposits: dict[str, DepositPolicy] = {}
        by_address: dict[str, EnergyPolicy] = {}
        self._engine: EngineConfig | None = None
        self._sources: dict[tuple[str, str], Sourced] = {}
        for item in self._documents:
            doc = item.document
            self._sources[(item.kind, item.name)] = item
            if isinstance(doc, Provider):
                providers[item.name] = doc
            elif isinstance(doc, EnergyPolicy):
                policies[item.name] = doc
                for address in doc.spec.addresses:
                    by_address.setdefault(address, doc)
            elif isinstance(doc, DepositPolicy):
                deposits[item.name] = doc
            else:
                self._engine = doc
        self._providers = MappingProxyType(providers)
        self._policies = MappingProxyType(policies)
        self._by_address = MappingProxyType(by_address)
        self._deposits = MappingProxyType(deposits)
        self._address_files = MappingProxyType(dict(address_files or {}))

    @property
    def providers(self) -> Mapping[str, Provider]:
        """Provider documents by `metadata.name`."""
        return self._providers

    @property
    def policies(self) -> Mapping[str, EnergyPolicy]:
        """EnergyPolicy documents by `metadata.name`."""
        return self._policies

    @property
    def deposit_policies(self) -> Mapping[str, DepositPolicy]:
        """DepositPolicy documents by `metadata.name`."""
        return self._deposits

    @property
    def address_files(self) -> Mapping[str, AddressFile]:
        """The address files of deposit policies as read at load time, by policy name."""
        return self._address_files

    @property
    def engine(self) -> EngineConfig | None:
        """The EngineConfig document, if one was given."""
        return self._engine

    @property
    def settings(self) -> EngineSpec:
        """Engine settings: the EngineConfig document's spec, or all defaults."""
        return self._engine.spec if self._engine is not None else EngineSpec()

    @property
    def documents(self) -> tuple[Sourced, ...]:
        return self._documents

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every watched address, in document order."""
        return tuple(self._by_address)

    def provider(self, name: str) -> Provider:
        """The Provider document named `name` (KeyError if there is none)."""
        return self._providers[name]

    def policy(self, name: str) -> EnergyPolicy:
        """The EnergyPolicy named `name` (KeyError if there is none)."""
        return self._policies[name]

    def policy_for(self, address: str) -> EnergyPolicy | None:
        """The policy that watches `address`, or None."""
        return self._by_address.get(address)

    def providers_for(self, policy: EnergyPolicy | DepositPolicy) -> tuple[Provider, ...]:
        """The policy's providers, in its order of preference."""
        return tuple(self._providers[name] for name in policy.spec.providers)

    def source(self, document: AnyDocument) -> Sourced:
        return self._sources[(document.kind, document.metadata.name)]

    def locate(self, document: AnyDocument, *path: str | int, key: bool = False) -> Location:
        """Where a field of a document is written, e.g. `locate(policy, "spec", "topUp")`."""
        return self.source(document).locate(*path, key=key)

    @functools.cached_property
    def revision(self) -> str:
        """A content hash of the set (sha256 hex), independent of file layout and order
        (computed once: a set is not changed after it is built; each pass records it)."""
        canonical = sorted(
            json.dumps(item.document.model_dump(mode="json"), sort_keys=True)
            for item in self._documents
        )
        return hashlib.sha256("\n".join(canonical).encode()).hexdigest()

    def __repr__(self) -> str:
        return (
            f"PolicySet(providers={sorted(self._providers)}, "
            f"policies={sorted(self._policies)}, engine={self._engine is not None})"
        )
