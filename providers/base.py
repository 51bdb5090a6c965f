"""The provider interface: what every vendor adapter offers the engine.

One async interface (`Provider`), the value types that cross it (`QuoteRequest`, `Quote`,
`OrderRequest`, `Receipt`, `OrderStatus`), what a vendor can do (`Capabilities`) and the
three kinds of failure (`TemporaryError`, `PermanentError`, `AmbiguousError`).

Units: money is int sun (never a float), energy an int, durations whole
seconds. Vendor-specific wire formats never leave the adapter modules; `raw` fields carry
the vendor's parsed JSON for logs and debugging only, and never hold credentials.

Neighbours: `providers/http.py` (transport and error mapping), one module per vendor,
`providers/registry.py`; used by `engine/`.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies.redacting import scrub, scrub_data
from policies.vendors import ProviderSettings

# --------------------------------------------------------------------------- values


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("raw", check_fields=False)
    @classmethod
    def _scrubbed(cls, raw: Any) -> Any:
        """A vendor's answer is kept (and stored) without any secret it echoed."""
        return scrub_data(raw)


class Capabilities(_Value):
    """What a vendor accepts and guarantees. Used by validation and by the planner."""

    durations: tuple[int, ...] | None = Field(
        default=None,
        description="Durations (seconds) the vendor sells, ascending; None means any "
        "whole number of seconds between min_duration and max_duration.",
    )
    min_duration: int = Field(default=0, ge=0, description="Shortest duration, seconds.")
    max_duration: int | None = Field(default=None, description="Longest duration, seconds.")
    min_amount: int = Field(ge=1, description="Smallest order, energy.")
    max_amount: int | None = Field(default=None, description="Largest order, energy.")
    idempotency_key: bool = Field(
        default=False,
        description="The vendor deduplicates create calls on our client order id, so a "
        "create call may be retried safely.",
    )
    lookup_by_client_id: bool = Field(
        default=False,
        description="An order can be found from our client order id alone "
        "(resolves ambiguous outcomes without a receipt).",
    )
    exclusive: bool = Field(
        default=False, description="Can remove other small delegations before delegating."
    )
    duplicate_guard: bool = Field(
        default=False, description="Can refuse an order identical to an incomplete one."
    )
    partial_fill: bool = Field(default=False, description="An order may be filled in part.")
    fill_or_nothing: bool = Field(
        default=False, description="Can refuse to create an order it cannot fill at once."
    )
    price_cap: bool = Field(
        default=False, description="Enforces our maximum unit price on its side."
    )
    callbacks: bool = Field(default=False, description="Sends signed status callbacks.")
    activates_receiver: bool = Field(
        default=False, description="Can activate an unactivated receiver as part of an order."
    )

    def accepts_duration(self, seconds: int) -> bool:
        if self.durations is not None:
            return seconds in self.durations
        if seconds < self.min_duration:
            return False
        return self.max_duration is None or seconds <= self.max_duration

    def fit_duration(self, seconds: int) -> int | None:
        """The shortest duration this vendor sells that is at least `seconds`, or None."""
        if self.durations is not None:
            return next((d for d in self.durations if d >= seconds), None)
        wanted = max(seconds, self.min_duration)
        if self.max_duration is not None and wanted > self.max_duration:
            return None
        return wanted

    def fit_amount(self, energy: int) -> int | None:
        """`energy` raised to the vendor's minimum, or None when above its maximum."""
        wanted = max(energy, self.min_amount)
        if self.max_amount is not None and wanted > self.max_amount:
            return None
        return wanted


class QuoteRequest(_Value):
    receiver: str = Field(description="Base58check address that would receive the energy.")
    energy: int = Field(gt=0)
    duration: int = Field(gt=0, description="Seconds.")


