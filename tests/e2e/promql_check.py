"""Check PromQL expressions against what a sidecar's `/metrics` exports.

The expressions are parsed with `promql-parser` (Prometheus's own grammar, in Rust), never
matched with regular expressions. `problems(expr, exported)` walks the syntax tree and
names each thing the sidecar does not export:

- a series name (`VectorSelector`) that is no sample name in the scrape (histograms are
  exported as `_bucket`, `_count` and `_sum`; counters as `_total`);
- a label in a selector's matchers that the series does not carry;
- a label in `by (...)` / `without (...)`, `on (...)` / `ignoring (...)` or
  `group_left (...)` carried by none of the series under that operator;
- a value of an enumerated label (`condition`, `state`, `window`, `result`) that the
  engine never writes, in `=`, `!=` or a `=~`/`!~` alternation of plain words;
- a `{{label}}` in a Grafana legend that none of the expression's series carries.

`up` (the scrape's own series) and the labels Prometheus adds to every scraped series
(`job`, `instance`) are allowed: they come from Prometheus, not from the sidecar.
Grafana's `$__rate_interval` is replaced by a duration before parsing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from engine.core.phases import OrderPhase
from engine.core.records import BudgetWindow
from engine.decide.plans import Condition

SCRAPE_SERIES = {"up": frozenset({"job", "instance"})}
SCRAPE_LABELS = frozenset({"job", "instance"})
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
VOCABULARY: Mapping[str, frozenset[str]] = {
    "condition": frozenset(str(c) for c in Condition),
    "state": frozenset(str(p) for p in OrderPhase),
    "window": frozenset(str(w) for w in BudgetWindow),
    "result": frozenset({"ok", "failed", "satisfied", "unsatisfied", "refused"}),
}
_WORDS = re.compile(r"[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*")
_LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

Exported = dict[str, frozenset[str]]


def exported(text: str) -> Exported:
    """Sample name -> the label names its samples carry, from a Prometheus text scrape."""
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(names) for name, names in labels.items()}


def parse(expr: str) -> Any:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return promql_parser.parse(expr)


def _selectors(node: Any) -> list[Any]:
    found: list[Any] = []

    def visit(n: Any) -> None:
        if isinstance(n, promql_parser.VectorSelector):
            found.append(n)

    promql_parser.walk(node, visit)
    return found


def _carried(selectors: Iterable[Any], known: Exported) -> frozenset[str]:
    out: set[str] = set()
    for s in selectors:
        out |= known.get(s.name, frozenset()) | SCRAPE_LABELS
    return frozenset(out)


def _values(matcher: Any) -> list[str] | None:
    op = matcher.op
    if op in (promql_parser.MatchOp.Equal, promql_parser.MatchOp.NotEqual):
        return [str(matcher.value)]
    if _WORDS.fullmatch(matcher.value):
        return str(matcher.value).split("|")
    return None  # a real pattern: not checked word by word


def problems(expr: str, exporting: Exported, legend: str = "") -> list[str]:
    """What in `expr` (and its Grafana `legend`) the scrape `exporting` does not have."""
    known: Exported = {**SCRAPE_SERIES, **exporting}
    tree = parse(expr)
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name not in known:
                found.append(f"series {node.name!r} is not exported")
                return
            for m in node.matchers.matchers:
                if m.name not in known[node.name] | SCRAPE_LABELS:
                    found.append(f"{node.name} has no label {m.name!r}")
                words = _values(m) if m.name in VOCABULARY else None
                for word in words or ():
                    if word not in VOCABULARY[m.name]:
                        found.append(f"{m.name}={word!r} is never written")
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            carried = _carried(_selectors(node.expr), known)
            how = str(node.modifier.type).rsplit(".", 1)[-1].lower()
            found.extend(
                f"{how} ({label}): no series under it has it"
                for label in node.modifier.labels
                if label not in carried
            )
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            mod = node.modifier
            carried = _carried(_selectors(node.lhs) + _selectors(node.rhs), known)
            labels = list(mod.matching.labels if mod.matching is not None else [])
            labels += list(mod.group_labels or [])
            found.extend(f"on/group ({x}): neither side has it" for x in labels if x not in carried)

    promql_parser.walk(tree, visit)
    carried = _carried(_selectors(tree), known)
    found.extend(
        f"legend {{{{{x}}}}}: no series has it" for x in _LEGEND.findall(legend) if x not in carried
    )
    return found


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, expression, legend) of every Prometheus target, rows included."""
    out: list[tuple[str, str, str]] = []
    for panel in dashboard.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            out.extend(
                (inner.get("title", ""), t["expr"], t.get("legendFormat", ""))
                for t in inner.get("targets", [])
                if "expr" in t
            )
    return out


def rule_queries(rules: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(alert or record name, expression) of every rule in a Prometheus rules file."""
    return [
        (rule.get("alert") or rule.get("record", ""), rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]
