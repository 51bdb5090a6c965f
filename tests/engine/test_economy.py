"""Table tests of cost-aware buying in the pure planner: the cheapest strategy, durations
chosen from a list, auto sizing from expected use, and renewal before a rental ends."""

from __future__ import annotations

from typing import Any

import pytest

from engine.core.snapshots import EnergySnapshot
from engine.decide.planning import (
    Condition,
    PlanInputs,
    ProviderView,
    QuoteKey,
    Reason,
    Rental,
    assess,
    plan,
    quote_requests,
)
from engine.decide.plans import Plan
from providers.base import Capabilities, PermanentError, ProviderError, Quote, TemporaryError
from tests.engine.test_planning import ADDR, NOW, inputs, policy, views

HOUR, DAY = 3600, 86_400

#: (provider, duration) -> milli-sun per energy for the whole rental
PRICES: dict[tuple[str, int], int] = {
    ("p-mefree", HOUR): 45_000,
    ("p-mefree", DAY): 56_000,
    ("p-eopen", HOUR): 30_000,
    ("p-eopen", DAY): 75_000,
    ("p-itrx", HOUR): 40_000,
    ("p-itrx", DAY): 90_000,
}


def quotes_for(
    inp: PlanInputs,
    prices: dict[tuple[str, int], int] | None = None,
    errors: dict[str, ProviderError] | None = None,
) -> dict[QuoteKey, Quote | ProviderError]:
    table = PRICES if prices is None else prices
    out: dict[QuoteKey, Quote | ProviderError] = {}
    for key in quote_requests(assess(inp)):
        if errors and key.provider in errors:
            out[key] = errors[key.provider]
            continue
        unit = table.get((key.provider, key.duration), 53_000 * max(1, key.duration // DAY))
        out[key] = Quote(
            provider=key.provider,
            energy=key.energy,
            duration=key.duration,
            total_sun=unit * key.energy // 1000,
        )
    return out


def decide(inp: PlanInputs, **kw: Any) -> Plan:
    return plan(inp, assess(inp), quotes_for(inp, **kw))


def chosen(result: Plan) -> tuple[str, int, int] | None:
    (entry,) = result.entries
    if entry.action is None:
        return None
    first = entry.action.first
    return first.provider, first.duration, first.energy


def snap_used(used: int, limit: int, address: str = ADDR[0]) -> EnergySnapshot:
    return EnergySnapshot(
        address=address,
        activated=True,
        available=max(0, limit - used),
        limit=limit,
        used=used,
        delegated_in=0,
        block=100,
        read_at=NOW - 1,
    )


# --------------------------------------------------------------------------- cheapest


THREE = ["p-mefree", "p-eopen", "p-itrx"]


@pytest.mark.parametrize(
    ("spec", "prices", "errors", "balances", "expected"),
    [
        # priority (the default): the first listed, dearer or not
        ({}, None, None, {}, "p-mefree"),
        # cheapest: eopen's 30 beats itrx's 40 and mefree's 45
        ({"strategy": "cheapest"}, None, None, {}, "p-eopen"),
        # a tie: the policy's order decides (itrx listed before eopen here)
        (
            {"strategy": "cheapest", "providers": ["p-mefree", "p-itrx", "p-eopen"]},
            {("p-mefree", HOUR): 45_000, ("p-eopen", HOUR): 40_000, ("p-itrx", HOUR): 40_000},
            None,
            {},
            "p-itrx",
        ),
        # the cheapest is above the price cap (per unit of the order): the next one
        (
            {"strategy": "cheapest", "maxPrice": "35 sun/energy"},
            {("p-mefree", HOUR): 45_000, ("p-eopen", HOUR): 36_000, ("p-itrx", HOUR): 34_000},
            None,
            {},
            "p-itrx",
        ),
        # the cheapest's balance cannot pay: the next cheapest
        ({"strategy": "cheapest"}, None, None, {"p-eopen": 1_000}, "p-itrx"),
        # the cheapest's quote fails: the others are compared
        ({"strategy": "cheapest"}, None, {"p-eopen": TemporaryError("p-eopen", "503")}, {},
         "p-itrx"),
        ({"strategy": "cheapest"}, None,
         {"p-eopen": PermanentError("p-eopen", "refused")}, {}, "p-itrx"),
    ],
)  # fmt: skip
def test_cheapest_strategy(
    spec: dict[str, Any],
    prices: dict[tuple[str, int], int] | None,
    errors: dict[str, ProviderError] | None,
    balances: dict[str, int],
    expected: str,
) -> None:
    spec = {"providers": THREE, "topUp": {"amount": "131k", "duration": "1h"}, **spec}
    provider_views = views(
        **{n: ProviderView(n, views()[n].capabilities, balance_sun=b) for n, b in balances.items()}
    )
    result = decide(inputs(policy(**spec), providers=provider_views), prices=prices, errors=errors)
    got = chosen(result)
    assert got is not None and got[0] == expected
    (entry,) = result.entries
    assert entry.action is not None
    # the fallbacks are the other viable providers, best first, each once
    names = [c.provider for c in entry.action.candidates]
    assert len(names) == len(set(names))
    notes = {c.provider: c.note for c in entry.compared}
    assert notes[expected] == "chosen"
    if errors:
        (failed,) = errors
        assert notes[failed].startswith("quote")


def test_cheapest_plan_explains_the_winner() -> None:
    result = decide(inputs(policy(providers=THREE, strategy="cheapest")))
    (entry,) = result.entries
    assert "cheapest of 3 quote(s)" in entry.why
    data = entry.to_json()
    assert [c["provider"] for c in data["compared"]] == ["p-eopen", "p-itrx", "p-mefree"]
    assert data["compared"][0]["sun_per_used_energy"] == 30.0


def test_cheapest_blocked_when_every_quote_is_over_the_cap() -> None:
    result = decide(inputs(policy(providers=THREE, strategy="cheapest", maxPrice="20 sun/energy")))
    (entry,) = result.entries
    assert entry.condition is Condition.BLOCKED and entry.reason is Reason.PRICE_CAP


# --------------------------------------------------------------------------- durations


#: itrx also sells three days (at 159 sun per energy: 53 a day)
THREE_DAYS = views(
    **{"p-itrx": ProviderView("p-itrx", Capabilities(durations=(HOUR, DAY, 3 * DAY),
                                                      min_amount=10_000))}
)  # fmt: skip


def _steady(**spec: Any) -> dict[str, Any]:
    base = {
        "providers": THREE,
        "strategy": "cheapest",
        "threshold": "131k",
        "topUp": {"auto": {}, "duration": ["1h", "1d", "3d"]},
        "expectedUse": {"perDay": "1.8M"},
        "maxPrice": "400 sun/energy",
    }
    base.update(spec)
    return base


def test_a_steady_sender_buys_day_long_pieces_of_a_rolling_level() -> None:
    # 1.8M a day is 75k an hour. A level of pieces of duration d settles near
    # 75k x 1 / (1/12 h + 1/d) used plus 131k free: a day's pieces (8 h of use) serve about
    # 2.4 x their size over their life, three days' (10.3 h) about 6 x, an hour's 0.4 x.
    # A day at 56 beats three days at 159 (53 a day) and an hour at 30 per unit served.
    result = decide(inputs(policy(**_steady()), providers=THREE_DAYS))
    got = chosen(result)
    assert got is not None
    provider, duration, energy = got
    assert (provider, duration) == ("p-mefree", DAY)
    # nothing used yet: the rolling level is the rise expected over the lead (an hour:
    # 1.2 x 75k) plus 131k kept free, all of it short
    assert energy == 131_000 + 90_000


def test_a_long_piece_wins_when_it_is_cheap_enough() -> None:
    # the same sender, three days at 35 a day (105): 105 / 6 < 56 / 2.4
    prices = {**PRICES, ("p-itrx", 3 * DAY): 105_000}
    got = chosen(decide(inputs(policy(**_steady()), providers=THREE_DAYS), prices=prices))
    assert got is not None and got[:2] == ("p-itrx", 3 * DAY)


def test_a_rare_sender_gets_one_shortfall_order() -> None:
    spec = _steady(expectedUse={"perDay": "65k"})
    got = chosen(decide(inputs(policy(**spec))))
    assert got is not None
    provider, duration, energy = got
    # the least that keeps one cold transfer free, for a day: an hour's rental would
    # most likely end before the one transfer expected that day
    assert (provider, duration) == ("p-mefree", DAY)
    assert 131_000 <= energy <= 140_000


def test_an_unknown_sender_buys_the_shortfall_only() -> None:
    spec = _steady()
    del spec["expectedUse"]
    got = chosen(decide(inputs(policy(**spec), observations={ADDR[0]: snap_used(0, 50_000)})))
    assert got == ("p-eopen", HOUR, 81_000)  # 131k - 50k available


def test_fixed_amount_with_a_duration_list_takes_the_cheapest_per_unit() -> None:
    spec = {"providers": THREE, "strategy": "cheapest",
            "topUp": {"amount": "131k", "duration": ["1h", "1d"]}}  # fmt: skip
    assert chosen(decide(inputs(policy(**spec)))) == ("p-eopen", HOUR, 131_000)


def test_duration_auto_uses_every_duration_the_providers_sell() -> None:
    spec = _steady(topUp={"auto": {}, "duration": "auto"})
    (item,) = assess(inputs(policy(**spec)))
    assert {c.duration for c in item.candidates} == {600, HOUR, DAY}


def test_duration_auto_quotes_the_ladder_not_every_day() -> None:
    # a vendor selling every whole day to 30: auto quotes 1, 2, 3, 7, 14 and 30 days
    every_day = tuple(n * DAY for n in range(1, 31))
    caps = Capabilities(durations=every_day, min_amount=10_000)
    many = views(**{"p-itrx": ProviderView("p-itrx", caps)})
    spec = _steady(topUp={"auto": {}, "duration": "auto"}, providers=["p-itrx"])
    (item,) = assess(inputs(policy(**spec), providers=many))
    assert {c.duration // DAY for c in item.candidates} == {1, 2, 3, 7, 14, 30}


def test_headroom_and_at_least_move_the_level() -> None:
    def energy(auto: dict[str, Any]) -> int:
        spec = _steady(topUp={"auto": auto, "duration": ["1d"]})
        got = chosen(decide(inputs(policy(**spec), observations={ADDR[0]: snap_used(0, 0)})))
        assert got is not None
        return got[2]

    low, high = energy({"headroom": 1.0}), energy({"headroom": 1.5, "atLeast": "200k"})
    assert low == 75_000 + 131_000  # an hour's expected draws, and one cold transfer free
    assert high == round(1.5 * 75_000) + 200_000


# --------------------------------------------------------------------------- renewal


def _renewal_inputs(ends_in: float, **kw: Any) -> PlanInputs:
    # a steady sender holding a 1.2M level that ends in `ends_in` seconds
    seen = snap_used(700_000, 1_200_000)
    rental = Rental("c-old", 1_200_000, NOW + ends_in)
    return inputs(
        policy(**_steady()), observations={ADDR[0]: seen}, rentals={ADDR[0]: [rental]}, **kw
    )


def test_a_rental_ending_within_the_lead_time_is_renewed_before_it_ends() -> None:
    result = decide(_renewal_inputs(1800))  # default lead for auto: 1 h
    (entry,) = result.entries
    assert entry.condition is Condition.BELOW_THRESHOLD and entry.action is not None
    assert "ends within" in entry.detail
    # its end takes all the used energy with it (the only delegation): what must be there
    # when it ends is the hour's rise (1.2 x 75k) and one cold transfer free
    assert entry.action.first.energy == 90_000 + 131_000


def test_no_renewal_while_the_rental_lasts() -> None:
    (entry,) = decide(_renewal_inputs(3 * HOUR)).entries
    assert entry.condition is Condition.HEALTHY


def test_a_renewal_is_never_a_second_open_order() -> None:
    from tests.engine.test_planning import order

    (entry,) = decide(_renewal_inputs(1800, open_orders=[order(energy=1_200_000)])).entries
    assert entry.action is None and entry.reason is Reason.ORDER_OPEN


def test_fixed_top_ups_look_ahead_only_with_renew_before() -> None:
    seen = snap_used(700_000, 1_200_000)
    rental = {ADDR[0]: [Rental("c-old", 1_200_000, NOW + 1800)]}
    fixed = {"providers": THREE, "topUp": {"amount": "131k", "duration": "1h"}}
    (entry,) = decide(inputs(policy(**fixed), observations={ADDR[0]: seen}, rentals=rental)).entries
    assert entry.condition is Condition.HEALTHY
    ahead = policy(**fixed, renewBefore="1h")
    (entry,) = decide(inputs(ahead, observations={ADDR[0]: seen}, rentals=rental)).entries
    assert entry.condition is Condition.BELOW_THRESHOLD


def test_the_dip_at_the_end_of_a_delegation_is_seen() -> None:
    # two rentals: the one ending takes its share of the used energy with it
    seen = snap_used(600_000, 1_000_000)  # 400k available
    rentals = [Rental("c-a", 800_000, NOW + 600), Rental("c-b", 200_000, NOW + 5 * DAY)]
    spec = _steady(threshold="100k")
    (item,) = assess(inputs(policy(**spec), observations={ADDR[0]: seen},
                            rentals={ADDR[0]: rentals}))  # fmt: skip
    # after the end: 200k limit, 600k x 0.2 = 120k used: 80k available < 100k
    assert item.condition is Condition.BELOW_THRESHOLD
    assert "80000 after" in item.detail


def test_a_top_up_during_a_rental_is_the_shortfall_only() -> None:
    # short mid-rental (the level ran low), with 1.5 days of it left: the top-up is one
    # more piece of the rolling level, the shortfall, not a second level
    seen = snap_used(1_150_000, 1_200_000)
    rental = {ADDR[0]: [Rental("c-level", 1_200_000, NOW + 36 * HOUR)]}
    inp = inputs(policy(**_steady()), observations={ADDR[0]: seen}, rentals=rental,
                 providers=THREE_DAYS)  # fmt: skip
    (item,) = assess(inp)
    assert item.condition is Condition.BELOW_THRESHOLD
    got = chosen(decide(inp))
    # free now 50k; wanted: 131k + 1.2 x 75k less an hour's recovery of 1.15M (~48k)
    assert got is not None and got[1] == DAY and 120_000 <= got[2] <= 130_000


def test_status_shows_expected_use() -> None:
    from engine.cli.rendering import status_table
    from engine.core.usage import UsageProfile, observe

    profile = observe(UsageProfile(ADDR[0]), used=0, limit=2_000_000, at=NOW - 1200)
    profile = observe(profile, used=130_000, limit=2_000_000, at=NOW - 600)
    inp = inputs(policy(**_steady()), usage={ADDR[0]: profile})
    (entry,) = decide(inp).entries
    use = entry.to_json()["expectedUse"]
    # a declared 1.8M a day, blended with 10 minutes of reads (130k)
    assert use["source"] == "declared" and use["burst30m"] == 130_000
    assert 1_700_000 < use["perDay"] < 2_200_000
    text = status_table(assess(inp), {})
    assert "USE/DAY" in text and "declared" in text


def test_a_vendor_sitting_on_an_accepted_order_gets_no_new_one() -> None:
    from engine.core.phases import OrderPhase
    from engine.reconciling import _stalled
    from tests.engine.test_planning import order

    fresh = order(phase=OrderPhase.SUBMITTED, created=NOW - 60)
    old = order(ADDR[1], phase=OrderPhase.SUBMITTED, created=NOW - 900)
    delegating = order(ADDR[2], phase=OrderPhase.DELEGATING, created=NOW - 900)
    assert _stalled([fresh, delegating], NOW, 300) == {}
    assert _stalled([fresh, old], NOW, 300) == {"p-mefree": NOW + 300}


def test_a_share_of_the_largest_recent_burst_is_kept_free() -> None:
    """The engine tops up within a burst, so a rolling level keeps BURST_SHARE (0.6) of the
    largest burst seen free, or atLeast if that is more."""
    from engine.core.usage import Forecast
    from engine.decide.sizing import rolling
    from policies.models import AutoSize

    auto = AutoSize.model_validate({"atLeast": "200k"})

    def free(burst: float) -> int:
        forecast = Forecast((1.0,) * 24, burst, True, "declared")
        level = rolling(forecast, auto, now=NOW, used=0, limit=0, rentals=[], lead=900)
        return level.free

    assert free(1_000_000) == 600_000
    assert free(300_000) == 200_000  # 180k: atLeast is more
    assert free(0) == 200_000
