"""The planner's vocabulary: PURE values, no decisions.

What goes into a plan (`PlanInputs`, `ProviderView`, `ObservationFailure`), the words it
decides in (`Condition`, `Reason`), what step 1 finds (`Assessment`, `Candidate`,
`QuoteKey`) and what step 2 returns (`Action`, `AddressPlan`, `Plan`, with their JSON).
Units: energy int, money int sun, prices in milli-sun per energy, times epoch seconds.

Neighbours: `engine/decide/planning.py` (the decisions, which re-exports every name here), read
by `engine/reconciling.py`, `engine/act/applying.py`, `engine/cli/rendering.py`, the sidecar.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.core.records import BudgetWindow, OrderRecord
from engine.core.snapshots import EnergySnapshot
from engine.core.usage import UsageProfile
from policies.models import EnergyPolicy
from providers.base import Capabilities

# --------------------------------------------------------------------------- vocabulary


class Condition(enum.StrEnum):
    HEALTHY = "Healthy"  # effective energy at or above the threshold
    BELOW_THRESHOLD = "BelowThreshold"  # below it: an action buys a top-up
    TOP_UP_PENDING = "TopUpPending"  # below it, but an open order will cover it
    BLOCKED = "Blocked"  # below it (or unknown) and nothing may be bought now


class Reason(enum.StrEnum):
    """Why an address is in its condition. Stable strings: shown in status and metrics."""

    ENOUGH_ENERGY = "EnoughEnergy"
    NEEDS_TOP_UP = "NeedsTopUp"
    ORDER_OPEN = "OrderOpen"
    MISSING_OBSERVATION = "MissingObservation"
    STALE_OBSERVATION = "StaleObservation"
    OBSERVATION_ERROR = "ObservationError"
    NOT_ACTIVATED = "NotActivated"
    UNRESOLVED_ORDER = "UnresolvedOrder"
    COOLDOWN = "Cooldown"
    NO_PROVIDER = "NoProvider"
    PRICE_CAP = "PriceCap"
    BUDGET = "Budget"
    GATE = "SafetyGate"


#: ProviderView.cooling_until etc. use epoch seconds, like every time in the engine.


@dataclass(frozen=True, slots=True)
class ProviderView:
    """What the planner knows of one provider (instance) this pass."""

    name: str
    capabilities: Capabilities
    cooling_until: float | None = None
    balance_sun: int | None = None  # None: not known this pass (not a reason to skip)


@dataclass(frozen=True, slots=True)
class QuoteKey:
    provider: str
    energy: int
    duration: int


@dataclass(frozen=True, slots=True)
class Rental:
    """A delegation the engine bought that may still be in force (a delivered order)."""

    client_order_id: str
    energy: int
    ends_at: float  # created_at + duration: the earliest it can end
    duration: int = 0  # seconds (0: unknown)

    def renewal_due(self, now: float, lead: int) -> bool:
        """It ends within `lead` (at most a quarter of its duration: a 1 h rental is not
        renewed the moment it lands)."""
        window = min(lead, self.duration // 4) if self.duration else lead
        return now < self.ends_at <= now + window


@dataclass(frozen=True, slots=True)
class ObservationFailure:
    """Why there is no usable observation of an address (the chain read failed)."""

    message: str


@dataclass(frozen=True, slots=True)
class PlanInputs:
    policies: Sequence[EnergyPolicy]
    observations: Mapping[str, EnergySnapshot | ObservationFailure]
    open_orders: Sequence[OrderRecord]
    providers: Mapping[str, ProviderView]
    now: float
    #: (policy name, window) -> sun reserved + settled in the window holding `now`
    spent: Mapping[tuple[str, BudgetWindow], int] = field(default_factory=dict)
    #: address -> created_at of its most recent order (for the policy's cooldown)
    last_order_at: Mapping[str, float] = field(default_factory=dict)
    #: address -> energy that must be available now (the sidecar's ensure requests)
    demands: Mapping[str, int] = field(default_factory=dict)
    #: an observation older than this (seconds) is stale: never buy blind (invariant 6)
    max_observation_age: float = 120.0
    #: safety gate: most purchases in one plan
    max_actions: int = 10
    #: address -> what the engine learned of its use (`engine/core/usage.py`)
    usage: Mapping[str, UsageProfile] = field(default_factory=dict)
    #: address -> rentals the engine bought that have not ended yet
    rentals: Mapping[str, Sequence[Rental]] = field(default_factory=dict)


# --------------------------------------------------------------------------- step 1 values


@dataclass(frozen=True, slots=True)
class Candidate:
    """A provider that could serve a need, with the amount and duration it would sell."""

    provider: str
    energy: int
    duration: int
    quote_sun: int | None = None  # filled in by step 2
    served: int = 0  # energy this rental is expected to serve (0: its amount)
    note: str = ""  # step 2: why it was not chosen, or "chosen"

    @property
    def per_used_milli(self) -> int | None:
        """Milli-sun per unit of energy expected to be used (None before a quote)."""
        if self.quote_sun is None:
            return None
        return self.quote_sun * 1000 // max(1, self.served or self.energy)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "energy": self.energy,
            "duration": self.duration,
            "cost_sun": self.quote_sun,
            "expected_used": self.served or self.energy,
            "sun_per_used_energy": None
            if self.per_used_milli is None
            else self.per_used_milli / 1000,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class UseSummary:
    """An address's expected use, for status: energy per day, what it used over the last
    7 UTC days, where the expectation comes from (declared, learning, observed) and its
    largest burst."""

    per_day: int
    last_week: int
    source: str
    burst: int = 0  # the most used within 30 minutes (decaying)

    def to_json(self) -> dict[str, Any]:
        return {
            "perDay": self.per_day,
            "lastWeek": self.last_week,
            "source": self.source,
            "burst30m": self.burst,
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    address: str
    policy: EnergyPolicy
    condition: Condition
    reason: Reason
    detail: str
    available: int | None
    effective: int | None  # available + energy of open orders
    threshold: int
    need: int = 0  # energy wanted (before provider rounding); 0 when nothing is wanted
    duration: int = 0
    candidates: tuple[Candidate, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()  # (provider, why) found in step 1
    use: UseSummary | None = None


# --------------------------------------------------------------------------- step 2 values


@dataclass(frozen=True, slots=True)
class Action:
    """A purchase to make. `candidates` are in priority order; applying tries the first
    and falls back down the list on a definite failure."""

    address: str
    policy: str
    candidates: tuple[Candidate, ...]
    max_total_sun: int  # price cap for the amount of the chosen candidate
    exclusive: bool
    prevent_duplicates: bool
    max_open: int
    reason: str
    #: the policy's price cap in milli-sun per energy (0: only `max_total_sun` is known)
    max_price_milli: int = 0

    @property
    def first(self) -> Candidate:
        return self.candidates[0]

    def cap_for(self, candidate: Candidate) -> int:
        """The most an order from `candidate` may cost in total, sun."""
        if self.max_price_milli:
            return cap_total(self.max_price_milli, candidate.energy)
        return self.max_total_sun * candidate.energy // self.first.energy


@dataclass(frozen=True, slots=True)
class AddressPlan:
    address: str
    policy: str
    condition: Condition
    reason: Reason
    detail: str
    available: int | None
    effective: int | None
    threshold: int
    action: Action | None = None
    rejected: tuple[tuple[str, str], ...] = ()
    #: every offer quoted for this address, best first (with why it won or lost)
    compared: tuple[Candidate, ...] = ()
    why: str = ""  # why the chosen offer won
    use: UseSummary | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address,
            "policy": self.policy,
            "condition": str(self.condition),
            "reason": str(self.reason),
            "detail": self.detail,
            "available": self.available,
            "effective": self.effective,
            "threshold": self.threshold,
            "action": None,
            "rejected": [{"provider": p, "why": why} for p, why in self.rejected],
        }
        if self.action is not None:
            first = self.action.first
            out["action"] = {
                "provider": first.provider,
                "energy": first.energy,
                "duration": first.duration,
                "estimated_cost_sun": first.quote_sun,
                "fallbacks": [c.provider for c in self.action.candidates[1:]],
                "why": self.why,
            }
        if self.compared:
            out["compared"] = [c.to_json() for c in self.compared]
        if self.use is not None:
            out["expectedUse"] = self.use.to_json()
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    entries: tuple[AddressPlan, ...]
    now: float

    @property
    def actions(self) -> list[Action]:
        return [e.action for e in self.entries if e.action is not None]

    @property
    def estimated_cost_sun(self) -> int:
        return sum(a.first.quote_sun or 0 for a in self.actions)

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "actions": len(self.actions),
            "estimated_cost_sun": self.estimated_cost_sun,
            "addresses": [e.to_json() for e in self.entries],
        }


def cap_total(max_price_milli: int, energy: int) -> int:
    """The most an order of `energy` may cost under a cap in milli-sun per energy."""
    return max_price_milli * energy // 1000
