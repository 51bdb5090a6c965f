"""The documents of the policy language, as pydantic v2 models.

Three kinds, written in the Kubernetes manner (`apiVersion: energyctl/v1`, `kind`,
`metadata.name`, `spec`): `Provider` (an account at an energy vendor), `EnergyPolicy` (which
addresses to keep supplied, and within which limits) and `EngineConfig` (how the engine
observes the chain, stores its state and serves HTTP). Every model forbids unknown keys and
is frozen; every field has a description, which the JSON Schema carries to editors.

YAML keys are camelCase (`topUp`, `maxPrice`); Python attributes are snake_case. Units come
from `policies/units.py`. Credentials are `SecretRef`s, resolved by `policies/loading.py`.
A Provider's `spec` is the settings model its vendor's adapter registered
(`policies/vendors.py`). Checks that span documents live in `policies/checking.py`.
`docs/policies.md` is the reference for users; keep it in step with this module.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from policies.base import (
    API_VERSION,
    Metadata,
    Model,
    SecretRef,
    UnresolvedSecretError,
    check_http_url,
)
from policies.units import (
    DURATION_PATTERN,
    Address,
    Duration,
    Energy,
    Sun,
    UnitPrice,
    format_duration,
    parse_duration,
)
from policies.vendors import ProviderSettings, settings_models

__all__ = [
    "API_VERSION",
    "KINDS",
    "AutoSize",
    "Budget",
    "Document",
    "EnergyPolicy",
    "EnergyPolicySpec",
    "EngineConfig",
    "EngineSpec",
    "ExpectedUse",
    "HttpSettings",
    "Metadata",
    "Model",
    "NodeSettings",
    "ObservationSettings",
    "Provider",
    "ProviderSettings",
    "SecretRef",
    "StoreSettings",
    "TopUp",
    "UnresolvedSecretError",
    "provider_model",
]

# --------------------------------------------------------------------------- Provider


class Provider(Model):
    """An account at an energy vendor. Policies name it in their `providers` list."""

    # `spec` is the settings model of the vendor its `type` names (policies/vendors.py);
    # documents are validated by `provider_model()`: this class with `spec` narrowed to
    # the union of every registered vendor's settings.

    api_version: Literal["energyctl/v1"] = Field(description="Always energyctl/v1.")
    kind: Literal["Provider"] = Field(description="Document kind.")
    metadata: Metadata = Field(description="Name (referenced by policies) and labels.")
    spec: ProviderSettings = Field(description="Vendor type, endpoint and credentials.")


class _NoVendor(ProviderSettings):
    """The spec when no vendor is registered: every document is refused."""

    @model_validator(mode="before")
    @classmethod
    def _refuse(cls, data: Any) -> Any:
        raise ValueError("no vendor type is registered (import providers.registry)")


_provider_models: dict[tuple[type[ProviderSettings], ...], type[Provider]] = {}


def provider_model() -> type[Provider]:
    """`Provider` with `spec` one of the registered vendors' settings, told apart by `type`
    (cached per set of registered vendors). Its documents are `Provider` instances."""
    models = settings_models()
    cached = _provider_models.get(models)
    if cached is not None:
        return cached
    spec_type: Any = _NoVendor
    if models:
        spec_type = Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007
    model: type[Provider] = create_model(
        "Provider",
        __base__=Provider,
        __module__=__name__,
        __doc__=Provider.__doc__ or "",
        spec=(spec_type, Field(description="Vendor type, endpoint and credentials.")),
    )
    _provider_models[models] = model
    return model


# --------------------------------------------------------------------------- EnergyPolicy


def _duration_choice(value: object) -> int | tuple[int, ...] | str:
    """`1d`, `[1h, 1d, 3d]` or `auto` -> seconds, ascending seconds or "auto"."""
    if value == "auto":
        return "auto"
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError("the list of allowed durations is empty: give one or more, or auto")
        seconds = [parse_duration(item) for item in value]
        if any(s <= 0 for s in seconds):
            raise ValueError("every duration must be greater than 0")
        return tuple(sorted(set(seconds)))
    try:
        seconds_one = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; or a list of them, or auto") from None
    if seconds_one <= 0:
        raise ValueError("the duration must be greater than 0")
    return seconds_one


def _show_duration_choice(value: int | tuple[int, ...] | str) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return [format_duration(v) for v in value]
    return format_duration(value)


DurationChoice = Annotated[
    int | tuple[int, ...] | str,
    BeforeValidator(_duration_choice),
    PlainSerializer(_show_duration_choice, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "array", "minItems": 1,
                 "items": {"type": "string", "pattern": DURATION_PATTERN}},
                {"const": "auto"},
            ],
            "description": "Duration: 1h, 1d; a list of allowed ones [1h, 1d, 3d]; or auto.",
        }
    ),
]  # fmt: skip
"""One duration, a list of allowed durations, or `auto` (every one the vendors sell)."""


class AutoSize(Model):
    """Size each purchase from the address's expected use (see docs/policies.md)."""

    headroom: float = Field(
        default=1.2,
        ge=1.0,
        le=3.0,
        description="Multiplier on the use expected over the rental: 1.2 sizes the level "
        "for 20% more transfers than the forecast.",
    )
    at_least: Energy = Field(
        default=131_000,
        description="Energy kept free on top of the forecast: what the next transfer needs "
        "(131k: one USDT transfer to a fresh recipient; 65k to a holder).",
    )


