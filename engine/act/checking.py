"""Checking vendor accounts: read-only checks of every provider, and canary orders.

`check(pool, policy_set)` asks every adapter of a `ProviderPool`, at the same time, only
read endpoints, with the configured credentials: the balance (the account endpoint), a
quote for each top-up size of the policies that list the provider (the smallest order it
sells when none does), and the status of an order id that does not exist, to see how the
vendor refuses it. Per provider it returns six checks, each passed, failed or not told
(`ok` True, False, None), with what was seen:

- `reachable`: the vendor answered over HTTP at all;
- `authenticated`: the balance was read, no call was refused for credentials; a refusal
  while the vendor's clock is off is reported as clock skew, its likely cause;
- `clock`: the vendor's `Date` header against our clock (`HttpProvider.clock_skew`),
  within `max_skew` seconds (2 s: Mefree's guide refuses signed timestamps older than
  5 s, https://docs.mefree.net/getting-started/how-to-buy-energy/java);
- `balance`, `quote`: answered, in the documented shape (a `PROTOCOL` error is not);
- `lookup`: the unknown order refused the way the vendor documents (`NOT_FOUND`), or for
  a vendor that documents nothing, some definite refusal.

`plan_canary` and `run_canary` are the canary: the smallest order a vendor sells, to an
address, followed until the chain shows the delegation (a rise of the address's energy
limit, as the engine's tracking reads it) or a deadline passes; every answer is passed
to `on_step` as it comes. Library code: nothing prints; `render_checks`, `render_step`
and `to_dict` are for `energyctl providers check`.

Neighbours: `engine/act/providing.py` (the pool), `engine/act/surveying.py` (error texts),
`engine/observe/chain.py` (reading the chain), `engine/cli/providers.py` (prints).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from engine.act.providing import ProviderPool
from engine.act.surveying import error_text, unsold
from engine.core.clock import Clock
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import ChainError
from policies.policyset import PolicySet
from policies.units import format_duration, format_energy, format_sun, format_unit_price
from providers.base import (
    AmbiguousError,
    ErrorReason,
    NotFoundShape,
    OrderRequest,
    OrderState,
    PermanentError,
    Provider,
    ProviderError,
    QuoteRequest,
    Receipt,
    TemporaryError,
)
from providers.http import SKEW_WARNING_S

_T = TypeVar("_T")

CHECKS = ("reachable", "authenticated", "clock", "balance", "quote", "lookup")
PLACEHOLDER_RECEIVER = "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"  # quotes only: nothing is bought


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Check:
    """One check of one provider. `ok` None: could not be told (nothing to measure, or
    an earlier check failed); `documented`: whether the answer had the documented shape."""

    name: str
    ok: bool | None
    detail: str
    documented: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "documented": self.documented}


@dataclass(frozen=True)
class QuoteLine:
    """One quote asked (or refused from the capabilities, `asked` False)."""

    energy: int
    duration: int
    total_sun: int | None
    error: str | None
    asked: bool = True
    protocol: bool = False

    def text(self) -> str:
        size = f"{format_energy(self.energy)} for {format_duration(self.duration)}"
        if self.total_sun is None:
            return f"{size}: {self.error}"
        unit = format_unit_price(-(-self.total_sun * 1000 // self.energy))
        return f"{size}: {format_sun(self.total_sun)} ({unit.removesuffix('/energy')}/energy)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "energy": self.energy,
            "duration": self.duration,
            "totalSun": self.total_sun,
            "error": self.error,
        }


@dataclass(frozen=True)
class VendorCheck:
    """Every check of one provider, and what was read."""

    name: str
    type: str
    checks: tuple[Check, ...]
    clock_skew: float | None
    balance_sun: int | None
    quotes: tuple[QuoteLine, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    @property
    def cause(self) -> str | None:
        """The first failed check, `name: detail`; None when all passed."""
        failed = next((c for c in self.checks if c.ok is False), None)
        return None if failed is None else f"{failed.name}: {failed.detail}"

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "ok": self.ok,
            "cause": self.cause,
            "clockSkewSeconds": None if self.clock_skew is None else round(self.clock_skew, 3),
            "balanceSun": self.balance_sun,
            "quotes": [q.to_dict() for q in self.quotes],
            "checks": {c.name: c.to_dict() for c in self.checks},
        }


# --------------------------------------------------------------------------- checks


async def _attempt(call: Awaitable[_T]) -> tuple[_T | None, ProviderError | None]:
    try:
        return await call, None
    except ProviderError as exc:
        return None, exc


def top_up_sizes(policy_set: PolicySet, name: str, provider: Provider) -> list[tuple[int, int]]:
    """(energy, duration) of each policy listing `name`, raised to what the vendor sells
    (as orders are); the smallest order it sells when no policy lists it or none fits."""
    caps = provider.capabilities
    sizes: list[tuple[int, int]] = []
    for policy in policy_set.policies.values():
        if name not in policy.spec.providers:
            continue
        top_up = policy.spec.top_up
        wanted = top_up.shortest or (caps.durations[0] if caps.durations else caps.min_duration)
        energy, duration = caps.fit_amount(top_up.largest_order), caps.fit_duration(wanted)
        size = (energy or top_up.largest_order, duration or wanted)
        if size not in sizes:
            sizes.append(size)
    return sizes or [smallest_order(provider)]


def smallest_order(provider: Provider) -> tuple[int, int]:
    """The least energy for the shortest duration the vendor sells."""
    caps = provider.capabilities
    return caps.min_amount, caps.fit_duration(1) or caps.min_duration or 3600


def receiver_for(policy_set: PolicySet, name: str) -> str:
    """The first address watched by a policy listing `name`, else any, else a placeholder."""
    for policy in policy_set.policies.values():
        if name in policy.spec.providers and policy.spec.addresses:
            return str(policy.spec.addresses[0])
    return next(iter(policy_set.addresses), PLACEHOLDER_RECEIVER)


async def _quote(
    provider: Provider, energy: int, duration: int, receiver: str
) -> tuple[QuoteLine, ProviderError | None]:
    refused = unsold(provider.capabilities, energy, duration)
    if refused is not None:
        return QuoteLine(energy, duration, None, refused, asked=False), None
    request = QuoteRequest(receiver=receiver, energy=energy, duration=duration)
    quote, err = await _attempt(provider.quote(request))
    if err is not None:
        protocol = err.reason is ErrorReason.PROTOCOL
        return QuoteLine(energy, duration, None, error_text(err), protocol=protocol), err
    assert quote is not None
    return QuoteLine(energy, duration, quote.total_sun, None), None


def _unknown_receipt(provider: Provider, receiver: str) -> Receipt:
    energy, duration = smallest_order(provider)
    return Receipt(
        provider=provider.name,
        client_order_id="energyctl-check-" + uuid.uuid4().hex[:12],
        provider_order_id=provider.unknown_order_id,
        receiver=receiver,
        energy=energy,
        duration=duration,
    )


def _skew_text(skew: float) -> str:
    side = "ahead of" if skew > 0 else "behind"
    return f"the vendor's clock is {abs(skew):.1f} s {side} ours (its Date header)"


def _clock_check(skew: float | None, max_skew: float) -> Check:
    if skew is None:
        return Check("clock", None, "not measured: no Date header in the vendor's answers")
    if abs(skew) > max_skew:
        return Check(
            "clock",
            False,
            f"clock skew {skew:+.1f} s: {_skew_text(skew)}, above {max_skew:g} s; signed "
            "requests are refused past a few seconds: check this host's time (NTP)",
        )
    return Check("clock", True, f"{skew:+.1f} s by the vendor's Date header")


def _auth_check(
    errors: Sequence[ProviderError], balance_ok: bool, skew: float | None, max_skew: float
) -> Check:
    refused = next((e for e in errors if e.reason is ErrorReason.AUTH), None)
    if refused is not None:
        if skew is not None and abs(skew) > max_skew:
            return Check(
                "authenticated",
                False,
                f"clock skew {skew:+.1f} s: {_skew_text(skew)}, and the vendor refused the "
                f"signed request ({error_text(refused)})",
            )
        return Check("authenticated", False, f"credentials refused: {error_text(refused)}")
    if balance_ok:
        return Check("authenticated", True, "the account was read with these credentials")
    return Check("authenticated", None, "not told: the balance could not be read")


def _lookup_check(
    documented: NotFoundShape | None,
    status: object | None,
    err: ProviderError | None,
    receipt: Receipt,
) -> Check:
    expected = documented.text if documented else "a NOT_FOUND refusal"
    asked = f"order {receipt.provider_order_id!r}"
    if err is None:
        raw = getattr(status, "raw", None)
        code = str(raw.get("code")) if isinstance(raw, Mapping) else None
        if documented is not None and code in documented.vendor_codes:
            # the adapter reads this vendor's not-found as "not listed yet" (eopen's
            # history lists recent orders only), but the vendor's answer was the documented one
            return Check("lookup", True, f"{asked} -> code {code}; documented: {expected}", True)
        state = getattr(status, "state", status)
        return Check(
            "lookup", False, f"{asked} (made up) was answered as an order ({state})", False
        )
    got = f"{asked} -> {error_text(err)}; documented answer: {expected}"
    if err.reason is ErrorReason.AUTH:  # refused before the order was looked for
        return Check("lookup", False, got, None)
    if not isinstance(err, PermanentError) or err.reason is ErrorReason.PROTOCOL:
        return Check("lookup", False, got, False)
    if documented is not None and documented.vendor_codes:
        matched = err.vendor_code in documented.vendor_codes
        return Check("lookup", matched or err.reason is ErrorReason.NOT_FOUND, got, matched)
    ok = err.reason in (ErrorReason.NOT_FOUND, ErrorReason.INVALID_REQUEST)
    return Check("lookup", ok, got, None)


async def check_provider(
    provider: Provider,
    type_name: str,
    sizes: Sequence[tuple[int, int]],
    receiver: str,
    *,
    max_skew: float = SKEW_WARNING_S,
) -> VendorCheck:
    """The six checks of one provider (read endpoints only; nothing is bought)."""
    balance, balance_err = await _attempt(provider.balance())
    silent = isinstance(balance_err, TemporaryError) and getattr(provider, "answered", 1) == 0
    if silent:  # no answer at all (after the retries): the other calls would wait as long
        sizes = []
    asked = [await _quote(provider, energy, duration, receiver) for energy, duration in sizes]
    quotes = [line for line, _ in asked]
    receipt = _unknown_receipt(provider, receiver)
    status, lookup_err = (None, None) if silent else await _attempt(provider.status(receipt))
    skew: float | None = getattr(provider, "clock_skew", None)
    answered: int | None = getattr(provider, "answered", None)

    quote_errors = [err for _, err in asked if err is not None]
    errors = [e for e in (balance_err, *quote_errors, lookup_err) if e is not None]
    if answered is None:  # not an HttpProvider: reachable unless nothing connected
        unreachable = bool(errors) and all(
            isinstance(e, TemporaryError) and e.reason is ErrorReason.UNAVAILABLE for e in errors
        )
    else:
        unreachable = answered == 0
    if unreachable:
        why = error_text(errors[0]) if errors else "no answer"
        reachable = Check("reachable", False, f"no HTTP answer: {why}")
        rest = [Check(name, None, "not checked: the vendor did not answer") for name in CHECKS[1:]]
        return VendorCheck(provider.name, type_name, (reachable, *rest), skew, None, tuple(quotes))
    count = "answered" if answered is None else f"{answered} HTTP answers"
    checks = [Check("reachable", True, count)]
    checks.append(_auth_check(errors, balance is not None, skew, max_skew))
    checks.append(_clock_check(skew, max_skew))
    if balance_err is None:
        assert balance is not None
        checks.append(Check("balance", True, format_sun(balance), True))
    else:
        wrong = balance_err.reason is ErrorReason.PROTOCOL
        detail = ("not in the documented shape: " if wrong else "") + error_text(balance_err)
        checks.append(Check("balance", False, detail, False if wrong else None))
    quote_text = "; ".join(q.text() for q in quotes)
    if not any(q.asked for q in quotes):
        checks.append(Check("quote", None, f"nothing this vendor sells: {quote_text}"))
    elif quote_errors:
        wrong = any(q.protocol for q in quotes)
        prefix = "not in the documented shape: " if wrong else ""
        checks.append(Check("quote", False, prefix + quote_text, False if wrong else None))
    else:
        checks.append(Check("quote", True, quote_text, True))
    checks.append(_lookup_check(provider.not_found, status, lookup_err, receipt))
    return VendorCheck(provider.name, type_name, tuple(checks), skew, balance, tuple(quotes))


async def check(
    pool: ProviderPool, policy_set: PolicySet, *, max_skew: float = SKEW_WARNING_S
) -> list[VendorCheck]:
    """Every provider of the pool, in document order, checked concurrently."""
    return list(
        await asyncio.gather(
            *(
                check_provider(
                    pool[name],
                    pool.document(name).spec.type,
                    top_up_sizes(policy_set, name, pool[name]),
                    receiver_for(policy_set, name),
                    max_skew=max_skew,
                )
                for name in pool
            )
        )
    )


def render_checks(reports: Sequence[VendorCheck]) -> str:
    """One block per provider: a `name (type): pass|FAIL` line, then one line per check."""
    if not reports:
        return "no Provider documents in the policy set\n"
    marks = {True: "ok", False: "FAIL", None: "-"}
    shapes = {True: " [documented shape]", False: " [not the documented shape]", None: ""}
    lines: list[str] = []
    for report in reports:
        verdict = "pass" if report.ok else f"FAIL ({report.cause})"
        lines.append(f"{report.name} ({report.type}): {verdict}")
        for c in report.checks:
            lines.append(f"  {c.name:<14} {marks[c.ok]:<4}  {c.detail}{shapes[c.documented]}")
    passed = sum(1 for r in reports if r.ok)
    lines.append(f"{passed} of {len(reports)} providers pass")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- canary


class ChainSource(Protocol):
    """What the canary reads of the chain (`engine.observe.chain.ChainReader` fits)."""

    async def snapshot(self, address: str) -> EnergySnapshot: ...


@dataclass(frozen=True)
class CanaryPlan:
    """The smallest order a vendor sells, to `receiver`, and its quote."""

    provider: str
    receiver: str
    energy: int
    duration: int
    quote_sun: int | None
    quote_error: str | None

    def text(self) -> str:
        size = f"{format_energy(self.energy)} for {format_duration(self.duration)}"
        price = (
            f"quoted {format_sun(self.quote_sun)}"
            if self.quote_sun is not None
            else f"no quote: {self.quote_error}"
        )
        return f"{self.provider}: {size} to {self.receiver}, {price}"


@dataclass(frozen=True)
class CanaryStep:
    """One answer while following a canary: `source` is `vendor` or `chain`."""

    provider: str
    elapsed: float
    source: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"elapsed": round(self.elapsed, 3), "source": self.source, "text": self.text}


@dataclass
class CanaryResult:
    plan: CanaryPlan
    client_order_id: str
    provider_order_id: str | None = None
    delivered: bool = False
    rise: int | None = None
    cause: str | None = None
    steps: list[CanaryStep] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "energy": self.plan.energy,
            "duration": self.plan.duration,
            "receiver": self.plan.receiver,
            "quoteSun": self.plan.quote_sun,
            "clientOrderId": self.client_order_id,
            "providerOrderId": self.provider_order_id,
            "delivered": self.delivered,
            "energyRise": self.rise,
            "cause": self.cause,
            "steps": [s.to_dict() for s in self.steps],
        }


async def _account_minimum(provider: Provider) -> int | None:
    """The account's own minimum order where the adapter reads it (itrx `limits()`)."""
    limits = getattr(provider, "limits", None)
    if not callable(limits):
        return None
    try:
        account = await limits()
    except ProviderError:
        return None
    minimum = getattr(account, "min_order_energy", None)
    return minimum if isinstance(minimum, int) else None


