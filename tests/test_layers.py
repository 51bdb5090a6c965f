"""The layer rules of docs/architecture.md, enforced with import-linter (contracts in pyproject).

The real check must report every contract of pyproject.toml kept (a contract dropped or
not analysed fails it), and the same checker must report a broken layer in a small
package tree built to break it (so a green run means the rules were checked).
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
REQUIRED = {
    "Layers: policies <- providers <- engine <- sandbox",
    "Emulators are written from the reference, never from adapter code",
    "Engine rooms keep their order",
    "Deciding is pure: no I/O library, no store",
    "No import cycle inside engine",
}


def _lint(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_import_contracts_hold() -> None:
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    names = {contract["name"] for contract in contracts}
    assert names >= REQUIRED, f"contracts missing from pyproject.toml: {REQUIRED - names}"
    for contract in contracts:
        assert f"{contract['name']} KEPT" in proc.stdout, proc.stdout
    assert f"Contracts: {len(contracts)} kept, 0 broken." in proc.stdout, proc.stdout


def test_a_broken_layer_is_reported(tmp_path: Path) -> None:
    """The checker, run the same way on a tree where policies imports engine, fails."""
    for package, body in [("policies", "import engine.core\n"), ("engine", "")]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "core.py").write_text(body)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.importlinter]\nroot_packages = ["policies", "engine"]\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "Layers"\ntype = "layers"\nlayers = ["engine", "policies"]\n'
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = _lint(tmp_path, env)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Layers BROKEN" in proc.stdout and "0 kept, 1 broken." in proc.stdout, proc.stdout
