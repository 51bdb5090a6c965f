"""Pure parts of the deposit trigger: Transfer events against watched sets, the sweep
decision, the webhook signature."""

from __future__ import annotations

from typing import Any

import pytest

from engine.core.deposits import DepositNeed, NeedState
from engine.core.records import BudgetWindow
from engine.core.snapshots import EnergySnapshot
from engine.decide.deposits import Round, Step, SweepInputs, assess_sweep, choose_sweep
from engine.decide.plans import ObservationFailure, ProviderView, QuoteKey
from engine.observe.deposits import TRANSFER_TOPIC, DepositWatch, scan_transfers
from engine.sidecar.webhooks import sign, verify
from policies.addresses import AddressSet, decode_base58check, encode_base58check
from policies.deposits import USDT, DepositPolicy
from providers.base import Capabilities, Quote

NOW = 1_800_000_000.0
A, B, C = (encode_base58check(bytes([i]) * 20) for i in (1, 2, 3))
HOT = encode_base58check(bytes([9]) * 20)


def policy(**spec: Any) -> DepositPolicy:
    base: dict[str, Any] = {
        "addresses": [A, B],
        "sweepTo": HOT,
        "providers": ["p1", "p2"],
        "maxPrice": "100 sun/energy",
        "budget": {"perDay": "100 TRX"},
        "minDeposit": 1_000_000,
    }
    base.update(spec)
    return DepositPolicy.model_validate(
        {"apiVersion": "energyctl/v1", "kind": "DepositPolicy", "metadata": {"name": "dp"}}
        | {"spec": base}
    )


def log(sender: str, receiver: str, amount: int, token: str = USDT) -> dict[str, Any]:
    def topic(address: str) -> str:
        body = decode_base58check(address)
        assert body is not None
        return body.hex().rjust(64, "0")

    token_body = decode_base58check(token)
    assert token_body is not None
    return {
        "address": token_body.hex(),
        "topics": [TRANSFER_TOPIC, topic(sender), topic(receiver)],
        "data": f"{amount:064x}",
    }


def info(txid: str, *logs: dict[str, Any]) -> dict[str, Any]:
    return {"id": txid, "log": list(logs), "receipt": {"energy_usage": 64_285}}


# --------------------------------------------------------------------------- detection


def test_deposits_and_sweeps_of_watched_addresses_only() -> None:
    watch = DepositWatch({"dp": policy()})
    infos = [
        info("t1", log(C, A, 5_000_000)),  # a deposit to A
        info("t2", log(C, B, 999_999)),  # below minDeposit
        info("t3", log(C, C, 9_000_000)),  # not watched
        info("t4", log(A, HOT, 5_000_000)),  # the sweep of A
        info("t5", log(C, B, 5_000_000, token=HOT)),  # another token
        info("t6"),  # no logs (a failed call prints none)
        {"id": "t7", "log": [{"address": "zz", "topics": ["x"], "data": ""}]},  # junk
    ]
    found = scan_transfers(10, infos, watch.watched)
    assert [(d.address, d.txid, d.amount) for d in found.deposits] == [(A, "t1", 5_000_000)]
    assert [(s.address, s.counterpart, s.txid) for s in found.sweeps] == [(A, HOT, "t4")]


def test_run_time_changes_edit_the_live_set() -> None:
    watch = DepositWatch({"dp": policy()})
    watch.change("dp", C, True)
    assert watch.policy_of(C) == "dp" and watch.count() == 3
    watch.set_base("dp", AddressSet.of([encode_base58check(bytes([7]) * 20)]))
    assert watch.policy_of(C) == "dp" and watch.count() == 4  # inline + base + added
    watch.change("dp", A, False)  # an inline address removed at run time
    assert watch.policy_of(A) is None
    found = scan_transfers(1, [info("t", log(B, A, 5_000_000))], watch.watched)
    assert found.deposits == () and [s.address for s in found.sweeps] == [B]


# --------------------------------------------------------------------------- decisions


def need(**fields: Any) -> DepositNeed:
    base: dict[str, Any] = {
        "id": 1,
        "policy": "dp",
        "address": A,
        "token": USDT,
        "deposit_txid": "ab" * 32,
        "deposit_block": 5,
        "amount": "5000000",
        "deposits": 1,
        "state": NeedState.OPEN,
        "opened_at": NOW,
        "updated_at": NOW,
    }
    base.update(fields)
    return DepositNeed(**base)


def snap(available: int, *, activated: bool = True, age: float = 0) -> EnergySnapshot:
    return EnergySnapshot(A, activated, available, available, 0, 0, 10, NOW - age)


