"""Persistence of orders, the spend ledger, leases and applied policy revisions.

The public face of the store package: `open_store(url, clock)` and the interface and
values the engine uses. `base.py` defines the `Store` interface and its errors; the
values and the pure rules it stores (`engine/core/records.py`, `engine/core/phases.py`) are
handed on from the core room, which the planner shares; `rows.py` what both backends
do alike around their SQL, `sqlite.py` the default implementation (`postgres.py` the
replicated one), `migrating.py` the schema migrations, `factory.py` URL selection.
docs/store.md describes the tables and how the money invariants are enforced.
May use `engine.core` only (no other room of the engine).
"""

from engine.core.phases import OPEN_PHASES, TERMINAL_PHASES, LedgerKind, OrderPhase
from engine.core.records import (
    BudgetLimit,
    BudgetWindow,
    IntentCreated,
    IntentOutcome,
    IntentRefused,
    Lease,
    LedgerEntry,
    NewIntent,
    OrderEvent,
    OrderFilter,
    OrderRecord,
    PolicyRevision,
    ProviderHealth,
    RefusalReason,
    cooldown_until,
    window_bounds,
)
from engine.store.base import (
    DuplicateOrderError,
    IllegalTransitionError,
    OrderNotFoundError,
    SchemaVersionError,
    Store,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    TransitionConflictError,
    UnsupportedStoreURLError,
)
from engine.store.factory import open_store

__all__ = [
    "OPEN_PHASES",
    "TERMINAL_PHASES",
    "BudgetLimit",
    "BudgetWindow",
    "DuplicateOrderError",
    "IllegalTransitionError",
    "IntentCreated",
    "IntentOutcome",
    "IntentRefused",
    "Lease",
    "LedgerEntry",
    "LedgerKind",
    "NewIntent",
    "OrderEvent",
    "OrderFilter",
    "OrderNotFoundError",
    "OrderPhase",
    "OrderRecord",
    "PolicyRevision",
    "ProviderHealth",
    "RefusalReason",
    "SchemaVersionError",
    "Store",
    "StoreClosedError",
    "StoreError",
    "StoreUnavailableError",
    "TransitionConflictError",
    "UnsupportedStoreURLError",
    "cooldown_until",
    "open_store",
    "window_bounds",
]
