"""schemathesis against the sidecar's OpenAPI document, on a real `energyctl run` process.

The sidecar runs against the served sandbox World (tests/e2e/test_run_sidecar.py's
`Sidecar`). The document it serves at `/openapi.json` is checked to be `engine.sidecar.openapi`'s,
and every operation in it is called with generated requests, valid (positive) and invalid
(negative), each with and without the bearer token. Checks: no 5xx, status codes,
content types, headers and bodies conform to the document; with the token withheld, a
mutating endpoint never answers 2xx (schemathesis' `ignored_auth`).

Bounded by the `ci` profile (tests/fuzz/profiles.py); loopback only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.core.clock import ScaledClock
from engine.sidecar.openapi import document
from sandbox.world import World
from tests.e2e.sandboxed import Sandbox
from tests.e2e.test_run_sidecar import AUTH, Sidecar
from tests.fuzz.profiles import fuzz

pytestmark = pytest.mark.slow

SCHEMA = schemathesis.openapi.from_dict(document())
OPERATIONS = [
    (method.upper(), path) for path, item in document()["paths"].items() for method in item
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MUTATING = {"/v1/ensure", "/v1/policies", "/v1/deposit-addresses"}
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # an operation without parameters or body has no invalid request to generate
    if mode is GenerationMode.POSITIVE
    or {"parameters", "requestBody"} & set(document()["paths"][path][method.lower()])
]


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    with World(clock=ScaledClock(), watched=4) as world:
        box = Sandbox(world, tmp_path_factory.mktemp("api"))
        car = Sidecar(box)
        try:
            yield car.start()
        finally:
            if car.proc is not None:
                code = car.terminate()
                assert code == 0, car.logs()[-4000:]


def test_the_served_document_is_the_one_fuzzed(sidecar: Sidecar) -> None:
    served = httpx.get(sidecar.url + "/openapi.json", timeout=10).json()
    assert served == document()


@pytest.mark.parametrize("token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize(
    ("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES]
)
def test_operation_conforms(
    sidecar: Sidecar, method: str, path: str, token: bool, mode: GenerationMode
) -> None:
    operation = SCHEMA[path][method]
    headers = dict(AUTH) if token else None
    checks: list[Any] = list(CHECKS)
    if not token and path in MUTATING:
        checks.append(ignored_auth)

    @fuzz(12)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if not token and case.headers:
            case.headers.pop("Authorization", None)
        case.call_and_validate(base_url=sidecar.url, headers=headers, checks=checks, timeout=30)

    run()
    assert sidecar.proc is not None and sidecar.proc.poll() is None, sidecar.logs()[-4000:]


def test_the_sidecar_logged_no_traceback(sidecar: Sidecar) -> None:
    assert "Traceback" not in sidecar.logs(), sidecar.logs()[-4000:]
