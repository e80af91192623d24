"""deploy/: every file parses, and the pieces agree with each other and with the code.

No Docker engine or cluster runs here, so these tests hold the deployment files to what
can be checked without one: shapes, names, ports, probes, settings and cross-references.
(`bash .ci/promtool.sh` checks the Prometheus and Alertmanager files with their own tools.)
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from slawatch.services.cli import available
from slawatch.shared.auth import ApiKeys
from slawatch.shared.settings import CommonSettings, load_settings
from tests.ops.deployfiles import (
    COMPOSE,
    DASHBOARD,
    DEPLOY,
    JOBS,
    K8S,
    OPERATIONS,
    PORTS,
    ROOT,
    RULE_TESTS,
    alert_rules,
    dashboard,
    dashboard_expressions,
    dashboard_panels,
    documented_variables,
    github_anchor,
    k8s_documents,
    load_yaml,
    load_yaml_all,
    operations_anchors,
)

SERVICES = tuple(JOBS)
YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))
JSON_FILES = sorted(DEPLOY.rglob("*.json"))
IMAGE_UID = 10001  # deploy/Dockerfile's user


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ------------------------------------------------------------------ every file parses


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_yaml_file_parses(path: Path) -> None:
    assert load_yaml_all(path), f"{rel(path)} is empty"


@pytest.mark.parametrize("path", JSON_FILES, ids=rel)
def test_json_file_parses(path: Path) -> None:
    assert json.loads(path.read_text(encoding="utf-8"))


def test_the_deploy_tree_is_complete() -> None:
    expected = [
        "Dockerfile",
        "docker-compose.yml",
        "prometheus/slawatch-rules.yml",
        "prometheus/prometheus.yml",
        "prometheus/prometheus-kubernetes.yml",
        "alertmanager/alertmanager.yml",
        "grafana/slawatch-dashboard.json",
        "grafana/provisioning/datasources/prometheus.yml",
        "grafana/provisioning/dashboards/slawatch.yml",
        "k8s/kustomization.yaml",
    ]
    missing = [name for name in expected if not (DEPLOY / name).is_file()]
    assert not missing
    assert len(list(RULE_TESTS.glob("*.yml"))) >= 4


def test_a_broken_file_would_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(yaml.YAMLError):
        load_yaml_all(bad)


# ------------------------------------------------------------------ Kubernetes


def k8s(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == kind}


def pod_spec(name: str) -> dict[str, Any]:
    return k8s("Deployment")[f"slawatch-{name}"]["spec"]["template"]["spec"]


def container(name: str) -> dict[str, Any]:
    containers = pod_spec(name)["containers"]
    assert len(containers) == 1
    return containers[0]


def container_env(c: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in c.get("env", [])}


def test_k8s_manifests_have_the_required_kinds() -> None:
    kinds = Counter(doc["kind"] for _, doc in k8s_documents())
    required = {
        "Namespace": 1,
        "ConfigMap": 2,
        "Secret": 1,
        "Deployment": 3,
        "Service": 3,
        "PodDisruptionBudget": 3,
        "Job": 1,
        "HorizontalPodAutoscaler": 1,
    }
    short = {kind: count for kind, count in required.items() if kinds[kind] < count}
    assert not short, f"missing manifests: {short} (have {dict(kinds)})"
    names = {f"slawatch-{s}" for s in SERVICES}
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        assert set(k8s(kind)) == names, kind
    hpa = k8s("HorizontalPodAutoscaler")
    assert [h["spec"]["scaleTargetRef"]["name"] for h in hpa.values()] == ["slawatch-ingest"]
    assert set(k8s("Secret")) == {"slawatch-secrets"}
    assert set(k8s("Job")) == {"slawatch-migrate"}


def test_k8s_everything_lives_in_one_namespace() -> None:
    (namespace,) = k8s("Namespace")
    for path, doc in k8s_documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, f"{rel(path)} {doc['kind']}"
    assert load_yaml(K8S / "kustomization.yaml")["namespace"] == namespace


def test_kustomization_lists_every_manifest_but_the_secret_example_and_the_job() -> None:
    listed = load_yaml(K8S / "kustomization.yaml")["resources"]
    files = {p.name for p in K8S.glob("*.yaml")} - {
        "kustomization.yaml",
        "secret.example.yaml",
        "migrate-job.yaml",
    }
    assert sorted(listed) == sorted(files)


def test_the_secret_example_holds_no_secret() -> None:
    secret = k8s("Secret")["slawatch-secrets"]
    assert "data" not in secret, "base64 data in the example looks like a real secret"
    for key, value in secret["stringData"].items():
        assert "REPLACE" in value, f"{key} must be an obvious placeholder"


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_grace_period_covers_the_graceful_stop(service: str) -> None:
    """Kubernetes kills (SIGKILL) a pod that has not exited terminationGracePeriodSeconds
    after the preStop hook began: the service's own shutdown budget must fit inside."""
    env = k8s("ConfigMap")["slawatch-env"]["data"]
    env = {**env, **container_env(container(service))}
    budget = float(env.get("SLAWATCH_SHUTDOWN_TIMEOUT_S", "20"))
    c = container(service)
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    sleep_s = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
    grace = pod_spec(service).get("terminationGracePeriodSeconds", 30)
    assert budget + sleep_s + 5 <= grace, (service, budget, sleep_s, grace)


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_deployment_is_wired(service: str) -> None:
    deployment = k8s("Deployment")[f"slawatch-{service}"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    c = container(service)
    assert c["args"] == [service]
    assert c["image"].split(":")[0] == "slawatch"
    (port,) = c["ports"]
    assert port == {"name": "http", "containerPort": PORTS[service]}
    env = container_env(c)
    assert env[f"SLAWATCH_{service.upper()}_HOST"] == "0.0.0.0"
    assert env[f"SLAWATCH_{service.upper()}_PORT"] == str(PORTS[service])
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    refs = {next(iter(ref)): next(iter(ref.values()))["name"] for ref in c["envFrom"]}
    assert refs == {"configMapRef": "slawatch-env", "secretRef": "slawatch-secrets"}
    assert "slawatch-env" in k8s("ConfigMap")
    # Non-root, as the image's user, with nothing to escalate to.
    spec = pod_spec(service)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == IMAGE_UID
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    if c["securityContext"].get("readOnlyRootFilesystem"):
        assert mounts.get("tmp") == "/tmp", "a read-only root needs a writable /tmp"
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    assert set(mounts) == set(volumes)
    for volume in volumes.values():
        if "configMap" in volume:
            assert volume["configMap"]["name"] in k8s("ConfigMap")
    # The Service and the PodDisruptionBudget select these pods.
    svc = k8s("Service")[f"slawatch-{service}"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["ports"] == [{"name": "http", "port": PORTS[service], "targetPort": "http"}]
    pdb = k8s("PodDisruptionBudget")[f"slawatch-{service}"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])


def test_policy_and_routes_files_are_mounted_where_the_settings_point() -> None:
    env = k8s("ConfigMap")["slawatch-env"]["data"]
    files = k8s("ConfigMap")["slawatch-files"]["data"]
    for service in ("monitor", "notifier"):
        mounts = {m["name"]: m["mountPath"] for m in container(service)["volumeMounts"]}
        for variable in ("SLAWATCH_POLICY_FILE", "SLAWATCH_ROUTES_FILE"):
            path = Path(env[variable])
            assert str(path.parent) == mounts["files"], (service, variable)
            assert path.name in files


def test_k8s_scrape_config_finds_each_service() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus-kubernetes.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(JOBS.values())
    for service, job_name in JOBS.items():
        svc = k8s("Service")[f"slawatch-{service}"]
        keeps = {
            tuple(r["source_labels"]): r["regex"]
            for r in jobs[job_name]["relabel_configs"]
            if r.get("action") == "keep"
        }
        labels = svc["metadata"]["labels"]
        assert (
            keeps[("__meta_kubernetes_service_label_app_kubernetes_io_name",)]
            == labels["app.kubernetes.io/name"]
        )
        assert (
            keeps[("__meta_kubernetes_service_label_app_kubernetes_io_part_of",)]
            == labels["app.kubernetes.io/part-of"]
        )
        assert keeps[("__meta_kubernetes_endpoint_port_name",)] == svc["spec"]["ports"][0]["name"]


def test_monitor_replicas_stay_within_the_partition_count() -> None:
    partitions = int(k8s("ConfigMap")["slawatch-env"]["data"]["SLAWATCH_EVENTS_PARTITIONS"])
    monitor = k8s("Deployment")["slawatch-monitor"]["spec"]
    assert 1 <= monitor["replicas"] <= partitions
    # A rollout must not add a replica beyond the partitions either.
    assert monitor["strategy"]["rollingUpdate"]["maxSurge"] == 0
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in k8s("HorizontalPodAutoscaler").values()}
    assert "slawatch-monitor" not in targets


