"""engine/act/checking.py: the read-only checks of every vendor account, and the canary.

In-process: the adapters talk to the sandbox world's emulators through ASGI transports,
on the world's `VirtualClock`; the canary reads the world's node through `ChainReader`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.act.checking import (
    CanaryStep,
    check,
    check_provider,
    plan_canary,
    receiver_for,
    render_checks,
    run_canary,
    smallest_order,
    top_up_sizes,
)
from engine.act.providing import ProviderPool
from engine.cli import main
from engine.core.clock import VirtualClock
from engine.observe.chain import ChainReader
from policies.loading import SecretMode, load
from policies.policyset import PolicySet
from providers.base import (
    Capabilities,
    ErrorReason,
    OrderRequest,
    OrderStatus,
    PermanentError,
    Provider,
    Quote,
    QuoteRequest,
    Receipt,
    TemporaryError,
)
from providers.eopen import EopenProvider
from providers.http import NO_WAIT
from providers.itrx import ItrxProvider
from providers.mefree import MefreeProvider
from sandbox import demo
from sandbox.world import World


class Stepping:
    """The world's clock, where sleeping moves the world (deliveries happen meanwhile)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def now(self) -> float:
        return self.world.clock.now()

    async def sleep(self, seconds: float) -> None:
        self.world.advance(seconds)
        await asyncio.sleep(0)


def _policy_set(world: World, directory: Path, **env: str) -> PolicySet:
    world.write_policies(directory)
    result = load(directory, secrets=SecretMode.REQUIRED, env={**world.env(), **env})
    assert result.policy_set is not None, result.diagnostics
    return result.policy_set


def _pool(world: World, policy_set: PolicySet, **base_urls: str) -> ProviderPool:
    transports = {v: world.transport(v) for v in demo.VENDORS if v not in base_urls}
    return ProviderPool(
        policy_set, clock=Stepping(world), transports=transports, base_urls=base_urls, retry=NO_WAIT
    )


@pytest.fixture
def world() -> World:
    return World(clock=VirtualClock(), watched=2, ports=demo.DEFAULT_PORTS)  # never served


async def _check(world: World, directory: Path, **env: str) -> dict[str, Any]:
    policy_set = _policy_set(world, directory, **env)
    async with _pool(world, policy_set) as pool:
        return {r.name: r for r in await check(pool, policy_set)}


async def test_every_check_passes_against_the_emulators(world: World, tmp_path: Path) -> None:
    reports = await _check(world, tmp_path)
    assert list(reports) == list(demo.VENDORS)
    for name, report in reports.items():
        assert report.ok, (name, report.cause)
        assert [c.name for c in report.checks] == [
            "reachable", "authenticated", "clock", "balance", "quote", "lookup",
        ]  # fmt: skip
        assert all(c.ok for c in report.checks), report.checks
        assert report.balance_sun == 100_000 * 1_000_000
        assert report.clock_skew is not None and abs(report.clock_skew) <= 1
        assert all(q.total_sun for q in report.quotes)
    # the unknown order came back as each vendor documents it (Mefree documents nothing)
    assert reports["itrx"].check("lookup").documented is True
    assert reports["eopen"].check("lookup").documented is True
    assert reports["tronsave"].check("lookup").documented is True
    assert reports["mefree"].check("lookup").documented is None
    assert reports["tronzap"].check("lookup").documented is True  # code 20
    assert "12002" in reports["eopen"].check("lookup").detail
    text = render_checks(list(reports.values()))
    n = len(demo.VENDORS)
    assert text.endswith(f"{n} of {n} providers pass\n")
    data = reports["itrx"].to_dict()
    assert data["ok"] is True and data["cause"] is None
    assert data["checks"]["lookup"]["documented"] is True
    assert data["quotes"][0]["totalSun"] > 0


async def test_only_read_endpoints_are_called(world: World, tmp_path: Path) -> None:
    await _check(world, tmp_path)
    for vendor, emulator in world.emulators.items():
        ops = {call.op for call in emulator.calls}
        assert "create" not in ops and ops <= {"balance", "price", "status"}, (vendor, ops)
        assert not emulator.orders, vendor  # type: ignore[attr-defined]


async def test_a_wrong_key_names_the_vendor_and_the_cause(world: World, tmp_path: Path) -> None:
    reports = await _check(world, tmp_path, SANDBOX_EOPEN_API_KEY="not-the-key")
    eopen = reports["eopen"]
    assert not eopen.ok
    assert eopen.cause is not None and eopen.cause.startswith("authenticated: credentials refused")
    assert "invalid API key" in eopen.cause
    assert eopen.check("reachable").ok is True and eopen.check("clock").ok is True
    assert all(reports[v].ok for v in ("mefree", "itrx", "tronsave"))
    assert "eopen (eopen): FAIL (authenticated: credentials refused" in render_checks(
        list(reports.values())
    )


