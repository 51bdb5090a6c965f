"""Checks that span documents, run after each document validated on its own.

Duplicate names, more than one `EngineConfig`, unknown provider names, one address claimed
by two policies (or listed twice), a threshold above the top-up target, a budget smaller
than one top-up at the price cap, and a provider listed twice in one policy. Each finding
points at the offending field and says what would be valid.

Provider capabilities (minimum amounts, durations sold) are not known here: the engine adds
that check through `load(..., checks=[...])` because `policies` imports no other package.

Neighbours: called by `policies/loading.py` on `Sourced` documents (`policies/policyset.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from policies.diagnostics import Diagnostic, did_you_mean, one_of
from policies.models import EnergyPolicy, EngineConfig, Provider
from policies.policyset import Sourced
from policies.units import MILLI, format_energy, format_sun, format_unit_price


def check_documents(
    documents: Sequence[Sourced], *, providers_complete: bool = True
) -> list[Diagnostic]:
    """Every cross-document finding. `providers_complete=False` skips the unknown-provider
    check (some Provider document was invalid, so a name may only look unknown)."""
    found: list[Diagnostic] = []
    found += _duplicate_names(documents)
    found += _engine_configs(documents)
    policies = [d for d in documents if isinstance(d.document, EnergyPolicy)]
    if providers_complete:
        names = [d.name for d in documents if isinstance(d.document, Provider)]
        found += _unknown_providers(policies, names)
    found += _shared_addresses(policies)
    for item in policies:
        found += _policy_sanity(item)
    return found


def _first(item: Sourced) -> str:
    where = item.locate("metadata", "name")
    return f"{where.file}:{where.line}:{where.column}"


def _duplicate_names(documents: Iterable[Sourced]) -> list[Diagnostic]:
    seen: dict[tuple[str, str], Sourced] = {}
    found = []
    for item in documents:
        key = (item.kind, item.name)
        if key in seen:
            found.append(
                Diagnostic.error(
                    item.locate("metadata", "name"),
                    f"duplicate {item.kind} name {item.name!r} (first defined at "
                    f"{_first(seen[key])}): names must be unique within a kind",
                    "duplicate-name",
                )
            )
        else:
            seen[key] = item
    return found


def _engine_configs(documents: Iterable[Sourced]) -> list[Diagnostic]:
    configs = [d for d in documents if isinstance(d.document, EngineConfig)]
    return [
        Diagnostic.error(
            extra.locate("kind"),
            f"a second EngineConfig ({extra.name!r}; the first is {configs[0].name!r} at "
            f"{_first(configs[0])}): a policy set has at most one",
            "duplicate-engine-config",
        )
        for extra in configs[1:]
    ]


def _unknown_providers(policies: Iterable[Sourced], names: Sequence[str]) -> list[Diagnostic]:
    found = []
    known = set(names)
    for item in policies:
        assert isinstance(item.document, EnergyPolicy)
        listed: set[str] = set()
        for index, name in enumerate(item.document.spec.providers):
            where = item.locate("spec", "providers", index)
            if name in listed:
                found.append(
                    Diagnostic.error(
                        where, f"provider {name!r} is listed twice", "duplicate-provider"
                    )
                )
            listed.add(name)
            if name not in known:
                valid = f"defined: {one_of(sorted(known))}" if known else "none is defined"
                found.append(
                    Diagnostic.error(
                        where,
                        f"unknown provider {name!r}{did_you_mean(name, known)} (a Provider "
                        f"document with this metadata.name is needed; {valid})",
                        "unknown-provider",
                    )
                )
    return found


def _shared_addresses(policies: Iterable[Sourced]) -> list[Diagnostic]:
    owner: dict[str, tuple[Sourced, int]] = {}
    found = []
    for item in policies:
        assert isinstance(item.document, EnergyPolicy)
        for index, address in enumerate(item.document.spec.addresses):
            where = item.locate("spec", "addresses", index)
            if address in owner:
                first, first_index = owner[address]
                at = first.locate("spec", "addresses", first_index)
                whose = (
                    "listed twice in this policy"
                    if first is item
                    else f"already watched by policy {first.name!r} at {at}"
                )
                found.append(
                    Diagnostic.error(
                        where,
                        f"address {address} is {whose}: an address belongs to one policy",
                        "address-conflict",
                    )
                )
            else:
                owner[address] = (item, index)
    return found


def one_top_up_cost(policy: EnergyPolicy) -> int:
    """The most one top-up may cost at the price cap, in sun (rounded up)."""
    spec = policy.spec
    return -(-spec.top_up.largest_order * spec.max_price // MILLI)


def _policy_sanity(item: Sourced) -> list[Diagnostic]:
    assert isinstance(item.document, EnergyPolicy)
    spec = item.document.spec
    found = []
    target = spec.top_up.target
    if target is not None and spec.threshold > target:
        found.append(
            Diagnostic.error(
                item.locate("spec", "threshold"),
                f"threshold {format_energy(spec.threshold)} is above the top-up target "
                f"{format_energy(target)}: the target must be at least the threshold",
                "threshold-above-target",
            )
        )
    cost = one_top_up_cost(item.document)
    budget = spec.budget
    for key, limit in (("perDay", budget.per_day), ("perMonth", budget.per_month)):
        if limit is not None and limit < cost:
            found.append(
                Diagnostic.error(
                    item.locate("spec", "budget", key),
                    f"budget.{key} {format_sun(limit)} is less than one top-up at the price "
                    f"cap ({format_energy(spec.top_up.largest_order)} energy x "
                    f"{format_unit_price(spec.max_price)} = {format_sun(cost)}): raise the "
                    "budget or lower the amount or price cap",
                    "budget-below-one-top-up",
                )
            )
    if budget.per_day and budget.per_month and budget.per_month < budget.per_day:
        found.append(
            Diagnostic.warning(
                item.locate("spec", "budget", "perMonth"),
                f"budget.perMonth {format_sun(budget.per_month)} is less than perDay "
                f"{format_sun(budget.per_day)}: the monthly limit will bind first",
                "budget-month-below-day",
            )
        )
    return found
