"""Canary credentials: after a real sidecar run, no secret appears anywhere we can read.

Every credential of the policy set gets a unique canary value: each vendor's API key and
secret (the World's emulators are told to accept them; itrx's secret is read from a file,
the others from the environment), the sidecar's bearer token and a TronGrid API key for the
node. The store is SQLite (its file, WAL and shared memory are read as bytes).

One `energyctl run` process runs against the served World with purchases happening
(drained addresses), and is driven through every endpoint, including the failure paths: a
wrong token, a forged callback, a broken policy set over the API and a broken policy file
on disk (hot reload), an `ensure`, a vendor that starts refusing our key mid-run, and every
vendor refusing orders with a message that quotes our key (the `echo_credentials` fault:
what a vendor sends is scrubbed of every secret the process holds). Then
no canary may appear in: the process's stdout/stderr, any HTTP answer, the store's bytes,
the output of `energyctl validate/plan/status/orders` run with the same environment, nor in
`repr`/`str` of what is built in process (PolicySet and its documents, Session, its
ProviderPool and adapters, the errors they raise). ARCHITECTURE.md invariant 9.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.core.clock import ScaledClock
from engine.session import Session
from engine.store import OrderPhase
from policies.loading import SecretMode, load
from providers.base import ProviderError
from providers.itrx import sign
from sandbox import demo
from sandbox.world import World
from tests.e2e.sandboxed import START_ENERGY, Sandbox
from tests.e2e.test_run_sidecar import Sidecar

pytestmark = pytest.mark.slow

CANARIES: dict[str, str] = {
    f"{vendor}.{key}": f"canary-{vendor}-{key.lower()}-{n:02d}c4f7e1d9"
    for n, (vendor, key) in enumerate(
        (vendor, key) for vendor in demo.VENDORS for key in demo.CREDENTIALS[vendor]
    )
}
CANARIES["http.apiToken"] = "canary-api-token-8a3b5c7d9e"
CANARIES["node.apiKey"] = "canary-trongrid-key-2468ace0"
ITRX_SECRET_FILE = "itrx.secret"


def _environment() -> dict[str, str]:
    env = {
        demo.ENV[vendor][key]: CANARIES[f"{vendor}.{key}"]
        for vendor in demo.VENDORS
        for key in demo.CREDENTIALS[vendor]
    }
    del env[demo.ENV["itrx"]["apiSecret"]]  # read from a file instead
    env["ENERGYCTL_TEST_API_TOKEN"] = CANARIES["http.apiToken"]
    env["CANARY_TRONGRID_KEY"] = CANARIES["node.apiKey"]
    return env


def _configure(box: Sandbox) -> None:
    """Canary credentials in the emulators, the policy files and the environment."""
    for vendor in demo.VENDORS:
        emulator: Any = box.world.emulators[vendor]
        emulator.api_key = CANARIES[f"{vendor}.apiKey"]
        if "apiSecret" in demo.CREDENTIALS[vendor]:
            emulator.api_secret = CANARIES[f"{vendor}.apiSecret"]
    directory = box.directory
    (directory / ITRX_SECRET_FILE).write_text(CANARIES["itrx.apiSecret"] + "\n")
    providers = (directory / "providers.yaml").read_text()
    variable = demo.ENV["itrx"]["apiSecret"]
    assert f"{{fromEnv: {variable}}}" in providers
    providers = providers.replace(f"{{fromEnv: {variable}}}", f"{{fromFile: {ITRX_SECRET_FILE}}}")
    (directory / "providers.yaml").write_text(providers)
    engine = (directory / "engine.yaml").read_text()
    node = engine.index("  node:\n") + len("  node:\n")
    engine = engine[:node] + "    apiKey: {fromEnv: CANARY_TRONGRID_KEY}\n" + engine[node:]
    token = "    apiToken: {fromEnv: ENERGYCTL_TEST_API_TOKEN}\n"
    if "\n  http:\n" in engine:
        engine = engine.replace("\n  http:\n", "\n  http:\n" + token, 1)
    else:
        engine += "  http:\n" + token
    (directory / "engine.yaml").write_text(engine)
    box.env.update(_environment())


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with World(clock=ScaledClock(), watched=8) as world:
        sandbox = Sandbox(world, tmp_path_factory.mktemp("canaries"))
        _configure(sandbox)
        yield sandbox


class Seen:
    """Every text the run produced, by where it came from."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, bytes]] = []

    def add(self, where: str, value: str | bytes) -> None:
        data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        self.texts.append((where, data))

    def answer(self, where: str, response: httpx.Response) -> httpx.Response:
        self.add(f"{where} -> {response.status_code}", response.content)
        self.add(f"{where} headers", repr(response.headers))
        return response

    def leaks(self) -> list[tuple[str, str]]:
        found = []
        for where, data in self.texts:
            for name, canary in CANARIES.items():
                if canary.encode() in data:
                    found.append((where, name))
        return found