async def test_a_wrong_secret_is_refused_on_the_signed_vendor(world: World, tmp_path: Path) -> None:
    reports = await _check(world, tmp_path, SANDBOX_MEFREE_API_SECRET="not-the-secret")
    assert reports["mefree"].check("authenticated").ok is False
    assert "not-the-secret" not in render_checks(list(reports.values()))


async def test_a_skewed_vendor_clock_is_the_cause_when_it_refuses(
    world: World, tmp_path: Path
) -> None:
    mefree: Any = world.emulators["mefree"]
    mefree.clock_offset_s = 30.0
    mefree.timestamp_tolerance = 5.0  # Mefree's documented window
    reports = await _check(world, tmp_path)
    report = reports["mefree"]
    assert not report.ok
    assert report.clock_skew is not None and 29 <= report.clock_skew <= 31
    assert report.cause is not None
    assert re.match(r"authenticated: clock skew \+(29|30)\.\d s", report.cause), report.cause
    assert report.check("clock").ok is False
    assert all(reports[v].ok for v in ("itrx", "eopen", "tronsave"))


async def test_a_skewed_clock_fails_even_where_it_is_accepted(world: World, tmp_path: Path) -> None:
    world.emulators["eopen"].clock_offset_s = -30.0  # eopen signs nothing: calls succeed
    reports = await _check(world, tmp_path)
    eopen = reports["eopen"]
    assert eopen.check("authenticated").ok is True and eopen.check("balance").ok is True
    assert eopen.cause is not None and re.match(r"clock: clock skew -(29|30)\.\d s", eopen.cause)
    assert "behind ours" in eopen.cause


