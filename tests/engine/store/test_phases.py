"""The pure rules every store shares: transitions, settlement, slots, budget windows."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.phases import (
    ALLOWED_TRANSITIONS,
    OPEN_PHASES,
    TERMINAL_PHASES,
    LedgerKind,
    OrderPhase,
    free_slot,
    settlement,
)
from engine.core.records import BudgetWindow, window_bounds

P = OrderPhase
K = LedgerKind


def test_phases_partition_and_terminal_is_final() -> None:
    assert set(OrderPhase) == OPEN_PHASES | TERMINAL_PHASES
    assert not OPEN_PHASES & TERMINAL_PHASES
    assert {p.value for p in OPEN_PHASES} == {"intent", "submitted", "delegating", "unknown"}
    for phase in TERMINAL_PHASES:
        assert ALLOWED_TRANSITIONS[phase] == frozenset()
    for phase in OPEN_PHASES:
        assert phase in ALLOWED_TRANSITIONS[phase]  # a same-phase event is allowed
        assert P.INTENT not in ALLOWED_TRANSITIONS[phase] or phase is P.INTENT


def test_only_an_unsent_order_can_be_abandoned() -> None:
    can_abandon = {p for p in OrderPhase if P.ABANDONED in ALLOWED_TRANSITIONS[p]}
    assert can_abandon == {P.INTENT, P.UNKNOWN}
    can_refund = {p for p in OrderPhase if P.REFUNDED in ALLOWED_TRANSITIONS[p]}
    assert P.INTENT not in can_refund  # nothing was paid before the provider was called


@pytest.mark.parametrize(
    ("phase", "cost", "known", "refund", "expected"),
    [
        (P.SUBMITTED, 5, None, None, []),
        (P.DELIVERED, 80, None, None, [(K.RELEASE, -100), (K.SETTLE, 80)]),
        (P.DELIVERED, None, 90, None, [(K.RELEASE, -100), (K.SETTLE, 90)]),
        (P.DELIVERED, None, None, None, [(K.RELEASE, -100), (K.SETTLE, 100)]),
        (P.DELIVERED, 120, None, None, [(K.RELEASE, -100), (K.SETTLE, 120)]),
        (P.PARTIAL, 30, 90, None, [(K.RELEASE, -100), (K.SETTLE, 30)]),
        (P.FAILED, None, 90, None, [(K.RELEASE, -100)]),
        (P.FAILED, 3, None, None, [(K.RELEASE, -100), (K.SETTLE, 3)]),
        (P.ABANDONED, None, None, None, [(K.RELEASE, -100)]),
        (P.REFUNDED, None, 90, None, [(K.RELEASE, -100), (K.SETTLE, 90), (K.REFUND, -90)]),
        (P.REFUNDED, None, 90, 40, [(K.RELEASE, -100), (K.SETTLE, 90), (K.REFUND, -40)]),
        (P.REFUNDED, None, None, None, [(K.RELEASE, -100)]),
    ],
)
def test_settlement_table(
    phase: OrderPhase,
    cost: int | None,
    known: int | None,
    refund: int | None,
    expected: list[tuple[LedgerKind, int]],
) -> None:
    entries = settlement(
        phase, reserved_sun=100, cost_sun=cost, known_cost_sun=known, refund_sun=refund
    )
    assert entries == expected


@given(
    phase=st.sampled_from(sorted(TERMINAL_PHASES)),
    reserved=st.integers(0, 10**15),
    cost=st.none() | st.integers(0, 10**15),
    known=st.none() | st.integers(0, 10**15),
)
def test_a_terminal_order_always_gives_its_reservation_back(
    phase: OrderPhase, reserved: int, cost: int | None, known: int | None
) -> None:
    entries = settlement(phase, reserved_sun=reserved, cost_sun=cost, known_cost_sun=known)
    assert sum(a for k, a in entries if k in (K.RESERVE, K.RELEASE)) == -reserved
    assert all(isinstance(a, int) for _, a in entries)
    net = reserved + sum(a for _, a in entries)  # what the order costs in the end
    if phase in (P.DELIVERED, P.PARTIAL):  # the best cost known, else the reservation
        assert net == next(v for v in (cost, known, reserved) if v is not None)
    elif phase is P.REFUNDED:  # refunded in full unless told otherwise
        assert net == 0
    else:  # failed, abandoned: only an explicitly charged fee
        assert net == (cost or 0)


def test_settlement_refuses_negative_money_and_oversized_refunds() -> None:
    with pytest.raises(ValueError, match="cost_sun"):
        settlement(P.DELIVERED, reserved_sun=1, cost_sun=-1, known_cost_sun=None)
    with pytest.raises(ValueError, match="exceeds"):
        settlement(P.REFUNDED, reserved_sun=1, cost_sun=5, known_cost_sun=None, refund_sun=6)


def test_free_slot() -> None:
    assert free_slot(set(), 1) == 0
    assert free_slot({0}, 1) is None
    assert free_slot({0}, 3) == 1
    assert free_slot({1}, 2) == 0
    assert free_slot({1}, 1) is None  # a slot from an earlier, larger allowance still counts
    with pytest.raises(ValueError):
        free_slot(set(), 0)


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("window", "now", "start", "end"),
    [
        (BudgetWindow.DAY, "2026-03-10T12:00:00", "2026-03-10", "2026-03-11"),
        (BudgetWindow.DAY, "2026-03-10T00:00:00", "2026-03-10", "2026-03-11"),
        (BudgetWindow.DAY, "2026-03-10T23:59:59.999", "2026-03-10", "2026-03-11"),
        (BudgetWindow.DAY, "2026-12-31T08:00:00", "2026-12-31", "2027-01-01"),
        (BudgetWindow.MONTH, "2026-01-31T23:00:00", "2026-01-01", "2026-02-01"),
        (BudgetWindow.MONTH, "2028-02-29T12:00:00", "2028-02-01", "2028-03-01"),
        (BudgetWindow.MONTH, "2026-12-15T00:00:00", "2026-12-01", "2027-01-01"),
    ],
)
def test_window_bounds_are_utc_calendar_windows(
    window: BudgetWindow, now: str, start: str, end: str
) -> None:
    assert window_bounds(window, _ts(now)) == (_ts(start + "T00:00:00"), _ts(end + "T00:00:00"))
