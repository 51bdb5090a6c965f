"""A vendor adapter installed as a plug-in, from outside the repository, end to end.

The test writes a tiny distribution to a temporary directory: a module with an adapter
(`PlugProvider`, with its settings model `PlugSpec`: an extra `region` field) and a
`.dist-info` whose `entry_points.txt` puts it in the `energyctl.providers` group. The
directory goes on `PYTHONPATH` of `energyctl` subprocesses, so `importlib.metadata` finds
the entry point as it would an installed package's. The vendor is a small Starlette app
served on loopback that delegates on the emulated chain of a served World (which also
provides the node).

Then: `validate` accepts the document (and reports a wrong `region` type at its
line:column), `schema` shows the vendor's fields, `providers` quotes it, and `apply`
buys from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.core.clock import ScaledClock
from providers import registry
from sandbox import demo
from sandbox.serving import serve
from sandbox.world import World

pytestmark = pytest.mark.slow

ENERGYCTL = str(Path(sys.executable).with_name("energyctl"))
STAKER = "TYukBQZ2XXCcRCReAUguyXncCWNY9CEiDQ"
PRICE = 80  # sun per unit of energy
KEY = "plug-key-123"

PLUGIN = '''\
"""A vendor adapter that lives outside energyctl (a test plug-in)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr

from policies.vendors import ProviderSettings
from providers.base import (
    Capabilities, OrderRequest, OrderState, OrderStatus, Provider, Quote, QuoteRequest,
    Receipt,
)


class PlugSpec(ProviderSettings):
    """Plug (a test vendor): API key and a region."""

    type: Literal["plugtest"] = Field(description="Vendor type.")
    region: str = Field(description="Where the plug vendor sells energy.")


class PlugProvider(Provider):
    type_name: ClassVar[str] = "plugtest"
    settings: ClassVar[type[ProviderSettings]] = PlugSpec
    capabilities: ClassVar[Capabilities] = Capabilities(
        durations=(3600,), min_duration=3600, max_duration=3600, min_amount=10_000
    )

    def __init__(
        self, name: str, *, api_key: SecretStr, region: str, base_url: str,
        clock: Any = None, transport: Any = None, retry: Any = None,
    ) -> None:
        super().__init__(name)
        self._client = httpx.AsyncClient(
            base_url=base_url, transport=transport,
            headers={"key": api_key.get_secret_value(), "region": region},
        )

    async def quote(self, request: QuoteRequest) -> Quote:
        answer = await self._client.get("/price", params={"energy": request.energy})
        answer.raise_for_status()
        return Quote(
            provider=self.name, energy=request.energy, duration=request.duration,
            total_sun=answer.json()["sun"],
        )

    async def place(self, order: OrderRequest) -> Receipt:
        answer = await self._client.post("/orders", json={
            "receiver": order.receiver, "energy": order.energy, "id": order.client_order_id,
        })
        answer.raise_for_status()
        body = answer.json()
        return Receipt(
            provider=self.name, client_order_id=order.client_order_id,
            provider_order_id=body["order"], receiver=order.receiver, energy=order.energy,
            duration=order.duration, cost_sun=body["sun"],
        )

    async def status(self, receipt: Receipt) -> OrderStatus:
        answer = await self._client.get(f"/orders/{receipt.provider_order_id}")
        answer.raise_for_status()
        return OrderStatus(
            state=OrderState.DELEGATED, delegated_energy=answer.json()["energy"]
        )

    async def balance(self) -> int:
        answer = await self._client.get("/balance")
        answer.raise_for_status()
        return int(answer.json()["sun"])

    async def aclose(self) -> None:
        await self._client.aclose()
