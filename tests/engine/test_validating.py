"""Capability checks: top-ups no listed provider sells are errors at the right place."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.act.validating import ENGINE_CHECKS, durations_text
from engine.cli import main
from policies.loading import SecretMode, load
from providers.mefree import MefreeProvider
from providers.tronsave import TronsaveProvider

ADDRESS = "TPjBEkaQea7eZ1YYoqDqKbkzraiSa5r4uF"
PROVIDERS = """\
apiVersion: energyctl/v1
kind: Provider
metadata: {name: mf}
spec: {type: mefree, apiKey: {fromEnv: K}, apiSecret: {fromEnv: S}}
---
apiVersion: energyctl/v1
kind: Provider
metadata: {name: it}
spec: {type: itrx, apiKey: {fromEnv: K}, apiSecret: {fromEnv: S}}
---
apiVersion: energyctl/v1
kind: Provider
metadata: {name: eo}
spec: {type: eopen, apiKey: {fromEnv: K}}
---
apiVersion: energyctl/v1
kind: Provider
metadata: {name: ts}
spec: {type: tronsave, apiKey: {fromEnv: K}}
"""


EXCL = "  exclusive: true\n"


def _policy(top_up: str, providers: str, extra: str = "") -> str:
    return f"""\
apiVersion: energyctl/v1
kind: EnergyPolicy
metadata: {{name: pay}}
spec:
  addresses: [{ADDRESS}]
  threshold: 10k
  topUp: {top_up}
  providers: {providers}
  maxPrice: 200 sun/energy
  budget: {{perDay: 10000 TRX}}
{extra}"""


def _check(tmp_path: Path, policy: str) -> list[str]:
    (tmp_path / "providers.yaml").write_text(PROVIDERS)
    (tmp_path / "policy.yaml").write_text(policy)
    result = load(tmp_path, secrets=SecretMode.OPTIONAL, checks=ENGINE_CHECKS)
    return [
        f"{d.severity.value}@{d.line}:{d.column}:{d.code}"
        for d in result.diagnostics
        if d.code in ("no-provider-accepts", "provider-cannot-serve")
    ]


# policy.yaml lines: 7 topUp, 8 providers, 11 extra; columns point into the flow values
@pytest.mark.parametrize(
    ("top_up", "providers", "extra", "expected"),
    [
        ("{amount: 65k, duration: 1h}", "[mf, it, eo, ts]", "", []),
        # 2h: only TronSave sells it; the others are warnings at their list positions
        (
            "{amount: 65k, duration: 2h}",
            "[mf, ts, eo]",
            "",
            ["warning@8:15:provider-cannot-serve", "warning@8:23:provider-cannot-serve"],
        ),
        # 2h with no TronSave: an error on topUp.duration
        ("{amount: 65k, duration: 2h}", "[mf, it, eo]", "", ["error@7:34:no-provider-accepts"]),
        # 50k: below Mefree's 65k and eopen's 64k
        ("{amount: 50k, duration: 1h}", "[mf, eo]", "", ["error@7:19:no-provider-accepts"]),
        ("{amount: 50k, duration: 1h}", "[mf, it]", "", ["warning@8:15:provider-cannot-serve"]),
        # exclusive: only itrx can; without it, the error is on spec.exclusive
        ("{amount: 65k, duration: 1h}", "[mf, ts]", EXCL, ["error@11:14:no-provider-accepts"]),
        ("{amount: 65k, duration: 1h}", "[it, ts]", EXCL, ["warning@8:19:provider-cannot-serve"]),
        # each field is sold somewhere, the combination nowhere: error on spec.providers
        ("{amount: 65k, duration: 2h}", "[it, ts]", EXCL, ["error@8:14:no-provider-accepts"]),
        # a target is rounded up to the vendor minimum: only its maximum matters
        ("{target: 20k, duration: 1h}", "[mf]", "", []),
    ],
)  # fmt: skip
def test_capability_findings(
    tmp_path: Path, top_up: str, providers: str, extra: str, expected: list[str]
) -> None:
    assert _check(tmp_path, _policy(top_up, providers, extra)) == expected


def test_messages_name_what_each_provider_sells(tmp_path: Path) -> None:
    (tmp_path / "providers.yaml").write_text(PROVIDERS)
    (tmp_path / "policy.yaml").write_text(_policy("{amount: 65k, duration: 2h}", "[mf, it]"))
    result = load(tmp_path, secrets=SecretMode.OPTIONAL, checks=ENGINE_CHECKS)
    assert not result.ok
    (error,) = result.errors
    assert "mf does not sell 2h (it sells 1h, 1d, 3d, ..., 30d (30 periods))" in error.message
    assert "it does not sell 2h (it sells 1h, 1d, 3d, 30d)" in error.message


def test_durations_text() -> None:
    assert durations_text(TronsaveProvider.capabilities) == "5m..30d"
    assert durations_text(MefreeProvider.capabilities).startswith("1h, 1d, 3d, ...")


def test_validate_command_reports_the_capability_error(tmp_path: Path) -> None:
    (tmp_path / "providers.yaml").write_text(PROVIDERS)
    (tmp_path / "policy.yaml").write_text(_policy("{amount: 50k, duration: 1h}", "[mf, eo]"))
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'policy.yaml'}:7:19: error: no provider listed" in result.output