def _drive(car: Sidecar, seen: Seen) -> None:
    box = car.box
    token = {"Authorization": f"Bearer {CANARIES['http.apiToken']}"}
    address = box.policy_set.policy("payouts").spec.addresses[0]
    box.drain([address])
    car.wait_for(lambda: bool(box.orders()), "an order in the store", timeout=30)
    car.wait_for(
        lambda: any(o.phase is OrderPhase.DELIVERED for o in box.orders()), "delivered", 30
    )
    for path in ("/healthz", "/readyz", "/v1/status", "/metrics", "/v1/orders",
                 "/v1/orders?state=open&limit=5", "/openapi.json"):  # fmt: skip
        seen.answer(f"GET {path}", car.get(path))
    treasury = box.policy_set.policy("treasury").spec.addresses[0]
    body = {"address": treasury, "energy": START_ENERGY + 100_000, "wait": 10}
    ensured = seen.answer("POST /v1/ensure", car.post("/v1/ensure", body, token))
    assert ensured.status_code == 200, ensured.text
    for headers in ({}, {"Authorization": "Bearer wrong"},
                    {"Authorization": CANARIES["http.apiToken"]}):  # fmt: skip
        seen.answer("POST /v1/ensure refused", car.post("/v1/ensure", body, headers))
    broken = {"files": {"p.yaml": "kind: EnergyPolicy\nspec: {apiKey: x}\n"}}
    answer = seen.answer("POST /v1/policies broken", car.post("/v1/policies", broken, token))
    assert answer.status_code == 422
    payload = json.dumps({"serial": "x", "status": 40}).encode()
    now = str(int(time.time()))
    for signature in ("00" * 32, sign(CANARIES["itrx.apiKey"], now, payload.decode())):
        forged = {"TIMESTAMP": now, "SIGNATURE": signature, "Content-Type": "application/json"}
        url = f"{car.url}/v1/callbacks/itrx"
        seen.answer("POST callback forged", httpx.post(url, content=payload, headers=forged))
    good = {"TIMESTAMP": now, "SIGNATURE": sign(CANARIES["itrx.apiSecret"], now, payload.decode())}
    seen.answer("POST callback", httpx.post(
        f"{car.url}/v1/callbacks/itrx", content=payload, headers=good, timeout=10))  # fmt: skip
    # a broken policy file on disk: the reload fails and the status says why
    policies = box.directory / "policies.yaml"
    original = policies.read_text()
    policies.write_text(original + "---\nkind: EnergyPolicy\nspec: {threshold: [}\n")
    car.wait_for(lambda: "error" in car.get("/v1/status").text.lower(), "a reload error", 15)
    seen.answer("GET /v1/status after a broken edit", car.get("/v1/status"))
    policies.write_text(original)
    # a vendor that refuses our key from now on: auth errors flow to logs and status
    for vendor in ("tronsave", "eopen"):
        emulator: Any = box.world.emulators[vendor]
        emulator.api_key = "rotated-elsewhere"
    box.drain(box.policy_set.policy("deposit-sweep").spec.addresses[:2])
    time.sleep(4)
    for path in ("/v1/status", "/metrics", "/v1/orders"):
        seen.answer(f"GET {path} after refusals", car.get(path))
    for vendor in ("tronsave", "eopen"):
        emulator = box.world.emulators[vendor]
        emulator.api_key = CANARIES[f"{vendor}.apiKey"]


def _store_bytes(directory: Path, seen: Seen) -> None:
    files = sorted(directory.glob("energyctl.db*"))
    assert files, "no store file"
    for file in files:
        seen.add(f"store {file.name}", file.read_bytes())


def _cli(box: Sandbox, seen: Seen) -> None:
    d = str(box.directory)
    for args in (["validate", d], ["validate", "-o", "json", "--strict-secrets", d],
                 ["plan", "-f", d], ["plan", "-f", d, "-o", "json"], ["status", "-f", d],
                 ["status", "-f", d, "-o", "json"], ["orders", "-f", d, "-o", "json"],
                 ["orders", "-f", d]):  # fmt: skip
        result = box.energyctl(*args)
        assert result.returncode in (0, 1, 2), (args, result.stderr)
        seen.add(f"energyctl {' '.join(args[:3])} stdout", result.stdout)
        seen.add(f"energyctl {' '.join(args[:3])} stderr", result.stderr)


