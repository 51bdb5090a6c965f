"""Loading a policy set: paths -> documents -> models -> checks -> `PolicySet`.

`load(paths)` accepts files (every YAML document in them), and directories (searched
recursively for `*.yaml` and `*.yml`, hidden entries skipped). It never raises for bad input:
every problem of the run, in every file, comes back as a `Diagnostic` naming
`file:line:column`, and `LoadResult.policy_set` is None when any of them is an error.

Secret references (`{fromEnv: NAME}`, `{fromFile: PATH}`) are resolved here into
`pydantic.SecretStr`. With `secrets=SecretMode.OPTIONAL` (what `energyctl validate` uses, so
it works in CI where no secret exists) an unresolved reference is a warning; with
`SecretMode.REQUIRED` (every command that talks to a provider or a node) it is an error
naming the variable or file.

Neighbours: `policies/reading.py` (YAML with positions), `policies/models.py`,
`policies/checking.py` (cross-document checks), `policies/policyset.py`; called by the CLI and
the engine, which passes extra `checks` (e.g. amounts no listed provider accepts).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args

from pydantic import BaseModel, SecretStr, ValidationError

from policies.checking import check_documents
from policies.deposits import DepositPolicy, check_deposit_policies
from policies.diagnostics import Diagnostic, Location, did_you_mean, one_of, sorted_diagnostics
from policies.models import API_VERSION, SecretRef, provider_model
from policies.models import KINDS as _KINDS
from policies.policyset import AnyDocument, PolicySet, Sourced, secret_refs
from policies.reading import MAX_FILE_BYTES, RawDocument, read_file

MAX_SECRET_FILE_BYTES = 64 * 1024
_SECRET_KEYS = frozenset({"apiKey", "apiSecret", "apiToken", "password", "fromEnv", "fromFile"})
"""Inputs under these keys are never echoed in messages (they may be pasted secrets)."""

KINDS: dict[str, type[BaseModel]] = {**_KINDS, "DepositPolicy": DepositPolicy}
"""Every document kind (DepositPolicy lives in `policies/deposits.py`)."""

Check = Callable[[PolicySet], Iterable[Diagnostic]]
"""An extra check run on a valid PolicySet; it uses `PolicySet.locate` to place findings."""

SecretGate = Callable[[AnyDocument, tuple[str, ...], SecretRef, Path | None], str | None]
"""Asked before a secret reference is resolved: (document, path of the field, reference,
the file a `fromFile` names, as the loader would open it); a text refuses it (the secret
is not read, and the text is the error). The sidecar's rules for pushed sets."""


class SecretMode(enum.Enum):
    REQUIRED = "required"
    """An unresolved secret reference is an error (commands that use the secrets)."""
    OPTIONAL = "optional"
    """An unresolved secret reference is a warning (`energyctl validate`, CI)."""


