"""The sandbox's live view, rendered to text from a known state: addresses against their
thresholds, order phases, spend per provider and the transfers that burned TRX."""

from __future__ import annotations

from rich.console import Console

from engine.store import OrderPhase, OrderRecord
from sandbox import demo
from sandbox.live import render
from sandbox.reporting import provider_totals
from sandbox.running import AddressState, SandboxState, summary_lines
from sandbox.workload import TransferRecord

T0 = 1_767_225_600.0
A, B = demo.watched_address(0), demo.watched_address(1)


def _order(n: int, address: str, provider: str, phase: OrderPhase, cost: int | None) -> OrderRecord:
    return OrderRecord(
        client_order_id=f"c{n}", policy="payouts", address=address, provider=provider,
        energy=1_000_000, duration=259_200, phase=phase, reserved_sun=300_000_000,
        cost_sun=cost, created_at=T0 + n, updated_at=T0 + n,
    )  # fmt: skip


def _state() -> SandboxState:
    orders = [
        _order(3, B, "itrx", OrderPhase.SUBMITTED, None),
        _order(2, A, "tronsave", OrderPhase.DELIVERED, 150_000_000),
        _order(1, B, "mefree", OrderPhase.FAILED, 0),
    ]
    burn = TransferRecord(T0 + 90, B, True, "ab" * 32, True, 40_000, 130_285, 9_028_500)
    clean = TransferRecord(T0 + 60, A, False, "cd" * 32, True, 64_285, 64_285, 0)
    return SandboxState(
        started_at=T0, now=T0 + 600, passes=7,
        addresses=[AddressState(A, "payouts", 935_715, 150_000),
                   AddressState(B, "deposit-sweep", 0, 200_000)],
        orders=orders, providers=provider_totals(orders), transfers=[clean, burn],
        errors=["ChainTemporaryError: node busy"],
    )  # fmt: skip


def _text(state: SandboxState) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(render(state))
    return console.export_text()


def test_the_view_shows_addresses_orders_spend_and_burns() -> None:
    text = _text(_state())
    lines = text.splitlines()
    rows = [[cell.strip() for cell in line.split("│")] for line in lines if "│" in line]
    assert "emulated   10.0 min  passes 7  orders 3 (delivered 1)" in text
    assert "spent 450.00 TRX  transfers 2  burned 1" in text
    energy = [r for r in rows if r[1] in ("payouts", "deposit-sweep")]
    assert [r[:4] for r in energy] == [
        [A[:10] + "…", "payouts", "935,715", "150,000"],
        [B[:10] + "…", "deposit-sweep", "0", "200,000"],
    ]
    assert energy[0][4] == "█" * 24  # full: above three times its threshold
    assert "█" not in energy[1][4] and "|" in energy[1][4]  # empty, threshold marked
    phases = [r[3] for r in rows if len(r) == 5 and r[2] == "1,000,000"]
    assert phases == ["submitted", "delivered", "failed"]  # newest first, as given
    spend = {r[0]: r[1:] for r in rows if len(r) == 4 and r[0] in ("itrx", "mefree", "tronsave")}
    assert spend == {
        "itrx": ["1", "0", "300.00"],  # open: its reservation
        "mefree": ["1", "0", "0.00"],  # failed: nothing charged
        "tronsave": ["1", "1", "150.00"],
    }
    assert [r for r in rows if len(r) == 3] == [[B[:10] + "…", "fresh", "9.03"]]
    assert "error: ChainTemporaryError: node busy" in text


def test_the_summary_names_the_api_and_the_burns() -> None:
    lines = summary_lines(_state(), "http://127.0.0.1:18095")
    assert lines[0].endswith("API at http://127.0.0.1:18095")
    assert "orders: 3 placed, 1 delivered on the emulated chain, 1 open" in lines
    assert "transfers: 2, 1 burned TRX for missing energy (9.03 TRX)" in lines
    assert "below threshold now: 1 of 2" in lines
