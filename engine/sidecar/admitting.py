"""What a policy set sent to `POST /v1/policies` may reach: the bearer token's limits.

The API token lets a caller put a policy set in force. Policy files name secrets by
reference (`{fromEnv: NAME}`, `{fromFile: PATH}`) and the sidecar resolves them from its
own environment and disk, then sends each to the host its document names (a Provider's
`baseUrl`, the node). Unchecked, a pushed Provider with `baseUrl` of the caller's choosing
and `apiKey: {fromFile: /any/path}` or `{fromEnv: ANY_VAR}` would send that value there.

`PushRules` decides, before anything is read (`policies.loading.SecretGate`):

- a secret reference in a pushed set is allowed when the set the process read from its
  policy files (the last one put in force from them) uses the **same source** (the same
  variable name, or a `fromFile` naming the same file, symbolic links resolved) **for the
  same destination**: a Provider of the same `type`, `baseUrl` and `network`, the same
  node URL, the same store URL, or the API token itself. A pushed set can reorder, retune
  and drop what the files hold, not point a secret somewhere else;
- or when the operator allowed the source at start-up (`--allow-secret env:NAME` or
  `file:PATH`, `ENERGYCTL_ALLOW_SECRETS`): then it may go to any destination the pushed
  set names (a new vendor account, say);
- and a pushed set must keep the operator in: one without any `EnergyPolicy`, or without
  `http.apiToken` while the running set has one, is refused (`set_problems`).

A refusal names the field, the reference (a variable name or a path, never a value) and
what would be allowed. Neighbours: `swapping.py` (calls these for pushed sets),
`service.py`, `policies/loading.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from policies.base import SecretRef
from policies.deposits import DepositPolicy
from policies.loading import secret_file
from policies.models import EngineConfig, Provider
from policies.policyset import AnyDocument, PolicySet, secret_refs

Source = tuple[str, str]  # ("env", NAME) or ("file", real path)


class AllowListError(ValueError):
    """An `--allow-secret` entry that is not `env:NAME` or `file:PATH`."""


def parse_allowed(entries: Iterable[str]) -> frozenset[Source]:
    """`env:NAME` and `file:/ABSOLUTE/PATH` entries as sources; `AllowListError` otherwise."""
    out: set[Source] = set()
    for entry in entries:
        kind, _, value = entry.strip().partition(":")
        if (
            kind == "env"
            and value
            and (value[0].isalpha() or value[0] == "_")
            and all(c.isalnum() or c == "_" for c in value)
        ):
            out.add(("env", value))
        elif kind == "file" and value.startswith("/"):
            out.add(("file", os.path.realpath(value)))
        else:
            raise AllowListError(
                f"allowed secret {entry!r}: write env:NAME (an environment variable) or "
                "file:/ABSOLUTE/PATH"
            )
    return frozenset(out)


def source(ref: SecretRef, file: Path | None) -> Source:
    if ref.from_env is not None:
        return ("env", ref.from_env)
    assert file is not None
    return ("file", os.path.realpath(file))


def destination(document: AnyDocument, path: tuple[str, ...]) -> str:
    """Where the secret at `path` of `document` is sent, in words (compared as such)."""
    if isinstance(document, Provider):
        spec = document.spec
        url = (spec.base_url or "the vendor's default URL").rstrip("/")
        network = getattr(spec, "network", None)
        where = f"{spec.type} at {url}" + (f" ({network})" if network else "")
        return f"a {where}"
    if isinstance(document, EngineConfig):
        field = path[1] if len(path) > 1 else ""
        if field == "node":
            return f"the node at {document.spec.node.url.rstrip('/')}"
        if field == "store":
            return f"the store at {document.spec.store.url}"
        if field == "http":
            return "the API token"
    if isinstance(document, DepositPolicy):
        origin = document.spec.addresses_from
        if "postgres" in path and origin is not None and origin.postgres is not None:
            return f"the database at {origin.postgres.url}"
        if "webhook" in path and document.spec.webhook is not None:
            return f"the webhook at {document.spec.webhook.url}"
    return "/".join(path)


def uses(policy_set: PolicySet) -> dict[Source, set[str]]:
    """Every secret source of the set and the destinations it goes to."""
    found: dict[Source, set[str]] = {}
    for item in policy_set.documents:
        for path, ref in secret_refs(item.document):
            key = source(ref, secret_file(ref, item.raw.file))
            found.setdefault(key, set()).add(destination(item.document, path))
    return found


def _named(key: Source) -> str:
    return f"environment variable {key[1]}" if key[0] == "env" else f"file {key[1]}"


class PushRules:
    """The secret gate for one pushed set, against the files' set and the allow-list."""

    def __init__(self, trusted: PolicySet | None, allowed: frozenset[Source]) -> None:
        self.allowed = allowed
        self.used = uses(trusted) if trusted is not None else {}

    def gate(
        self, document: AnyDocument, path: tuple[str, ...], ref: SecretRef, file: Path | None
    ) -> str | None:
        """None when the reference may be resolved; else why not (`SecretGate`)."""
        key = source(ref, file)
        if key in self.allowed:
            return None
        where = destination(document, path)
        known = self.used.get(key)
        if known is not None and where in known:
            return None
        allow = f"--allow-secret {key[0]}:{key[1]}"
        if known is None:
            return (
                f"{_named(key)} is not used by the policy files this sidecar runs, and a "
                f"set sent over the API may only use those secrets (or start it with {allow})"
            )
        return (
            f"{_named(key)} goes to {', '.join(sorted(known))} in the policy files this "
            f"sidecar runs; a set sent over the API may not send it to {where} (change the "
            f"files, or start the sidecar with {allow})"
        )


def set_problems(new: PolicySet, running: PolicySet | None) -> list[str]:
    """Why a pushed set would lock the operator out (empty: it would not)."""
    problems = []
    if not new.policies and not new.deposit_policies:
        problems.append(
            "the set has no EnergyPolicy or DepositPolicy: it would stop every top-up; "
            "send the policies with it (or change the policy files)"
        )
    had = running is not None and running.settings.http.api_token is not None
    if had and new.settings.http.api_token is None:
        problems.append(
            "the set has no http.apiToken (no EngineConfig, or one without it): the API "
            "would refuse every change until a restart; keep the EngineConfig's apiToken"
        )
    return problems


__all__ = [
    "AllowListError",
    "PushRules",
    "Source",
    "destination",
    "parse_allowed",
    "set_problems",
    "uses",
]
