"""Vendor type name -> adapter class: the built-in four plus plug-ins.

A Provider document's `spec.type` names an adapter. The built-in adapters are known here;
other packages add theirs through the `energyctl.providers` entry-point group, each entry
naming a `Provider` subclass (`mine = "mypkg.provider:MyProvider"`). Plug-ins are loaded
only when asked for, and a built-in name cannot be taken over by a plug-in.

Neighbours: the vendor modules; used by `policies` validation (through `engine/`) and the
engine when it builds provider instances from Provider documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from providers.base import Provider
from providers.eopen import EopenProvider
from providers.itrx import ItrxProvider
from providers.mefree import MefreeProvider
from providers.tronsave import TronsaveProvider

ENTRY_POINT_GROUP = "energyctl.providers"

BUILTIN: Mapping[str, type[Provider]] = {
    cls.type_name: cls for cls in (MefreeProvider, ItrxProvider, EopenProvider, TronsaveProvider)
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


def create(type_name: str, name: str, **kwargs: Any) -> Provider:
    """An instance of adapter `type_name` named `name`, with adapter-specific arguments."""
    return get(type_name)(name, **kwargs)