async def _in_process(box: Sandbox, seen: Seen) -> None:
    result = load(box.directory, secrets=SecretMode.REQUIRED, env=box.env)
    assert result.policy_set is not None, result.diagnostics
    policy_set = result.policy_set
    seen.add("repr(PolicySet)", repr(policy_set))
    for item in policy_set.documents:
        seen.add(f"repr({item.kind} {item.name})", repr(item) + str(item.document))
        seen.add(f"dump({item.name})", item.document.model_dump_json())
        seen.add(f"dump({item.name}) python", repr(item.document.model_dump()))
    async with Session(policy_set) as session:
        seen.add("repr(Session)", repr(session) + repr(vars(session)))
        pool: Any = session.reconciler.providers
        seen.add("repr(ProviderPool)", repr(pool))
        for name in pool:
            provider = pool[name]
            seen.add(f"repr({name})", repr(provider) + repr(vars(provider)))
            api: Any = getattr(provider, "_api", None)
            if api is not None:
                seen.add(f"{name} client", repr(vars(api)) + repr(api.client.headers))
        seen.add("repr(reader)", repr(session.reader) + repr(vars(session.reader)))
        # errors: a vendor that refuses the key, raised and chained
        emulator: Any = box.world.emulators["itrx"]
        emulator.api_key = "rotated-elsewhere"
        try:
            await pool["itrx"].balance()
        except ProviderError as exc:
            seen.add("itrx error", f"{exc!s} {exc!r} {exc.__cause__!r} {exc.__context__!r}")
        else:
            pytest.fail("the refused key was accepted")
        finally:
            emulator.api_key = CANARIES["itrx.apiKey"]
        # a vendor that echoes the key in its refusal: the error carries no secret
        emulator.faults.echo_credentials(1)
        try:
            await pool["itrx"].balance()
        except ProviderError as exc:
            assert "[redacted]" in str(exc), str(exc)
            seen.add("itrx echo", f"{exc!s} {exc!r} {exc.vendor_code}")
        else:
            pytest.fail("the echoed refusal was accepted")
    unresolved = load(box.directory, secrets=SecretMode.REQUIRED, env={})
    seen.add("unresolved diagnostics", "\n".join(map(str, unresolved.diagnostics)))
    assert not unresolved.ok


@pytest.mark.timeout(180)  # a sidecar, the CLI and an in-process session over every vendor
def test_no_canary_appears_anywhere(box: Sandbox) -> None:
    seen = Seen()
    car = Sidecar(box)
    car.env.update(_environment())
    car.start()
    try:
        _drive(car, seen)
        _store_bytes(box.directory, seen)
    finally:
        code = car.terminate()
        seen.add("sidecar logs", car.log.read_bytes())
    assert code == 0
    assert "decision" in car.logs()  # the log was written, at debug level
    _store_bytes(box.directory, seen)
    _cli(box, seen)
    asyncio.run(_in_process(box, seen))
    assert len(seen.texts) > 50
    assert seen.leaks() == []


def test_a_vendor_echoing_our_key_is_scrubbed_everywhere(box: Sandbox) -> None:
    """Every vendor refuses our orders with a message quoting the key (and signature) we
    sent (the `echo_credentials` fault): the text reaches orders.last_error, order_events,
    provider_health, the logs, /v1/orders and `energyctl orders` scrubbed."""
    seen = Seen()
    car = Sidecar(box)
    car.env.update(_environment())
    for vendor in demo.VENDORS:
        box.world.emulators[vendor].faults.echo_credentials(1000, on="create")
    car.start()
    payouts = box.policy_set.policy("payouts").spec.addresses
    address = payouts[-1]  # not the one the other test drains (payouts[0])
    assert address != payouts[0]
    try:
        box.drain([address])

        def refused() -> bool:
            return any(o.address == address and o.last_error for o in box.orders())

        try:
            car.wait_for(refused, "an order refused by an echoing vendor", 25)
        except AssertionError:
            entries = [e for e in json.dumps(car.status()).split("{") if address in e]
            raise AssertionError(entries) from None
        failed = [o for o in box.orders() if o.address == address and o.last_error]
        assert "[redacted]" in (failed[0].last_error or ""), failed[0].last_error
        for path in ("/v1/status", "/v1/orders", f"/v1/orders?address={address}", "/metrics"):
            seen.answer(f"GET {path}", car.get(path))
    finally:
        for vendor in demo.VENDORS:
            box.world.emulators[vendor].faults.reset()
        code = car.terminate()
        seen.add("sidecar logs", car.log.read_bytes())
    assert code == 0
    _store_bytes(box.directory, seen)
    for args in (["orders", "-f", str(box.directory)],
                 ["orders", "-f", str(box.directory), "-o", "json"]):  # fmt: skip
        result = box.energyctl(*args)
        seen.add(f"energyctl {' '.join(args)}", result.stdout + result.stderr)
    assert seen.leaks() == []


def test_the_scan_finds_a_canary_where_one_is(box: Sandbox) -> None:
    control = Seen()
    control.add("the secret file", (box.directory / ITRX_SECRET_FILE).read_bytes())
    control.add("an env dump", json.dumps(_environment()))
    found = control.leaks()
    assert ("the secret file", "itrx.apiSecret") in found
    assert {name for where, name in found if where == "an env dump"} == set(CANARIES) - {
        "itrx.apiSecret"
    }