def test_shipped_policy_and_routes_files_load() -> None:
    from slawatch.services.notifier.config import parse_routes
    from slawatch.shared.engine.policy import load_policies

    files = k8s("ConfigMap")["slawatch-files"]["data"]
    policies = load_policies("k8s policies.yaml", text=files["policies.yaml"])
    assert policies.policies
    secrets = k8s("Secret")["slawatch-secrets"]["stringData"]
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)\}", files["routes.yaml"]))
    assert referenced <= set(secrets), "routes.yaml refers to variables the Secret lacks"
    env = {name: "https://chat.example.com/hook" for name in referenced}
    routes = parse_routes(
        files["routes.yaml"], "k8s routes.yaml", env, calendars=set(policies.calendars)
    )
    assert routes.receivers


def test_compose_policy_and_routes_files_load() -> None:
    from slawatch.services.notifier.config import load_routes
    from slawatch.shared.engine.policy import load_policies

    env = compose()["notifier"]["environment"]
    # The image has examples/ at /app/examples (deploy/Dockerfile); routes are mounted.
    assert env["SLAWATCH_POLICY_FILE"] == "/app/examples/policies.yaml"
    policies = load_policies(ROOT / "examples" / "policies.yaml")
    mounts = dict(v.split(":")[:2] for v in compose()["notifier"]["volumes"])
    (source,) = [src for src, target in mounts.items() if target == env["SLAWATCH_ROUTES_FILE"]]
    routes = load_routes(DEPLOY / source, {}, calendars=set(policies.calendars))
    kinds = {i.type for r in routes.receivers.values() for i in r.integrations}
    assert kinds == {"console"}, "the compose stack sends nothing off the machine"


