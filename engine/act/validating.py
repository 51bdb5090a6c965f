"""Checks of a policy set against what its providers can sell (the engine's load checks).

`policies` knows the policy language but no vendor (it imports no other package), so the
checks that need each adapter's `Capabilities` live here and run through
`policies.loading.load(..., checks=ENGINE_CHECKS)`:

- a top-up whose duration, amount (fixed `amount`; for a `target`, the largest order) or
  `exclusive: true` no listed provider can serve is an **error**, placed on the field that
  no provider accepts (`topUp.duration`, `topUp.amount`, `spec.exclusive`), or on
  `spec.providers` when each field alone is sold somewhere but no provider sells the
  combination;
- a listed provider that cannot serve the policy while another one can is a **warning** at
  its place in `spec.providers`: it would be skipped, and a fallback that is always
  skipped is no fallback.

A `target` top-up is rounded up to a vendor's minimum, so only its maximum is checked.

Neighbours: `providers.registry` (type name -> adapter class), `policies.loading` (runs the
checks), `engine/cli/` (`validate`, and every command that loads policies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policies.diagnostics import Diagnostic
from policies.loading import Check
from policies.models import EnergyPolicy, Provider
from policies.policyset import PolicySet
from policies.units import format_duration, format_energy
from providers import registry
from providers.base import Capabilities


@dataclass(frozen=True)
class Refusal:
    """Why one provider cannot serve one policy, by dimension."""

    dimension: str  # "duration", "amount" or "exclusive"
    reason: str


def durations_text(caps: Capabilities) -> str:
    """What durations a vendor sells, for messages and tables: `1h, 1d, 3d, 30d`."""
    if caps.durations is None:
        longest = "any" if caps.max_duration is None else format_duration(caps.max_duration)
        return f"{format_duration(max(caps.min_duration, 1))}..{longest}"
    names = [format_duration(d) for d in caps.durations]
    if len(names) <= 7:
        return ", ".join(names)
    return f"{', '.join(names[:3])}, ..., {names[-1]} ({len(names)} periods)"


def amount_text(caps: Capabilities) -> str:
    """`>= 65k` or `10k..100M`."""
    if caps.max_amount is None:
        return f">= {format_energy(caps.min_amount)}"
    return f"{format_energy(caps.min_amount)}..{format_energy(caps.max_amount)}"


def refusals(policy: EnergyPolicy, caps: Capabilities) -> list[Refusal]:
    """Every reason a vendor with `caps` cannot serve `policy` (empty: it can)."""
    top_up = policy.spec.top_up
    found = []
    allowed = top_up.durations
    if allowed is not None and not any(caps.accepts_duration(d) for d in allowed):
        wanted = ", ".join(format_duration(d) for d in allowed)
        found.append(
            Refusal("duration", f"does not sell {wanted} (it sells {durations_text(caps)})")
        )
    largest = top_up.largest_order
    if top_up.amount is not None and top_up.amount < caps.min_amount:
        found.append(
            Refusal(
                "amount",
                f"sells at least {format_energy(caps.min_amount)} energy "
                f"(the top-up is {format_energy(top_up.amount)})",
            )
        )
    if caps.max_amount is not None and largest > caps.max_amount:
        found.append(
            Refusal(
                "amount",
                f"sells at most {format_energy(caps.max_amount)} energy "
                f"(the top-up may be {format_energy(largest)})",
            )
        )
    if policy.spec.exclusive and not caps.exclusive:
        found.append(Refusal("exclusive", "cannot remove other delegations (exclusive)"))
    return found


def _capabilities(provider: Provider) -> Capabilities | None:
    try:
        return registry.get(provider.spec.type).capabilities
    except registry.UnknownProviderType:
        return None


def check_capabilities(policy_set: PolicySet) -> list[Diagnostic]:
    """Errors for policies no listed provider can serve; warnings for skipped fallbacks."""
    found: list[Diagnostic] = []
    for policy in policy_set.policies.values():
        found += _check_policy(policy_set, policy)
    return found


def _check_policy(policy_set: PolicySet, policy: EnergyPolicy) -> list[Diagnostic]:
    listed = policy_set.providers_for(policy)
    refused: list[tuple[int, Provider, list[Refusal]]] = []
    servable = 0
    for index, provider in enumerate(listed):
        caps = _capabilities(provider)
        if caps is None:  # a plug-in that cannot be loaded: say so, judge the others
            refused.append((index, provider, [Refusal("type", "its adapter cannot be loaded")]))
            continue
        reasons = refusals(policy, caps)
        if reasons:
            refused.append((index, provider, reasons))
        else:
            servable += 1
    if servable:
        return [
            Diagnostic.warning(
                policy_set.locate(policy, "spec", "providers", index),
                f"provider {provider.metadata.name!r} ({provider.spec.type}) cannot serve "
                f"policy {policy.metadata.name!r}: {_joined(reasons)}; it will always be "
                "skipped, so it is no fallback (remove it or change the top-up)",
                "provider-cannot-serve",
            )
            for index, provider, reasons in refused
        ]
    return _no_provider_errors(policy_set, policy, refused)


def _no_provider_errors(
    policy_set: PolicySet,
    policy: EnergyPolicy,
    refused: Sequence[tuple[int, Provider, list[Refusal]]],
) -> list[Diagnostic]:
    top_up = policy.spec.top_up
    amount_key = next(k for k in ("amount", "target", "auto") if getattr(top_up, k) is not None)
    places = {
        "duration": ("spec", "topUp", "duration"),
        "amount": ("spec", "topUp", amount_key),
        "exclusive": ("spec", "exclusive"),
    }
    found = []
    for dimension, path in places.items():
        if all(any(r.dimension == dimension for r in reasons) for _, _, reasons in refused):
            per_provider = "; ".join(
                f"{provider.metadata.name} {r.reason}"
                for _, provider, reasons in refused
                for r in reasons
                if r.dimension == dimension
            )
            found.append(
                Diagnostic.error(
                    policy_set.locate(policy, *path),
                    f"no provider listed by policy {policy.metadata.name!r} accepts this "
                    f"{_what(dimension)}: {per_provider}",
                    "no-provider-accepts",
                )
            )
    if not found:
        per_provider = "; ".join(
            f"{provider.metadata.name} {_joined(reasons)}" for _, provider, reasons in refused
        )
        found.append(
            Diagnostic.error(
                policy_set.locate(policy, "spec", "providers"),
                f"no provider listed by policy {policy.metadata.name!r} can serve its "
                f"top-up: {per_provider}",
                "no-provider-accepts",
            )
        )
    return found


def _what(dimension: str) -> str:
    return {"exclusive": "exclusive: true", "amount": "amount"}.get(dimension, dimension)


def _joined(reasons: Sequence[Refusal]) -> str:
    return ", ".join(r.reason for r in reasons)


ENGINE_CHECKS: tuple[Check, ...] = (check_capabilities,)
"""What every command that loads policies passes to `policies.loading.load`."""
