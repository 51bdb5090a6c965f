"""Shared fixtures: a small valid policy set written to a temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ADDRESS_A = "TPjBEkaQea7eZ1YYoqDqKbkzraiSa5r4uF"
ADDRESS_B = "TJnmCx8btX8ajdaLP2C6apHvsJmNn3bg5i"

PROVIDERS = """\
apiVersion: energyctl/v1
kind: Provider
metadata: {name: itrx}
spec:
  type: itrx
  apiKey: {fromEnv: ITRX_API_KEY}
  apiSecret: {fromEnv: ITRX_API_SECRET}
---
apiVersion: energyctl/v1
kind: Provider
metadata: {name: tronsave}
spec:
  type: tronsave
  apiKey: {fromFile: tronsave.key}
"""

POLICY = f"""\
apiVersion: energyctl/v1
kind: EnergyPolicy
metadata: {{name: payouts}}
spec:
  addresses: [{ADDRESS_A}]
  threshold: 65k
  topUp: {{amount: 131k, duration: 1h}}
  providers: [itrx, tronsave]
  maxPrice: 95 sun/energy
  budget: {{perDay: 300 TRX, perMonth: 5000 TRX}}
  exclusive: true
"""

WriteSet = Callable[..., Path]


@pytest.fixture
def write_set(tmp_path: Path) -> WriteSet:
    """Write files (name -> text) into a fresh directory and return it."""

    def write(**files: str) -> Path:
        root = tmp_path / "set"
        root.mkdir(exist_ok=True)
        for name, text in files.items():
            (root / name.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
            (root / name.replace("__", "/")).write_text(text, encoding="utf-8")
        return root

    return write


@pytest.fixture
def valid_set(write_set: WriteSet) -> Path:
    return write_set(**{"providers.yaml": PROVIDERS, "payouts.yml": POLICY, "tronsave.key": "k\n"})
