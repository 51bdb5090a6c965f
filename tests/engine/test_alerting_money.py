"""Alerts about money: a charge above its quote, a reservation refused for its budget.

Regressions of issue 13, finding 3 (a price move between quote and order passed without
an alert). Uses the fakes of `tests/engine/test_alerting.py`.
"""

from __future__ import annotations

from engine.act.applying import ActionOutcome, Attempt, OutcomeKind
from engine.decide.planning import Plan
from engine.reconciling import PassResult
from tests.engine.test_alerting import FakeProvider, _alerter, _controller, _drain, _pass


async def test_a_charge_above_its_quote_alerts_once() -> None:
    """Regression: an order charged more than its quote (the price moved between the
    quote and the order) passed without an alert."""
    c = _controller(a=FakeProvider(0))
    alerter, posted = _alerter(c)
    moved = ActionOutcome(
        "T1", "pay", OutcomeKind.BOUGHT, "accepted", provider="a", client_order_id="ec-9",
        cost_sun=39_900_000, cap_sun=39_900_000, quote_sun=25_500_000, over_quote=True,
        attempts=(Attempt("a", "ec-9", "accepted"),),
    )  # fmt: skip
    alerter.observe_pass(c, PassResult(Plan((), 0.0), True, (moved,)), 0.0)
    alerter.observe_pass(c, _pass(("T2", "a", "accepted")), 0.0)
    await _drain(alerter)
    assert [(p["kind"], p["subject"]) for p in posted] == [("price", "ec-9")]
    assert "39900000" in posted[0]["message"] and "quote 25500000" in posted[0]["message"]


async def test_a_reservation_refused_by_the_store_for_its_budget_alerts() -> None:
    """The planner checks budgets against the quote; the store reserves the cap. A
    refusal of that reservation is a budget alert too, not a silent hold."""
    c = _controller(a=FakeProvider(0))
    alerter, posted = _alerter(c)
    refused = ActionOutcome(
        "T1", "pay", OutcomeKind.HELD, "budget exceeded for pay per day: ...",
        attempts=(Attempt("a", "ec-3", "refused", "budget exceeded for pay per day: ..."),),
    )  # fmt: skip
    alerter.observe_pass(c, PassResult(Plan((), 0.0), True, (refused,)), 0.0)
    await _drain(alerter)
    assert [(p["kind"], p["subject"]) for p in posted] == [("budget", "pay")]
