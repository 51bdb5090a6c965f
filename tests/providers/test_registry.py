"""providers/registry.py: built-in adapters, entry-point plug-ins, create()."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from pydantic import SecretStr

from providers import registry
from providers.base import Provider
from providers.eopen import EopenProvider
from providers.itrx import ItrxProvider


class PluginProvider(EopenProvider):
    type_name = "plugin"


def _eps(*values: tuple[str, str]) -> list[EntryPoint]:
    return [EntryPoint(name, value, registry.ENTRY_POINT_GROUP) for name, value in values]


def test_builtin_type_names() -> None:
    assert set(registry.BUILTIN) == {"mefree", "itrx", "eopen", "tronsave"}
    assert registry.get("itrx") is ItrxProvider


def test_create_passes_plain_values() -> None:
    p = registry.create("eopen", "eo-main", api_key=SecretStr("k"))
    assert isinstance(p, EopenProvider) and p.name == "eo-main"


def test_unknown_type_names_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    with pytest.raises(registry.UnknownProviderType, match="known: eopen, itrx"):
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
