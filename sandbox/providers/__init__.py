"""One emulator per vendor API, each delegating energy on the emulated chain.

`VENDORS` is the one list of the emulated vendors: each entry names the vendor type (a
Provider document's `spec.type`), its emulator class, the sandbox credentials (Provider
`spec` key -> value: the emulator's defaults) and the path its API lives under (eopen's
`/api`). The World (`sandbox/world.py`), the demo policy files (`sandbox/demo.py`), the
chaos scenarios and the tests that set up vendors read it; adding an emulated vendor is one
line here and one emulator module.

Emulators are written from the vendors' public documents, never from the adapters in
`providers/` (an import-linter contract forbids the import).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.providers.catfee import CatFeeEmulator
from sandbox.providers.emulating import EmulatorBase
from sandbox.providers.eopen import EopenEmulator
from sandbox.providers.feee import FeeeEmulator
from sandbox.providers.itrx import ItrxEmulator
from sandbox.providers.mefree import MefreeEmulator
from sandbox.providers.netts import SANDBOX_IP, NettsEmulator
from sandbox.providers.tronsave import TronSaveEmulator
from sandbox.providers.tronzap import TronZapEmulator

__all__ = ["VENDORS", "EmulatedVendor", "vendor"]

_KWARGS = {"apiKey": "api_key", "apiSecret": "api_secret"}


@dataclass(frozen=True)
class EmulatedVendor:
    """One emulated vendor: its type, emulator, sandbox credentials and base path, and the
    plain (non-secret) Provider `spec` values a sandbox document needs (`settings`)."""

    name: str
    emulator: type[EmulatorBase]
    credentials: Mapping[str, str]
    base_path: str = ""
    settings: Mapping[str, str] = field(default_factory=dict)

    def credential_kwargs(self) -> dict[str, Any]:
        """The credentials as the emulator's (and the adapter's) keyword arguments."""
        return {_KWARGS[key]: value for key, value in self.credentials.items()}

    def setting_kwargs(self) -> dict[str, Any]:
        """The plain settings as the adapter's keyword arguments (`realIp` -> `real_ip`)."""
        return {_snake(key): value for key, value in self.settings.items()}


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


VENDORS: tuple[EmulatedVendor, ...] = (
    EmulatedVendor(
        "mefree", MefreeEmulator,
        {"apiKey": "mefree-sandbox-key", "apiSecret": "mefree-sandbox-secret"},
    ),
    EmulatedVendor(
        "itrx", ItrxEmulator, {"apiKey": "ITRX-SANDBOX-KEY", "apiSecret": "ITRX-SANDBOX-SECRET"}
    ),
    EmulatedVendor("eopen", EopenEmulator, {"apiKey": "eopen-sandbox-key"}, "/api"),
    EmulatedVendor("tronsave", TronSaveEmulator, {"apiKey": "tronsave-sandbox-key"}),
    EmulatedVendor(
        "catfee", CatFeeEmulator,
        {"apiKey": "catfee-sandbox-key", "apiSecret": "catfee-sandbox-secret"},
    ),
    EmulatedVendor("feee", FeeeEmulator, {"apiKey": "feee-sandbox-key"}, "/open"),
    EmulatedVendor(
        "tronzap", TronZapEmulator,
        {"apiKey": "tronzap-sandbox-token", "apiSecret": "tronzap-sandbox-secret"},
    ),
    EmulatedVendor(
        "netts", NettsEmulator, {"apiKey": "netts-sandbox-key"}, settings={"realIp": SANDBOX_IP}
    ),
)  # fmt: skip


def vendor(name: str) -> EmulatedVendor:
    """The entry of vendor type `name`. Raises KeyError naming the known ones."""
    for entry in VENDORS:
        if entry.name == name:
            return entry
    raise KeyError(f"no emulated vendor {name!r} (known: {', '.join(v.name for v in VENDORS)})")
