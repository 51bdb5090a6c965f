"""`energyctl apply --server URL`: hand a validated policy set to a running sidecar.

`policy_files(paths)` collects the YAML files the paths name (the same discovery as every
other command) as `{"NAME.yaml": TEXT}`, the body `POST /v1/policies` takes: file names
only, so two files with one name in different directories are refused rather than one
silently replacing the other. `push_policies(server, files, token)` sends them with the
bearer token and returns the sidecar's status code and JSON answer; the sidecar validates
the set again with its own secrets and puts it in force between passes
(docs/sidecar.md). Secrets are never sent: the files carry references, which the sidecar
resolves from its own environment.

Library code: raises `PushError` for what the caller must report. Neighbours:
`engine/cli/planning.py` (the `apply` command), `service.py` (the endpoint).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from engine.core.errors import EngineError
from engine.observe.chain import public_url
from policies.loading import discover

MAX_BYTES = 1024 * 1024  # the sidecar's limit for a policy set body


class PushError(EngineError):
    """The policy set could not be handed over (no answer, files unfit to send)."""


def policy_files(paths: Iterable[str | Path]) -> dict[str, str]:
    """`{"NAME.yaml": TEXT}` for every policy file the paths name."""
    found, problems = discover(paths)
    if problems:
        raise PushError("; ".join(str(p) for p in problems))
    files: dict[str, str] = {}
    origin: dict[str, Path] = {}
    for path, _ in found:
        name = path.name
        if name in files:
            raise PushError(
                f"two policy files are named {name!r} ({origin[name]} and {path}): the "
                "sidecar takes file names only; rename one"
            )
        files[name], origin[name] = path.read_text(), path
    if sum(len(text.encode()) for text in files.values()) > MAX_BYTES:
        raise PushError(f"the policy files exceed the sidecar's {MAX_BYTES} byte limit")
    return files


def push_policies(
    server: str,
    files: dict[str, str],
    token: SecretStr | None,
    *,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> tuple[int, Any]:
    """POST the files to `server`'s `/v1/policies`; (status code, JSON answer)."""
    url = server.rstrip("/") + "/v1/policies"
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.post(url, json={"files": files}, headers=headers)
    except httpx.HTTPError as exc:
        raise PushError(f"{public_url(url)}: {type(exc).__name__}: {exc}") from exc
    try:
        answer: Any = response.json()
    except ValueError:
        answer = {"error": response.text[:500]}
    return response.status_code, answer


__all__ = ["MAX_BYTES", "PushError", "policy_files", "push_policies"]
