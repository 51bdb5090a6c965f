"""Vendor type name -> adapter class: the built-in vendors plus plug-ins.

A Provider document's `spec.type` names an adapter. The built-in adapters are listed here
(`BUILTIN`: adding a vendor to the package is one line); other packages add theirs
through the `energyctl.providers` entry-point group, each entry naming a `Provider`
subclass (`mine = "mypkg.provider:MyProvider"`). A built-in name cannot be taken over by a
plug-in.

Each adapter declares its settings model (`Provider.settings`: what a Provider document's
`spec` holds for it). Importing this module registers the built-ins' models with the policy
layer (`policies.vendors`) and installs a finder there that loads the plug-ins the first
time documents are validated or the schema is written, so `validate` and `schema` cover
every installed vendor. A plug-in that fails to load is skipped there (its documents are
then refused as of an unknown type) and named by `get`.

Neighbours: the vendor modules, `policies/vendors.py`; used by the engine when it
validates policy sets and builds provider instances from Provider documents.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from policies import vendors
from providers.base import Provider
from providers.catfee import CatFeeProvider
from providers.eopen import EopenProvider
from providers.feee import FeeeProvider
from providers.itrx import ItrxProvider
from providers.mefree import MefreeProvider
from providers.netts import NettsProvider
from providers.tronsave import TronsaveProvider
from providers.tronzap import TronZapProvider

ENTRY_POINT_GROUP = "energyctl.providers"

BUILTIN: Mapping[str, type[Provider]] = {
    cls.type_name: cls
    for cls in (
        MefreeProvider,
        ItrxProvider,
        EopenProvider,
        TronsaveProvider,
        CatFeeProvider,
        FeeeProvider,
        TronZapProvider,
        NettsProvider,
    )
}


class UnknownProviderType(LookupError):
    """No adapter is registered under that type name (or a plug-in failed to load)."""


def _plugins() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in BUILTIN:
            found.setdefault(ep.name, ep)
    return found


def type_names() -> list[str]:
    """Every known type name, built-in and plug-in, sorted."""
    return sorted({*BUILTIN, *_plugins()})


def get(type_name: str) -> type[Provider]:
    """The adapter class for `type_name`. Raises UnknownProviderType."""
    if type_name in BUILTIN:
        return BUILTIN[type_name]
    ep = _plugins().get(type_name)
    if ep is None:
        known = ", ".join(type_names())
        raise UnknownProviderType(f"unknown provider type {type_name!r} (known: {known})")
    try:
        cls = ep.load()
    except Exception as exc:
        raise UnknownProviderType(
            f"provider type {type_name!r} ({ep.value}) failed to load: {type(exc).__name__}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise UnknownProviderType(
            f"provider type {type_name!r} ({ep.value}) is not a Provider subclass"
        )
    return cls


def _plugin_settings() -> Iterator[type[vendors.ProviderSettings]]:
    """The settings models of the installed plug-ins that load (for `policies.vendors`)."""
    for name in _plugins():
        try:
            settings = get(name).settings
            if vendors.type_name_of(settings) == name:
                yield settings
        except (UnknownProviderType, AttributeError, vendors.VendorError):
            continue


def load() -> None:
    """Nothing more than importing this module does: the built-in vendors' settings are
    registered with `policies.vendors`, and the plug-ins' are found when first needed.
    Callers that only validate documents call it to say why they import the module."""


def find(type_name: str) -> type[Provider] | None:
    """The adapter class for `type_name`, or None when there is none (or it fails to load)."""
    try:
        return get(type_name)
    except UnknownProviderType:
        return None


def create(type_name: str, name: str, **kwargs: Any) -> Provider:
    """An instance of adapter `type_name` named `name`, with adapter-specific arguments."""
    return get(type_name)(name, **kwargs)


for _adapter in BUILTIN.values():
    vendors.register(_adapter.settings)
vendors.add_finder(_plugin_settings)
