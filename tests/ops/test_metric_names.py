"""Every metric the alert rules and the Grafana dashboard query is one the services export.

A renamed metric or label otherwise turns an alert silently into one that can never fire
and a panel into "No data". The exported names come from the services' own metric classes
(tests/ops/deployfiles.py); the queries are read roughly, with regular expressions.
"""

from __future__ import annotations

import re

import pytest

from tests.ops.deployfiles import (
    DEPLOY,
    JOBS,
    RECORDED_RE,
    TARGET_LABELS,
    UP_RE,
    Exported,
    all_expressions,
    dashboard_expressions,
    exported_metrics,
    grouping_labels,
    load_yaml,
    metric_classes,
    metric_names,
    recorded_names,
    rule_expressions,
    selectors,
)

# Labels that exist only because a query makes them (label_replace) or that Prometheus adds.
MADE_BY_QUERIES = {"service"}
# Series Prometheus itself provides, usable next to the services' metrics.
PROMETHEUS_SERIES = {"up", "ALERTS"}


@pytest.fixture(scope="module")
def exported() -> dict[str, Exported]:
    return exported_metrics()


def test_every_service_has_a_metric_class() -> None:
    sources = [source for source, _ in metric_classes()]
    for service in ("ingest", "sla_monitor", "notifier"):
        assert any(source.startswith(f"services/{service}/") for source in sources), (
            f"no dataclass with a CollectorRegistry `registry` in services/{service}/metrics.py; "
            f"found: {sources}"
        )


def test_the_services_export_the_documented_core_metrics(exported: dict[str, Exported]) -> None:
    # A few names the operations guide and the alert runbooks are written around.
    for name in (
        "slawatch_ingest_events_accepted_total",
        "slawatch_sla_events_total",
        "slawatch_sla_at_risk_tickets",
        "slawatch_monitor_consumer_lag",
        "slawatch_ingest_request_seconds_bucket",
    ):
        assert name in exported, f"{name} is no longer exported"
    assert {"kind", "policy", "customer_tier"} <= exported["slawatch_sla_events_total"].labels


def test_rules_and_dashboard_query_something() -> None:
    rules = [expr for _, expr in rule_expressions()]
    panels = [expr for _, expr in dashboard_expressions()]
    assert len(rules) >= 10 and len(panels) >= 20
    assert all(metric_names(e) or UP_RE.search(e) or RECORDED_RE.search(e) for e in rules)


@pytest.mark.parametrize(("where", "expr"), all_expressions(), ids=lambda v: str(v)[:60])
def test_every_metric_used_is_exported(
    where: str, expr: str, exported: dict[str, Exported]
) -> None:
    used = metric_names(expr)
    unknown = sorted(name for name in used if name not in exported)
    assert not unknown, (
        f"{where} uses {unknown}, which no service exports. Exported: {sorted(exported)}"
    )


@pytest.mark.parametrize(("where", "expr"), all_expressions(), ids=lambda v: str(v)[:60])
def test_every_label_used_exists(where: str, expr: str, exported: dict[str, Exported]) -> None:
    used = {name for name in metric_names(expr) if name in exported}
    for name in used:
        for matchers in selectors(expr, name):
            unknown = set(matchers) - exported[name].labels - TARGET_LABELS
            assert not unknown, f"{where}: {name} has no label(s) {sorted(unknown)}"
    available = set(TARGET_LABELS) | MADE_BY_QUERIES
    for name in used:
        available |= exported[name].labels
    unknown = grouping_labels(expr) - available
    assert not unknown, f"{where}: groups by {sorted(unknown)}, which none of {sorted(used)} has"


@pytest.mark.parametrize(("where", "expr"), all_expressions(), ids=lambda v: str(v)[:60])
def test_recorded_series_used_are_recorded(where: str, expr: str) -> None:
    # A typo in a recorded name is not an error to Prometheus: the query just finds nothing.
    unknown = set(RECORDED_RE.findall(expr)) - recorded_names()
    assert not unknown, f"{where} uses {sorted(unknown)}, which no recording rule records"
    if where.startswith("panel") or where.startswith("variable"):
        assert not RECORDED_RE.findall(expr), (
            f"{where}: the dashboard queries raw metrics only, so it works without these rules"
        )


@pytest.mark.parametrize(("where", "expr"), all_expressions(), ids=lambda v: str(v)[:60])
def test_up_selectors_name_scraped_jobs(where: str, expr: str) -> None:
    scraped = {
        job["job_name"]
        for config in ("prometheus.yml", "prometheus-kubernetes.yml")
        for job in load_yaml(DEPLOY / "prometheus" / config)["scrape_configs"]
    }
    for body in UP_RE.findall(expr):
        jobs = re.findall(r"job\s*(=~|=)\s*\"([^\"]*)\"", body)
        assert jobs, f"{where}: `up` without a job matcher would count every target"
        for op, value in jobs:
            names = value.split("|") if op == "=~" else [value]
            assert set(names) <= scraped, f"{where}: job(s) {set(names) - scraped} are not scraped"
            assert set(names) <= set(JOBS.values()) | {"prometheus"}


def test_the_checker_catches_a_wrong_name(exported: dict[str, Exported]) -> None:
    # The regexes above must see through the syntax the rules use.
    expr = 'sum by (policy) (rate(slawatch_sla_event_total{kind="sla.breached"}[5m]))'
    assert metric_names(expr) - set(exported) == {"slawatch_sla_event_total"}
    assert metric_names("a:slawatch_x:rate5m / slawatch_y_total") == {"slawatch_y_total"}
    assert selectors(
        'rate(slawatch_sla_events_total{kynd="x", policy=~"a|b"}[5m])', "slawatch_sla_events_total"
    ) == [{"kynd": "x", "policy": "a|b"}]
    assert grouping_labels("sum by (a, b) (x) and on () y / ignoring(c) z") == {"a", "b", "c"}
    assert UP_RE.findall('up{job="a"} == 0 or group(up {job=~"b|c"})') == ['job="a"', 'job=~"b|c"']
    assert PROMETHEUS_SERIES.isdisjoint(exported)


def test_docs_metrics_lists_exactly_the_exported_metrics(exported: dict[str, Exported]) -> None:
    from pathlib import Path

    documented = set(re.findall(r"^\| `(slawatch_[a-z0-9_]+)` \|", Path("docs/metrics.md").read_text(), re.M))
    families = set()
    for name in exported:
        for suffix in ("_bucket", "_sum", "_count", "_created"):
            if name.endswith(suffix) and name.removesuffix(suffix) + "_bucket" in exported:
                name = name.removesuffix(suffix)
                break
        if name.endswith("_created"):
            continue
        families.add(name)
    assert families - documented == set(), "add these to docs/metrics.md"
    assert documented - families == set(), "docs/metrics.md lists metrics nobody exports"