def test_migration_job_runs_the_compose_setup_command() -> None:
    job = k8s("Job")["slawatch-migrate"]["spec"]["template"]["spec"]
    (c,) = job["containers"]
    compose = load_yaml(COMPOSE)["services"]["setup"]
    assert c["command"] == compose["entrypoint"] == ["sh", "-c"]
    assert c["args"] == compose["command"]
    assert job["restartPolicy"] == "Never"
    assert job["securityContext"]["runAsUser"] == IMAGE_UID


# ------------------------------------------------------------------ settings


def settings_class(service: str | None) -> type[CommonSettings]:
    """The settings class a service reads: the subclass with a `<service>_port` field."""
    if service is None:
        return CommonSettings
    for module in (
        "slawatch.shared.settings",
        *(f"services.{s}.settings" for s in ("sla_monitor", service)),
    ):
        if available(module):
            importlib.import_module(module)
    todo, found = [CommonSettings], []
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if f"{service}_port" in cls.model_fields:
            found.append(cls)
    assert found, f"no settings class has a `{service}_port` field"
    return found[0]


def compose_value(value: str) -> str:
    """A value as docker compose sees it with nothing set: `${VAR:-default}` -> default."""

    def default(match: re.Match[str]) -> str:
        assert match.group(2) is not None, f"{match.group(0)} has no default"
        return match.group(2)

    return re.sub(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}", default, value)


