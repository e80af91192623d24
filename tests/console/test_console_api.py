"""The console over HTTP on the real stack (no browser): login and sessions, every page
and action for each role (303 to the login page without a session, 403 for too small a
role, CSRF required for cookie sessions), state changes logged with the key's name, and
no key, token or cookie in any log.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from slawatch.services.console.sessions import COOKIE, Sessions
from slawatch.shared.auth import ApiKeys
from tests.console.stack import NAMES, TOKENS, created, eventually

pytestmark = pytest.mark.integration

PAGES = ["/", "/board", "/reports", "/reports.csv", "/silences", "/notifications", "/tickets/CA-1"]
# action -> (path, form, role it needs)
ACTIONS = {
    "silence ticket": ("/tickets/CA-1/silence", {"duration": "1h", "comment": "api test"}),
    "acknowledge": ("/tickets/CA-1/acknowledge", {"target": "first_response", "cycle": "0"}),
    "new silence": ("/silences", {"field0": "group", "value0": "console-api", "duration": "1h"}),
}


def first_group(pattern: str, text: str) -> str:
    """The first group of `pattern` in a page; a page without it fails the test."""
    match = re.search(pattern, text)
    assert match is not None, (pattern, text[:500])
    return match.group(1)


async def login(client: httpx.AsyncClient, role: str) -> str:
    response = await client.post("/login", data={"key": TOKENS[role], "next": "/"})
    assert response.status_code == 303, response.text
    page = await client.get("/silences")
    return first_group(r'name="csrf_token" value="([^"]+)"', page.text)


async def test_login_sessions_and_roles(stack) -> None:
    await stack.post(created("CA-1", customer_tier="silver", group="console-api"))
    async with httpx.AsyncClient(base_url=stack.console, timeout=10) as anonymous:
        for path in PAGES:
            response = await anonymous.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=")
        page = await anonymous.get("/login")
        assert page.status_code == 200 and 'name="key"' in page.text
        for path, form in ACTIONS.values():
            assert (await anonymous.post(path, data=form)).status_code == 303
        wrong = await anonymous.post("/login", data={"key": "not-a-key"})
        assert wrong.status_code == 401 and "not-a-key" not in wrong.text
        ingest = await anonymous.post("/login", data={"key": TOKENS["ingest"]})
        assert ingest.status_code == 401  # an ingest key is no person's key
        anonymous.cookies.set(COOKIE, "e30.AAAA")
        assert (await anonymous.get("/")).status_code == 303  # a forged cookie
        anonymous.cookies.clear()
        assert (await anonymous.get("/healthz")).status_code == 200
        assert (await anonymous.get("/metrics")).status_code == 200
        evil = await anonymous.get("/login", params={"next": "//evil.example.com/"})
        assert '<input type="hidden" name="next" value="/">' in evil.text  # no open redirect

    async with httpx.AsyncClient(base_url=stack.console, timeout=10) as viewer:
        response = await viewer.post("/login", data={"key": TOKENS["viewer"], "next": "/reports"})
        assert response.status_code == 303 and response.headers["location"] == "/reports"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Max-Age=" in cookie and "Secure" not in cookie  # plain HTTP here
        assert TOKENS["viewer"] not in cookie and "vera" not in cookie.split(";")[0][:10]

        async def listed():
            # the ticket page answers 404 (naming CA-1) until the monitor has stored it
            return (await viewer.get("/tickets/CA-1")).status_code == 200

        await eventually(listed)
        for path in PAGES:
            page = await viewer.get(path)
            assert page.status_code == 200, (path, page.text[:500])
        assert "vera" in (await viewer.get("/")).text
        viewer_csrf = first_group(
            r'name="csrf_token" value="([^"]+)"', (await viewer.get("/")).text
        )
        for path, form in ACTIONS.values():
            refused = await viewer.post(path, data={**form, "csrf_token": viewer_csrf})
            assert refused.status_code == 403, path

    async with httpx.AsyncClient(base_url=stack.console, timeout=10) as operator:
        csrf = await login(operator, "operator")
        for path, form in ACTIONS.values():
            assert (await operator.post(path, data=form)).status_code == 403, path  # no CSRF
            bad = await operator.post(path, data={**form, "csrf_token": csrf[:-2] + "xx"})
            assert bad.status_code == 403
        silence = await operator.post(
            "/tickets/CA-1/silence", data={**ACTIONS["silence ticket"][1], "csrf_token": csrf}
        )
        assert silence.status_code == 303 and silence.headers["location"].endswith(
            "notice=silenced"
        )
        made = await operator.post(
            "/silences", data={**ACTIONS["new silence"][1], "csrf_token": csrf}
        )
        assert made.status_code == 303
        bad_silence = await operator.post(
            "/silences",
            data={"field0": "group", "value0": "x", "duration": "soon", "csrf_token": csrf},
        )
        assert bad_silence.status_code == 422 and "duration" in bad_silence.text
        async with httpx.AsyncClient(
            base_url=stack.url("notifier"),
            headers={"Authorization": f"Bearer {TOKENS['viewer']}"},
        ) as notifier:
            silences = (await notifier.get("/v1/silences")).json()["silences"]
            mine = [s for s in silences if s["created_by"] == "otto"]
            assert {tuple(s["match"].items())[0][0] for s in mine} == {"ticket_id", "group"}
            silences_page = (await operator.get("/silences")).text
            expire = first_group(r'action="/silences/([0-9a-f]+)/expire"', silences_page)
            gone = await operator.post(f"/silences/{expire}/expire", data={"csrf_token": csrf})
            assert gone.status_code == 303
            assert (await notifier.get(f"/v1/silences/{expire}")).json()["state"] == "expired"
        logout = await operator.post("/logout", data={"csrf_token": csrf})
        assert logout.status_code == 303
        assert (await operator.get("/")).status_code == 303  # the cookie is gone

    async with httpx.AsyncClient(base_url=stack.console, timeout=10) as scripted:
        headers = {"Authorization": f"Bearer {TOKENS['viewer']}"}
        assert (await scripted.get("/reports.csv", headers=headers)).status_code == 200
        wrong = await scripted.get("/", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401

    async with httpx.AsyncClient(base_url=stack.console, timeout=10) as anonymous:
        metrics = (await anonymous.get("/metrics")).text
    assert 'slawatch_console_state_changes_total{action="silence",outcome="ok"}' in metrics
    assert 'slawatch_console_logins_total{outcome="refused"}' in metrics
    for token in TOKENS.values():
        assert token not in metrics
    logs = "\n".join(s.log() for s in stack.services.values())
    assert "silence" in logs and "by otto" in logs and "login by vera (viewer)" in logs
    for token in TOKENS.values():
        assert token not in logs
    assert COOKIE + "=" not in logs


def test_session_cookies_expire_are_signed_and_end_with_their_key() -> None:
    keys = ApiKeys.parse("vera:viewer:" + "ab" * 32)
    sessions = Sessions(b"k" * 32, 60, keys)
    cookie, session = sessions.issue("vera", "viewer", now=1000.0)
    assert sessions.read(cookie, now=1010.0) == session
    assert sessions.read(cookie, now=1061.0) is None  # expired
    body, sig = cookie.split(".")
    assert sessions.read(body + "." + sig[:-1] + ("A" if sig[-1] != "A" else "B"), now=1010) is None
    assert Sessions(b"other" * 8, 60, keys).read(cookie, now=1010.0) is None
    removed = Sessions(b"k" * 32, 60, ApiKeys.parse("otto:operator:" + "ab" * 32))
    assert removed.read(cookie, now=1010.0) is None  # that key is no longer configured
    assert sessions.check_csrf(session, sessions.csrf_token(session))
    assert not sessions.check_csrf(session, None)
    other = sessions.issue("vera", "viewer", now=1000.0)[1]
    assert not sessions.check_csrf(session, sessions.csrf_token(other))
    assert time.time() > 0 and NAMES["viewer"] == "vera"


# Every console route and what it needs; the test fails when a route is added undeclared.
CONSOLE_ROUTES = {
    ("GET", "/login"): None,
    ("POST", "/login"): None,
    ("POST", "/logout"): "viewer",
    ("GET", "/prefs"): None,
    ("GET", "/"): "viewer",
    ("GET", "/board"): "viewer",
    ("GET", "/live"): "viewer",
    ("GET", "/tickets/{ticket_id}"): "viewer",
    ("POST", "/tickets/{ticket_id}/silence"): "operator",
    ("POST", "/tickets/{ticket_id}/acknowledge"): "operator",
    ("GET", "/reports"): "viewer",
    ("GET", "/reports.csv"): "viewer",
    ("GET", "/silences"): "viewer",
    ("POST", "/silences"): "operator",
    ("POST", "/silences/{silence_id}/expire"): "operator",
    ("GET", "/notifications"): "viewer",
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/metrics"): None,
}
LADDER = ("viewer", "operator", "admin")


def test_every_console_route_is_declared() -> None:
    from fastapi.routing import APIRoute

    from slawatch.services.console.app import create_app
    from slawatch.services.console.settings import ConsoleSettings

    app = create_app(ConsoleSettings(console_session_secret="s" * 40))
    routes = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert routes == set(CONSOLE_ROUTES)


async def test_console_routes_by_role(stack) -> None:
    """With a bearer key (scripts) and with a session cookie (people), for each role."""
    await stack.post(created("CM-1", customer_tier="gold"))
    async with httpx.AsyncClient(base_url=stack.url("monitor"), timeout=10) as monitor:

        async def known():
            r = await monitor.get(
                "/v1/tickets/CM-1/sla", headers={"Authorization": f"Bearer {TOKENS['viewer']}"}
            )
            return r.status_code == 200

        await eventually(known)
    bodies = {
        "/tickets/{ticket_id}/silence": {"duration": "1h"},
        "/tickets/{ticket_id}/acknowledge": {"target": "resolution", "cycle": "0"},
        "/silences": {"field0": "ticket_id", "value0": "CM-1", "duration": "1h"},
    }
    for role in LADDER:
        async with httpx.AsyncClient(base_url=stack.console, timeout=10) as http:
            csrf = await login(http, role)
            for (method, path), need in CONSOLE_ROUTES.items():
                if path in ("/login", "/logout", "/live", "/prefs") or need is None:
                    continue
                url = path.replace("{ticket_id}", "CM-1").replace("{silence_id}", "nope")
                form = {**bodies.get(path, {}), "csrf_token": csrf} if method == "POST" else None
                answer = await http.request(method, url, data=form)
                allowed = LADDER.index(role) >= LADDER.index(need)
                if allowed:
                    assert answer.status_code in (200, 303, 404, 409), (
                        role,
                        method,
                        path,
                        answer.text[:300],
                    )
                else:
                    assert answer.status_code == 403, (role, method, path)
            async with http.stream("GET", "/live") as live:  # the SSE stream opens
                assert live.status_code == 200
                assert live.headers["content-type"].startswith("text/event-stream")
        headers = {"Authorization": f"Bearer {TOKENS[role]}"}
        async with httpx.AsyncClient(base_url=stack.console, timeout=10, headers=headers) as script:
            for (method, path), need in CONSOLE_ROUTES.items():
                if need != "operator":
                    continue
                url = path.replace("{ticket_id}", "CM-1").replace("{silence_id}", "nope")
                answer = await script.request(method, url, data=bodies.get(path, {}))
                expected_ok = LADDER.index(role) >= 1
                assert (answer.status_code != 403) is expected_ok, (role, path, answer.status_code)
