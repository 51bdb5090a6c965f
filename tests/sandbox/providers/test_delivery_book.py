"""DeliveryBook.tick walks only unfinished deliveries, and still finishes each one."""

from __future__ import annotations

import pytest

from sandbox.providers.base import DelegationError
from sandbox.providers.delivery import Delivery, DeliveryBook, DeliveryState
from sandbox.providers.faults import Faults


class _Delegator:
    def __init__(self) -> None:
        self.made: list[str] = []
        self.refuse_reclaims = 0

    def delegate(self, receiver: str, energy: int, duration: int) -> str:
        self.made.append(receiver)
        return f"tx{len(self.made)}"

    def reclaim(self, txid: str) -> None:
        if self.refuse_reclaims:
            self.refuse_reclaims -= 1
            raise DelegationError("node busy")


def test_tick_skips_finished_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    book = DeliveryBook(_Delegator(), delay=3.0)
    old = [book.schedule(f"T{n}", 65_000, 600, 0.0, Faults()) for n in range(50)]
    book.tick(700.0)  # delivered at 3, reclaimed at 603
    assert {d.state for d in old} == {DeliveryState.EXPIRED}
    new = book.schedule("Tnew", 65_000, 600, 700.0, Faults())
    walked: list[str] = []
    advance = book._advance

    def counted(delivery: Delivery, now: float) -> None:
        walked.append(delivery.receiver)
        advance(delivery, now)

    monkeypatch.setattr(book, "_advance", counted)
    changed = book.tick(710.0)
    assert walked == ["Tnew"] and changed == [new]
    assert new.state is DeliveryState.DELEGATED and len(book.deliveries) == 51


def test_a_refused_reclaim_keeps_the_delivery_ticking() -> None:
    delegator = _Delegator()
    book = DeliveryBook(delegator, delay=0.0)
    delivery = book.schedule("T1", 65_000, 60, 0.0, Faults())
    book.tick(1.0)
    delegator.refuse_reclaims = 1
    book.tick(100.0)  # due for reclaim, refused: not finished
    before = (delivery.state, delivery.finished)
    book.tick(101.0)
    assert before == (DeliveryState.DELEGATED, False)
    assert (delivery.state, delivery.finished) == (DeliveryState.EXPIRED, True)


def test_an_undelivered_order_is_finished_at_once() -> None:
    book, faults = DeliveryBook(_Delegator()), Faults()
    faults.no_delivery()
    delivery = book.schedule("T1", 65_000, 60, 0.0, faults)
    assert book.tick(1_000.0) == [] and delivery.state is DeliveryState.PENDING