CAPS = Capabilities(min_amount=32_000, durations=(3600, 86400))
ACTIVATES = Capabilities(min_amount=65_000, durations=(3600,), activates_receiver=True)


def inputs(reading: Any, **over: Any) -> SweepInputs:
    base: dict[str, Any] = {
        "need": need(),
        "policy": policy(),
        "sweep_energy": 64_285,
        "reading": reading,
        "open_orders": [],
        "providers": {"p1": ProviderView("p1", CAPS), "p2": ProviderView("p2", ACTIVATES)},
        "now": NOW,
    }
    base.update(over)
    return SweepInputs(**base)


def test_buys_the_shortfall_rounded_up_for_the_shortest_duration() -> None:
    got = assess_sweep(inputs(snap(10_000)))
    assert got.step is Step.BUY
    assert [(c.provider, c.energy, c.duration) for c in got.candidates] == [
        ("p1", 54_285, 3600),
        ("p2", 65_000, 3600),  # raised to its minimum order
    ]


@pytest.mark.parametrize(
    ("reading", "step", "words"),
    [
        (snap(64_285), Step.READY, ">= 64285"),
        (None, Step.HELD, "no reading"),
        (ObservationFailure("node down"), Step.HELD, "node down"),
        (snap(0, age=600), Step.HELD, "600s old"),
    ],
)
def test_ready_or_held_without_buying(reading: Any, step: Step, words: str) -> None:
    got = assess_sweep(inputs(reading))
    assert got.step is step and words in got.reason and got.candidates == ()


def test_an_unactivated_address_only_from_a_vendor_that_activates() -> None:
    got = assess_sweep(inputs(snap(0, activated=False)))
    assert [c.provider for c in got.candidates] == ["p2"]
    views = {"p1": ProviderView("p1", CAPS)}
    held = assess_sweep(
        inputs(snap(0, activated=False), providers=views, policy=policy(providers=["p1"]))
    )
    assert held.step is Step.HELD and "not activated" in held.reason


def test_an_open_order_is_waited_for_and_an_ambiguous_one_holds() -> None:
    from engine.core.phases import OrderPhase
    from engine.core.records import OrderRecord

    def order(phase: OrderPhase) -> OrderRecord:
        return OrderRecord(
            client_order_id="c1", policy="dp", address=A, provider="p1", energy=64_285,
            duration=3600, phase=phase, reserved_sun=0, created_at=NOW, updated_at=NOW,
        )  # fmt: skip

    waiting = assess_sweep(inputs(snap(0), open_orders=[order(OrderPhase.SUBMITTED)]))
    assert waiting.step is Step.WAIT
    held = assess_sweep(inputs(snap(0), open_orders=[order(OrderPhase.UNKNOWN)]))
    assert held.step is Step.HELD and "ambiguous" in held.reason


def quote(provider: str, energy: int, sun: int) -> Quote:
    return Quote(provider=provider, energy=energy, duration=3600, total_sun=sun)


def test_choice_keeps_the_price_cap_and_the_budget() -> None:
    decision = assess_sweep(inputs(snap(10_000)))
    views = {"p1": ProviderView("p1", CAPS), "p2": ProviderView("p2", ACTIVATES)}
    quotes = {
        QuoteKey("p1", 54_285, 3600): quote("p1", 54_285, 6_000_000),  # above 100 sun/energy
        QuoteKey("p2", 65_000, 3600): quote("p2", 65_000, 5_000_000),
    }
    round_ = Round()
    got = choose_sweep(decision, policy(), views, quotes, round_)
    assert got.action is not None and got.action.first.provider == "p2"
    assert "price cap" in dict(got.rejected)["p1"]
    assert round_.spent[("dp", BudgetWindow.DAY)] == 6_500_000  # the cap is reserved
    broke = Round(spent={("dp", BudgetWindow.DAY): 95_000_000})
    held = choose_sweep(decision, policy(), views, quotes, broke)
    assert held.step is Step.HELD and "budget" in held.reason


# --------------------------------------------------------------------------- webhook


def test_signature_verifies_and_refuses_tampering_and_replays() -> None:
    body = b'{"event":"energy.ready"}'
    headers = {"X-Energyctl-Timestamp": "1800000000", "X-Energyctl-Signature": ""}
    headers["X-Energyctl-Signature"] = sign("s3cret", "1800000000", body)
    assert verify("s3cret", headers, body, NOW)
    assert not verify("s3cret", headers, body + b" ", NOW)
    assert not verify("other", headers, body, NOW)
    assert not verify("s3cret", headers, body, NOW + 3600)  # too old: a replay
