"""Readers for the files under deploy/ and for what the services export, shared by tests/ops.

The metric names come from the services themselves: every dataclass in
``services/*/metrics.py`` with a ``registry`` field (a prometheus_client CollectorRegistry)
is instantiated and its registry walked, so a renamed metric shows up here at once.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "slawatch-rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests"
DASHBOARD = DEPLOY / "grafana" / "slawatch-dashboard.json"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
OPERATIONS = ROOT / "docs" / "operations.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"

# The scrape job of each service, as the rules, the dashboard and the scrape configs name it.
JOBS = {
    "ingest": "slawatch-ingest",
    "monitor": "slawatch-monitor",
    "notifier": "slawatch-notifier",
    "console": "slawatch-console",
}
PORTS = {"ingest": 8080, "monitor": 8081, "notifier": 8082, "console": 8083}

METRIC_RE = re.compile(r"\bslawatch_[a-z0-9_]+")
# `up{...}` selectors; the job matcher inside is checked against the scrape configs.
UP_RE = re.compile(r"(?<![A-Za-z0-9_:])up\s*\{([^}]*)\}")
# Labels every scraped series gets from Prometheus itself.
TARGET_LABELS = {"job", "instance", "pod"}


@dataclass(frozen=True)
class Exported:
    """One series name a service exposes, with the labels it carries."""

    name: str
    labels: frozenset[str]
    source: str  # "services/ingest/metrics.py: IngestMetrics"


def metric_classes() -> list[tuple[str, type]]:
    """Every dataclass in services/*/metrics.py that owns a CollectorRegistry field."""
    found = []
    for path in sorted((ROOT / "services").glob("*/metrics.py")):
        module = importlib.import_module(f"services.{path.parent.name}.metrics")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
                and any(f.name == "registry" for f in dataclasses.fields(value))
            ):
                found.append((f"{path.relative_to(ROOT)}: {value.__name__}", value))
    return found


def _series_names(name: str, kind: str) -> list[str]:
    """What prometheus_client puts on the wire for one metric family."""
    if kind == "counter":
        return [f"{name}_total", f"{name}_created"]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"]
    if kind == "summary":
        return [name, f"{name}_sum", f"{name}_count", f"{name}_created"]
    if kind == "info":
        return [f"{name}_info"]
    return [name]  # gauge, stateset, enum, unknown


def exported_metrics() -> dict[str, Exported]:
    """Series name -> what exports it, from the services' own metric classes."""
    out: dict[str, Exported] = {}
    for source, cls in metric_classes():
        instance = cls()
        registry = instance.registry
        assert isinstance(registry, CollectorRegistry), (
            f"{source}: registry is not a CollectorRegistry"
        )
        labels_of = {
            wrapper._name: frozenset(wrapper._labelnames)
            for wrapper in vars(instance).values()
            if isinstance(wrapper, MetricWrapperBase)
        }
        for family in registry.collect():
            labels = labels_of.get(family.name, frozenset())
            for series in _series_names(family.name, family.type):
                extra = {"le"} if series.endswith("_bucket") else set()
                out[series] = Exported(series, labels | extra, source)
    return out


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in load_yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule
    ]


def recorded_names() -> set[str]:
    """Series the rule file records itself (level:metric:operation names)."""
    return {
        rule["record"]
        for group in load_yaml(RULES)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


RECORDED_RE = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+")


def metric_names(expr: str) -> set[str]:
    """The services' metric names an expression uses (recorded series left out)."""
    return set(METRIC_RE.findall(RECORDED_RE.sub(" ", expr)))


def rule_expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every rule."""
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_panels(panels: list[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"] if panels is None else panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel query and every query variable."""
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield (
                f"variable ${variable['name']}",
                query["query"] if isinstance(query, dict) else query,
            )


def all_expressions() -> list[tuple[str, str]]:
    return [*rule_expressions(), *dashboard_expressions()]


def selectors(expr: str, metric: str) -> list[dict[str, str]]:
    """Label matchers of each `metric{...}` selector in expr, roughly: name -> value."""
    out = []
    for match in re.finditer(rf"\b{re.escape(metric)}\b(\s*\{{([^}}]*)\}})?", expr):
        body = match.group(2) or ""
        out.append(
            dict(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"([^\"]*)\"", body))
        )
    return out


def grouping_labels(expr: str) -> set[str]:
    """Labels named in `by (...)`, `without (...)`, `on (...)` and `ignoring (...)` clauses."""
    labels: set[str] = set()
    for body in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels.update(part.strip() for part in body.split(",") if part.strip())
    return labels


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def operations_anchors() -> set[str]:
    headings = re.findall(
        r"^#{1,6}\s+(.+?)\s*#*\s*$", OPERATIONS.read_text(encoding="utf-8"), flags=re.M
    )
    return {github_anchor(h) for h in headings}


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend((path, doc) for doc in load_yaml_all(path))
    return docs


def documented_variables() -> set[str]:
    text = CONFIGURATION.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(SLAWATCH_[A-Z0-9_]+)` \|", text, flags=re.M))
