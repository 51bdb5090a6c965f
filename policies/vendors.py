"""The vendors the policy language knows: a registry of Provider settings models.

A `Provider` document's `spec` is what one vendor adapter needs: its `type`, an optional
`baseUrl`, an `apiKey`, and whatever else that vendor takes (a signing secret, a network).
The policy layer does not know the vendors: each adapter declares its settings model (a
subclass of `ProviderSettings` with `type: Literal["name"]`) and `providers/registry.py`
registers it here, for the four built-in adapters on import and for plug-ins of the
`energyctl.providers` entry-point group through a finder it installs (`add_finder`), asked
the first time the models are needed. This package imports no other energyctl package, so
it cannot look for adapters itself; a program that uses only `policies` registers its
vendors with `register`.

Why a registry of models and not a spec kept as a mapping validated later: the `Provider`
model is rebuilt from the registered models (`provider_model`, cached per registry state)
with `spec` a union discriminated on `type`, the same shape as a closed union written out
by hand. So validation still happens in one `model_validate` of the whole document, every
error keeps its path (`spec.apiSecret`) and with it its `file:line:column`, an unknown type
is listed against every registered one (plug-ins included), and `energyctl schema` carries
each vendor's fields.

Neighbours: `policies/models.py` (the `Provider` document and its base `spec` type),
`policies/loading.py` and `policies/schema.py` (which ask `provider_model`);
`providers/registry.py` fills the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import get_args

from pydantic import Field, field_validator

from policies.base import Model, SecretRef, check_http_url

__all__ = [
    "ProviderSettings",
    "VendorError",
    "add_finder",
    "register",
    "settings_for",
    "settings_models",
    "type_name_of",
    "unregister",
]


class VendorError(ValueError):
    """A settings model cannot be registered (no `type` literal, or the name is taken)."""


class ProviderSettings(Model):
    """What every vendor's `spec` holds. An adapter's settings model subclasses it and
    adds `type: Literal["its-name"]` and its own fields."""

    type: str = Field(description="Vendor type.")
    base_url: str | None = Field(
        default=None,
        description="Override of the vendor's API base URL (http or https), e.g. an emulator "
        "on loopback. Default: the vendor's public endpoint.",
    )
    api_key: SecretRef = Field(description="The vendor API key, as a secret reference.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url("baseUrl", value)


Finder = Callable[[], Iterable[type[ProviderSettings]]]
"""Yields settings models found elsewhere (installed plug-ins); asked lazily, errors kept out."""

_models: dict[str, type[ProviderSettings]] = {}
_finders: list[Finder] = []
_found = False


def type_name_of(model: type[ProviderSettings]) -> str:
    """The one `type` literal of a settings model. Raises VendorError."""
    info = model.model_fields.get("type")
    tags = get_args(info.annotation) if info is not None else ()
    if len(tags) != 1 or not isinstance(tags[0], str):
        raise VendorError(
            f"{model.__name__}: a vendor's settings model declares type: Literal['name'] "
            "with exactly one name"
        )
    return tags[0]


def register(model: type[ProviderSettings]) -> str:
    """Make `model` the settings of the vendor its `type` names; returns that name.

    Registering the same model again is a no-op; another model under a taken name is a
    VendorError (a plug-in cannot replace a built-in vendor)."""
    if not (isinstance(model, type) and issubclass(model, ProviderSettings)):
        raise VendorError(f"{model!r} is not a ProviderSettings subclass")
    name = type_name_of(model)
    known = _models.get(name)
    if known is not None and known is not model:
        raise VendorError(f"vendor type {name!r} is already registered ({known.__name__})")
    _models[name] = model
    return name


def unregister(name: str) -> None:
    """Forget a vendor type (tests)."""
    _models.pop(name, None)


def add_finder(finder: Finder) -> None:
    """Ask `finder` for more settings models when the registry is next read."""
    global _found
    _finders.append(finder)
    _found = False


def _find() -> None:
    global _found
    if _found:
        return
    _found = True
    for finder in list(_finders):
        for model in finder():
            try:
                if type_name_of(model) not in _models:
                    register(model)
            except VendorError:
                continue  # a model without one `type` name: its documents stay refused


def settings_models() -> tuple[type[ProviderSettings], ...]:
    """Every registered settings model, in registration order (built-ins first)."""
    _find()
    return tuple(_models.values())


def settings_for(name: str) -> type[ProviderSettings] | None:
    """The settings model of vendor type `name`, or None."""
    _find()
    return _models.get(name)