def deploy_environments() -> list[tuple[str, str | None, dict[str, str]]]:
    """(where, service or None for the setup job, environment) for each process deployed."""
    out = []
    compose = load_yaml(COMPOSE)["services"]
    for name, svc in compose.items():
        if str(svc.get("image", "")).startswith("slawatch"):
            env = {k: compose_value(str(v)) for k, v in svc["environment"].items()}
            out.append((f"compose {name}", name if name in SERVICES else None, env))
    shared_env = dict(k8s("ConfigMap")["slawatch-env"]["data"])
    shared_env |= k8s("Secret")["slawatch-secrets"]["stringData"]
    for service in SERVICES:
        out.append((f"k8s {service}", service, shared_env | container_env(container(service))))
    out.append(("k8s migrate job", None, shared_env))
    return out


ENVIRONMENTS = deploy_environments()


def test_every_slawatch_variable_deployed_is_documented() -> None:
    documented = documented_variables()
    used = {name for _, _, env in ENVIRONMENTS for name in env if name.startswith("SLAWATCH_")}
    assert used, "no SLAWATCH_ variable found in deploy/"
    assert used - documented == set(), "not in docs/configuration.md (a typo?)"


@pytest.mark.parametrize(
    ("where", "service", "env"), ENVIRONMENTS, ids=[e[0] for e in ENVIRONMENTS]
)
def test_settings_accept_the_deployed_environment(
    where: str, service: str | None, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("SLAWATCH_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(settings_class(service))  # exits 2 on a bad value
    assert settings.env == "prod"
    assert settings.kafka_bootstrap and settings.database_url
    if service is not None:
        assert getattr(settings, f"{service}_port") == PORTS[service]
        assert getattr(settings, f"{service}_host") == "0.0.0.0"
    if where.startswith("compose") and service == "ingest":
        assert ApiKeys.parse(env["SLAWATCH_INGEST_API_KEYS"])


# ------------------------------------------------------------------ docker compose


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)["services"]


def test_compose_runs_the_whole_stack() -> None:
    services = compose()
    wanted = {"kafka", "postgres", "setup", *SERVICES, "prometheus", "alertmanager", "grafana"}
    assert wanted <= set(services)
    assert not any("zookeeper" in name for name in services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    setup = services["setup"]
    assert "slawatch db upgrade" in setup["command"][0] and "slawatch topics create" in setup["command"][0]
    assert setup["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert setup["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    for service in SERVICES:
        svc = services[service]
        assert svc["command"] == [service]
        assert svc["image"] == setup["image"]
        assert svc["depends_on"] == {"setup": {"condition": "service_completed_successfully"}}
        assert f"{PORTS[service]}:{PORTS[service]}" in svc["ports"][0]
        assert f"127.0.0.1:{PORTS[service]}/healthz" in " ".join(svc["healthcheck"]["test"])


def test_compose_services_reach_kafka_and_postgres() -> None:
    services = compose()
    kafka_env = services["kafka"]["environment"]
    advertised = dict(
        item.split("://") for item in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    postgres = services["postgres"]["environment"]
    env = services["ingest"]["environment"]
    assert (
        env["SLAWATCH_KAFKA_BOOTSTRAP"] == advertised[kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    )
    url = env["SLAWATCH_DATABASE_URL"]
    user, password, db = (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert url == f"postgresql://{user}:{password}@postgres:5432/{db}"


def test_compose_prometheus_scrapes_the_compose_services() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    for service, job in JOBS.items():
        assert targets[job] == [f"{service}:{PORTS[service]}"]
        assert service in compose()
    (am,) = config["alerting"]["alertmanagers"]
    assert am["static_configs"][0]["targets"] == ["alertmanager:9093"]
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file()


def test_compose_mounts_exist_and_match_the_provisioning() -> None:
    for name, svc in compose().items():
        for volume in svc.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    grafana = compose()["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    dashboard_target = Path(mounts["./grafana/slawatch-dashboard.json"])
    provider = load_yaml(DEPLOY / "grafana/provisioning/dashboards/slawatch.yml")["providers"][0]
    assert str(dashboard_target.parent) == provider["options"]["path"]
    datasource = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


# ------------------------------------------------------------------ Dockerfile


def test_dockerfile_builds_a_non_root_slawatch_image() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.findall(r"^FROM (\S+)", text, flags=re.M) == ["python:3.11-slim", "python:3.11-slim"]
    uv_pin = re.search(r"uv==([0-9.]+)", (ROOT / "Makefile").read_text(encoding="utf-8"))
    assert uv_pin and f"uv=={uv_pin.group(1)}" in text, "use the uv version the Makefile pins"
    assert "uv sync --locked --no-dev" in text
    assert re.search(rf"^USER {IMAGE_UID}:{IMAGE_UID}$", text, flags=re.M)
    assert re.search(r'^ENTRYPOINT \["slawatch"\]$', text, flags=re.M)
    for source in re.findall(r"^COPY (?!--)(.+) \S+$", text, flags=re.M):
        for part in source.split():
            assert (ROOT / part).exists(), f"the Dockerfile copies {part}, which does not exist"


# ------------------------------------------------------------------ alerts and runbooks


def rule_tests() -> list[dict[str, Any]]:
    return [test for path in sorted(RULE_TESTS.glob("*.yml")) for test in load_yaml(path)["tests"]]


def test_alert_names_are_unique() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)) >= 15


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_is_labelled_and_annotated(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert "service" in rule["labels"] or "label_replace" in rule["expr"]
    annotations = rule["annotations"]
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    page, _, anchor = annotations["runbook_url"].partition("#")
    assert page == "docs/operations.md"
    assert anchor == rule["alert"].lower(), "anchor = the alert name's section"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_a_runbook_section(rule: dict[str, Any]) -> None:
    assert OPERATIONS.is_file(), "docs/operations.md is missing"
    anchor = rule["annotations"]["runbook_url"].partition("#")[2]
    assert anchor in operations_anchors(), f"no heading `{rule['alert']}` in docs/operations.md"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_a_firing_and_a_quiet_promtool_case(rule: dict[str, Any]) -> None:
    cases = [
        case
        for test in rule_tests()
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == rule["alert"]
    ]
    assert any(case.get("exp_alerts") for case in cases), "no case where it fires"
    assert any(not case.get("exp_alerts") for case in cases), "no case where it stays quiet"


def test_runbook_anchor_rule_matches_github() -> None:
    assert github_anchor("SlawatchServiceDown") == "slawatchservicedown"
    assert (
        github_anchor("Scaling the monitor (and the notifier)")
        == "scaling-the-monitor-and-the-notifier"
    )


# ------------------------------------------------------------------ dashboard


def test_dashboard_is_a_provisionable_grafana_dashboard() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    panels = list(dashboard_panels())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in board["templating"]["list"]}
    assert "datasource" in variables
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
        for target in panel.get("targets", []):
            for name in re.findall(r"\$(\w+)", target["expr"]):
                assert name.startswith("__") or name in variables, f"{panel['title']}: ${name}"


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = " ".join(expr for _, expr in dashboard_expressions())
    titles = " ".join(p["title"].lower() for p in dashboard_panels())
    for needle in (
        "slawatch_ingest_events_accepted_total",
        "sum by (kind) (rate(slawatch_sla_events_total",
        "slawatch_sla_at_risk_tickets",
        'sum by (customer_tier) (rate(slawatch_sla_events_total{kind="sla.breached"',
        'sum by (policy) (rate(slawatch_sla_events_total{kind="sla.breached"',
        "slawatch_monitor_consumer_lag",
        "slawatch_notifier_failed_total",
    ):
        assert needle in exprs, needle
    assert exprs.count("histogram_quantile") >= 10, "latency percentiles from the histograms"
    assert "latency" in titles and "lag" in titles
    assert "slawatch-dashboard.json" in DASHBOARD.name


def test_operations_guide_links_resolve() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    anchors = operations_anchors()
    broken = sorted(set(re.findall(r"\]\(#([^)]+)\)", text)) - anchors)
    assert not broken, f"links to missing sections of docs/operations.md: {broken}"
    for target in re.findall(r"\]\(([^)#:]+\.md)", text):
        assert (OPERATIONS.parent / target).is_file(), (
            f"docs/operations.md links to missing {target}"
        )
