"""policies/vendors.py: the registry of vendors' settings models, and what it changes in
validation and the schema (positions kept, plug-ins listed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from policies import vendors
from policies.loading import SecretMode, load
from policies.models import Provider, provider_model
from policies.schema import json_schema
from policies.vendors import ProviderSettings, VendorError


class ExtraSpec(ProviderSettings):
    """Extra (a test vendor)."""

    type: Literal["extra"] = Field(description="Vendor type.")
    zone: int = Field(description="A vendor-specific setting.")


class Untyped(ProviderSettings):
    """No type literal."""


DOCUMENT = """\
apiVersion: energyctl/v1
kind: Provider
metadata: {name: x}
spec:
  type: extra
  apiKey: {fromEnv: X_KEY}
  zone: ZONE
"""


@pytest.fixture
def extra() -> Iterator[None]:
    vendors.register(ExtraSpec)
    yield
    vendors.unregister("extra")


def test_builtins_are_registered_by_the_adapters() -> None:
    names = [vendors.type_name_of(m) for m in vendors.settings_models()]
    assert names[:4] == ["mefree", "itrx", "eopen", "tronsave"]


@pytest.mark.usefixtures("extra")
def test_a_registered_vendor_validates_and_its_errors_keep_their_position(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(DOCUMENT.replace("ZONE", "3"))
    result = load([path], secrets=SecretMode.OPTIONAL, env={})
    assert result.policy_set is not None, result.errors
    spec = result.policy_set.provider("x").spec
    assert isinstance(spec, ExtraSpec) and spec.zone == 3
    assert isinstance(result.policy_set.provider("x"), Provider)

    path.write_text(DOCUMENT.replace("ZONE", "'many'"))
    result = load([path], secrets=SecretMode.OPTIONAL, env={})
    assert [str(d).split(": error: ")[0] for d in result.errors] == [f"{path}:7:9"]
    assert "spec.zone" in result.errors[0].message


@pytest.mark.usefixtures("extra")
def test_an_unknown_type_lists_every_registered_vendor(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(DOCUMENT.replace("ZONE", "3").replace("type: extra", "type: extr"))
    result = load([path], secrets=SecretMode.OPTIONAL, env={})
    (error,) = result.errors
    assert str(error).startswith(f"{path}:5:9: error: spec.type: type must be")
    assert "'tronsave'" in error.message
    assert " or 'extra'; got 'extr'; did you mean 'extra'?" in error.message


def test_the_schema_follows_the_registry() -> None:
    assert "ExtraSpec" not in json_schema()["$defs"]
    vendors.register(ExtraSpec)
    try:
        defs = json_schema()["$defs"]
        assert defs["ExtraSpec"]["properties"]["zone"]["type"] == "integer"
        assert "ItrxSpec" in defs
    finally:
        vendors.unregister("extra")
    assert "ExtraSpec" not in json_schema()["$defs"]


def test_registration_rules() -> None:
    with pytest.raises(VendorError, match="exactly one name"):
        vendors.register(Untyped)

    class OtherItrx(ProviderSettings):
        type: Literal["itrx"] = Field(description="Vendor type.")

    with pytest.raises(VendorError, match="'itrx' is already registered"):
        vendors.register(OtherItrx)
    itrx = vendors.settings_for("itrx")
    assert itrx is not None and vendors.register(itrx) == "itrx"  # the same model again


def test_the_provider_model_is_rebuilt_only_when_the_registry_changes() -> None:
    assert provider_model() is provider_model()
    before = provider_model()
    vendors.register(ExtraSpec)
    try:
        assert provider_model() is not before
    finally:
        vendors.unregister("extra")
    assert provider_model() is before


def test_finders_add_vendors_lazily_and_skip_bad_models() -> None:
    asked: list[int] = []

    def finder() -> list[type[ProviderSettings]]:
        asked.append(1)
        return [Untyped, ExtraSpec]

    vendors.add_finder(finder)
    try:
        assert asked == []
        assert vendors.settings_for("extra") is ExtraSpec
        vendors.settings_models()
        assert asked == [1]  # asked once
    finally:
        vendors._finders.remove(finder)
        vendors.unregister("extra")
