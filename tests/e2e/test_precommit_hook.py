"""The pre-commit hook of `.pre-commit-hooks.yaml`, run by pre-commit itself on a policy
repository (a temporary git repository holding examples/policies/payment-processor).

The hook repository is a temporary git repository holding this checkout's
`.pre-commit-hooks.yaml` (pre-commit clones a hook repository at a commit, so the
manifest as it is in the work tree is what is tested). The policy repository's config
overrides `language: python` with `system`: `python` would make pre-commit pip-install
energyctl and its dependencies into its cache from the package index; `system` runs the
energyctl installed here. Everything else (entry, args, files, pass_filenames) comes from
the manifest. No network is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
PRE_COMMIT = Path(sys.executable).with_name("pre-commit")
GIT = ["git", "-c", "user.name=energyctl", "-c", "user.email=energyctl@example.invalid"]

pytestmark = pytest.mark.skipif(
    not PRE_COMMIT.exists() or shutil.which("git") is None,
    reason="pre-commit (the test extra) or git is missing",
)


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _repo(path: Path) -> Path:
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    return path


def _commit(path: Path) -> str:
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "state")
    return _git(path, "rev-parse", "HEAD")


def test_the_manifest_is_valid_for_pre_commit() -> None:
    done = subprocess.run(
        [str(PRE_COMMIT), "validate-manifest", str(MANIFEST)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [hook] = yaml.safe_load(MANIFEST.read_text())
    assert hook["id"] == "energyctl-validate" and hook["language"] == "python"
    assert hook["entry"].split()[0] == "energyctl" and hook["pass_filenames"] is False


def test_the_hook_passes_good_policies_and_fails_a_bad_one(tmp_path: Path) -> None:
    hooks = _repo(tmp_path / "hooks")
    shutil.copy(MANIFEST, hooks / MANIFEST.name)
    rev = _commit(hooks)
    policies = _repo(tmp_path / "policies")
    shutil.copytree(ROOT / "examples" / "policies" / "payment-processor", policies / "policies")
    config = {
        "repos": [
            {
                "repo": str(hooks),
                "rev": rev,
                "hooks": [{"id": "energyctl-validate", "language": "system"}],
            }
        ]
    }
    (policies / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    _commit(policies)
    env = {
        **os.environ,
        "PATH": f"{PRE_COMMIT.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
    }

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PRE_COMMIT), "run", "--all-files", "--color", "never"],
            cwd=policies,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    good = run()
    assert good.returncode == 0, good.stdout + good.stderr
    assert "energyctl validate" in good.stdout and "Passed" in good.stdout
    policy = policies / "policies" / "hot-wallet.yaml"
    text = policy.read_text()
    assert "threshold: 131k" in text
    policy.write_text(text.replace("threshold: 131k", "threshold: lots", 1))
    _git(policies, "add", "-A")
    bad = run()
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout and "hot-wallet.yaml:" in bad.stdout, bad.stdout
