"""engine/sidecar/admitting.py: the secrets a pushed set may reach (issue 13, finding 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.sidecar.admitting import AllowListError, PushRules, parse_allowed, set_problems
from engine.sidecar.reloading import Loaded, PolicySource
from policies.loading import SecretMode, load
from policies.policyset import PolicySet

POLICY = """apiVersion: energyctl/v1
kind: EnergyPolicy
metadata: {name: pay}
spec:
  addresses: [TPrke8B1kK6VZxNBcr7FayTswfJG8ohMuS]
  threshold: 65k
  topUp: {amount: 131k, duration: 1h}
  providers: [itrx]
  maxPrice: 120 sun/energy
  budget: {perDay: 500 TRX}
"""
ITRX = """apiVersion: energyctl/v1
kind: Provider
metadata: {name: itrx}
spec: {type: itrx, baseUrl: "https://itrx.io", apiKey: KEY, apiSecret: {fromEnv: S}}
"""
ENGINE = """apiVersion: energyctl/v1
kind: EngineConfig
metadata: {name: e}
spec:
  node: {url: "http://127.0.0.1:18090", apiKey: {fromEnv: N}}
  http: {apiToken: {fromEnv: T}}
"""
ENV = {"K": "k-value", "S": "s-value", "N": "n", "T": "t", "OTHER": "other-value"}


def files(key: str = "{fromEnv: K}", **extra: str) -> dict[str, str]:
    return {"p.yaml": POLICY, "i.yaml": ITRX.replace("KEY", key), "e.yaml": ENGINE} | extra


def running(tmp_path: Path, key: str = "{fromEnv: K}") -> PolicySet:
    directory = tmp_path / "files"
    directory.mkdir(exist_ok=True)
    for name, text in files(key).items():
        (directory / name).write_text(text)
    result = load(directory, secrets=SecretMode.REQUIRED, env=ENV)
    assert result.policy_set is not None, [str(d) for d in result.diagnostics]
    return result.policy_set


def push(tmp_path: Path, texts: dict[str, str], rules: PushRules) -> Loaded:
    return PolicySource([tmp_path], env=ENV).load_texts(texts, secret_gate=rules.gate)


def test_the_files_secrets_for_the_same_destination_only(tmp_path: Path) -> None:
    rules = PushRules(running(tmp_path), frozenset())
    assert push(tmp_path, files(), rules).ok  # the same set
    moved = files()
    moved["i.yaml"] = moved["i.yaml"].replace("https://itrx.io", "https://evil.example")
    loaded = push(tmp_path, moved, rules)
    assert not loaded.ok and "may not send it to a itrx at https://evil.example" in loaded.errors[0]
    other = push(tmp_path, files("{fromEnv: OTHER}"), rules)
    assert not other.ok and "environment variable OTHER is not used" in other.errors[0]
    token_as_key = push(tmp_path, files("{fromEnv: T}"), rules)  # the token to a vendor
    assert not token_as_key.ok and "goes to the API token" in token_as_key.errors[0]
    for loaded in (other, token_as_key):
        assert not any(v in e for e in loaded.errors for v in ENV.values() if len(v) > 2)


def test_files_are_compared_by_the_file_they_name(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("file-secret")
    link = tmp_path / "link"
    link.symlink_to(key)
    rules = PushRules(running(tmp_path, f"{{fromFile: {key}}}"), frozenset())
    assert push(tmp_path, files(f"{{fromFile: {link}}}"), rules).ok
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("other")
    loaded = push(tmp_path, files(f"{{fromFile: {elsewhere}}}"), rules)
    assert not loaded.ok and f"file {elsewhere} is not used" in loaded.errors[0]
    relative = push(tmp_path, files("{fromFile: key}"), rules)  # next to the pushed files
    assert not relative.ok


def test_a_refused_secret_is_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would block the sidecar
    rules = PushRules(running(tmp_path), frozenset())
    assert not push(tmp_path, files(f"{{fromFile: {fifo}}}"), rules).ok


def test_the_operator_allow_list(tmp_path: Path) -> None:
    allowed = parse_allowed(["env:OTHER", f"file:{tmp_path}/x"])
    assert allowed == {("env", "OTHER"), ("file", os.path.realpath(tmp_path / "x"))}
    rules = PushRules(running(tmp_path), allowed)
    assert push(tmp_path, files("{fromEnv: OTHER}"), rules).ok
    for bad in ("OTHER", "env:", "env:1X", "file:relative", "path:/x"):
        with pytest.raises(AllowListError, match="env:NAME"):
            parse_allowed([bad])


def test_sets_that_would_lock_the_operator_out(tmp_path: Path) -> None:
    current = running(tmp_path)
    rules = PushRules(current, frozenset())
    whole = push(tmp_path, files(), rules).policy_set
    assert whole is not None and set_problems(whole, current) == []
    tokenless = push(tmp_path, files(**{"e.yaml": ENGINE.split("  http:")[0]}), rules)
    assert tokenless.policy_set is not None
    [problem] = set_problems(tokenless.policy_set, current)
    assert "no http.apiToken" in problem
    empty = {"i.yaml": files()["i.yaml"], "e.yaml": ENGINE}
    providers_only = push(tmp_path, empty, rules).policy_set
    assert providers_only is not None
    assert "no EnergyPolicy" in set_problems(providers_only, current)[0]
