"""ProviderPool: Provider documents become adapters with resolved secrets and seams."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from engine.act.providing import ProviderPool, ProvidingError, adapter_kwargs, build_provider
from engine.act.surveying import render_table, survey, unsold
from engine.core.clock import VirtualClock
from policies.loading import SecretMode, load
from policies.policyset import PolicySet
from providers.base import PermanentError
from providers.http import NO_WAIT
from providers.itrx import ItrxProvider
from providers.tronsave import TronsaveProvider
from providers.tronzap import TronZapProvider
from sandbox import demo
from sandbox.providers.readings import Readings
from sandbox.world import World

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sandbox"
CANARY = "canary-secret-0f9e8d7c"


def _policy_set(env: dict[str, str], mode: SecretMode = SecretMode.REQUIRED) -> PolicySet:
    result = load(EXAMPLES, env=env, secrets=mode)
    assert result.policy_set is not None, [str(d) for d in result.diagnostics]
    return result.policy_set


def _in_process(world: World) -> dict[str, httpx.AsyncBaseTransport]:
    return {vendor: world.transport(vendor) for vendor in demo.VENDORS}


def test_kwargs_come_from_the_spec_with_secrets_resolved() -> None:
    policy_set = _policy_set({**demo.env_values(), "SANDBOX_ITRX_API_SECRET": CANARY})
    kwargs = adapter_kwargs(policy_set.provider("itrx"))
    assert set(kwargs) == {"base_url", "api_key", "api_secret"}
    assert kwargs["api_secret"].get_secret_value() == CANARY
    assert CANARY not in repr(kwargs)
    provider = build_provider(policy_set.provider("itrx"), clock=VirtualClock())
    assert isinstance(provider, ItrxProvider) and CANARY not in repr(provider)


def test_an_unset_variable_is_named_in_the_error() -> None:
    env = {k: v for k, v in demo.env_values().items() if k != "SANDBOX_EOPEN_API_KEY"}
    policy_set = _policy_set(env, SecretMode.OPTIONAL)
    with pytest.raises(ProvidingError, match=r"'eopen': spec.apiKey: .*SANDBOX_EOPEN_API_KEY"):
        adapter_kwargs(policy_set.provider("eopen"))


async def test_pool_builds_all_or_none_and_closes() -> None:
    env = {k: v for k, v in demo.env_values().items() if k != "SANDBOX_TRONSAVE_API_KEY"}
    pool = ProviderPool(_policy_set(env, SecretMode.OPTIONAL), clock=VirtualClock())
    with pytest.raises(ProvidingError, match="SANDBOX_TRONSAVE_API_KEY"):
        await pool.open()
    assert len(pool) == 0
    with pytest.raises(RuntimeError, match="not open"):
        pool["mefree"]
    with pytest.raises(ProvidingError, match="undefined providers"):
        ProviderPool(_policy_set(demo.env_values()), base_urls={"nope": "http://x"})


async def test_pool_quotes_through_the_seams() -> None:
    world = World(watched=1)
    policy_set = _policy_set(demo.env_values())
    async with ProviderPool(
        policy_set, clock=world.clock, transports=_in_process(world), retry=NO_WAIT
    ) as pool:
        assert list(pool) == list(demo.VENDORS)
        assert isinstance(pool["tronsave"], TronsaveProvider)
        assert pool.document("eopen").spec.type == "eopen"
        found = await survey(pool, energy=65_000, duration=3600, receiver=world.watched[0])
    by_name = {item.name: item for item in found}
    # the emulators' price tables: 45, 40, 30, 60 (TronSave MEDIUM), 32 (CatFee), 47
    # (feee.io), 46 (TronZap) and 36 (Netts) sun per energy for 1 h
    totals = {name: item.quote.total_sun for name, item in by_name.items() if item.quote}
    assert totals == {
        "mefree": 2_925_000,
        "itrx": 2_600_000,
        "eopen": 1_950_000,
        "tronsave": 3_900_000,
        "catfee": 2_080_000,
        "feee": 3_055_000,
        "tronzap": 2_990_000,
        "netts": 2_340_000,
    }
    assert all(item.balance_sun == 100_000 * 1_000_000 for item in found)
    table = render_table(found)
    assert table.splitlines()[0].split()[:2] == ["NAME", "TYPE"]
    assert "QUOTE (65k, 1h)" in table and "3.9 TRX (60 sun/energy)" in table
    assert by_name["itrx"].to_dict()["capabilities"]["options"][0] == "exclusive"


async def test_survey_says_why_a_provider_cannot_quote() -> None:
    world = World(watched=0)
    env = {**demo.env_values(), "SANDBOX_MEFREE_API_KEY": CANARY}
    async with ProviderPool(
        _policy_set(env), clock=world.clock, transports=_in_process(world), retry=NO_WAIT
    ) as pool:
        found = {
            s.name: s for s in await survey(pool, energy=70_000, duration=7200, receiver=demo.SINK)
        }
    assert found["itrx"].quote_error == "unsupported duration 2h"
    assert found["tronsave"].quote is not None  # TronSave sells any duration
    assert found["mefree"].balance_error is not None
    assert found["mefree"].balance_error.startswith("permanent (auth): mefree:")
    assert CANARY not in found["mefree"].balance_error
    assert unsold(TronsaveProvider.capabilities, 64_000, 3600) == "below minimum 64001"


async def test_base_url_override_reaches_the_adapter() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"code": 20001, "msg": "invalid", "time": "0"})

    async with ProviderPool(
        _policy_set(demo.env_values()),
        clock=VirtualClock(),
        transports={"eopen": httpx.MockTransport(handler)},
        base_urls={"eopen": "http://elsewhere.test/v0"},
        retry=NO_WAIT,
    ) as pool:
        with pytest.raises(PermanentError):
            await pool["eopen"].balance()
    assert str(seen[0]) == "http://elsewhere.test/v0/v1/account"


async def test_the_pool_lets_each_adapter_read_its_account_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World(watched=1)
    world.emulators["tronzap"].readings = Readings({"tronzap.minimum": "80000"})
    policy_set = _policy_set(demo.env_values())
    async with ProviderPool(
        policy_set, clock=world.clock, transports=_in_process(world), retry=NO_WAIT
    ) as pool:
        # TronZap's services list, read before any quote: what the planner sees
        assert pool["tronzap"].capabilities.min_amount == 80_000
        assert world.emulators["tronzap"].count("price") == 1
    refused = {"tronzap": "http://127.0.0.1:9"}  # nothing listens: the start fails
    transports = {k: v for k, v in _in_process(world).items() if k != "tronzap"}
    with caplog.at_level(logging.WARNING):
        async with ProviderPool(
            policy_set, clock=world.clock, transports=transports, base_urls=refused, retry=NO_WAIT
        ) as pool:
            assert pool["tronzap"].capabilities == TronZapProvider.capabilities  # the fallback
    assert "could not read the vendor's account details at start" in caplog.text
