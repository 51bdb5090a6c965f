"""The documented deployments give the sidecar an EngineConfig where it reads it.

Issue 13, finding 5: `examples/kubernetes/deployment.yaml` ran `energyctl run -f` on a
policy directory without an `EngineConfig`, so the sidecar took the defaults
(`./energyctl.db` on a read-only root filesystem, the public node) and mutating endpoints
were off. Here each example's `-f` arguments are mapped to the repository's files the
way its volumes mount them, loaded with the engine's checks and the secrets the example
provides, and the settings it needs are checked.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from engine.act.validating import ENGINE_CHECKS
from policies.loading import SecretMode, load
from policies.policyset import PolicySet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _paths(args: list[str]) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg in ("-f", "--file")]


def _load(paths: list[Path], env: dict[str, str]) -> PolicySet:
    result = load(paths, secrets=SecretMode.REQUIRED, checks=ENGINE_CHECKS, env=env)
    assert result.policy_set is not None, [str(d) for d in result.diagnostics]
    return result.policy_set


def _under(path: str, mount: str) -> bool:
    return PurePosixPath(path).is_relative_to(PurePosixPath(mount))


def test_kubernetes_deployment(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all((EXAMPLES / "kubernetes" / "deployment.yaml").read_text()))
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [car] = [c for c in pod["containers"] if c["name"] == "energyctl"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in car["volumeMounts"]}
    [config] = yaml.safe_load_all((EXAMPLES / "kubernetes" / "engine-config.yaml").read_text())
    secret = yaml.safe_load((EXAMPLES / "kubernetes" / "secret.yaml").read_text())
    env = {name: "x" for name in secret["stringData"]}
    local: list[Path] = []
    for path in _paths(car["args"]):
        mount = next(m for m in mounts if _under(path, m))
        volume = volumes[mounts[mount]["name"]]
        rest = PurePosixPath(path).relative_to(mount)
        if "configMap" in volume:  # the ConfigMap of engine-config.yaml
            assert volume["configMap"]["name"] == config["metadata"]["name"]
            target = tmp_path / "configmap" / rest
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(config["data"][str(rest)])
        else:  # git-sync's checkout of the policy repository, laid out as examples/policies
            assert str(rest).startswith("current/")
            target = EXAMPLES / "policies" / str(rest).removeprefix("current/")
        local.append(target)
    settings = _load(local, env).settings
    assert settings.http.api_token is not None and settings.http.api_token.from_env in env
    assert "ENERGYCTL_LISTEN" not in {e["name"] for e in car.get("env", [])}
    store = settings.store.url.removeprefix("sqlite:///")  # then /abs/path
    [state] = [m for m in mounts if _under(store, m)]
    assert (
        not mounts[state].get("readOnly")
        and "persistentVolumeClaim" in volumes[mounts[state]["name"]]
    )
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_docker_compose() -> None:
    compose: dict[str, Any] = yaml.safe_load((EXAMPLES / "docker-compose.yml").read_text())
    service = compose["services"]["energyctl"]
    binds = {}
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        binds[target] = EXAMPLES / source
    local = []
    for path in _paths(service["command"]):
        target = next(t for t in binds if _under(path, t))
        local.append(binds[target] / PurePosixPath(path).relative_to(target))
    env = {name: "x" for name in service["environment"]}
    settings = _load(local, env).settings
    assert settings.store.url.startswith("postgresql://energyctl@postgres")
    assert settings.store.password is not None and settings.http.api_token is not None
    assert "ENERGYCTL_LISTEN" not in service["environment"]
