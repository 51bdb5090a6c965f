"""The sandbox world: accounts on the emulated chain, served and in-process, policy files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from engine.core.clock import ScaledClock, VirtualClock
from engine.observe.chain import ChainReader
from policies.loading import load
from sandbox import demo
from sandbox.world import World

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "sandbox"
EOPEN_KEY = {"API-KEY": demo.CREDENTIALS["eopen"]["apiKey"]}


def test_accounts_are_deterministic_and_funded() -> None:
    world = World(watched=3)
    assert world.watched == [demo.watched_address(n) for n in range(3)]
    assert len(set(world.watched)) == 3 and demo.SINK not in world.watched
    for address in world.watched:
        assert world.chain.has_account(address) and world.available_energy(address) == 0
    addresses = {demo.provider_address(v) for v in demo.VENDORS}
    assert len(addresses) == len(demo.VENDORS)
    for delegator in world.delegators.values():
        assert delegator.available_energy() > 40_000_000  # about 5 M TRX staked each
    assert not world.chain.has_account(demo.watched_address(3))


async def test_in_process_order_lands_on_chain_and_is_spent() -> None:
    world = World(watched=1)
    receiver = world.watched[0]
    async with httpx.AsyncClient(
        transport=world.transport("eopen"), base_url="http://eopen.test/api", headers=EOPEN_KEY
    ) as http:
        params = {"pledgeAddress": receiver, "rentalCount": "131000", "period": "1h"}
        assert (await http.post("/v1/tron/order", params=params)).json()["code"] == 0
    assert world.available_energy(receiver) == 0
    world.advance(5)  # eopen delegates 4 s after acceptance
    assert world.available_energy(receiver) >= 131_000
    before = world.available_energy(receiver)
    world.spend(receiver)
    assert before - world.available_energy(receiver) == world.chain.params.usdt_energy_holder
    assert world.drain([receiver]) == 1
    assert world.available_energy(receiver) < world.chain.params.usdt_energy_holder
    world.advance(3600)  # the rental ends: the energy goes back
    assert world.delegators["eopen"].made == {}


async def test_chain_reader_reads_the_world_in_process() -> None:
    world = World(watched=1)
    async with ChainReader(
        "http://node.test", api_key=None, clock=world.clock, transport=world.node_transport()
    ) as reader:
        snapshot = await reader.snapshot(world.watched[0])
    assert snapshot.activated and snapshot.available == 0


def test_examples_are_the_rendered_demo_files() -> None:
    rendered = demo.render_policy_files(
        demo.default_urls(), demo.DEFAULT_STORE_URL, demo.DEMO_POLICIES
    )
    on_disk = {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml")}
    assert on_disk == rendered
    result = load(EXAMPLES, env=demo.env_values())
    assert result.ok, [str(d) for d in result.diagnostics]
    assert result.policy_set is not None
    assert set(result.policy_set.addresses) == {demo.watched_address(n) for n in range(20)}
    orders = {tuple(p.spec.providers) for p in result.policy_set.policies.values()}
    # the policies name emulated vendors only (which ones each tries is the policy's choice)
    assert len(orders) == 4 and all(set(o) <= set(demo.VENDORS) for o in orders)


def test_served_world_writes_policies_and_describes_itself(tmp_path: Path) -> None:
    with World(clock=VirtualClock(time.time()), watched=2) as world:
        urls = world.urls()
        assert urls["eopen"].endswith("/api") and urls["node"].startswith("http://127.0.0.1:")
        described = json.loads(json.dumps(world.describe()))
        assert described["node"]["url"] == urls["node"]
        assert described["providers"]["itrx"]["baseUrl"] == urls["itrx"]
        assert described["env"]["SANDBOX_ITRX_API_SECRET"] == "ITRX-SANDBOX-SECRET"
        world.write_policies(tmp_path)
        result = load(tmp_path, env=world.env())
        assert result.policy_set is not None, [str(d) for d in result.diagnostics]
        providers = result.policy_set.providers
        assert {name: providers[name].spec.base_url for name in demo.VENDORS} == {
            v: urls[v] for v in demo.VENDORS
        }
        assert result.policy_set.settings.node.url == urls["node"]
        assert result.policy_set.settings.store.url.startswith(f"sqlite:///{tmp_path}")
        # a client in another thread: the node over HTTP, an emulator over HTTP
        info = httpx.post(urls["node"] + "/wallet/getaccount", json={
            "address": world.watched[0], "visible": True}).json()  # fmt: skip
        assert info["balance"] == 1_000 * 1_000_000
        receiver = world.watched[1]
        params = {"pledgeAddress": receiver, "rentalCount": "65000", "period": "1h"}
        created = httpx.post(urls["eopen"] + "/v1/tron/order", params=params, headers=EOPEN_KEY)
        assert created.json()["code"] == 0
        world.advance(5)  # ticks the served emulator in its own loop
        assert world.available_energy(receiver) >= 65_000
        assert world.emulators["eopen"].count("create") == 1
        assert [c.op for c in world.emulators["eopen"].calls] == ["create"]  # no ping
    assert not world.running


def test_served_world_delivers_as_a_scaled_clock_runs() -> None:
    with World(clock=ScaledClock(speed=100.0), watched=1, tick_interval=0.5) as world:
        receiver = world.watched[0]
        params = {"pledgeAddress": receiver, "rentalCount": "65000", "period": "1h"}
        url = world.url("eopen") + "/v1/tron/order"
        assert httpx.post(url, params=params, headers=EOPEN_KEY).json()["code"] == 0
        deadline = time.monotonic() + 5
        while world.available_energy(receiver) < 65_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert world.available_energy(receiver) >= 65_000  # nobody polled: the loop delivered


def test_advance_needs_a_virtual_clock_and_urls_need_a_server() -> None:
    world = World(clock=ScaledClock(), watched=0)
    with pytest.raises(TypeError):
        world.advance(1)
    with pytest.raises(RuntimeError):
        world.url("node")
    assert World(ports={"node": 1234}, watched=0).url("node") == "http://127.0.0.1:1234"
