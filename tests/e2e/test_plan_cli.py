"""`energyctl plan`, `apply` (confirmation rules), `status` and `orders` against the served
World, in-process through click's runner (not a terminal)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from engine.cli import main
from tests.e2e.sandboxed import Sandbox, sandbox

__all__ = ["sandbox"]


def run(box: Sandbox, *args: str, env: dict[str, str | None] | None = None) -> Result:
    full: dict[str, str | None] = {**box.env, **(env or {})}
    return CliRunner().invoke(main, list(args), env=full)


def test_plan_table_json_and_exit_codes_never_buy(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = sandbox
    monkeypatch.chdir(box.directory)
    d = str(box.directory)
    calm = run(box, "plan", "-f", d, "--detailed-exitcode")
    assert calm.exit_code == 0, calm.output
    assert "Plan: 0 purchase(s)" in calm.output
    address = box.policy_set.policy("payouts").spec.addresses[0]
    box.drain([address])
    table = run(box, "plan", "-f", d, "--detailed-exitcode")
    assert table.exit_code == 2, table.output
    row = next(line for line in table.output.splitlines() if line.startswith(address))
    assert "buy 131k for 1h" in row and "tronsave" in row and "TRX" in row
    plain = run(box, "plan", "-f", d)
    assert plain.exit_code == 0
    out = run(box, "plan", "-f", d, "--output", "json")
    data = json.loads(out.output)
    [entry] = [e for e in data["addresses"] if e["action"]]
    assert entry["address"] == address and entry["action"]["provider"] == "tronsave"
    assert entry["action"]["estimated_cost_sun"] > 0 and data["actions"] == 1
    assert box.orders() == [] and not box.vendor_orders("tronsave")  # no purchase, ever


def test_apply_refuses_without_a_terminal_or_yes(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = sandbox
    monkeypatch.chdir(box.directory)
    box.drain([box.policy_set.policy("payouts").spec.addresses[0]])
    result = run(box, "apply", "-f", str(box.directory))
    assert result.exit_code == 1
    assert "--yes" in result.output
    assert box.orders() == [] and not box.vendor_orders("tronsave")


def test_missing_secret_is_an_error_naming_the_variable(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = sandbox
    monkeypatch.chdir(box.directory)
    missing = next(name for name in box.world.env() if "ITRX" in name)
    result = run(box, "plan", "-f", str(box.directory), env={missing: None})
    assert result.exit_code == 1
    assert missing in result.output


def test_orders_filters(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    box = sandbox
    monkeypatch.chdir(box.directory)
    d = str(box.directory)
    targets = box.policy_set.policy("settlement").spec.addresses[:2]
    box.drain(targets)
    applied = run(box, "apply", "-f", d, "--yes")
    assert applied.exit_code == 0, applied.output
    listing = run(box, "orders", "-f", d, "--provider", "mefree", "--since", "1h")
    assert all(t in listing.output for t in targets)
    assert "2 order(s)." in listing.output
    one = run(box, "orders", "-f", d, "--address", targets[0], "-o", "json")
    assert [o["address"] for o in json.loads(one.output)] == [targets[0]]
    none = run(box, "orders", "-f", d, "--state", "refunded")
    assert "0 order(s)." in none.output
    bad = run(box, "orders", "-f", d, "--state", "nonsense")
    assert bad.exit_code == 2


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_node_nothing_can_be_read_from_is_an_error_not_zero_purchases(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plan --node 'not a url'` printed "0 purchase(s)" and exited 0 with every address
    blocked; a node that does not answer did the same."""
    box = sandbox
    monkeypatch.chdir(box.directory)
    d = str(box.directory)
    bad = run(box, "plan", "-f", d, "--node", "not a url", "--detailed-exitcode")
    assert bad.exit_code == 1, bad.output
    assert bad.output.strip().splitlines() == [
        "error: --node must be an http:// or https:// URL without credentials, got 'not a url'"
    ]
    dead = f"http://127.0.0.1:{_closed_port()}"
    cases = [
        ["plan", "-f", d, "--node", dead],
        ["plan", "-f", d, "--node", dead, "--detailed-exitcode", "-o", "json"],
        ["status", "-f", d, "--node", dead],
    ]
    for args in cases:
        result = run(box, *args)
        assert result.exit_code == 1, (args, result.output)
        assert "could be read from the node" in result.output, result.output
    assert run(box, "plan", "-f", d).exit_code == 0  # the configured node answers


def test_plan_and_apply_name_deposit_policies_and_buy_nothing_for_them(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from engine.core.clock import SystemClock
    from engine.store import open_store
    from policies.deposits import USDT
    from sandbox import demo

    box = sandbox
    monkeypatch.chdir(box.directory)
    d = str(box.directory)
    addresses = [demo.deposit_address(n) for n in range(5)]
    (box.directory / "deposit-addresses.txt").write_text("\n".join(addresses[:4]) + "\n")
    (box.directory / "deposits.yaml").write_text(
        "apiVersion: energyctl/v1\nkind: DepositPolicy\nmetadata: {name: deposits}\nspec:\n"
        f"  addresses: [{addresses[4]}]\n  addressesFrom: {{file: deposit-addresses.txt}}\n"
        f"  sweepTo: {demo.SINK}\n  providers: [mefree]\n  maxPrice: 120 sun/energy\n"
        "  budget: {perDay: 100 TRX}\n"
    )

    async def deposit() -> None:  # an episode the sidecar would be serving
        store = await open_store(box.store_url, SystemClock())
        async with store:
            await store.record_deposit(
                policy="deposits", address=addresses[0], token=USDT, txid="cd" * 32,
                block=1, amount=5_000_000,
            )  # fmt: skip

    asyncio.run(deposit())
    line = (
        "DepositPolicy deposits: deposit-triggered, served by `energyctl run` "
        "(5 watched addresses, 1 open episodes); nothing is bought for it here"
    )
    planned = run(box, "plan", "-f", d, "--detailed-exitcode")
    assert planned.exit_code == 0 and line in planned.output, planned.output
    data = json.loads(run(box, "plan", "-f", d, "--output", "json").output)
    assert data["deposits"] == [
        {
            "policy": "deposits",
            "kind": "DepositPolicy",
            "servedBy": "energyctl run",
            "addresses": 5,
            "addressesFromQuery": False,
            "openEpisodes": 1,
        }
    ]
    applied = run(box, "apply", "-f", d, "--yes")
    assert applied.exit_code == 0 and line in applied.output, applied.output
    assert box.orders() == [] and box.vendor_receivers() == {}
