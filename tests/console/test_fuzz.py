"""A fuzz pass over the monitor's and the notifier's OpenAPI documents (schemathesis), with
a valid admin key, and over the console's pages and forms (hypothesis), against the real
processes of the console's test stack: whatever the input, no endpoint answers 5xx."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from slawatch.services.notifier.app import create_app as create_notifier
from slawatch.services.notifier.config import parse_routes
from slawatch.services.notifier.settings import NotifierSettings
from slawatch.services.sla_monitor import engine_port
from slawatch.services.sla_monitor.app import create_app as create_monitor
from slawatch.services.sla_monitor.settings import MonitorSettings
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
    case.call_and_validate(
        base_url=stack.url("notifier"), headers=AUTH, checks=[not_a_server_error]
    )


# The console's pages and forms, with arbitrary parameters: never a 5xx (a refused value
# is a 4xx page naming it; a service's refusal is passed on as its 4xx).
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=300)
PAGES = {
    "/": (
        "state",
        "within",
        "policy",
        "customer_tier",
        "priority",
        "channel",
        "group",
        "assignee",
        "page",
    ),
    "/board": ("state", "within", "group", "page"),
    "/reports": ("from", "to", "group_by", "bucket", "tz"),
    "/reports.csv": ("from", "to", "group_by", "bucket", "tz"),
    "/notifications": ("status", "receiver", "ticket_id", "page"),
    "/silences": ("state",),
    "/prefs": ("lang", "tz", "next"),
}
FORMS = {
    "/tickets/CF-1/silence": ("duration", "comment"),
    "/tickets/CF-1/acknowledge": ("target", "cycle", "comment", "next"),
    "/silences": ("field0", "value0", "field1", "value1", "duration", "comment"),
}


@st.composite
def page_request(draw):
    path = draw(st.sampled_from(sorted(PAGES)))
    names = draw(st.lists(st.sampled_from(PAGES[path]), unique=True))
    return path, {name: draw(TEXT) for name in names}


@st.composite
def form_request(draw):
    path = draw(st.sampled_from(sorted(FORMS)))
    names = draw(st.lists(st.sampled_from(FORMS[path]), unique=True))
    return path, {name: draw(TEXT) for name in names}


@FUZZ
@given(request=page_request())
def test_console_pages_never_answer_5xx(stack, request) -> None:
    path, params = request
    headers = {"Authorization": f"Bearer {TOKENS['viewer']}"}
    answer = httpx.get(stack.console + path, params=params, headers=headers, timeout=30)
    assert answer.status_code < 500, (path, params, answer.text[:500])


@FUZZ
@given(
    request=form_request(), ticket=TEXT.filter(lambda t: "/" not in t and t not in ("", ".", ".."))
)
def test_console_forms_never_answer_5xx(stack, request, ticket) -> None:
    path, form = request
    path = path.replace("CF-1", ticket) if ticket.strip() else path
    headers = {"Authorization": f"Bearer {TOKENS['operator']}"}
    answer = httpx.post(
        stack.console + quote(path, safe="/"), data=form, headers=headers, timeout=30
    )
    assert answer.status_code < 500, (path, form, answer.text[:500])