class Quote(_Value):
    provider: str = Field(description="Instance name of the provider (policy metadata.name).")
    energy: int
    duration: int
    total_sun: int = Field(ge=0, description="What the order would cost in total, sun.")
    raw: Mapping[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def unit_price_milli_sun(self) -> int:
        """Effective price per energy unit, in thousandths of a sun (rounded up)."""
        return -(-self.total_sun * 1000 // self.energy)


class OrderRequest(_Value):
    """One purchase. `client_order_id` is always set: it is our write-ahead intent's key."""

    client_order_id: str = Field(min_length=1, max_length=64)
    receiver: str
    energy: int = Field(gt=0)
    duration: int = Field(gt=0, description="Seconds.")
    max_total_sun: int | None = Field(
        default=None, description="Refuse to pay more than this in total (price cap)."
    )
    exclusive: bool = False
    prevent_duplicates: bool = True
    fill_or_nothing: bool = False
    allow_partial: bool = False
    activate: bool = False
    callback_url: str | None = None
    retry: bool = Field(
        default=False,
        description="An earlier create with this client order id may have reached the "
        "vendor (tracking re-places it): a refusal now proves nothing, it is ambiguous.",
    )


class Receipt(_Value):
    """What a vendor said when it accepted an order."""

    provider: str = Field(description="Instance name of the provider.")
    client_order_id: str
    provider_order_id: str
    receiver: str
    energy: int
    duration: int
    cost_sun: int | None = Field(
        default=None, description="Cost as the vendor reported it, sun; None if not reported."
    )
    raw: Mapping[str, Any] = Field(default_factory=dict, repr=False)


class OrderState(enum.StrEnum):
    """An order's state as the vendor reports it (not yet confirmed by the chain)."""

    PENDING = "pending"  # accepted; nothing delegated yet
    DELEGATING = "delegating"  # some delegated or delegation under way
    DELEGATED = "delegated"  # the vendor says the full amount was delegated
    PARTIAL = "partial"  # terminal: only part was delegated
    FAILED = "failed"  # terminal: nothing delegated
    REFUNDED = "refunded"  # terminal: the vendor returned the money (in part or whole)

    @property
    def terminal(self) -> bool:
        return self in (
            OrderState.DELEGATED,
            OrderState.PARTIAL,
            OrderState.FAILED,
            OrderState.REFUNDED,
        )


class OrderStatus(_Value):
    state: OrderState
    delegated_energy: int = Field(default=0, ge=0, description="Energy delegated so far.")
    txids: tuple[str, ...] = Field(default=(), description="Delegation transaction ids.")
    cost_sun: int | None = None
    refund_sun: int = 0
    raw: Mapping[str, Any] = Field(default_factory=dict, repr=False)


# --------------------------------------------------------------------------- errors


class ErrorReason(enum.StrEnum):
    """Why a call failed, normalised across vendors (drives cooldowns and conditions)."""

    AUTH = "auth"  # bad or missing credentials, IP not whitelisted
    BALANCE = "balance"  # account balance too low
    PRICE = "price"  # above our price cap
    INVALID_REQUEST = "invalid_request"  # amount, duration or address refused
    RECEIVER = "receiver"  # receiver invalid or not activated
    DUPLICATE = "duplicate"  # an identical incomplete order exists
    UNFULFILLABLE = "unfulfillable"  # not enough supply now
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"  # connection refused, 5xx before sending, maintenance
    NOT_FOUND = "not_found"
    PROTOCOL = "protocol"  # a response we cannot understand
    UNKNOWN = "unknown"


class ProviderError(Exception):
    """Base of every error an adapter raises. Messages never contain credentials."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        reason: ErrorReason = ErrorReason.UNKNOWN,
        vendor_code: str | None = None,
        refusal: bool = True,
    ) -> None:
        # vendor text may echo our key: scrubbed here, once, before anything stores or logs it
        super().__init__(f"{provider}: {scrub(message)}")
        self.provider = provider
        self.reason = reason
        self.vendor_code = None if vendor_code is None else scrub(vendor_code)
        #: the vendor documents this answer as a refusal made before anything was bought.
        #: False for answers that do not prove it (an unknown code, "operation failed,
        #: retry later"): on a create they are ambiguous (`providers.http.on_create`).
        self.refusal = refusal


class TemporaryError(ProviderError):
    """Nothing was bought; the same call may succeed later (after `delay` seconds)."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        delay: float | None = None,
        reason: ErrorReason = ErrorReason.UNAVAILABLE,
        vendor_code: str | None = None,
        refusal: bool = True,
    ) -> None:
        super().__init__(provider, message, reason=reason, vendor_code=vendor_code, refusal=refusal)
        self.delay = delay


class PermanentError(ProviderError):
    """Nothing was bought, and this order cannot succeed at this provider as it is."""


class AmbiguousError(ProviderError):
    """The request may have reached the vendor: an order may exist. Never retry elsewhere."""


# --------------------------------------------------------------------------- interface


class CallbackRejected(ValueError):
    """The callback is not authentic, is stale, or is malformed. Answer it with 4xx."""


class CallbackUnverifiable(Exception):
    """A callback cannot be checked: the provider's settings lack what verifies it."""


@dataclass(frozen=True)
class NotFoundShape:
    """How a vendor documents its answer to a lookup of an order that does not exist."""

    #: the adapter's `vendor_code` of that refusal; empty: the vendor documents none
    vendor_codes: frozenset[str]
    #: the documented answer and its public source, for reports
    text: str


class Provider(abc.ABC):
    """One vendor account. Instances are cheap; `aclose()` releases the HTTP client.

    What an adapter declares about itself, besides the calls: `type_name` (a Provider
    document's `spec.type`), `settings` (the model of that document's `spec`: a
    `policies.vendors.ProviderSettings` subclass whose fields, other than `type`, are the
    constructor's keywords), `capabilities`, and, for a vendor that POSTs signed delivery
    callbacks (`capabilities.callbacks`), `verify_callback`."""

    #: vendor type as written in a Provider document's `spec.type`
    type_name: ClassVar[str]
    #: the model of a Provider document's `spec` for this vendor
    settings: ClassVar[type[ProviderSettings]]
    capabilities: ClassVar[Capabilities]
    #: an order id of this vendor's format that no order has (`energyctl providers check`
    #: looks it up to see the shape of the vendor's "not found")
    unknown_order_id: ClassVar[str] = "energyctl-check-no-such-order"
    #: how the vendor documents that "not found"; None: undocumented
    not_found: ClassVar[NotFoundShape | None] = None

    @classmethod
    def verify_callback(
        cls, settings: ProviderSettings, headers: Mapping[str, str], body: bytes, now: float
    ) -> None:
        """Check a callback the vendor POSTed, with the secrets of its Provider document's
        `settings` (resolved). Raises CallbackRejected (not authentic, stale, malformed) or
        CallbackUnverifiable (the settings lack the secret)."""
        raise CallbackRejected(f"{cls.type_name} sends no callbacks")

    def __init__(self, name: str) -> None:
        #: instance name (the Provider document's metadata.name)
        self.name = name

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Read what the vendor publishes about this account before the first plan (e.g.
        the durations and amounts it sells, which may narrow `capabilities`). Called once
        when the engine opens its providers; a ProviderError leaves the declared
        capabilities in force (the adapter may read again when it needs to)."""

    @abc.abstractmethod
    async def quote(self, request: QuoteRequest) -> Quote:
        """Total cost of an order, sun. Raises TemporaryError or PermanentError."""

    @abc.abstractmethod
    async def place(self, order: OrderRequest) -> Receipt:
        """Create an order. Raises TemporaryError, PermanentError or AmbiguousError."""

    @abc.abstractmethod
    async def status(self, receipt: Receipt) -> OrderStatus:
        """The vendor's current view of an order."""

    async def lookup(self, client_order_id: str) -> Receipt | None:
        """Find an order by our client order id, where the vendor allows it.

        Returns None when the vendor has no such order. Vendors without a lookup raise
        PermanentError (check `capabilities.lookup_by_client_id` first).
        """
        raise PermanentError(
            self.name,
            "this vendor cannot look orders up by client order id",
            reason=ErrorReason.INVALID_REQUEST,
        )

    @abc.abstractmethod
    async def balance(self) -> int:
        """Account balance available for orders, sun."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP connections)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