async def plan_canary(provider: Provider, receiver: str) -> CanaryPlan:
    """The smallest order the vendor sells (raised to the account's minimum) and its quote."""
    energy, duration = smallest_order(provider)
    energy = max(energy, await _account_minimum(provider) or 0)
    request = QuoteRequest(receiver=receiver, energy=energy, duration=duration)
    quote, err = await _attempt(provider.quote(request))
    return CanaryPlan(
        provider.name,
        receiver,
        energy,
        duration,
        None if quote is None else quote.total_sun,
        None if err is None else error_text(err),
    )


async def run_canary(  # noqa: C901, PLR0915
    provider: Provider,
    chain: ChainSource,
    plan: CanaryPlan,
    *,
    clock: Clock,
    deadline: float,
    interval: float = 1.0,
    tolerance: float = 0.97,
    on_step: Callable[[CanaryStep], None] | None = None,
) -> CanaryResult:
    """Place the canary order and follow it until the chain shows it or `deadline`
    seconds (clock time) pass. Delivered: the receiver's energy limit rose by at least
    `tolerance` x the ordered energy since just before the order."""
    result = CanaryResult(plan, client_order_id="canary-" + uuid.uuid4().hex[:20])
    start = clock.now()

    def step(source: str, text: str) -> None:
        item = CanaryStep(plan.provider, clock.now() - start, source, text)
        result.steps.append(item)
        if on_step is not None:
            on_step(item)

    try:
        before = await chain.snapshot(plan.receiver)
    except ChainError as exc:
        result.cause = f"cannot read the chain before the order: {exc}"
        step("chain", result.cause)
        return result
    step("chain", f"{plan.receiver}: energy limit {before.limit} before the order")
    order = OrderRequest(
        client_order_id=result.client_order_id,
        receiver=plan.receiver,
        energy=plan.energy,
        duration=plan.duration,
    )
    receipt, err = await _attempt(provider.place(order))
    if err is not None or receipt is None:
        assert err is not None
        result.cause = f"order refused: {error_text(err)}"
        if isinstance(err, AmbiguousError):
            result.cause = f"no clear answer, an order may exist: {error_text(err)}"
        step("vendor", result.cause)
        return result
    result.provider_order_id = receipt.provider_order_id
    cost = "" if receipt.cost_sun is None else f", cost {format_sun(receipt.cost_sun)}"
    step("vendor", f"accepted: order {receipt.provider_order_id}{cost}")
    last: tuple[object, ...] | None = None
    state: OrderState | None = None
    while True:
        status, err = await _attempt(provider.status(receipt))
        if err is not None:
            step("vendor", f"status: {error_text(err)}")
        elif status is not None:
            state = status.state
            seen = (status.state, status.delegated_energy, status.txids)
            if seen != last:
                txids = f", txids {', '.join(status.txids)}" if status.txids else ""
                step("vendor", f"{status.state}: {status.delegated_energy} delegated{txids}")
                last = seen
        try:
            after = await chain.snapshot(plan.receiver)
        except ChainError as exc:
            step("chain", f"cannot read the chain: {exc}")
        else:
            rise = after.limit - before.limit
            if rise != result.rise:
                result.rise = rise
                step("chain", f"{plan.receiver}: energy limit {after.limit} ({rise:+d})")
            if rise >= plan.energy * tolerance:
                result.delivered = True
                step("chain", f"delivered: {rise} energy on the chain (ordered {plan.energy})")
                return result
        if state is not None and state.terminal and state is not OrderState.DELEGATED:
            result.cause = f"the vendor ended the order {state}; the chain shows no delegation"
            return result
        if clock.now() - start >= deadline:
            said = f" (the vendor says {state})" if state is not None else ""
            result.cause = (
                f"the chain did not show the delegation within {format_duration(int(deadline))}"
                + said
            )
            step("chain", result.cause)
            return result
        await clock.sleep(interval)


def render_step(step: CanaryStep) -> str:
    return f"{step.provider}: +{step.elapsed:.1f}s {step.source}: {step.text}"
