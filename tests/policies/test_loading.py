"""Loading policy sets: lookups, cross-document checks, secrets, extra checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies.diagnostics import Diagnostic, Severity
from policies.loading import LoadResult, SecretMode, load
from policies.models import EnergyPolicy, SecretRef, UnresolvedSecretError
from policies.policyset import PolicySet
from providers.itrx import ItrxSpec
from tests.policies.conftest import ADDRESS_A, ADDRESS_B, POLICY, PROVIDERS, WriteSet

ROOT = Path(__file__).resolve().parents[2]
ENV = {"ITRX_API_KEY": "key-1234", "ITRX_API_SECRET": "s3cr3t-value"}


def _errors(result: LoadResult) -> list[str]:
    return [str(d) for d in result.errors]


def test_examples_are_valid() -> None:
    result = load(ROOT / "examples" / "policies", secrets=SecretMode.OPTIONAL, env={})
    assert _errors(result) == []
    assert result.policy_set is not None
    assert {"mefree", "itrx", "eopen", "tronsave"} == {
        p.spec.type for p in result.policy_set.providers.values()
    }
    assert all(d.severity is Severity.WARNING for d in result.diagnostics)


def test_lookups(valid_set: Path) -> None:
    result = load(valid_set, env=ENV)
    policy_set = result.policy_set
    assert policy_set is not None, _errors(result)
    policy = policy_set.policy("payouts")
    assert policy_set.policy_for(ADDRESS_A) is policy
    assert policy_set.policy_for(ADDRESS_B) is None
    assert [p.metadata.name for p in policy_set.providers_for(policy)] == ["itrx", "tronsave"]
    assert policy.spec.threshold == 65_000
    assert policy.spec.top_up.amount == 131_000 and policy.spec.top_up.duration == 3_600
    assert policy.spec.max_price == 95_000
    assert policy.spec.budget.per_day == 300_000_000
    assert policy_set.settings.http.listen == "127.0.0.1:8080"
    assert policy_set.addresses == (ADDRESS_A,)
    where = policy_set.locate(policy, "spec", "threshold")
    assert (where.file.endswith("payouts.yml"), where.line, where.column) == (True, 6, 14)


def test_one_file_and_a_multi_document_file(valid_set: Path) -> None:
    result = load(valid_set / "providers.yaml", env=ENV)
    assert result.policy_set is not None
    assert sorted(result.policy_set.providers) == ["itrx", "tronsave"]


def test_revision_ignores_layout(write_set: WriteSet, valid_set: Path) -> None:
    one = load(valid_set, env=ENV).policy_set
    other_root = write_set(**{"all/in/one.yaml": POLICY + "---\n" + PROVIDERS})
    (other_root / "all/in/tronsave.key").write_text("k")
    other = load(other_root / "all", env=ENV).policy_set
    assert one is not None and other is not None
    assert one.revision == other.revision
    changed = write_set(**{"all/in/one.yaml": POLICY.replace("65k", "66k") + "---\n" + PROVIDERS})
    third = load(changed / "all", env=ENV).policy_set
    assert third is not None and third.revision != one.revision


@pytest.mark.parametrize(
    ("edit", "code", "fragment"),
    [
        (("[itrx, tronsave]", "[itrx, tronsav]"), "unknown-provider", "did you mean 'tronsave'"),
        (("threshold: 65k", "threshold: 250k"), None, None),  # amount top-up: no target check
        (
            ("{amount: 131k, duration: 1h}", "{target: 50k, duration: 1h}"),
            "threshold-above-target",
            "threshold 65k is above the top-up target 50k",
        ),
        (("perDay: 300 TRX", "perDay: 10 TRX"), "budget-below-one-top-up", "12.445 TRX"),
        (("[itrx, tronsave]", "[itrx, itrx]"), "duplicate-provider", "listed twice"),
        ((f"[{ADDRESS_A}]", f"[{ADDRESS_A}, {ADDRESS_A}]"), "address-conflict", "listed twice"),
    ],
)
def test_policy_checks(
    write_set: WriteSet, edit: tuple[str, str], code: str | None, fragment: str | None
) -> None:
    root = write_set(**{"p.yaml": PROVIDERS, "q.yaml": POLICY.replace(*edit), "tronsave.key": "k"})
    result = load(root, env=ENV)
    if code is None:
        assert result.ok, _errors(result)
        return
    found = [d for d in result.errors if d.code == code]
    assert found, _errors(result)
    assert fragment is not None and fragment in found[0].message
    assert found[0].file is not None and found[0].file.endswith("q.yaml")
    assert found[0].line is not None and found[0].line > 1


def test_address_claimed_by_two_policies_and_duplicate_names(write_set: WriteSet) -> None:
    second = POLICY.replace("name: payouts", "name: refunds")
    root = write_set(**{"p.yaml": PROVIDERS, "a.yaml": POLICY, "b.yaml": second + "---\n" + POLICY})
    messages = _errors(load(root, env=ENV, secrets=SecretMode.OPTIONAL))
    assert any("already watched by policy 'payouts'" in m and "/b.yaml:5:" in m for m in messages)
    assert any("duplicate EnergyPolicy name 'payouts'" in m for m in messages)


def test_second_engine_config_is_rejected(write_set: WriteSet) -> None:
    engine = "apiVersion: energyctl/v1\nkind: EngineConfig\nmetadata: {name: e%d}\n"
    root = write_set(**{"e.yaml": engine % 1 + "---\n" + engine % 2})
    result = load(root)
    assert [d.code for d in result.errors] == ["duplicate-engine-config"]
    assert result.errors[0].line == 6  # the second document's kind


def test_all_errors_of_a_run_are_reported(write_set: WriteSet) -> None:
    bad_policy = POLICY.replace("65k", "65q").replace("1h", "1 hour")
    root = write_set(**{"a.yaml": bad_policy, "b.yaml": "a: [1,\n", "c.yaml": "kind: Nope\n"})
    result = load(root, secrets=SecretMode.OPTIONAL)
    files = {Path(d.file or "").name for d in result.errors}
    assert files == {"a.yaml", "b.yaml", "c.yaml"}
    assert len([d for d in result.errors if d.file and d.file.endswith("a.yaml")]) == 2
    assert result.policy_set is None


def test_secrets_resolve_and_never_leak(valid_set: Path) -> None:
    result = load(valid_set, env=ENV)
    policy_set = result.policy_set
    assert policy_set is not None
    itrx = policy_set.provider("itrx")
    assert isinstance(itrx.spec, ItrxSpec)
    assert itrx.spec.api_key.get().get_secret_value() == "key-1234"
    tronsave = policy_set.provider("tronsave")
    assert tronsave.spec.api_key.get().get_secret_value() == "k"  # relative to the policy file
    dumps = [repr(policy_set), repr(itrx), str(itrx), itrx.model_dump_json(), repr(result)]
    dumps += [json.dumps(itrx.model_dump(mode="json")), str(itrx.spec.api_secret.get())]
    dumps += [repr(itrx.spec.api_key), str(result.diagnostics)]
    for text in dumps:
        assert "key-1234" not in text and "s3cr3t" not in text


def test_unset_secret_is_a_warning_in_optional_mode(valid_set: Path) -> None:
    result = load(valid_set, env={}, secrets=SecretMode.OPTIONAL)
    assert result.ok
    names = " ".join(d.message for d in result.warnings)
    assert "ITRX_API_KEY" in names and "ITRX_API_SECRET" in names
    ref = result.policy_set.provider("itrx").spec.api_key  # type: ignore[union-attr]
    with pytest.raises(UnresolvedSecretError, match="ITRX_API_KEY is not set"):
        ref.get()


def test_unset_secret_is_an_error_naming_the_variable_when_required(valid_set: Path) -> None:
    result = load(valid_set, env={"ITRX_API_KEY": "x"})
    assert result.policy_set is None
    assert [d.code for d in result.errors] == ["secret-unresolved"]
    assert "environment variable ITRX_API_SECRET is not set" in result.errors[0].message
    assert result.errors[0].line == 7


def test_inline_secret_is_rejected(write_set: WriteSet) -> None:
    text = PROVIDERS.replace("{fromEnv: ITRX_API_KEY}", "hunter2-inline")
    result = load(write_set(**{"p.yaml": text, "tronsave.key": "k"}), env=ENV)
    assert any("inline secrets are not allowed" in d.message for d in result.errors)
    assert all("hunter2" not in str(d) for d in result.diagnostics)


@pytest.mark.parametrize(
    "value", ["{fromEnv: sk-live-9f8e7d}", "{fromEnv: 918273645}", "[sk-live-9f8e7d]", "918273645"]
)
def test_a_pasted_secret_is_never_echoed(write_set: WriteSet, value: str) -> None:
    text = PROVIDERS.replace("{fromEnv: ITRX_API_KEY}", value)
    result = load(write_set(**{"p.yaml": text, "tronsave.key": "k"}), env=ENV)
    assert [d.line for d in result.errors] == [6]
    assert all("9f8e7d" not in str(d) and "918273645" not in str(d) for d in result.diagnostics)


def test_secret_ref_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef.model_validate({"fromEnv": "A", "fromFile": "b"})


def test_extra_checks_run_on_a_valid_set(valid_set: Path) -> None:
    seen: list[PolicySet] = []

    def no_itrx_under_100k(policy_set: PolicySet) -> list[Diagnostic]:
        seen.append(policy_set)
        found = []
        for policy in policy_set.policies.values():
            assert isinstance(policy, EnergyPolicy)
            if policy.spec.top_up.largest_order < 200_000:
                where = policy_set.locate(policy, "spec", "topUp", "amount")
                found.append(Diagnostic.error(where, "no listed provider sells this amount"))
        return found

    result = load(valid_set, env=ENV, checks=[no_itrx_under_100k])
    assert len(seen) == 1
    assert result.policy_set is None
    assert [(d.line, d.column) for d in result.errors] == [(7, 19)]


def test_extra_checks_are_skipped_when_the_set_is_invalid(write_set: WriteSet) -> None:
    calls: list[PolicySet] = []
    root = write_set(**{"a.yaml": POLICY})  # its providers are unknown

    def record(policy_set: PolicySet) -> list[Diagnostic]:
        calls.append(policy_set)
        return []

    load(root, checks=[record])
    assert calls == []


@pytest.mark.parametrize(
    "written", ["0x10000", "0o200000", "0b10000000000000000", "18:10:00", "65_000", "\u0666\u0665k"]
)
def test_hex_octal_binary_sexagesimal_underscored_and_unicode_amounts_are_refused(
    write_set: WriteSet, written: str
) -> None:
    """YAML 1.1 reads unquoted `0x10000`, `18:10:00` (65,400) or `65_000` as integers."""
    policy = POLICY.replace("threshold: 65k", f"threshold: {written}")
    root = write_set(**{"p.yaml": PROVIDERS, "q.yaml": policy, "tronsave.key": "k"})
    result = load(root, env=ENV)
    assert result.policy_set is None
    messages = [m for m in _errors(result) if "threshold" in m or written in m]
    assert messages, _errors(result)
    assert "q.yaml:6:" in messages[0]


def test_a_leading_zero_is_read_as_decimal(write_set: WriteSet) -> None:
    policy = POLICY.replace("threshold: 65k", "threshold: 065000")  # YAML 1.1: octal
    root = write_set(**{"p.yaml": PROVIDERS, "q.yaml": policy, "tronsave.key": "k"})
    result = load(root, env=ENV)
    assert result.policy_set is not None, _errors(result)
    assert result.policy_set.policies["payouts"].spec.threshold == 65_000


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://b\u00fccher.example/api", "'xn--bcher-kva.example'"),
        ("https://\u0430pi.itrx.io", "'xn--pi-6kc.itrx.io'"),  # a Cyrillic a
        ("https://api.itrx.io:99999", "port 99999 is not 1..65535"),
        ("https://api.itrx.io:\u0668\u0660", "must be an http:// or https:// URL"),
    ],
)
def test_a_non_ascii_host_or_a_bad_port_in_base_url_is_refused(
    write_set: WriteSet, url: str, fragment: str
) -> None:
    providers = PROVIDERS.replace("  type: itrx\n", f"  type: itrx\n  baseUrl: {url}\n")
    root = write_set(**{"p.yaml": providers, "q.yaml": POLICY, "tronsave.key": "k"})
    result = load(root, env=ENV)
    assert result.policy_set is None
    assert any(fragment in m and "p.yaml:6:" in m for m in _errors(result)), _errors(result)


def test_an_idna_host_in_base_url_is_accepted(write_set: WriteSet) -> None:
    url = "https://xn--bcher-kva.example:8443/api"
    providers = PROVIDERS.replace("  type: itrx\n", f"  type: itrx\n  baseUrl: {url}\n")
    root = write_set(**{"p.yaml": providers, "q.yaml": POLICY, "tronsave.key": "k"})
    assert load(root, env=ENV).ok