class TopUp(Model):
    """How much to buy, and for how long: a fixed `amount`, a `target` level, or `auto`."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["amount"]}, {"required": ["target"]}, {"required": ["auto"]}]
        }
    )

    amount: Energy | None = Field(
        default=None, description="Buy this much energy each time (e.g. 131k)."
    )
    target: Energy | None = Field(
        default=None,
        description="Buy enough to bring available energy back up to this level "
        "(rounded up to what the provider sells).",
    )
    auto: AutoSize | None = Field(
        default=None,
        description="Buy what the address's expected use over the rental needs: a standing "
        "level for a steady sender, the shortfall for a rare one.",
    )
    duration: DurationChoice = Field(
        description="How long the rented energy is delegated: one duration (1h, 1d), a list "
        "of allowed ones ([1h, 1d, 3d]: the engine picks the cheapest per unit of energy "
        "used) or auto (every duration the listed providers sell)."
    )

    @model_validator(mode="after")
    def _one_size(self) -> TopUp:
        chosen = [k for k in ("amount", "target", "auto") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "topUp needs exactly one of amount (fixed), target (a level) or auto "
                "(sized from expected use)"
            )
        return self

    @property
    def durations(self) -> tuple[int, ...] | None:
        """The allowed durations in seconds, ascending; None: every one the vendors sell."""
        if isinstance(self.duration, str):
            return None
        if isinstance(self.duration, tuple):
            return self.duration
        return (self.duration,)

    @property
    def shortest(self) -> int | None:
        """The shortest allowed duration (None for auto)."""
        allowed = self.durations
        return allowed[0] if allowed else None

    @property
    def largest_order(self) -> int:
        """The most energy one top-up may buy (a target top-up from zero); for auto, the
        least it keeps free (the forecast decides the rest)."""
        if self.amount is not None:
            return self.amount
        if self.target is not None:
            return self.target
        return self.auto.at_least if self.auto is not None else 0


class ExpectedUse(Model):
    """What an address is expected to use before the engine has observed it."""

    per_day: Energy = Field(description="Energy one address uses per day, e.g. 1.8M.")


class Budget(Model):
    """Spending limits for one policy, in money. At least one must be set."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["perDay"]}, {"required": ["perMonth"]}]}
    )

    per_day: Sun | None = Field(
        default=None, description="Most spent per UTC day across all addresses of the policy."
    )
    per_month: Sun | None = Field(default=None, description="Most spent per UTC calendar month.")

    @model_validator(mode="after")
    def _some_limit(self) -> Budget:
        if self.per_day is None and self.per_month is None:
            raise ValueError("budget needs perDay, perMonth or both, e.g. {perDay: 300 TRX}")
        return self


class EnergyPolicySpec(Model):
    """What to keep supplied and within which limits."""

    addresses: list[Address] = Field(
        min_length=1, description="Watched TRON addresses (base58check, T...)."
    )
    threshold: Energy = Field(description="Buy when available energy falls below this.")
    top_up: TopUp = Field(description="What to buy when an address is below the threshold.")
    providers: list[str] = Field(
        min_length=1, description="Names of Provider documents, in order of preference."
    )
    max_price: UnitPrice = Field(
        description="Price cap: most paid per unit of energy for one order (order cost "
        "divided by its amount), e.g. '95 sun/energy'."
    )
    budget: Budget = Field(description="Spending limits per day and per month.")
    exclusive: StrictBool = Field(
        default=False,
        description="Ask the provider to remove other small delegations first (itrx "
        "exclusive=1); providers that cannot are skipped.",
    )
    prevent_duplicates: StrictBool = Field(
        default=True,
        description="Refuse a new order while an identical one is incomplete (TronSave "
        "preventDuplicateIncompleteOrders, Mefree client_order_id, and the engine itself).",
    )
    cooldown: Duration | None = Field(
        default=None,
        description="Least time between two top-ups of the same address. Default: none.",
    )
    abandon_after: Duration | None = Field(
        default=None,
        description="End an ambiguous order held for want of evidence (a vendor without a "
        "lookup), or a submitted one its vendor has still not reported delegated, as failed "
        "once it is this old, if the chain shows no delegation to the address since the "
        "order was created; the address may then be bought for again. "
        "Accepts a small risk of a double purchase (a vendor that delegates later still): "
        "the one place the engine does; each one is alerted. Default: off (held until the "
        "chain shows the energy or an operator runs `energyctl orders resolve`).",
    )
    strategy: Literal["priority", "cheapest"] = Field(
        default="priority",
        description="priority: buy from the first listed provider that can serve; "
        "cheapest: quote every listed provider (and allowed duration) and buy the lowest "
        "cost per unit of energy expected to be used, the list's order breaking ties.",
    )
    expected_use: ExpectedUse | None = Field(
        default=None,
        description="Expected use of each address until the engine has observed a day of "
        "its own (sizes auto top-ups and renewals). Default: learn from observations.",
    )
    renew_before: Duration | None = Field(
        default=None,
        description="Buy the next rental when one the engine bought ends within this time "
        "and the address is expected to need energy after it (auto top-ups: default 1h; "
        "others: default off).",
    )
    max_open_orders: int = Field(
        default=1,
        ge=1,
        le=10,
        strict=True,
        description="Open (unfinished) orders allowed per address at a time.",
    )

    @property
    def renewal_lead(self) -> int | None:
        """Seconds before a bought rental ends when its successor is bought (None: off)."""
        if self.renew_before is not None:
            return self.renew_before
        return 3600 if self.top_up.auto is not None else None


