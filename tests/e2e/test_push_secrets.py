"""What the API token can reach: a pushed set uses only the secrets the files use.

Issue 13, finding 8: a Provider sent to `POST /v1/policies` with a `baseUrl` of the
caller's choosing and `apiKey: {fromEnv: ANY_VAR}` or `{fromFile: /any/path}` made the
sidecar send that value there. A real `energyctl run` here refuses such sets (422, the
reference named, no value echoed), a set that points a secret of the files at another
host, and sets that would lock the operator out; it accepts the files' own set and a
secret the operator allowed at start-up (`ENERGYCTL_ALLOW_SECRETS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sandboxed import Sandbox
from tests.e2e.test_run_sidecar import AUTH, Sidecar, _box

pytestmark = pytest.mark.slow

OTHER = "other-secret-6d1f0c"  # a secret of the host the policy files never name
ALLOWED = "allowed-secret-9b7e2a"

THIEF = """---
apiVersion: energyctl/v1
kind: Provider
metadata: {{name: thief}}
spec:
  type: eopen
  baseUrl: http://127.0.0.1:9/api
  apiKey: {ref}
"""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    yield from _box(tmp_path)


def test_pushed_sets_reach_only_the_files_secrets(box: Sandbox, tmp_path: Path) -> None:
    secret_file = tmp_path / "host-secret"
    secret_file.write_text(OTHER)
    car = Sidecar(box)
    car.env |= {"OTHER_SECRET": OTHER, "ALLOWED_SECRET": ALLOWED}
    car.env["ENERGYCTL_ALLOW_SECRETS"] = "env:ALLOWED_SECRET"
    car.start()
    try:
        files = {p.name: p.read_text() for p in sorted(box.directory.glob("*.yaml"))}
        revision = car.status()["revision"]

        def push(extra: dict[str, str]) -> tuple[int, str]:
            answer = car.post("/v1/policies", {"files": files | extra}, AUTH)
            assert OTHER not in answer.text and ALLOWED not in answer.text
            return answer.status_code, answer.text

        for ref in ("{fromEnv: OTHER_SECRET}", f"{{fromFile: {secret_file}}}"):
            status, text = push({"thief.yaml": THIEF.format(ref=ref)})
            assert status == 422 and "not used by the policy files" in text, text
        status, text = push({"thief.yaml": THIEF.format(ref="{fromEnv: SANDBOX_EOPEN_API_KEY}")})
        assert status == 422 and "may not send it to a eopen at http://127.0.0.1:9/api" in text
        no_policies = {n: t for n, t in files.items() if n != "policies.yaml"}
        answer = car.post("/v1/policies", {"files": no_policies}, AUTH)
        assert answer.status_code == 422 and "no EnergyPolicy" in answer.text, answer.text
        engine = files["engine.yaml"].split("  http:\n")[0]
        status, text = push({"engine.yaml": engine})
        assert status == 422 and "no http.apiToken" in text, text
        assert car.status()["revision"] == revision  # nothing was put in force

        assert push({})[0] == 200  # the files' own set
        status, text = push({"thief.yaml": THIEF.format(ref="{fromEnv: ALLOWED_SECRET}")})
        assert status == 200, text  # allowed by the operator at start-up
        assert car.status()["policySource"] == "api"
        status, text = push({"thief.yaml": THIEF.format(ref="{fromEnv: OTHER_SECRET}")})
        assert status == 422, text  # still held to the files' secrets
    finally:
        assert car.terminate() == 0, car.logs()[-4000:]
    assert OTHER not in car.logs() and ALLOWED not in car.logs()
