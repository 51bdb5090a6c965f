"""providers/registry.py: built-in adapters, entry-point plug-ins, create()."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Literal

import pytest
from pydantic import Field, SecretStr

from policies import vendors
from providers import registry
from providers.base import CallbackRejected, CallbackUnverifiable, Provider
from providers.eopen import EopenProvider
from providers.itrx import ItrxProvider


class PluginProvider(EopenProvider):
    type_name = "plugin"


def _eps(*values: tuple[str, str]) -> list[EntryPoint]:
    return [EntryPoint(name, value, registry.ENTRY_POINT_GROUP) for name, value in values]


def test_builtin_type_names() -> None:
    builtin = {"mefree", "itrx", "eopen", "tronsave", "catfee", "feee", "tronzap", "netts"}
    assert set(registry.BUILTIN) == builtin
    assert registry.get("itrx") is ItrxProvider


def test_create_passes_plain_values() -> None:
    p = registry.create("eopen", "eo-main", api_key=SecretStr("k"))
    assert isinstance(p, EopenProvider) and p.name == "eo-main"


def test_unknown_type_names_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    with pytest.raises(registry.UnknownProviderType, match=r"known: (\w+, )*eopen, (\w+, )*itrx"):
        registry.get("nope")


def test_plugins_are_found_and_cannot_shadow_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    here = "tests.providers.test_registry"
    eps = _eps(("plugin", f"{here}:PluginProvider"), ("itrx", f"{here}:PluginProvider"))
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    assert "plugin" in registry.type_names()
    assert registry.get("plugin") is PluginProvider
    assert registry.get("itrx") is ItrxProvider


@pytest.mark.parametrize(
    "value", ["tests.providers.test_registry:_eps", "tests.providers.no_such_module:X"]
)
def test_broken_plugins_are_reported(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: _eps(("bad", value)))
    with pytest.raises(registry.UnknownProviderType, match="bad"):
        registry.get("bad")


def test_every_builtin_declares_capabilities() -> None:
    for cls in registry.BUILTIN.values():
        assert issubclass(cls, Provider) and cls.capabilities.min_amount >= 10_000


class PluginSettings(vendors.ProviderSettings):
    type: Literal["plugin"] = Field(description="Vendor type.")
    colour: str = Field(description="A plug-in setting.")


class SettledPluginProvider(EopenProvider):
    type_name = "plugin"
    settings = PluginSettings


def test_every_builtin_declares_its_settings_model() -> None:
    for name, cls in registry.BUILTIN.items():
        assert vendors.type_name_of(cls.settings) == name
        assert vendors.settings_for(name) is cls.settings


def test_a_plugins_settings_reach_the_policy_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    here = "tests.providers.test_registry"
    eps = _eps(
        ("plugin", f"{here}:SettledPluginProvider"),
        ("broken", "tests.providers.no_such_module:X"),
        ("nosettings", f"{here}:PluginProvider"),  # declares another type's settings
    )
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    assert list(registry._plugin_settings()) == [PluginSettings]
    assert registry.find("plugin") is SettledPluginProvider
    assert registry.find("broken") is None


def test_only_callback_vendors_verify_callbacks() -> None:
    spec = vendors.settings_for("eopen")
    assert spec is not None
    with pytest.raises(CallbackRejected, match="sends no callbacks"):
        eopen = spec.model_validate({"type": "eopen", "apiKey": {"fromEnv": "K"}})
        EopenProvider.verify_callback(eopen, {}, b"{}", 0.0)
    itrx = vendors.settings_for("itrx")
    assert itrx is not None
    unresolved = itrx.model_validate(
        {"type": "itrx", "apiKey": {"fromEnv": "K"}, "apiSecret": {"fromEnv": "S"}}
    )
    with pytest.raises(CallbackUnverifiable, match="apiSecret is not set"):
        ItrxProvider.verify_callback(unresolved, {}, b"{}", 0.0)
    assert [c.type_name for c in registry.BUILTIN.values() if c.capabilities.callbacks] == ["itrx"]