'''


def _write_plugin(root: Path) -> None:
    (root / "energyctl_plugtest.py").write_text(PLUGIN)
    info = root / "energyctl_plugtest-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: energyctl-plugtest\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[energyctl.providers]\nplugtest = energyctl_plugtest:PlugProvider\n"
    )


class Vendor:
    """The plug-in's vendor: prices, takes orders, delegates on the World's chain."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.orders: dict[str, dict[str, Any]] = {}
        self.seen_regions: set[str] = set()
        self.app = Starlette(
            routes=[
                Route("/price", self.price),
                Route("/orders", self.place, methods=["POST"]),
                Route("/orders/{order}", self.status),
                Route("/balance", self.balance),
            ]
        )

    def _authorised(self, request: Request) -> bool:
        self.seen_regions.add(request.headers.get("region", ""))
        return request.headers.get("key") == KEY

    async def price(self, request: Request) -> JSONResponse:
        assert self._authorised(request)
        return JSONResponse({"sun": int(request.query_params["energy"]) * PRICE})

    async def place(self, request: Request) -> JSONResponse:
        assert self._authorised(request)
        body = await request.json()
        order = f"plug-{len(self.orders) + 1}"
        sun = self.world.chain.sun_for_energy(body["energy"])
        self.world.chain.delegate_energy(STAKER, body["receiver"], sun, None)
        self.orders[order] = body
        return JSONResponse({"order": order, "sun": body["energy"] * PRICE})

    async def status(self, request: Request) -> JSONResponse:
        assert self._authorised(request)
        return JSONResponse({"energy": self.orders[request.path_params["order"]]["energy"]})

    async def balance(self, request: Request) -> JSONResponse:
        assert self._authorised(request)
        return JSONResponse({"sun": 1_000_000_000})


def _policies(directory: Path, node_url: str, vendor_url: str, address: str) -> None:
    (directory / "engine.yaml").write_text(
        textwrap.dedent(f"""\
            apiVersion: energyctl/v1
            kind: EngineConfig
            metadata: {{name: engine}}
            spec:
              node: {{url: "{node_url}"}}
              store: {{url: "sqlite:///{directory / "state.db"}"}}
            """)
    )
    (directory / "provider.yaml").write_text(
        textwrap.dedent(f"""\
            apiVersion: energyctl/v1
            kind: Provider
            metadata: {{name: plugged}}
            spec:
              type: plugtest
              baseUrl: "{vendor_url}"
              apiKey: {{fromEnv: PLUG_API_KEY}}
              region: eu-west
            """)
    )
    (directory / "policy.yaml").write_text(
        textwrap.dedent(f"""\
            apiVersion: energyctl/v1
            kind: EnergyPolicy
            metadata: {{name: wallet}}
            spec:
              addresses: [{address}]
              threshold: 65k
              topUp: {{amount: 65k, duration: 1h}}
              providers: [plugged]
              maxPrice: 100 sun/energy
              budget: {{perDay: 100 TRX}}
            """)
    )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], Vendor, str]]:
    plugin_root = tmp_path / "site"
    plugin_root.mkdir()
    _write_plugin(plugin_root)
    policies = tmp_path / "policies"
    policies.mkdir()
    with World(clock=ScaledClock(), watched=1) as world:
        chain = world.chain
        chain.create_account(STAKER, 100_000_000 * 1_000_000)
        chain.stake_energy(STAKER, 90_000_000 * 1_000_000)
        vendor = Vendor(world)
        address = demo.watched_address(0)
        with serve(vendor.app) as server:
            _policies(policies, world.url("node"), server.url, address)
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    [str(plugin_root), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
                "PLUG_API_KEY": KEY,
            }
            yield policies, env, vendor, address


def _energyctl(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENERGYCTL, *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd,
        check=False,
    )  # fmt: skip


def test_a_plugin_vendor_is_validated_shown_quoted_and_bought_from(
    setup: tuple[Path, dict[str, str], Vendor, str],
) -> None:
    policies, env, vendor, address = setup

    validated = _energyctl(env, policies, "validate", str(policies))
    assert validated.returncode == 0, validated.stdout + validated.stderr

    schema = _energyctl(env, policies, "schema")
    assert schema.returncode == 0, schema.stderr
    plug = json.loads(schema.stdout)["$defs"]["PlugSpec"]
    assert plug["properties"]["type"]["const"] == "plugtest"
    assert "region" in plug["required"]

    quoted = _energyctl(
        env, policies, "providers", "-f", str(policies), "--amount", "65k",
        "--duration", "1h", "-o", "json",
    )  # fmt: skip
    assert quoted.returncode == 0, quoted.stdout + quoted.stderr
    assert str(65_000 * PRICE) in quoted.stdout

    applied = _energyctl(env, policies, "apply", "-f", str(policies), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert [o["receiver"] for o in vendor.orders.values()] == [address]
    assert [o["energy"] for o in vendor.orders.values()] == [65_000]
    assert vendor.seen_regions == {"eu-west"}  # the plug-in's own setting reached it


def test_a_plugin_vendors_fields_are_checked_at_their_line_and_column(
    setup: tuple[Path, dict[str, str], Vendor, str],
) -> None:
    policies, env, _vendor, _address = setup
    document = policies / "provider.yaml"
    document.write_text(document.read_text().replace("region: eu-west", "regio: eu-west"))
    result = _energyctl(env, policies, "validate", str(policies))
    assert result.returncode == 1
    assert f"{document}:8:3: error: spec.regio: unknown key 'regio'" in result.stderr, result.stderr
    assert "did you mean 'region'? (valid keys here: type, baseUrl, apiKey, region)" in (
        result.stderr
    )

    without = {k: v for k, v in env.items() if k != "PYTHONPATH"}  # not installed
    document.write_text(document.read_text().replace("regio: eu-west", "region: eu-west"))
    refused = _energyctl(without, policies, "validate", str(policies))
    assert refused.returncode == 1
    *first, last = (repr(name) for name in registry.BUILTIN)  # the built-ins only
    expected = f"spec.type: type must be {', '.join(first)} or {last}; got 'plugtest'"
    assert f"{document}:5:9: error: {expected}" in refused.stderr, refused.stderr

    document.write_text(document.read_text().replace("type: plugtest", "type: plugtset"))
    listed = _energyctl(env, policies, "validate", str(policies))
    builtin = ", ".join(repr(name) for name in registry.BUILTIN)
    # the plug-in listed last
    assert f"type must be {builtin} or 'plugtest'; got 'plugtset'" in listed.stderr
