"""Order phases, the transitions allowed between them, and how each one settles the ledger.

PURE: no I/O. Every store implementation (SQLite now, PostgreSQL later) takes its rules
from here, so both agree on what a legal transition is and on what it does to the money.

An order is *open* while it may still turn into delegated energy or into a charge:
`intent` (written ahead of the provider call, docs/architecture.md invariant 1), `submitted`,
`delegating` and `unknown` (an ambiguous outcome, invariant 3). Open orders hold a budget
reservation and count against the address's open-order limit (invariants 2 and 5).
Terminal phases are final: nothing moves an order out of one.

Neighbours: `records.py` (the values that carry a phase), `base.py` (the Store interface
that calls `check_transition` and `settlement`), `sqlite.py` (the implementation).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class OrderPhase(enum.StrEnum):
    """Where an order is in its life. The string values are stored in the database."""

    INTENT = "intent"  # written ahead; the provider may not have been called yet
    SUBMITTED = "submitted"  # the provider accepted it; nothing delegated yet
    DELEGATING = "delegating"  # delegation under way or reported done, not yet on chain
    UNKNOWN = "unknown"  # ambiguous: may exist at the provider; the address is held
    DELIVERED = "delivered"  # the chain shows the energy
    PARTIAL = "partial"  # the chain shows part of it; charged for that part
    FAILED = "failed"  # definite failure: nothing delegated, nothing charged
    REFUNDED = "refunded"  # charged, then the money came back (in whole or in part)
    ABANDONED = "abandoned"  # an intent resolved as never sent

    @property
    def is_open(self) -> bool:
        return self in OPEN_PHASES

    @property
    def is_terminal(self) -> bool:
        return self not in OPEN_PHASES


OPEN_PHASES: frozenset[OrderPhase] = frozenset(
    {OrderPhase.INTENT, OrderPhase.SUBMITTED, OrderPhase.DELEGATING, OrderPhase.UNKNOWN}
)
TERMINAL_PHASES: frozenset[OrderPhase] = frozenset(set(OrderPhase) - OPEN_PHASES)
#: terminal phases in which the order was (at least in part) fulfilled and paid for
SETTLED_PHASES: frozenset[OrderPhase] = frozenset({OrderPhase.DELIVERED, OrderPhase.PARTIAL})

_P = OrderPhase

#: from -> the phases it may move to. Staying in the same open phase is allowed (it records
#: an event: a note, a provider order id learned, another attempt); terminal phases are final.
ALLOWED_TRANSITIONS: Mapping[OrderPhase, frozenset[OrderPhase]] = {
    _P.INTENT: frozenset(
        {_P.INTENT, _P.SUBMITTED, _P.DELEGATING, _P.UNKNOWN}
        | {_P.DELIVERED, _P.PARTIAL, _P.FAILED, _P.ABANDONED}
    ),
    _P.SUBMITTED: frozenset(
        {_P.SUBMITTED, _P.DELEGATING, _P.UNKNOWN}
        | {_P.DELIVERED, _P.PARTIAL, _P.FAILED, _P.REFUNDED}
    ),
    _P.DELEGATING: frozenset(
        {_P.DELEGATING, _P.UNKNOWN} | {_P.DELIVERED, _P.PARTIAL, _P.FAILED, _P.REFUNDED}
    ),
    _P.UNKNOWN: frozenset(
        {_P.UNKNOWN, _P.SUBMITTED, _P.DELEGATING}
        | {_P.DELIVERED, _P.PARTIAL, _P.FAILED, _P.REFUNDED, _P.ABANDONED}
    ),
    **{phase: frozenset() for phase in TERMINAL_PHASES},
}


def check_transition(from_phase: OrderPhase, to_phase: OrderPhase) -> bool:
    """Whether an order in `from_phase` may move to `to_phase`."""
    return to_phase in ALLOWED_TRANSITIONS[from_phase]


class LedgerKind(enum.StrEnum):
    """What a ledger entry records. Entries are signed: their sum is what a window spent."""

    RESERVE = "reserve"  # + the reservation taken with the intent (before any call)
    RELEASE = "release"  # - that reservation, given back when the order ends
    SETTLE = "settle"  # + what the order actually cost
    REFUND = "refund"  # - money the provider gave back


def settlement(
    to_phase: OrderPhase,
    *,
    reserved_sun: int,
    cost_sun: int | None,
    known_cost_sun: int | None,
    refund_sun: int | None = None,
) -> list[tuple[LedgerKind, int]]:
    """Ledger entries written when an order reaches `to_phase` (none while it stays open).

    `cost_sun` is the cost given with this transition, `known_cost_sun` the one stored on
    the order earlier (from a receipt). Rules, for terminal phases:

    - delivered / partial: the reservation is released and the actual cost settled; with no
      cost known at all, the reservation itself is settled (we assume the worst).
    - refunded: the reservation is released; the charge (if known) is settled and then the
      refund recorded against it: `refund_sun` if given, else the whole charge.
    - failed / abandoned: the reservation is released; a cost is settled only if one is
      given explicitly (a vendor that kept a fee).

    The sum of the returned amounts is the order's effect on its budget window from now on:
    spent = reserved while open, = settled cost (minus refunds) once terminal.
    """
    if to_phase.is_open:
        return []
    for label, value in (("cost_sun", cost_sun), ("refund_sun", refund_sun)):
        if value is not None and value < 0:
            raise ValueError(f"{label} must be >= 0 sun, got {value}")
    entries: list[tuple[LedgerKind, int]] = []
    if reserved_sun:
        entries.append((LedgerKind.RELEASE, -reserved_sun))
    if to_phase in SETTLED_PHASES:
        cost = _first_known(cost_sun, known_cost_sun, reserved_sun)
        entries.append((LedgerKind.SETTLE, cost))
    elif to_phase is OrderPhase.REFUNDED:
        charged = _first_known(cost_sun, known_cost_sun, 0)
        refund = charged if refund_sun is None else refund_sun
        if refund > charged:
            raise ValueError(f"refund of {refund} sun exceeds the charge of {charged} sun")
        if charged:
            entries.append((LedgerKind.SETTLE, charged))
        if refund:
            entries.append((LedgerKind.REFUND, -refund))
    elif cost_sun:
        entries.append((LedgerKind.SETTLE, cost_sun))
    return entries


def _first_known(*values: int | None) -> int:
    for value in values:
        if value is not None:
            return value
    return 0


def free_slot(taken: set[int], max_open: int) -> int | None:
    """The lowest open-order slot in [0, max_open) not in `taken`, or None when all are.

    Each open order of an address holds one slot, and the database keeps (address, slot)
    unique among open orders: with max_open = 1 every open order takes slot 0, which is
    exactly "one open order per address" (invariant 2), enforced by a unique index.
    """
    if max_open < 1:
        raise ValueError(f"max_open must be >= 1, got {max_open}")
    if len(taken) >= max_open:
        return None
    return next((slot for slot in range(max_open) if slot not in taken), None)
