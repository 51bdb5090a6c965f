"""The sidecar's policy source: a watched directory, and policy sets handed over by HTTP.

`PolicySource(paths)` fingerprints the policy files (every YAML file `discover` finds:
path, size, mtime and a content hash) so the controller can poll for edits without an
extra dependency; `load()` validates them with the engine's checks. `load_texts(files)`
validates a set sent to `POST /v1/policies` (written to a private temporary directory
first, so file:line:column diagnostics and relative `fromFile` paths work the same way).

A load never raises for bad input: the caller keeps the last good set and reports the
diagnostics. Neighbours: `policies/loading.py`, `engine/act/validating.py`, the controller.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.act.validating import ENGINE_CHECKS
from policies.loading import LoadResult, SecretGate, SecretMode, discover, load
from policies.policyset import PolicySet

MAX_FILES = 200


@dataclass(frozen=True, slots=True)
class Loaded:
    """A load attempt: the policy set when valid, else the error lines to report."""

    policy_set: PolicySet | None
    errors: tuple[str, ...]
    fingerprint: str

    @property
    def ok(self) -> bool:
        return self.policy_set is not None


def _errors(result: LoadResult) -> tuple[str, ...]:
    return tuple(str(d) for d in result.errors) or ("the policy set is not valid",)


#: what a file name sent over HTTP may look like (it becomes a temporary file)
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class PolicySource:
    """Policy files and directories, polled for changes."""

    def __init__(self, paths: Sequence[str | Path], env: Mapping[str, str] | None = None):
        self.paths = tuple(Path(p) for p in paths)
        self._env = env

    def fingerprint(self) -> str:
        """A digest of the files' names and contents (changes when any file changes)."""
        files, problems = discover(self.paths)
        digest = hashlib.sha256()
        for problem in problems:
            digest.update(str(problem).encode())
        for path, _ in sorted(files):
            digest.update(str(path).encode() + b"\0")
            try:
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            except OSError as exc:
                digest.update(f"unreadable: {exc.strerror}".encode())
        return digest.hexdigest()

    def load(self) -> Loaded:
        """Fingerprint, then load: a file edited during the load shows up next poll."""
        fingerprint = self.fingerprint()
        result = load(self.paths, secrets=SecretMode.REQUIRED, checks=ENGINE_CHECKS, env=self._env)
        if result.policy_set is None:
            return Loaded(None, _errors(result), fingerprint)
        return Loaded(result.policy_set, (), fingerprint)

    def load_texts(
        self, files: Mapping[str, str], *, secret_gate: SecretGate | None = None
    ) -> Loaded:
        """Validate files sent over HTTP (`{"name.yaml": "..."}`); nothing is kept on disk.
        `secret_gate`: which secret references the set may use (`admitting.py`)."""
        if not files or len(files) > MAX_FILES:
            return Loaded(None, (f"send between 1 and {MAX_FILES} files",), "")
        names: list[str] = []
        for name, text in files.items():
            pure = PurePosixPath(name)
            if pure.is_absolute() or ".." in pure.parts or len(pure.parts) != 1:
                return Loaded(None, (f"{name!r}: file names only, no directories",), "")
            if not _FILE_NAME.fullmatch(name):
                return Loaded(
                    None,
                    (f"{name!r}: file names may hold letters, digits, '.', '_' and '-' only",),
                    "",
                )
            if pure.suffix not in (".yaml", ".yml"):
                return Loaded(None, (f"{name!r}: policy files end in .yaml or .yml",), "")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                return Loaded(
                    None, (f"{name}: not UTF-8 text (unpaired surrogate at {exc.start})",), ""
                )
            names.append(name)
        digest = hashlib.sha256()
        with tempfile.TemporaryDirectory(prefix="energyctl-policies-") as tmp:
            for name in sorted(names):
                text = files[name]
                digest.update(name.encode() + b"\0" + text.encode())
                target = Path(tmp) / name
                target.write_text(text)
                os.chmod(target, 0o600)
            result = load(
                [Path(tmp)],
                secrets=SecretMode.REQUIRED,
                checks=ENGINE_CHECKS,
                env=self._env,
                secret_gate=secret_gate,
            )
        if result.policy_set is None:
            return Loaded(None, _errors(result), digest.hexdigest())
        return Loaded(result.policy_set, (), digest.hexdigest())


__all__ = ["Loaded", "PolicySource"]
