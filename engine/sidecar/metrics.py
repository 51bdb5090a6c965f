"""Prometheus metrics of the sidecar (`GET /metrics`), with `prometheus-client`.

`Metrics` owns a private `CollectorRegistry` (never the process-global one, so tests can
build several) and the series below; `observe_pass` is a controller pass observer, and
`metered(pool)` wraps each provider adapter so every vendor call is timed and its errors
counted by class. `refresh(controller)` fills what is read at scrape time (orders by
provider and state from the store, observation age).

Series (all prefixed `energyctl_`):
  address_energy{address,policy}                 available energy at the last pass
  address_threshold{address,policy}              the policy's threshold for the address
  address_condition{address,policy,condition}    1 for the address's condition, else 0
  orders{provider,state}                         orders of the last 24 h by phase
  orders_overdue{provider}                       open orders past their deadline (held)
  spent_today_sun{policy}                        sun reserved or settled this UTC day
  budget_spent_sun{policy,window}                the same for the window (day, month)
  budget_limit_sun{policy,window}                the policy's budget for the window
  provider_spent_today_sun{provider}             this UTC day's orders: settled cost, or the
                                                 reservation while open
  provider_balance_sun{provider}                 the last balance read (a pass, an alert check)
  provider_consecutive_failures{provider}        failed calls since its last success (store)
  provider_cooldown_seconds{provider}            seconds until a cooling provider is tried
  transfers_burned_total{address}                transactions of a watched address that burned
                                                 TRX for energy (follow mode: seen in blocks)
  burned_sun_total{address}                      the sun they burned
  provider_request_seconds{provider,operation}   latency of vendor calls (histogram)
  provider_errors_total{provider,operation,kind} failed vendor calls by error class
  pass_seconds                                   duration of a reconciliation pass
  passes_total{result}                           passes that finished ok or failed
  ensure_seconds{result}                         POST /v1/ensure answer time (histogram;
                                                 result satisfied, unsatisfied or refused)
  ready                                          1 when /readyz would answer 200, else 0
  observation_age_seconds                        age of the last full read of the addresses
  last_pass_timestamp_seconds                    when the last pass finished (clock time)
  shards_held                                    address shards this replica holds now

With a replica name (`Metrics(replica=...)`, the sidecar gives it when replicas share the
addresses) every sample carries a `replica` label, added at exposition
(`_ReplicaLabelled`), so the series of several replicas never collide in one scrape.

Neighbours: `controller.py`, `service.py`.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from engine.decide.planning import Condition
from engine.reconciling import PassResult
from engine.store import OPEN_PHASES, BudgetWindow, OrderFilter, Store, cooldown_until
from providers.base import Provider, ProviderError

if TYPE_CHECKING:
    from engine.observe.observing import CachingSource
    from engine.sidecar.controller import Controller

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The sidecar's series in one registry; see the module docstring."""

    def __init__(self, replica: str | None = None) -> None:
        self.replica = replica
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.energy = Gauge(
            "energyctl_address_energy", "Available energy.", ["address", "policy"], registry=r
        )
        self.threshold = Gauge(
            "energyctl_address_threshold", "Threshold.", ["address", "policy"], registry=r
        )
        self.condition = Gauge(
            "energyctl_address_condition",
            "1 for the address's current condition.",
            ["address", "policy", "condition"],
            registry=r,
        )
        self.orders = Gauge(
            "energyctl_orders", "Orders of the last 24 h.", ["provider", "state"], registry=r
        )
        self.overdue = Gauge(
            "energyctl_orders_overdue", "Open orders past their deadline.", ["provider"],
            registry=r,
        )  # fmt: skip
        self.spent = Gauge(
            "energyctl_spent_today_sun",
            "Sun reserved or settled in the ledger this UTC day.",
            ["policy"],
            registry=r,
        )
        self.budget_spent = Gauge(
            "energyctl_budget_spent_sun",
            "Sun reserved or settled in the ledger this UTC day or month.",
            ["policy", "window"],
            registry=r,
        )
        self.budget_limit = Gauge(
            "energyctl_budget_limit_sun", "Budget per window.", ["policy", "window"], registry=r
        )
        self.provider_spent = Gauge(
            "energyctl_provider_spent_today_sun",
            "This UTC day's orders: settled cost, or the reservation while open.",
            ["provider"],
            registry=r,
        )
        self.balance = Gauge(
            "energyctl_provider_balance_sun", "Last balance read.", ["provider"], registry=r
        )
        self.failures = Gauge(
            "energyctl_provider_consecutive_failures",
            "Failed calls since the provider's last success.",
            ["provider"],
            registry=r,
        )
        self.cooldown = Gauge(
            "energyctl_provider_cooldown_seconds",
            "Seconds until a cooling provider is tried again.",
            ["provider"],
            registry=r,
        )
        self.latency = Histogram(
            "energyctl_provider_request_seconds",
            "Vendor call latency.",
            ["provider", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "energyctl_provider_errors",
            "Failed vendor calls.",
            ["provider", "operation", "kind"],
            registry=r,
        )
        self.pass_seconds = Histogram(
            "energyctl_pass_seconds", "Reconciliation pass duration.", registry=r,
            buckets=_LATENCY_BUCKETS,
        )  # fmt: skip
        self.passes = Counter("energyctl_passes", "Passes.", ["result"], registry=r)
        self.ensure_seconds = Histogram(
            "energyctl_ensure_seconds", "Ensure answer time.", ["result"], registry=r,
            buckets=(*_LATENCY_BUCKETS, 60.0, 120.0, 300.0),
        )  # fmt: skip
        self.ready = Gauge("energyctl_ready", "1 when ready.", registry=r)
        self.burns = Counter(
            "energyctl_transfers_burned", "Transactions that burned TRX for energy.", ["address"],
            registry=r,
        )  # fmt: skip
        self.burned_sun = Counter(
            "energyctl_burned_sun", "Sun burned for energy.", ["address"], registry=r
        )
        self._burns_of: CachingSource | None = None  # whose tallies `_burns_seen` holds
        self._burns_seen: tuple[Tally[str], Tally[str]] = (Tally(), Tally())
        self.observation_age = Gauge(
            "energyctl_observation_age_seconds", "Age of the last full read.", registry=r
        )
        self.last_pass = Gauge(
            "energyctl_last_pass_timestamp_seconds", "When the last pass ended.", registry=r
        )
        self.shards = Gauge("energyctl_shards_held", "Address shards held.", registry=r)
        self._exposed = r
        if replica is not None:
            self.label_replica(replica)

    def label_replica(self, replica: str) -> None:
        """From now on every sample carries `replica="REPLICA"`."""
        self.replica = replica
        self._exposed = CollectorRegistry(auto_describe=False)
        self._exposed.register(_ReplicaLabelled(self.registry, replica))

    # ------------------------------------------------------------------ passes

    def observe_pass(
        self, controller: Controller, result: PassResult | None, elapsed: float
    ) -> None:
        self.pass_seconds.observe(elapsed)
        self.passes.labels("ok" if result is not None else "failed").inc()
        if result is None:
            return
        self.last_pass.set(controller.clock.now())
        self.energy.clear()
        self.threshold.clear()
        self.condition.clear()
        for entry in result.plan.entries:
            if entry.available is not None:
                self.energy.labels(entry.address, entry.policy).set(entry.available)
            self.threshold.labels(entry.address, entry.policy).set(entry.threshold)
            for condition in Condition:
                value = 1.0 if condition is entry.condition else 0.0
                self.condition.labels(entry.address, entry.policy, str(condition)).set(value)

    async def refresh(self, controller: Controller) -> None:
        """Scrape-time values: orders, spend and budgets, provider health, observation age."""
        age = controller.observation_age()
        self.observation_age.set(age if age is not None else float("nan"))
        leases = controller.leases
        self.shards.set(len(leases.status()["held"]) if leases is not None else float("nan"))
        if controller.observer is not None:
            self._count_burns(controller.observer)
        session = controller.session
        if session is None:
            return
        store, now = session.store, controller.clock.now()
        found = await store.orders(OrderFilter(since=now - 86_400, limit=10_000))
        tally = Tally((o.provider, str(o.phase)) for o in found)
        self.orders.clear()
        for (provider, state), count in tally.items():
            self.orders.labels(provider, state).set(count)
        configured = sorted(controller.reconciler.providers) if controller.reconciler else []
        day_start = now - now % 86_400
        spent: Tally[str] = Tally({name: 0 for name in configured})
        for o in found:
            if o.created_at >= day_start:
                spent[o.provider] += o.reserved_sun if o.is_open else (o.cost_sun or 0)
        self.provider_spent.clear()
        for provider, sun in spent.items():
            self.provider_spent.labels(provider).set(sun)
        late = await store.orders(
            OrderFilter(phases=OPEN_PHASES, deadline_before=now, limit=10_000)
        )
        overdue = Tally({name: 0 for name in configured}) + Tally(o.provider for o in late)
        self.overdue.clear()
        for provider in sorted(set(configured) | set(overdue)):
            self.overdue.labels(provider).set(overdue[provider])
        await self._health(store, configured, now)
        await self._budgets(controller, store, now)

    def _count_burns(self, observer: CachingSource) -> None:
        """Add what the observer tallied since the last scrape (a new session's observer
        starts from zero: its tallies are all new)."""
        if observer is not self._burns_of:
            self._burns_of, self._burns_seen = observer, (Tally(), Tally())
        seen, seen_sun = self._burns_seen
        for address, count in observer.burns.items():
            if count > seen[address]:
                self.burns.labels(address).inc(count - seen[address])
        for address, sun in observer.burned_sun.items():
            if sun > seen_sun[address]:
                self.burned_sun.labels(address).inc(sun - seen_sun[address])
        self._burns_seen = (Tally(observer.burns), Tally(observer.burned_sun))

    async def _health(self, store: Store, configured: list[str], now: float) -> None:
        health = await store.provider_health()
        self.failures.clear()
        self.cooldown.clear()
        for name in sorted(set(configured) | set(health)):
            record = health.get(name)
            until = cooldown_until(record) if record is not None else None
            self.failures.labels(name).set(record.consecutive_failures if record else 0)
            self.cooldown.labels(name).set(max(0.0, until - now) if until is not None else 0.0)

    async def _budgets(self, controller: Controller, store: Store, now: float) -> None:
        policies = controller.policy_set.policies if controller.policy_set else {}
        self.spent.clear()
        self.budget_spent.clear()
        self.budget_limit.clear()
        for name, policy in policies.items():
            budget, addresses = policy.spec.budget, policy.spec.addresses
            for window, limit in ((BudgetWindow.DAY, budget.per_day),
                                  (BudgetWindow.MONTH, budget.per_month)):  # fmt: skip
                sun = await store.spent(name, window, now, addresses=addresses)
                if window is BudgetWindow.DAY:
                    self.spent.labels(name).set(sun)
                self.budget_spent.labels(name, str(window)).set(sun)
                if limit is not None:
                    self.budget_limit.labels(name, str(window)).set(limit)

    def exposition(self) -> bytes:
        return generate_latest(self._exposed)

    # ------------------------------------------------------------------ providers

    def metered(self, pool: Mapping[str, Provider]) -> Mapping[str, Provider]:
        return _MeteredPool(pool, self)


class _ReplicaLabelled(Collector):
    """Every family of `inner` with `replica="NAME"` added to each sample's labels."""

    def __init__(self, inner: CollectorRegistry, replica: str) -> None:
        self.inner, self.replica = inner, replica

    def collect(self) -> Iterable[Metric]:
        for family in self.inner.collect():
            family.samples = [
                Sample(s.name, {**s.labels, "replica": self.replica}, *s[2:])
                for s in family.samples
            ]
            yield family


class _MeteredPool(Mapping[str, Provider]):
    def __init__(self, pool: Mapping[str, Provider], metrics: Metrics) -> None:
        self._pool, self._metrics = pool, metrics
        self._wrapped: dict[str, Provider] = {}

    def __getitem__(self, name: str) -> Provider:
        inner = self._pool[name]
        wrapped = self._wrapped.get(name)
        if wrapped is None or getattr(wrapped, "inner", None) is not inner:
            wrapped = self._wrapped[name] = _metered(inner, self._metrics)
        return wrapped

    def __iter__(self) -> Iterator[str]:
        return iter(self._pool)

    def __len__(self) -> int:
        return len(self._pool)


def _metered(inner: Provider, metrics: Metrics) -> Provider:
    """A provider with the same class metadata that times and counts every call."""

    async def call(operation: str, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await getattr(inner, operation)(*args)
        except ProviderError as exc:
            metrics.errors.labels(inner.name, operation, type(exc).__name__).inc()
            raise
        else:
            if operation == "balance":
                metrics.balance.labels(inner.name).set(int(result))
            return result
        finally:
            metrics.latency.labels(inner.name, operation).observe(time.perf_counter() - started)

    class Metered(Provider):
        type_name = inner.type_name
        capabilities = inner.capabilities

        async def quote(self, request: Any) -> Any:
            return await call("quote", request)

        async def place(self, order: Any) -> Any:
            return await call("place", order)

        async def status(self, receipt: Any) -> Any:
            return await call("status", receipt)

        async def lookup(self, client_order_id: str) -> Any:
            return await call("lookup", client_order_id)

        async def balance(self) -> int:
            return int(await call("balance"))

    wrapped = Metered(inner.name)
    wrapped.inner = inner  # type: ignore[attr-defined]
    return wrapped


__all__ = ["CONTENT_TYPE", "Metrics"]
