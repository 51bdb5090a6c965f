"""`kind: DepositPolicy`: energy for a deposit address when a deposit lands on it.

An exchange gives each customer (or invoice) a deposit address and sweeps what arrives to
its hot wallet: one TRC-20 transfer FROM the deposit address. Such an address needs energy
once, after a deposit, not a standing level. A DepositPolicy says which addresses are
deposit addresses (inline, from a file of one address per line, or from a SQL query
against the operator's PostgreSQL), which token contracts to watch (USDT by default), the
smallest deposit worth a sweep, where the sweep goes, and the usual providers, price cap
and budget. The engine buys one sweep's energy per deposit episode.

The energy of one sweep depends on the receiver: a USDT transfer to an address that holds
USDT costs 64,285 energy, to one whose balance slot is empty 130,285 (the SSTORE of a new
slot; https://developers.tron.network/docs/resource-model and TronScan's USDT transfers).
`sweepEnergy` fixes it; without it the engine reads the hot wallet's token balance.

`check_deposit_policies` runs the checks that span documents (providers known, the address
file readable with every line an address, a budget that holds one sweep) and returns the
address files it read, so the engine does not read a million lines twice.

Neighbours: `policies/models.py` (shared pieces: Budget, Metadata), `policies/addresses.py`
(the file reader and compact set), `policies/loading.py` (registers the kind),
`engine/decide/deposits.py` (what a deposit buys).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from policies.addresses import AddressFile, read_address_file
from policies.base import Metadata, Model, SecretRef, check_http_url
from policies.diagnostics import Diagnostic, Location, did_you_mean, one_of
from policies.models import Budget
from policies.units import MILLI, Address, Duration, Energy, UnitPrice, format_energy, format_sun

USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
"""Tether USD on TRON mainnet (https://tronscan.org/#/token20/TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t)."""
SWEEP_TO_HOLDER = 64_285
"""Energy of one USDT transfer to an address that already holds USDT."""
SWEEP_TO_EMPTY = 130_285
"""Energy of one USDT transfer to an address whose USDT balance is zero."""

Locator = Callable[..., Location]
"""Where a field of a document is written (`Sourced.locate`)."""


class PostgresSource(Model):
    """A SQL query against the operator's own PostgreSQL that lists deposit addresses."""

    url: str = Field(
        description="postgresql://USER@HOST[:PORT]/DB (no password in it: use `password`)."
    )
    password: SecretRef | None = Field(
        default=None, description="Database password, as a secret reference."
    )
    query: str = Field(
        description="A SELECT whose first column is a base58 TRON address, e.g. "
        "'SELECT address FROM deposit_addresses WHERE active'."
    )
    interval: Duration = Field(
        default=60,
        json_schema_extra={"default": "1m"},
        description="Time between runs of the query; a failed run keeps the last good set.",
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not re.match(r"^postgres(ql)?://\S+$", value):
            raise ValueError(f"url must be postgresql://USER@HOST/DB, got {value!r}")
        if re.match(r"^postgres(ql)?://[^/@]*:[^/@]*@", value):
            raise ValueError(
                "the url contains a password: remove it and set password: {fromEnv: NAME}"
            )
        return value

    @field_validator("query")
    @classmethod
    def _select(cls, value: str) -> str:
        if not re.match(r"^\s*(select|with)\b", value, re.IGNORECASE):
            raise ValueError("query must be a SELECT (or WITH ... SELECT) listing addresses")
        return value


class AddressSource(Model):
    """Where the addresses come from besides `addresses`: exactly one of file or postgres."""

    file: str | None = Field(
        default=None,
        description="A file of one address per line (blank lines and # comments skipped), "
        "relative to the policy file; re-read when it changes.",
    )
    postgres: PostgresSource | None = Field(
        default=None, description="A SQL query against your PostgreSQL, re-run on an interval."
    )

    @model_validator(mode="after")
    def _one(self) -> AddressSource:
        if (self.file is None) == (self.postgres is None):
            raise ValueError("addressesFrom needs exactly one of file or postgres")
        return self


class Webhook(Model):
    """Where "energy ready" is announced, signed with a shared secret (HMAC-SHA256)."""

    url: str = Field(description="http(s) URL that receives a POST per deposit episode.")
    secret: SecretRef = Field(
        description="Shared secret; the body's HMAC-SHA256 is sent in X-Energyctl-Signature."
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        return check_http_url("url", value)


class DepositPolicySpec(Model):
    """Which addresses are deposit addresses, what a sweep needs, and the limits."""

    addresses: list[Address] = Field(
        default_factory=list,
        description="Deposit addresses written here (more may come from addressesFrom and "
        "from the API at run time).",
    )
    addresses_from: AddressSource | None = Field(
        default=None, description="A file or a SQL query that lists deposit addresses."
    )
    tokens: list[Address] = Field(
        default_factory=lambda: [USDT],
        min_length=1,
        description="TRC-20 contracts whose incoming transfers are deposits (default USDT).",
    )
    min_deposit: int = Field(
        default=1,
        ge=1,
        strict=True,
        description="Smallest deposit worth a sweep, in the token's smallest unit "
        "(USDT has 6 decimals: 1000000 is 1 USDT).",
    )
    sweep_to: Address = Field(description="The hot wallet the sweeper sends deposits to.")
    sweep_energy: Energy | None = Field(
        default=None,
        description="Energy of one sweep. Default: read the hot wallet's token balance "
        "(64,285 when it holds the token, 130,285 when it does not).",
    )
    providers: list[str] = Field(
        min_length=1, description="Names of Provider documents, in order of preference."
    )
    sweep_within: Duration = Field(
        default=3600,
        json_schema_extra={"default": "1h"},
        description="The energy is rented for the shortest duration a provider sells that "
        "is at least this long.",
    )
    max_price: UnitPrice = Field(
        description="Price cap: most paid per unit of energy, e.g. '95 sun/energy'."
    )
    budget: Budget = Field(description="Spending limits per day and per month.")
    webhook: Webhook | None = Field(
        default=None, description="Announce 'energy ready' to the sweeper (signed)."
    )

    @property
    def largest_order(self) -> int:
        return self.sweep_energy or SWEEP_TO_EMPTY


class DepositPolicy(Model):
    """Buy one sweep's energy for a deposit address when a deposit lands on it."""

    api_version: Literal["energyctl/v1"] = Field(description="Always energyctl/v1.")
    kind: Literal["DepositPolicy"] = Field(description="Document kind.")
    metadata: Metadata = Field(description="Name and labels.")
    spec: DepositPolicySpec = Field(description="Addresses, tokens, sweep and limits.")


# --------------------------------------------------------------------------- checks


def address_file_path(policy_file: str, given: str) -> Path:
    path = Path(given).expanduser()
    return path if path.is_absolute() else Path(policy_file).parent / path


def check_deposit_policies(
    items: Sequence[tuple[DepositPolicy, str, Locator]],
    provider_names: Iterable[str] | None,
) -> tuple[list[Diagnostic], dict[str, AddressFile]]:
    """Findings about deposit policies, and the address files read (by policy name).

    `items`: (policy, its file, a locator of its fields); `provider_names`: the Provider
    documents' names, or None when some Provider document was invalid (then unknown names
    are not reported)."""
    found: list[Diagnostic] = []
    files: dict[str, AddressFile] = {}
    known = None if provider_names is None else set(provider_names)
    for policy, policy_file, locate in items:
        spec = policy.spec
        if known is not None:
            for index, name in enumerate(spec.providers):
                if name not in known:
                    valid = f"defined: {one_of(sorted(known))}" if known else "none is defined"
                    found.append(
                        Diagnostic.error(
                            locate("spec", "providers", index),
                            f"unknown provider {name!r}{did_you_mean(name, known)} (a "
                            f"Provider document with this metadata.name is needed; {valid})",
                            "unknown-provider",
                        )
                    )
        source = spec.addresses_from
        if source is not None and source.file is not None:
            path = address_file_path(policy_file, source.file)
            read = read_address_file(path, str(path))
            files[policy.metadata.name] = read
            found += read.problems
        cost = -(-spec.largest_order * spec.max_price // MILLI)
        for key, limit in (("perDay", spec.budget.per_day), ("perMonth", spec.budget.per_month)):
            if limit is not None and limit < cost:
                found.append(
                    Diagnostic.error(
                        locate("spec", "budget", key),
                        f"budget.{key} {format_sun(limit)} is less than one sweep's energy "
                        f"at the price cap ({format_energy(spec.largest_order)} energy = "
                        f"{format_sun(cost)})",
                        "budget-below-one-sweep",
                    )
                )
    return found, files


__all__ = [
    "SWEEP_TO_EMPTY",
    "SWEEP_TO_HOLDER",
    "USDT",
    "AddressSource",
    "DepositPolicy",
    "DepositPolicySpec",
    "PostgresSource",
    "Webhook",
    "check_deposit_policies",
]
