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

from pydantic import ConfigDict, Field, StrictBool, create_model, field_validator, model_validator

from policies.base import (
    API_VERSION,
    Metadata,
    Model,
    SecretRef,
    UnresolvedSecretError,
    check_http_url,
)
from policies.units import Address, Duration, Energy, Sun, UnitPrice
from policies.vendors import ProviderSettings, settings_models

__all__ = [
    "API_VERSION",
    "KINDS",
    "Budget",
    "Document",
    "EnergyPolicy",
    "EnergyPolicySpec",
    "EngineConfig",
    "EngineSpec",
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


class TopUp(Model):
    """How much to buy, and for how long: a fixed `amount` or a `target` level."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["amount"]}, {"required": ["target"]}]}
    )

    amount: Energy | None = Field(
        default=None, description="Buy this much energy each time (e.g. 131k)."
    )
    target: Energy | None = Field(
        default=None,
        description="Buy enough to bring available energy back up to this level "
        "(rounded up to what the provider sells).",
    )
    duration: Duration = Field(description="How long the rented energy is delegated: 1h, 1d.")

    @model_validator(mode="after")
    def _amount_or_target(self) -> TopUp:
        if (self.amount is None) == (self.target is None):
            raise ValueError("topUp needs exactly one of amount (fixed) or target (a level)")
        return self

    @property
    def largest_order(self) -> int:
        """The most energy one top-up may buy (a target top-up from zero)."""
        return self.amount if self.amount is not None else self.target or 0


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
        "lookup) as failed once it is this old, if the chain shows no delegation to the "
        "address since the order was created; the address may then be bought for again. "
        "Accepts a small risk of a double purchase (a vendor that delegates later still): "
        "the one place the engine does; each one is alerted. Default: off (held until the "
        "chain shows the energy or an operator runs `energyctl orders resolve`).",
    )
    max_open_orders: int = Field(
        default=1,
        ge=1,
        le=10,
        strict=True,
        description="Open (unfinished) orders allowed per address at a time.",
    )


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