class EnergyPolicy(Model):
    """Keep these addresses above a threshold of energy, buying from these providers."""

    api_version: Literal["energyctl/v1"] = Field(description="Always energyctl/v1.")
    kind: Literal["EnergyPolicy"] = Field(description="Document kind.")
    metadata: Metadata = Field(description="Name and labels.")
    spec: EnergyPolicySpec = Field(description="Addresses, threshold, top-up and limits.")


# --------------------------------------------------------------------------- EngineConfig


class NodeSettings(Model):
    """The TRON full node the engine reads."""

    url: str = Field(
        default="https://api.trongrid.io",
        description="Full-node HTTP API base URL (http or https).",
    )
    api_key: SecretRef | None = Field(
        default=None,
        description="Node API key (TronGrid), sent as the TRON-PRO-API-KEY header to `url`.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url("url", value)


class ObservationSettings(Model):
    """How the engine notices falling energy."""

    mode: Literal["poll", "follow"] = Field(
        default="poll",
        description="poll: read every watched address each interval; follow: read each new "
        "block and re-read the addresses that appear in it.",
    )
    interval: Duration = Field(
        default=30,
        json_schema_extra={"default": "30s"},
        description="poll: time between reads of all addresses; follow: time between full "
        "sweeps (the safety net).",
    )


class StoreSettings(Model):
    """Where orders, the spend ledger and leases are kept."""

    url: str = Field(
        default="sqlite:///energyctl.db",
        description="sqlite:///PATH (default, one replica) or postgresql://USER@HOST/DB "
        "(several replicas); no password in the URL, use `password`.",
    )
    password: SecretRef | None = Field(
        default=None, description="Database password, as a secret reference."
    )

    @field_validator("url")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite:///\S+|sqlite:///:memory:|postgres(ql)?://\S+)$", value):
            raise ValueError(
                f"store url must be sqlite:///PATH or postgresql://USER@HOST/DB, got {value!r}"
            )
        if re.match(r"^postgres(ql)?://[^/@]*:[^/@]*@", value):
            raise ValueError(
                "the store url contains a password: remove it and set "
                "password: {fromEnv: NAME} instead"
            )
        return value


class HttpSettings(Model):
    """The sidecar's HTTP API."""

    listen: str = Field(
        default="127.0.0.1:8080", description="HOST:PORT to listen on, e.g. 0.0.0.0:8080."
    )
    api_token: SecretRef | None = Field(
        default=None, description="Bearer token required by mutating endpoints (ensure, apply)."
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        match = re.match(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$", value)
        if match is None or not 0 < int(match.group(2)) < 65536:
            raise ValueError(f"listen must be HOST:PORT like 127.0.0.1:8080, got {value!r}")
        return value


class EngineSpec(Model):
    """Engine settings. Every field has a default; omit the document to take them all."""

    node: NodeSettings = Field(default_factory=NodeSettings, description="TRON node.")
    observation: ObservationSettings = Field(
        default_factory=ObservationSettings, description="Observation mode and interval."
    )
    store: StoreSettings = Field(default_factory=StoreSettings, description="State store.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="HTTP API.")
    max_actions_per_pass: int = Field(
        default=10,
        ge=1,
        strict=True,
        description="Safety gate: most purchases started in one reconciliation pass.",
    )


class EngineConfig(Model):
    """Engine settings; at most one per policy set."""

    api_version: Literal["energyctl/v1"] = Field(description="Always energyctl/v1.")
    kind: Literal["EngineConfig"] = Field(description="Document kind.")
    metadata: Metadata = Field(description="Name and labels.")
    spec: EngineSpec = Field(default_factory=EngineSpec, description="Engine settings.")


Document = Provider | EnergyPolicy | EngineConfig
KINDS: dict[str, type[Provider] | type[EnergyPolicy] | type[EngineConfig]] = {
    "Provider": Provider,
    "EnergyPolicy": EnergyPolicy,
    "EngineConfig": EngineConfig,
}