async def test_an_unreachable_vendor_fails_once(world: World, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy_set = _policy_set(world, tmp_path)
    async with _pool(world, policy_set, itrx=f"http://127.0.0.1:{port}") as pool:
        reports = {r.name: r for r in await check(pool, policy_set)}
    itrx = reports["itrx"]
    assert itrx.cause is not None and itrx.cause.startswith("reachable: no HTTP answer")
    assert [c.ok for c in itrx.checks] == [False, None, None, None, None, None]


# --------------------------------------------------------------------------- shapes


class Stub(Provider):
    """A plug-in adapter (no HTTP, no Date header) answering as told."""

    type_name = "stub"
    capabilities = Capabilities(durations=(3600,), min_duration=3600, min_amount=50_000)

    def __init__(self, **answers: Any) -> None:
        super().__init__("stub")
        self.answers = answers

    def _answer(self, name: str, default: Any) -> Any:
        answer = self.answers.get(name, default)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def quote(self, request: QuoteRequest) -> Quote:
        total = self._answer("quote", request.energy * 80)
        return Quote(provider=self.name, energy=request.energy, duration=3600, total_sun=total)

    async def place(self, order: OrderRequest) -> Receipt:
        raise AssertionError("a check never places an order")

    async def status(self, receipt: Receipt) -> OrderStatus:
        return self._answer(  # type: ignore[no-any-return]
            "status", PermanentError(self.name, "no such order", reason=ErrorReason.NOT_FOUND)
        )

    async def balance(self) -> int:
        return self._answer("balance", 5_000_000)  # type: ignore[no-any-return]


def _protocol(what: str) -> TemporaryError:
    return TemporaryError("stub", what, reason=ErrorReason.PROTOCOL)


async def test_answers_in_another_shape_fail_and_say_so() -> None:
    report = await check_provider(
        Stub(balance=_protocol("no 'balance' field"), quote=_protocol("no 'total' field")),
        "stub",
        [(50_000, 3600)],
        "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb",
    )
    balance, quote = report.check("balance"), report.check("quote")
    assert balance.ok is False and balance.documented is False
    assert balance.detail.startswith("not in the documented shape: temporary (protocol)")
    assert quote.ok is False and quote.documented is False
    assert report.check("clock").ok is None  # no Date header to measure: not a failure
    assert report.check("reachable").ok is True
    assert report.cause is not None and report.cause.startswith("balance: not in the documented")


async def test_an_unknown_order_must_be_refused() -> None:
    found = OrderStatus(state="pending")
    report = await check_provider(Stub(status=found), "stub", [(50_000, 3600)], "T" * 34)
    assert report.check("lookup").ok is False
    assert "answered as an order" in report.check("lookup").detail
    garbled = await check_provider(
        Stub(status=_protocol("not JSON")), "stub", [(50_000, 3600)], "T" * 34
    )
    assert garbled.check("lookup").ok is False and garbled.check("lookup").documented is False
    clean = await check_provider(Stub(), "stub", [(50_000, 3600)], "T" * 34)
    assert clean.ok and clean.check("lookup").documented is None  # nothing documented


def test_a_documented_lookup_needs_its_code() -> None:
    documented = {
        cls.type_name: cls.not_found
        for cls in (EopenProvider, ItrxProvider, MefreeProvider)
        if cls.not_found is not None
    }
    assert documented["eopen"].vendor_codes == {"12002"}
    assert documented["itrx"].vendor_codes == {"404"}
    assert not documented["mefree"].vendor_codes


async def test_sizes_unsold_are_not_asked() -> None:
    report = await check_provider(Stub(), "stub", [(50_000, 86_400)], "T" * 34)
    quote = report.check("quote")
    assert quote.ok is None and "unsupported duration 1d" in quote.detail
    assert report.ok


def test_top_up_sizes_and_receiver(world: World, tmp_path: Path) -> None:
    policy_set = _policy_set(world, tmp_path)
    stub = Stub()
    stub.capabilities = Capabilities(durations=(3600,), min_duration=3600, min_amount=100_000)  # type: ignore[misc]
    # each policy listing itrx, amounts raised to the vendor's minimum (65k -> 100k), once
    assert top_up_sizes(policy_set, "itrx", stub) == [
        (131_000, 3600), (100_000, 3600), (400_000, 86_400), (100_000, 259_200)
    ]  # fmt: skip
    stub = Stub()
    assert (
        top_up_sizes(policy_set, "not-listed", stub) == [smallest_order(stub)] == [(50_000, 3600)]
    )
    assert receiver_for(policy_set, "itrx") in world.watched


# --------------------------------------------------------------------------- canary


@pytest.fixture
async def node(world: World) -> AsyncIterator[ChainReader]:
    async with ChainReader(
        "http://node.test", api_key=None, clock=world.clock, transport=world.node_transport()
    ) as reader:
        yield reader


async def _canary(
    world: World, directory: Path, node: ChainReader, vendor: str, **kw: Any
) -> tuple[Any, list[CanaryStep]]:
    policy_set = _policy_set(world, directory)
    steps: list[CanaryStep] = []
    receiver = world.watched[1]
    async with _pool(world, policy_set) as pool:
        plan = await plan_canary(pool[vendor], receiver)
        result = await run_canary(
            pool[vendor], node, plan, clock=Stepping(world), on_step=steps.append, **kw
        )
    return result, steps


@pytest.mark.parametrize("vendor", demo.VENDORS)
async def test_the_canary_is_the_smallest_order_and_shows_on_chain(
    world: World, tmp_path: Path, node: ChainReader, vendor: str
) -> None:
    receiver = world.watched[1]
    before = world.available_energy(receiver)
    result, steps = await _canary(world, tmp_path, node, vendor, deadline=60)
    assert result.delivered, steps
    expected: Mapping[str, tuple[int, int]] = {
        "mefree": (65_000, 3600),
        "itrx": (10_000, 3600),
        "eopen": (64_000, 600),
        "tronsave": (64_001, 300),
        "catfee": (65_000, 3600),
        "feee": (32_000, 300),
        "tronzap": (32_000, 3600),  # the services list, read when the pool opened
        "netts": (61_000, 300),
    }
    assert (result.plan.energy, result.plan.duration) == expected[vendor]
    assert result.plan.quote_sun is not None and result.plan.quote_sun > 0
    assert result.rise is not None and result.rise >= result.plan.energy * 0.97
    assert world.available_energy(receiver) - before >= result.plan.energy * 0.97
    emulator: Any = world.emulators[vendor]
    assert len(emulator.orders) == 1 and emulator.count("create") == 1
    assert [s.source for s in steps][:2] == ["chain", "vendor"]
    assert steps[1].text.startswith("accepted: order ")
    assert steps[-1].text.startswith("delivered: ")
    assert result.to_dict()["delivered"] is True


async def test_a_canary_never_delivered_ends_at_the_deadline(
    world: World, tmp_path: Path, node: ChainReader
) -> None:
    world.emulators["eopen"].faults.no_delivery()
    result, _ = await _canary(world, tmp_path, node, "eopen", deadline=30)
    assert not result.delivered
    assert result.cause is not None
    assert "within" in result.cause or "ended the order" in result.cause


async def test_a_refused_canary_says_why(world: World, tmp_path: Path, node: ChainReader) -> None:
    world.emulators["tronsave"].faults.set_balance(0)
    result, steps = await _canary(world, tmp_path, node, "tronsave", deadline=30)
    assert not result.delivered and result.provider_order_id is None
    assert result.cause is not None
    assert result.cause.startswith("order refused: permanent (balance)")
    assert steps[-1].source == "vendor"


# --------------------------------------------------------------------------- CLI shape


def test_providers_is_still_a_command_and_check_a_subcommand(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["providers", "--amount", "65k", "--duration", "1h"])
    assert result.exit_code == 2 and "Missing option '-f'" in result.output
    result = runner.invoke(main, ["providers", "-f", str(tmp_path), "check"])
    assert result.exit_code == 2 and "options go after the subcommand" in result.output
    result = runner.invoke(main, ["providers", "check", "-f", str(tmp_path), "--canary", "T1"])
    assert result.exit_code == 2 and "--canary" in result.output
    result = runner.invoke(main, ["providers", "check", "--help"])
    assert result.exit_code == 0 and "--canary ADDRESS" in result.output
