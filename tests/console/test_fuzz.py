"""A fuzz pass over the monitor's and the notifier's OpenAPI documents (schemathesis), with
a valid admin key, against the real processes of the console's test stack: whatever the
input, no endpoint answers 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from services.notifier.app import create_app as create_notifier
from services.notifier.config import parse_routes
from services.notifier.settings import NotifierSettings
from services.sla_monitor import engine_port
from services.sla_monitor.app import create_app as create_monitor
from services.sla_monitor.settings import MonitorSettings
from tests.console.stack import TOKENS
from tests.monitor.harness import FAST_POLICIES

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {TOKENS['admin']}"}
ROUTES = "version: 1\nreceivers: [{name: log, integrations: [{type: console}]}]\nroutes: [{receiver: log}]\n"

MONITOR = schemathesis.openapi.from_dict(
    create_monitor(MonitorSettings(), engine_port.load_policies(FAST_POLICIES)).openapi()
)
NOTIFIER = schemathesis.openapi.from_dict(
    create_notifier(NotifierSettings(), parse_routes(ROUTES, "routes.yaml", {}), {}, None).openapi()
)
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


@MONITOR.parametrize()
@FUZZ
def test_monitor_api_never_answers_5xx(case, stack) -> None:
    case.call_and_validate(base_url=stack.url("monitor"), headers=AUTH, checks=[not_a_server_error])


@NOTIFIER.parametrize()
@FUZZ
def test_notifier_api_never_answers_5xx(case, stack) -> None:
    case.call_and_validate(base_url=stack.url("notifier"), headers=AUTH, checks=[not_a_server_error])
