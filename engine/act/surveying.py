"""What each configured provider offers now: capabilities, a quote and the balance.

`survey(pool, energy=, duration=, receiver=)` asks every adapter of a `ProviderPool`, at
the same time, for a quote of one order and for the account balance. Nothing raises per
provider: an amount or duration the vendor does not sell is answered from its
`Capabilities` without a call, and a `ProviderError` becomes text saying its class
(temporary, permanent, ambiguous), its normalised reason and its message (adapters keep
credentials out of messages). `render_table` and `ProviderSurvey.to_dict` are the two
renderings of `energyctl providers`.

Neighbours: `engine/act/providing.py` (the pool), `engine/act/validating.py` (capability texts),
`engine/cli/providers.py` (prints).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.act.providing import ProviderPool
from engine.act.validating import amount_text, durations_text
from policies.units import format_duration, format_energy, format_sun, format_unit_price
from providers.base import (
    AmbiguousError,
    Capabilities,
    PermanentError,
    Provider,
    ProviderError,
    Quote,
    QuoteRequest,
    TemporaryError,
)

_OPTIONS = (
    ("exclusive", "exclusive"),
    ("duplicate_guard", "duplicate-guard"),
    ("partial_fill", "partial"),
    ("fill_or_nothing", "fill-or-nothing"),
    ("price_cap", "price-cap"),
    ("idempotency_key", "idempotent"),
    ("lookup_by_client_id", "lookup"),
    ("callbacks", "callbacks"),
    ("activates_receiver", "activates"),
)


def options_text(caps: Capabilities) -> list[str]:
    """The guarantees a vendor offers, as short words (`exclusive`, `idempotent`...)."""
    return [word for field, word in _OPTIONS if getattr(caps, field)]


def error_text(exc: ProviderError) -> str:
    """`permanent (auth): itrx: API not found` - class, reason and message."""
    if isinstance(exc, TemporaryError):
        kind = "temporary"
    elif isinstance(exc, PermanentError):
        kind = "permanent"
    elif isinstance(exc, AmbiguousError):
        kind = "ambiguous"
    else:
        kind = "error"
    return f"{kind} ({exc.reason.value}): {exc}"


@dataclass(frozen=True)
class ProviderSurvey:
    """One provider's answers for one order size."""

    name: str
    type: str
    capabilities: Capabilities
    energy: int
    duration: int
    quote: Quote | None
    quote_error: str | None
    balance_sun: int | None
    balance_error: str | None

    def to_dict(self) -> dict[str, Any]:
        caps = self.capabilities
        quote = None
        if self.quote is not None:
            quote = {
                "totalSun": self.quote.total_sun,
                "unitPriceMilliSun": self.quote.unit_price_milli_sun,
            }
        return {
            "name": self.name,
            "type": self.type,
            "capabilities": {
                "durations": list(caps.durations) if caps.durations is not None else None,
                "minDuration": caps.min_duration,
                "maxDuration": caps.max_duration,
                "minAmount": caps.min_amount,
                "maxAmount": caps.max_amount,
                "options": options_text(caps),
            },
            "energy": self.energy,
            "duration": self.duration,
            "quote": quote,
            "quoteError": self.quote_error,
            "balanceSun": self.balance_sun,
            "balanceError": self.balance_error,
        }


def unsold(caps: Capabilities, energy: int, duration: int) -> str | None:
    """Why a vendor cannot take this order, from its capabilities alone; None if it can."""
    if not caps.accepts_duration(duration):
        return f"unsupported duration {format_duration(duration)}"
    if energy < caps.min_amount:
        return f"below minimum {format_energy(caps.min_amount)}"
    if caps.max_amount is not None and energy > caps.max_amount:
        return f"above maximum {format_energy(caps.max_amount)}"
    return None


async def _quote(provider: Provider, request: QuoteRequest) -> tuple[Quote | None, str | None]:
    refused = unsold(provider.capabilities, request.energy, request.duration)
    if refused is not None:
        return None, refused
    try:
        return await provider.quote(request), None
    except ProviderError as exc:
        return None, error_text(exc)


async def _balance(provider: Provider) -> tuple[int | None, str | None]:
    try:
        return await provider.balance(), None
    except ProviderError as exc:
        return None, error_text(exc)


async def _one(provider: Provider, type_name: str, request: QuoteRequest) -> ProviderSurvey:
    (quote, quote_error), (balance, balance_error) = await asyncio.gather(
        _quote(provider, request), _balance(provider)
    )
    return ProviderSurvey(
        name=provider.name,
        type=type_name,
        capabilities=provider.capabilities,
        energy=request.energy,
        duration=request.duration,
        quote=quote,
        quote_error=quote_error,
        balance_sun=balance,
        balance_error=balance_error,
    )


async def survey(
    pool: ProviderPool, *, energy: int, duration: int, receiver: str
) -> list[ProviderSurvey]:
    """Every provider of the pool, in document order, asked concurrently."""
    request = QuoteRequest(receiver=receiver, energy=energy, duration=duration)
    return list(
        await asyncio.gather(
            *(_one(pool[name], pool.document(name).spec.type, request) for name in pool)
        )
    )


def _price(quote: Quote) -> str:
    per_unit = format_unit_price(quote.unit_price_milli_sun).removesuffix("/energy")
    return f"{format_sun(quote.total_sun)} ({per_unit}/energy)"


def render_table(surveys: Sequence[ProviderSurvey]) -> str:
    """A fixed-width table, one row per provider, with a header line."""
    if not surveys:
        return "no Provider documents in the policy set\n"
    first = surveys[0]
    header = (
        "NAME",
        "TYPE",
        "DURATIONS",
        "AMOUNT",
        "OPTIONS",
        f"QUOTE ({format_energy(first.energy)}, {format_duration(first.duration)})",
        "BALANCE",
    )
    rows = [header]
    for item in surveys:
        caps = item.capabilities
        rows.append(
            (
                item.name,
                item.type,
                durations_text(caps),
                amount_text(caps),
                ",".join(options_text(caps)) or "-",
                _price(item.quote) if item.quote is not None else f"- {item.quote_error}",
                format_sun(item.balance_sun)
                if item.balance_sun is not None
                else f"- {item.balance_error}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"
