"""engine/sidecar/swapping.py: settings fixed for the life of the process (issue 13, finding 5)."""

from __future__ import annotations

from pathlib import Path

from engine.sidecar.reloading import PolicySource
from engine.sidecar.swapping import RestartRequired, fixed_changes
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
---
apiVersion: energyctl/v1
kind: Provider
metadata: {name: itrx}
spec: {type: itrx, apiKey: {fromEnv: K}, apiSecret: {fromEnv: S}}
"""
ENGINE = """apiVersion: energyctl/v1
kind: EngineConfig
metadata: {name: e}
spec:
  node: {url: http://127.0.0.1:18090, apiKey: {fromEnv: K}}
  store: {url: "sqlite:////var/lib/energyctl/state.db"}
  http: {listen: "127.0.0.1:8080", apiToken: {fromEnv: T}}
"""
ENV = {"K": "k", "S": "s", "T": "t", "K2": "k2"}


def load(tmp_path: Path, engine: str | None) -> PolicySet:
    files = {"p.yaml": POLICY} | ({"e.yaml": engine} if engine is not None else {})
    loaded = PolicySource([tmp_path], env=ENV).load_texts(files)
    assert loaded.policy_set is not None, loaded.errors
    return loaded.policy_set


def test_the_same_settings_and_what_may_change_live(tmp_path: Path) -> None:
    running = load(tmp_path, ENGINE)
    assert fixed_changes(running, load(tmp_path, ENGINE)) == []
    other = ENGINE + "  maxActionsPerPass: 3\n"
    assert fixed_changes(running, load(tmp_path, other)) == []
    rotated = ENGINE.replace("apiToken: {fromEnv: T}", "apiToken: {fromEnv: K2}")
    assert fixed_changes(running, load(tmp_path, rotated)) == []  # finding 8 rules on it
    assert fixed_changes(load(tmp_path, None), load(tmp_path, None)) == []


def test_store_node_and_listener_changes_are_named(tmp_path: Path) -> None:
    running = load(tmp_path, ENGINE)
    store = ENGINE.replace("/var/lib/energyctl/state.db", "/tmp/other.db")
    [reason] = fixed_changes(running, load(tmp_path, store))
    assert reason.startswith("store.url:") and "/tmp/other.db" in reason
    node = ENGINE.replace("http://127.0.0.1:18090", "https://api.trongrid.io")
    key = ENGINE.replace("apiKey: {fromEnv: K}}", "apiKey: {fromEnv: K2}}")
    listen = ENGINE.replace("127.0.0.1:8080", "0.0.0.0:8080")
    assert [r.split(":")[0] for r in fixed_changes(running, load(tmp_path, node))] == ["node.url"]
    [why] = fixed_changes(running, load(tmp_path, key))
    assert why.startswith("node.apiKey:") and "K2" in why and "'k" not in why
    assert fixed_changes(running, load(tmp_path, listen))[0].startswith("http.listen:")
    assert fixed_changes(running, load(tmp_path, listen), listen_override="127.0.0.1:9") == []
    follow = ENGINE.replace("  store:", "  observation: {mode: follow}\n  store:")
    [mode] = fixed_changes(running, load(tmp_path, follow))
    assert mode.startswith("observation.mode:")


def test_a_set_without_engine_config_takes_the_defaults_and_is_refused(tmp_path: Path) -> None:
    running = load(tmp_path, ENGINE)
    reasons = fixed_changes(running, load(tmp_path, None))
    assert "no EngineConfig" in reasons[0]
    assert any("sqlite:///energyctl.db" in r for r in reasons)
    assert any("api.trongrid.io" in r for r in reasons)
    message = str(RestartRequired(reasons))
    assert "restart" in message and "stays in force" in message
