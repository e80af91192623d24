"""Console sessions in process (no backends needed): cookie flags, Secure behind HTTPS,
single sign-on through a proxy header, and bad settings stopping `slawatch console`."""

from __future__ import annotations

import httpx
import pytest

from slawatch.services.console.app import create_app
from slawatch.services.console.settings import ConsoleSettings
from tests.console.stack import API_KEYS, TOKENS
from tests.test_settings import run_cli

SECRET = "s" * 40


def client(base: str = "http://console.test", **settings) -> httpx.AsyncClient:
    app = create_app(ConsoleSettings(api_keys=API_KEYS, console_session_secret=SECRET, **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


async def test_cookie_is_secure_over_https_and_when_asked() -> None:
    for base, mode, secure in [
        ("http://console.test", "auto", False),
        ("https://console.test", "auto", True),
        ("http://console.test", "always", True),
        ("https://console.test", "never", False),
    ]:
        async with client(base, console_cookie_secure=mode) as http:
            response = await http.post("/login", data={"key": TOKENS["viewer"]})
            assert response.status_code == 303
            cookie = response.headers["set-cookie"]
            assert ("; Secure" in cookie) is secure, (base, mode, cookie)
            assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
            sent_back = base.startswith("https") or not secure  # a Secure cookie needs HTTPS
            assert (await http.get("/login")).status_code == (303 if sent_back else 200)


async def test_login_refuses_bad_input_plainly() -> None:
    async with client() as http:
        assert (await http.post("/login", data={"key": "x" * 600})).status_code == 401
        form = await http.post("/login", content=b"key=a", headers={"content-type": "text/plain"})
        assert form.status_code == 415
        huge = await http.post(
            "/login",
            content=b"key=" + b"a" * 70_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert huge.status_code == 413


async def test_single_sign_on_through_a_proxy_header() -> None:
    async with client(
        console_proxy_user_header="X-Forwarded-Email", console_proxy_role="operator"
    ) as http:
        signed_in = await http.get("/login", headers={"X-Forwarded-Email": "li.na@example.com"})
        assert signed_in.status_code == 303
        assert (await http.get("/login")).status_code == 200  # no header: the login page
        # a proxy user still needs the CSRF token to change anything
        refused = await http.post(
            "/silences",
            data={"field0": "group", "value0": "x"},
            headers={"X-Forwarded-Email": "li.na@example.com"},
        )
        assert refused.status_code == 403
    async with client() as http:  # not configured: the header means nothing
        assert (
            await http.get("/login", headers={"X-Forwarded-Email": "li.na@example.com"})
        ).status_code == 200


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "SLAWATCH_CONSOLE_SESSION_SECRET"),
        ({"SLAWATCH_CONSOLE_SESSION_SECRET": "short"}, "SLAWATCH_CONSOLE_SESSION_SECRET"),
        ({"SLAWATCH_CONSOLE_SESSION_SECRET": SECRET}, "SLAWATCH_CONSOLE_SERVICE_TOKEN"),
        (
            {"SLAWATCH_CONSOLE_SESSION_SECRET": SECRET, "SLAWATCH_CONSOLE_SERVICE_TOKEN": "t"},
            "SLAWATCH_API_KEYS",
        ),
        ({"SLAWATCH_CONSOLE_AT_RISK_WINDOW": "soon"}, "SLAWATCH_CONSOLE_AT_RISK_WINDOW"),
        ({"SLAWATCH_CONSOLE_MONITOR_URL": "ftp://x"}, "SLAWATCH_CONSOLE_MONITOR_URL"),
    ],
)
def test_bad_console_settings_stop_it_with_one_line(env, variable) -> None:
    result = run_cli("console", SLAWATCH_KAFKA_BOOTSTRAP="127.0.0.1:1", **env)
    assert result.returncode == 2, result.stderr
    assert variable in result.stderr
    assert SECRET not in result.stderr


async def test_a_service_that_cannot_be_reached_is_shown_plainly() -> None:
    from slawatch.services.dev.provision import free_port

    closed = f"http://127.0.0.1:{free_port()}"
    async with client(console_monitor_url=closed, console_notifier_url=closed) as http:
        headers = {"Authorization": f"Bearer {TOKENS['viewer']}"}
        page = await http.get("/", headers=headers)
        assert page.status_code == 502
        assert "Could not reach the monitor" in page.text
        zh = await http.get("/", headers={**headers, "Accept-Language": "zh-CN,zh;q=0.9"})
        assert "无法连接监控服务" in zh.text
        wrong = await http.get("/", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "nope" not in wrong.text


async def test_failed_logins_from_one_address_are_throttled() -> None:
    async with client() as http:
        for _ in range(10):
            assert (await http.post("/login", data={"key": "guess"})).status_code == 401
        blocked = await http.post("/login", data={"key": TOKENS["viewer"]})
        assert blocked.status_code == 429 and "Too many failed logins" in blocked.text


async def test_language_and_time_zone_are_chosen_and_kept() -> None:
    async with client() as http:
        page = await http.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        assert '<html lang="zh-CN">' in page.text and "登录" in page.text
        chosen = await http.get(
            "/prefs", params={"lang": "en", "tz": "Asia/Tokyo", "next": "/login"}
        )
        assert chosen.status_code == 303 and chosen.headers["location"] == "/login"
        page = await http.get("/login", headers={"Accept-Language": "zh-CN"})
        assert '<html lang="en">' in page.text  # the choice wins over the browser's language
        assert '<option value="Asia/Tokyo" selected>' in page.text
        ignored = await http.get(
            "/prefs", params={"lang": "xx", "tz": "Mars/Base", "next": "//evil"}
        )
        assert ignored.headers["location"] == "/"
        page = await http.get("/login")
        assert (
            '<html lang="en">' in page.text and '<option value="Asia/Tokyo" selected>' in page.text
        )
