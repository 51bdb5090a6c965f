"""The operator's kit against a running sidecar: the Grafana dashboard and the Prometheus
alerting rules use only series and labels the sidecar exports, and the rules pass
`promtool check rules` and their unit tests (`promtool test rules`).

One `energyctl run` (with `--replica` and shard leases, as a replica of several would run)
is started for the module against the sandbox World, following blocks; it is made to buy
(a drained address), to see a transfer burn TRX, to meet a vendor error (injected 500s)
and to answer an ensure, so that every family the dashboard reads has samples whose
labels can be read from `/metrics`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from engine.core.clock import ScaledClock
from sandbox.world import World
from tests.e2e import promql_check
from tests.e2e.sandboxed import START_ENERGY, Sandbox
from tests.e2e.test_run_sidecar import AUTH, Sidecar

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "grafana" / "energyctl.json"
RULES = ROOT / "examples" / "prometheus" / "energyctl-rules.yaml"
RULE_TESTS = ROOT / "examples" / "prometheus" / "energyctl-rules.test.yaml"

#: families that only have samples once something happened: waited for before checking
EVENTFUL = (
    "energyctl_provider_errors_total",
    "energyctl_provider_request_seconds_bucket",
    "energyctl_provider_balance_sun",
    "energyctl_ensure_seconds_bucket",
    "energyctl_orders",
    "energyctl_shards_held",
    "energyctl_transfers_burned_total",
    "energyctl_burned_sun_total",
)


class Scraped(dict[str, frozenset[str]]):
    """`promql_check.exported` of the last scrape, with the scrape's samples and the box."""

    text: str
    box: Sandbox

    def value(self, name: str, **labels: str) -> float:
        values = [
            s.value
            for f in text_string_to_metric_families(self.text)
            for s in f.samples
            if s.name == name and labels.items() <= s.labels.items()
        ]
        assert values, (name, labels)
        return float(sum(values))


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    with World(clock=ScaledClock()) as world:
        box = Sandbox(world, tmp_path_factory.mktemp("kit"))
        engine = box.directory / "engine.yaml"
        assert "mode: poll" in engine.read_text()
        engine.write_text(engine.read_text().replace("mode: poll", "mode: follow"))
        car = Sidecar(box, extra=("--replica", "kit-a", "--shards", "4")).start()
        try:
            payouts = box.policy_set.policy("payouts").spec
            world.emulators[payouts.providers[0]].faults.fail_next(8, after_accept=False)
            box.drain([payouts.addresses[0]])
            world.spend(payouts.addresses[0])  # too little energy left: this one burns TRX
            treasury = box.policy_set.policy("treasury").spec.addresses[0]
            wanted = START_ENERGY + 100_000
            answer = car.post(
                "/v1/ensure", {"address": treasury, "energy": wanted, "wait": 20}, AUTH
            )
            assert answer.status_code == 200, answer.text
            found = Scraped()
            found.box = box

            def complete() -> bool:
                found.text = car.get("/metrics").text
                found.update(promql_check.exported(found.text))
                return all(name in found for name in EVENTFUL)

            try:
                car.wait_for(complete, "samples of every eventful family", 30)
            except AssertionError as exc:
                missing = [name for name in EVENTFUL if name not in found]
                raise AssertionError(f"no samples of {missing}") from exc
            yield found
        finally:
            car.terminate()


def test_the_sidecar_exports_the_labels_the_kit_relies_on(
    scrape: promql_check.Exported,
) -> None:
    assert {"address", "policy", "replica"} <= scrape["energyctl_address_threshold"]
    assert {"provider", "kind", "replica"} <= scrape["energyctl_provider_errors_total"]
    assert "result" in scrape["energyctl_ensure_seconds_count"]
    assert {"policy", "window"} <= scrape["energyctl_budget_limit_sun"]


def test_the_new_series_say_what_the_store_and_policies_say(scrape: Scraped) -> None:
    policies = scrape.box.policy_set
    payouts = policies.policy("payouts").spec
    day = payouts.budget.per_day
    assert day is not None
    assert scrape.value("energyctl_budget_limit_sun", policy="payouts", window="day") == day
    for address in payouts.addresses:
        got = scrape.value("energyctl_address_threshold", address=address)
        assert got >= payouts.threshold  # an ensure may raise it, never lower it
    spent = sum(
        scrape.value("energyctl_spent_today_sun", policy=name) for name in policies.policies
    )
    assert spent > 0 and scrape.value("energyctl_provider_spent_today_sun") == spent
    assert scrape.value("energyctl_ready") == 1
    assert scrape.value("energyctl_transfers_burned_total", address=payouts.addresses[0]) >= 1
    assert scrape.value("energyctl_ensure_seconds_count", result="satisfied") == 1


def test_every_dashboard_query_uses_exported_series_and_labels(
    scrape: promql_check.Exported,
) -> None:
    queries = promql_check.dashboard_queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) >= 15
    bad = {
        f"{title}: {expr}": found
        for title, expr, legend in queries
        if (found := promql_check.problems(expr, scrape, legend))
    }
    assert not bad, json.dumps(bad, indent=2)


def test_the_dashboard_is_importable() -> None:
    """Grafana's import needs unique panel ids and refIds, and a data source that is one of
    the dashboard's declared inputs."""
    dashboard = json.loads(DASHBOARD.read_text())
    inputs = {f"${{{i['name']}}}" for i in dashboard["__inputs"] if i["type"] == "datasource"}
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(set(refs)) == len(refs), panel["title"]
        for item in [panel, *panel.get("targets", [])]:
            if "datasource" in item:
                assert item["datasource"]["uid"] in inputs, panel["title"]


def test_every_rule_uses_exported_series_and_labels(scrape: promql_check.Exported) -> None:
    rules = promql_check.rule_queries(yaml.safe_load(RULES.read_text()))
    assert {name for name, _ in rules} >= {
        "EnergyctlBudgetNearlySpent",
        "EnergyctlAddressBelowThreshold",
        "EnergyctlAllVendorsFailing",
        "EnergyctlOrderHeldPastDeadline",
        "EnergyctlVendorBalanceLow",
        "EnergyctlNotReady",
    }
    bad = {name: found for name, expr in rules if (found := promql_check.problems(expr, scrape))}
    assert not bad, bad


def test_the_checker_names_what_is_not_exported() -> None:
    """The check itself: a made-up series, label, grouping or value is named."""
    known = {"energyctl_orders": frozenset({"provider", "state"})}
    assert (
        promql_check.problems('sum by (provider) (energyctl_orders{state="delivered"})', known)
        == []
    )
    assert promql_check.problems("energyctl_order", known) == [
        "series 'energyctl_order' is not exported"
    ]
    assert promql_check.problems('energyctl_orders{phase="x"}', known) == [
        "energyctl_orders has no label 'phase'"
    ]
    assert promql_check.problems("sum by (policy) (energyctl_orders)", known) == [
        "by (policy): no series under it has it"
    ]
    assert promql_check.problems('energyctl_orders{state=~"delivered|done"}', known) == [
        "state='done' is never written"
    ]
    assert promql_check.problems("energyctl_orders", known, "{{address}}") == [
        "legend {{address}}: no series has it"
    ]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run does)")
    return found


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    done = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
