"""`energyctl validate` and `energyctl schema` from the outside: exit codes and messages.

Every bad input from the policy-language issue gets exit 1, a message naming
`file:line:column` (where the file has lines) and never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies"
ADDRESS = "TPjBEkaQea7eZ1YYoqDqKbkzraiSa5r4uF"

PROVIDER = """\
apiVersion: energyctl/v1
kind: Provider
metadata: {name: itrx}
spec:
  type: itrx
  apiKey: {fromEnv: ENERGYCTL_TEST_UNSET_KEY}
  apiSecret: {fromEnv: ENERGYCTL_TEST_UNSET_SECRET}
"""
POLICY = f"""\
apiVersion: energyctl/v1
kind: EnergyPolicy
metadata: {{name: payouts}}
spec:
  addresses: [{ADDRESS}]
  threshold: 65k
  topUp: {{amount: 131k, duration: 1h}}
  providers: [itrx]
  maxPrice: 95 sun/energy
  budget: {{perDay: 300 TRX}}
"""


def _bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        lines.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


def _write(data: str | bytes) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        path = root / "bad.yaml"
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        return path

    return make


def _huge(root: Path) -> Path:
    path = root / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # a sparse 50 MB file
    return path


# name -> (make the input, expected message fragment, expected line:column or None)
BAD_INPUTS: dict[str, tuple[Callable[[Path], Path], str, str | None]] = {
    "malformed yaml": (
        _write("apiVersion: [energyctl/v1\nkind: Provider\n"),
        "invalid YAML",
        "2:5",
    ),
    "tab indentation": (_write(PROVIDER.replace("  type: itrx", "\ttype: itrx")), "tab", "5:1"),
    "duplicate key": (
        _write(POLICY.replace("  threshold: 65k\n", "  threshold: 65k\n  threshold: 70k\n")),
        "duplicate key 'threshold' (first at line 6, column 3)",
        "7:3",
    ),
    "wrong type": (_write(PROVIDER + "---\n" + POLICY.replace("[itrx]", "itrx")), "list", "16:14"),
    "negative amount": (
        _write(PROVIDER + "---\n" + POLICY.replace("131k", "-131000")),
        "energy cannot be negative",
        "15:19",
    ),
    "zero amount": (
        _write(PROVIDER + "---\n" + POLICY.replace("300 TRX", "0 TRX")),
        "greater than zero",
        "18:20",
    ),
    "unknown kind": (
        _write(POLICY.replace("kind: EnergyPolicy", "kind: EnergyPolcy")),
        "did you mean 'EnergyPolicy'",
        "2:7",
    ),
    "unknown key": (
        _write(PROVIDER + "---\n" + POLICY.replace("threshold:", "treshold:")),
        "unknown key 'treshold'; did you mean 'threshold'?",
        "14:3",
    ),
    "address typo": (
        _write(PROVIDER + "---\n" + POLICY.replace(ADDRESS, ADDRESS[:-1] + "G")),
        "invalid TRON address",
        "13:15",
    ),
    "unknown provider": (
        _write(PROVIDER + "---\n" + POLICY.replace("[itrx]", "[itrx2]")),
        "unknown provider 'itrx2'; did you mean 'itrx'?",
        "16:15",
    ),
    "inline secret": (
        _write(PROVIDER.replace("{fromEnv: ENERGYCTL_TEST_UNSET_KEY}", "abc123")),
        "inline secrets are not allowed",
        "6:11",
    ),
    "empty file": (_write(""), "empty file", "1:1"),
    "only comments": (_write("# nothing here\n---\n"), "empty file", "1:1"),
    "binary file": (_write(bytes(range(256)) * 4), "binary file", None),
    "not utf-8": (_write(b"kind: Provider\nname: \xff\xfe\n"), "not UTF-8", "2:7"),
    "50 MB file": (_huge, "more than the 1,048,576-byte limit", None),
    "billion laughs": (_write(_bomb()), "billion laughs", "5:28"),
    "deep nesting": (_write("a: " + "[" * 5000 + "]" * 5000 + "\n"), "nested", None),
    "python tag": (
        _write("a: !!python/object/apply:os.system ['true']\n"),
        "unsupported YAML tag",
        "1:4",
    ),
    "not a mapping": (_write("- a\n- b\n"), "must be a mapping", "1:1"),
    "does not exist": (lambda root: root / "missing.yaml", "no such file or directory", None),
}


def _run(*args: str) -> Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYCTL_TEST_")}
    return CliRunner(env=env).invoke(main, list(args))


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_exit_1_and_a_located_message(tmp_path: Path, case: str) -> None:
    make, fragment, position = BAD_INPUTS[case]
    path = make(tmp_path)
    result = _run("validate", str(path))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert fragment in result.stderr, result.stderr
    first = next(line for line in result.stderr.splitlines() if fragment in line)
    expected = f"{path}:{position}: error: " if position else f"{path}: error: "
    assert first.startswith(expected), first


def test_the_bomb_case_really_is_a_bomb() -> None:
    assert _bomb().count("*") > 64  # 9 levels of 9 aliases: 9**9 strings if expanded


def test_examples_are_valid_and_unset_secrets_are_warnings() -> None:
    result = _run("validate", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "valid: files 7, providers 8, policies 3, engine configs 1, deposit policies 1"
    )
    assert re.search(r"engine\.yaml:12:13: warning: .*TRONGRID_API_KEY is not set", result.stderr)


def test_strict_secrets_turn_unset_variables_into_errors(tmp_path: Path) -> None:
    path = _write(PROVIDER)(tmp_path)
    assert _run("validate", str(path)).exit_code == 0
    result = _run("validate", "--strict-secrets", str(path))
    assert result.exit_code == 1
    assert f"{path}:6:11: error: spec.apiKey: environment variable ENERGYCTL_TEST_UNSET_KEY" in (
        result.stderr
    )


def test_errors_are_sorted_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(POLICY.replace("65k", "x").replace("1h", "y"))
    (tmp_path / "a.yaml").write_text("kind: Nope\n")
    result = _run("validate", str(tmp_path))
    lines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(lines) == 4
    keys = [(line.split(":")[0], int(line.split(":")[1])) for line in lines]
    assert keys == sorted(keys)
    assert result.stderr.splitlines()[-1] == "invalid: errors 4, warnings 0"


def test_json_output(tmp_path: Path) -> None:
    path = _write(PROVIDER + "---\n" + POLICY.replace("threshold:", "treshold:"))(tmp_path)
    result = _run("validate", "--output", "json", str(path), str(tmp_path / "nope"))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["errors"] == 3
    by_code = {d["code"]: d for d in report["diagnostics"] if d["severity"] == "error"}
    assert set(by_code) == {"unknown-key", "missing", "not-found"}
    assert (by_code["unknown-key"]["line"], by_code["unknown-key"]["column"]) == (14, 3)
    assert by_code["not-found"]["line"] is None
    good = json.loads(_run("validate", "-o", "json", str(EXAMPLES)).stdout)
    assert good["valid"] is True and good["errors"] == 0 and good["warnings"] > 0


def test_schema_command_prints_a_schema_that_checks_documents() -> None:
    result = _run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    import yaml

    docs = list(yaml.safe_load_all(POLICY + "---\n" + PROVIDER))
    assert all(validator.is_valid(doc) for doc in docs)
    docs[0]["spec"]["treshold"] = "65k"
    assert not validator.is_valid(docs[0])


def test_installed_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "energyctl"
    assert script.exists(), "pip install -e . installs the energyctl console script"
    ok = subprocess.run(
        [str(script), "validate", str(EXAMPLES)], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    path = _write(POLICY.replace(ADDRESS, ADDRESS.replace("Q", "R", 1)))(tmp_path)
    bad = subprocess.run(
        [str(script), "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert f"{path}:5:15: error: spec.addresses[0]: invalid TRON address" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout
