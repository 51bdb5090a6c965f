"""Prometheus metrics of the sidecar (`GET /metrics`), with `prometheus-client`.

`Metrics` owns a private `CollectorRegistry` (never the process-global one, so tests can
build several) and the series below; `observe_pass` is a controller pass observer, and
`metered(pool)` wraps each provider adapter so every vendor call is timed and its errors
counted by class. `refresh(controller)` fills what is read at scrape time (orders by
provider and state from the store, observation age).

Series (all prefixed `energyctl_`):
  address_energy{address,policy}                 available energy at the last pass
  address_condition{address,policy,condition}    1 for the address's condition, else 0
  orders{provider,state}                         orders of the last 24 h by phase
  spent_today_sun{policy}                        sun reserved or settled this UTC day
  provider_request_seconds{provider,operation}   latency of vendor calls (histogram)
  provider_errors_total{provider,operation,kind} failed vendor calls by error class
  pass_seconds                                   duration of a reconciliation pass
  passes_total{result}                           passes that finished ok or failed
  observation_age_seconds                        age of the last full read of the addresses
  last_pass_timestamp_seconds                    when the last pass finished (clock time)
  shards_held                                    address shards this replica holds now
  deposit_addresses{policy}                      deposit addresses watched
  deposit_episodes{policy,state}                 open deposit episodes by state
  deposit_webhooks{result}                       energy-ready webhooks delivered or failed

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
from engine.store import BudgetWindow, OrderFilter
from providers.base import Provider, ProviderError

if TYPE_CHECKING:
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
        self.condition = Gauge(
            "energyctl_address_condition",
            "1 for the address's current condition.",
            ["address", "policy", "condition"],
            registry=r,
        )
        self.orders = Gauge(
            "energyctl_orders", "Orders of the last 24 h.", ["provider", "state"], registry=r
        )
        self.spent = Gauge(
            "energyctl_spent_today_sun",
            "Sun reserved or settled in the ledger this UTC day.",
            ["policy"],
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
        self.observation_age = Gauge(
            "energyctl_observation_age_seconds", "Age of the last full read.", registry=r
        )
        self.last_pass = Gauge(
            "energyctl_last_pass_timestamp_seconds", "When the last pass ended.", registry=r
        )
        self.shards = Gauge("energyctl_shards_held", "Address shards held.", registry=r)
        self.deposit_addresses = Gauge(
            "energyctl_deposit_addresses",
            "Deposit addresses watched.",
            ["policy"],
            registry=r,
        )
        self.deposit_episodes = Gauge(
            "energyctl_deposit_episodes",
            "Open deposit episodes by state.",
            ["policy", "state"],
            registry=r,
        )
        self.webhooks = Gauge(
            "energyctl_deposit_webhooks",
            "Energy-ready webhooks since the start: delivered, or given up after retries.",
            ["result"],
            registry=r,
        )
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
        self.condition.clear()
        for entry in result.plan.entries:
            if entry.available is not None:
                self.energy.labels(entry.address, entry.policy).set(entry.available)
            for condition in Condition:
                value = 1.0 if condition is entry.condition else 0.0
                self.condition.labels(entry.address, entry.policy, str(condition)).set(value)

    async def refresh(self, controller: Controller) -> None:
        """Scrape-time values: orders by provider and state, observation age."""
        age = controller.observation_age()
        self.observation_age.set(age if age is not None else float("nan"))
        leases = controller.leases
        self.shards.set(len(leases.status()["held"]) if leases is not None else float("nan"))
        session = controller.session
        if session is None:
            return
        since = controller.clock.now() - 86_400
        found = await session.store.orders(OrderFilter(since=since, limit=10_000))
        tally = Tally((o.provider, str(o.phase)) for o in found)
        self.orders.clear()
        for (provider, state), count in tally.items():
            self.orders.labels(provider, state).set(count)
        now = controller.clock.now()
        policies = controller.policy_set.policies if controller.policy_set else {}
        self.spent.clear()
        for name, policy in policies.items():
            spent = await session.store.spent(
                name, BudgetWindow.DAY, now, addresses=policy.spec.addresses
            )
            self.spent.labels(name).set(spent)
        await self._deposits(controller)

    async def _deposits(self, controller: Controller) -> None:
        """Deposit policies: addresses, open episodes by state, webhooks, spend today."""
        desk, session = controller.deposits, controller.session
        self.deposit_addresses.clear()
        self.deposit_episodes.clear()
        if desk is None or session is None:
            return
        for name in desk.policies:
            self.deposit_addresses.labels(name).set(desk.watch.count(name))
            spent = await session.store.spent(name, BudgetWindow.DAY, controller.clock.now())
            self.spent.labels(name).set(spent)
        tally = Tally((n.policy, str(n.state)) for n in await session.store.deposit_needs())
        for (policy, state), count in tally.items():
            self.deposit_episodes.labels(policy, state).set(count)
        if desk.webhooks is not None:
            self.webhooks.labels("delivered").set(desk.webhooks.sent)
            self.webhooks.labels("failed").set(desk.webhooks.failed)

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
            return await getattr(inner, operation)(*args)
        except ProviderError as exc:
            metrics.errors.labels(inner.name, operation, type(exc).__name__).inc()
            raise
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