@dataclass
class LoadResult:
    """What `load` found: the policy set (None if there was an error) and every diagnostic."""

    policy_set: PolicySet | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.policy_set is not None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def summary(self) -> dict[str, int]:
        """How many files and documents of each kind were read (documents only if valid)."""
        counts = {"files": len(self.files), **dict.fromkeys(KINDS, 0)}
        if self.policy_set is not None:
            for item in self.policy_set.documents:
                counts[item.kind] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready report (`energyctl validate --output json`)."""
        return {
            "valid": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "summary": self.summary(),
            "files": list(self.files),
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }


def discover(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, str]], list[Diagnostic]]:
    """The files to read, each with the name to show; and problems with the paths."""
    files: list[tuple[Path, str]] = []
    problems: list[Diagnostic] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p
                for pattern in ("*.yaml", "*.yml")
                for p in path.rglob(pattern)
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                problems.append(
                    Diagnostic.error(
                        Location(str(path)),
                        "no *.yaml or *.yml files in this directory",
                        "no-files",
                    )
                )
        elif path.exists():
            found = [path]
        else:
            problems.append(
                Diagnostic.error(
                    Location(str(path)),
                    "no such file or directory: give a policy file or a directory of them",
                    "not-found",
                )
            )
            continue
        for file in found:
            resolved = file.resolve()
            if resolved not in seen:
                seen.add(resolved)
                files.append((file, str(file)))
    return files, problems


def load(
    paths: str | Path | Iterable[str | Path],
    *,
    secrets: SecretMode = SecretMode.REQUIRED,
    checks: Sequence[Check] = (),
    env: Mapping[str, str] | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
    secret_gate: SecretGate | None = None,
) -> LoadResult:
    """Read, validate and check a policy set. Never raises for bad input. `secret_gate`:
    asked before each secret is read (a refusal is an error, whatever `secrets` says)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files, diagnostics = discover(paths)
    documents: list[Sourced] = []
    providers_complete = not diagnostics
    for path, display in files:
        raws, problems = read_file(path, display, max_file_bytes)
        diagnostics += problems
        providers_complete = providers_complete and not problems
        for raw in raws:
            document, problems = _validate(raw)
            diagnostics += problems
            if document is not None:
                documents.append(Sourced(document, raw))
            elif _kind_of(raw) in (None, "Provider"):
                providers_complete = False
    diagnostics += check_documents(documents, providers_complete=providers_complete)
    deposit_findings, address_files = check_deposit_policies(
        [
            (d.document, d.raw.file, d.locate)
            for d in documents
            if isinstance(d.document, DepositPolicy)
        ],
        [d.name for d in documents if d.kind == "Provider"] if providers_complete else None,
    )
    diagnostics += deposit_findings
    environment = os.environ if env is None else env
    for item in documents:
        diagnostics += _resolve_secrets(item, secrets, environment, secret_gate)
    policy_set = None
    if not any(d.is_error for d in diagnostics):
        policy_set = PolicySet(documents, address_files)
        for check in checks:
            diagnostics += check(policy_set)
        if any(d.is_error for d in diagnostics):
            policy_set = None
    return LoadResult(policy_set, sorted_diagnostics(diagnostics), [d for _, d in files])


# --------------------------------------------------------------------------- one document


def _kind_of(raw: RawDocument) -> str | None:
    kind = raw.data.get("kind") if isinstance(raw.data, dict) else None
    return kind if isinstance(kind, str) and kind in KINDS else None


def _validate(raw: RawDocument) -> tuple[AnyDocument | None, list[Diagnostic]]:
    data = raw.data
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else f"the value {data!r}"[:60]
        return None, [
            Diagnostic.error(
                raw.locate(()),
                f"a document must be a mapping with apiVersion, kind, metadata and spec; got {got}",
                "not-a-document",
            )
        ]
    problems = []
    version = data.get("apiVersion")
    if version != API_VERSION:
        got = "it is missing" if version is None else f"got {version!r}"
        problems.append(
            Diagnostic.error(
                raw.locate(("apiVersion",)),
                f"apiVersion must be {API_VERSION!r}; {got}",
                "api-version",
            )
        )
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        hint = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
        got = "it is missing" if kind is None else f"unknown kind {kind!r}{hint}"
        problems.append(
            Diagnostic.error(
                raw.locate(("kind",)),
                f"kind must be {one_of(KINDS)}; {got}",
                "unknown-kind",
            )
        )
    if problems:
        return None, problems
    model = provider_model() if kind == "Provider" else KINDS[str(kind)]
    try:
        document = model.model_validate(data, by_alias=True, by_name=False)
        return cast("AnyDocument", document), []
    except ValidationError as exc:
        return None, [_from_pydantic(error, raw, model) for error in exc.errors(include_url=False)]


def _dotted(loc: Sequence[str | int], raw: RawDocument) -> str:
    text = ""
    walked: tuple[str | int, ...] = ()
    for index, element in enumerate(loc):
        candidate = (*walked, element)
        if candidate not in raw.values and index != len(loc) - 1:
            continue  # a union tag, not a key of the document
        walked = candidate
        text += f"[{element}]" if isinstance(element, int) else f".{element}"
    return text.lstrip(".")


