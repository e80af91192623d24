#!/usr/bin/env bash
# Prometheus and Alertmanager configuration checks for deploy/:
#   promtool check config   deploy/prometheus/prometheus.yml (and the rule files it names)
#   promtool check rules    deploy/prometheus/*-rules.yml
#   promtool test rules     deploy/prometheus/tests/*.yml   (every alert fires and stays quiet)
#   amtool check-config     deploy/alertmanager/alertmanager.yml
#   every PromQL query of deploy/grafana/slawatch-dashboard.json parses (promtool check rules
#   on a generated file that records each query, Grafana variables replaced by sample values)
# promtool and amtool come from Debian's `prometheus` and `prometheus-alertmanager` packages,
# installed here with apt-get when missing. A check that cannot run fails; nothing is skipped.
# (deploy/prometheus/prometheus-kubernetes.yml is not given to `promtool check config`:
# Debian builds Prometheus without Kubernetes service discovery. tests/ops checks its shape.)
set -euo pipefail
cd "$(dirname "$0")/.."

PROM_DIR=deploy/prometheus
AM_CONFIG=deploy/alertmanager/alertmanager.yml
DASHBOARD=deploy/grafana/slawatch-dashboard.json
PYTHON=${PYTHON:-python3}

fail() {
    echo "promtool.sh: $*" >&2
    exit 1
}

# Install Debian packages without starting their daemons (a CI machine needs the tools only).
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || fail "need root or sudo to apt-get install $*"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || fail "apt-get not found; install $* by hand"
    local guard=/usr/sbin/policy-rc.d added_guard=0
    if [ ! -e "$guard" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$guard" >/dev/null
        "${sudo[@]}" chmod +x "$guard"
        added_guard=1
    fi
    local status=0
    {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends "$@" >/dev/null
    } || status=$?
    if [ "$added_guard" -eq 1 ]; then
        "${sudo[@]}" rm -f "$guard"
    fi
    [ "$status" -eq 0 ] || fail "apt-get install $* failed (exit $status)"
}

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "promtool.sh: installing ${missing[*]} with apt-get"
    apt_install "${missing[@]}"
fi
command -v promtool >/dev/null || fail "promtool still missing after installing prometheus"
command -v amtool >/dev/null || fail "amtool still missing after installing prometheus-alertmanager"

shopt -s nullglob
rules=("$PROM_DIR"/*-rules.yml)
tests=("$PROM_DIR"/tests/*.yml)
shopt -u nullglob
[ "${#rules[@]}" -gt 0 ] || fail "no rule files $PROM_DIR/*-rules.yml"
[ "${#tests[@]}" -gt 0 ] || fail "no rule tests $PROM_DIR/tests/*.yml"
[ -f "$PROM_DIR/prometheus.yml" ] || fail "no $PROM_DIR/prometheus.yml"
[ -f "$AM_CONFIG" ] || fail "no $AM_CONFIG"
[ -f "$DASHBOARD" ] || fail "no $DASHBOARD"
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found (needed to read $DASHBOARD)"

echo "promtool.sh: $(promtool --version 2>&1 | head -n 1)"
promtool check config "$PROM_DIR/prometheus.yml"
promtool check rules "${rules[@]}"
promtool test rules "${tests[@]}"
amtool check-config "$AM_CONFIG"

# The dashboard's queries as recording rules (JSON is YAML), so promtool parses each one.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - "$DASHBOARD" >"$tmp/dashboard-queries.yml" <<'PY'
import json
import re
import sys

SAMPLE = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "policy": ".*", "customer_tier": ".*"}


def substitute(expr):
    def value(match):
        name = match.group(1) or match.group(2)
        if name not in SAMPLE:
            sys.exit(f"promtool.sh: unknown Grafana variable ${name} in: {expr}")
        return SAMPLE[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def panels(items):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


rules = []
for panel in panels(json.load(open(sys.argv[1]))["panels"]):
    for target in panel.get("targets", []):
        if target.get("expr"):
            record = f"dashboard:panel_{panel['id']}_{target['refId']}"
            rules.append({"record": record, "expr": substitute(target["expr"])})
if not rules:
    sys.exit("promtool.sh: no queries found in the dashboard")
print(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}, indent=1))
PY
echo "Checking the queries of $DASHBOARD"
promtool check rules "$tmp/dashboard-queries.yml"
echo "promtool.sh: all Prometheus and Alertmanager checks passed"