def _from_pydantic(error: Any, raw: RawDocument, model: type[BaseModel]) -> Diagnostic:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    where = raw.locate(loc)
    code = "invalid"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _valid_keys(model, loc[:-1])
        message = (
            f"unknown key {key!r}{did_you_mean(key, valid)} (valid keys here: "
            f"{', '.join(valid) or 'none'})"
        )
        where, code = raw.locate(loc, key=True), "unknown-key"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = error.get("ctx", {})
        tag = str(ctx.get("tag", ""))
        expected = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        loc = (*loc, "type")
        where, code = raw.locate(loc), "unknown-type"
        got = f"got {tag!r}{did_you_mean(tag, expected)}" if tag else "it is missing"
        message = f"type must be {one_of(expected)}; {got}"
    elif kind == "missing":
        where, code = raw.locate(loc[:-1]), "missing"
        message = f"missing required key {loc[-1]!r}"
        loc = loc[:-1]
    elif kind == "bool_type":
        message = f"expected true or false, got {error.get('input')!r}"
    elif kind not in ("value_error", "assertion_error") and not _SECRET_KEYS & set(loc):
        got = error.get("input")
        if isinstance(got, (str, int, float, bool)) and not isinstance(got, dict):
            message = f"{message} (got {got!r})"[:300]
    path = _dotted(loc, raw)
    return Diagnostic.error(where, f"{path}: {message}" if path else message, code)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found += _models_in(arg)
    return found


def _valid_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys a mapping at `loc` accepts (for 'unknown key' messages)."""
    candidates = [model]
    for element in loc:
        step: list[type[BaseModel]] = []
        for candidate in candidates:
            for name, info in candidate.model_fields.items():
                if (info.alias or name) == element:
                    step += _models_in(info.annotation)
        if not step:  # a discriminated union's tag: keep the member it names
            step = [c for c in candidates if element in _literal_tags(c)] or candidates
        candidates = step
    keys: list[str] = []
    for candidate in candidates:
        keys += [
            info.alias or name for name, info in candidate.model_fields.items() if info.alias != ""
        ]
    return list(dict.fromkeys(keys))


def _literal_tags(model: type[BaseModel]) -> tuple[Any, ...]:
    info = model.model_fields.get("type")
    return get_args(info.annotation) if info is not None else ()


# --------------------------------------------------------------------------- secrets


def secret_file(ref: SecretRef, policy_file: str) -> Path | None:
    """The file a `fromFile` reference names, as it is opened (relative to its policy file)."""
    if ref.from_file is None:
        return None
    path = Path(str(ref.from_file)).expanduser()
    return path if path.is_absolute() else Path(policy_file).parent / path


def _resolve_secrets(
    item: Sourced, mode: SecretMode, env: Mapping[str, str], gate: SecretGate | None = None
) -> list[Diagnostic]:
    found = []
    for path, ref in secret_refs(item.document):
        refused = gate(item.document, path, ref, secret_file(ref, item.raw.file)) if gate else None
        if refused is not None:
            ref._resolve(None, refused)
            message = f"{'.'.join(path)}: {refused} (secret of {item.kind} {item.name!r})"
            found.append(Diagnostic.error(item.locate(*path), message, "secret-not-allowed"))
            continue
        value, problem = _read_secret(ref, item.raw.file, env)
        ref._resolve(value, problem)
        if problem is None:
            continue
        dotted = ".".join(path)
        message = f"{dotted}: {problem} (secret of {item.kind} {item.name!r})"
        where = item.locate(*path)
        if mode is SecretMode.REQUIRED:
            found.append(Diagnostic.error(where, message, "secret-unresolved"))
        else:
            found.append(Diagnostic.warning(where, message, "secret-unresolved"))
    return found


def _read_secret(
    ref: SecretRef, policy_file: str, env: Mapping[str, str]
) -> tuple[SecretStr | None, str | None]:
    if ref.from_env is not None:
        value = env.get(ref.from_env)
        if value is None:
            return None, f"environment variable {ref.from_env} is not set"
        if not value.strip():
            return None, f"environment variable {ref.from_env} is empty"
        return SecretStr(value.strip()), None
    path = Path(str(ref.from_file)).expanduser()
    if not path.is_absolute():
        path = Path(policy_file).parent / path
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        return None, f"secret file {ref.from_file} cannot be read ({exc.strerror or exc})"
    if len(raw) > MAX_SECRET_FILE_BYTES:
        return None, f"secret file {ref.from_file} is larger than {MAX_SECRET_FILE_BYTES} bytes"
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, f"secret file {ref.from_file} is not UTF-8 text"
    if not text:
        return None, f"secret file {ref.from_file} is empty"
    return SecretStr(text), None
