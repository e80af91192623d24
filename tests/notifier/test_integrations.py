"""Every integration against a real local server: the payload each provider documents,
its signature checked with the provider's documented algorithm (written out here again,
independently of the code under test), and its answers classified right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from slawatch.services.notifier.integrations import build_integration
from slawatch.services.notifier.integrations.console import ConsoleIntegration
from slawatch.services.notifier.model import Notice, Outcome
from slawatch.services.notifier.templates import Renderer
from tests.notifier.support import T0, routes, sla_event

pytestmark = pytest.mark.integration

NOW = T0 + timedelta(minutes=12)


def integration(kind: str, options: str, *, language: str = "en", extra: str = ""):
    config = routes(
        f"""
        receivers:
          - name: billing
            language: {language}
            {extra}
            integrations:
              - {{type: {kind}, {options}}}
        """
    )
    receiver = config.receivers["billing"]
    return receiver, receiver.integrations[0]


def make(kind: str, options: str, client=None, **kwargs):
    receiver, spec = integration(kind, options, **kwargs)
    return build_integration(spec, receiver, Renderer(), client)


def notices(*events, receiver: str = "billing", integration_name: str = "x") -> list[Notice]:
    return [Notice(e, receiver, integration_name, T0, T0) for e in events]


TWO = (
    sla_event("sla.breached", ticket="T-1001"),
    sla_event("sla.escalated", ticket="T-1002", level=2, assignee=None, subject="Refund <!channel> *now*"),
)


async def deliver(integ, events=TWO):
    [prepared] = integ.prepare(notices(*events), NOW)
    return await integ.deliver(prepared)


def path() -> str:
    return f"/{uuid.uuid4().hex[:8]}"


# --- Slack ----------------------------------------------------------------------------


async def test_slack_block_kit_message(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    result = await deliver(make("slack", f'url: "{url}{p}"', client))
    assert result.outcome is Outcome.ok
    [request] = sink.at(p)
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert body["text"] == "[slawatch] 2 SLA events: 1 escalated, 1 breached"
    blocks = body["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": body["text"], "emoji": True}}
    sections = [b for b in blocks if b["type"] == "section"]
    assert len(sections) == 2 and all(s["text"]["type"] == "mrkdwn" for s in sections)
    assert "<https://helpdesk.example.com/tickets/T-1001|T-1001>" in sections[0]["text"]["text"]
    assert "Customer tier: gold · Priority: urgent · Assignee: li.na" in sections[0]["text"]["text"]
    assert "overdue by 12m" in sections[0]["text"]["text"]
    second = sections[1]["text"]["text"]
    assert "(level 2)" in second and "Assignee: unassigned" in second
    assert "&lt;!channel&gt;" in second and "<!channel>" not in second  # no mass mention
    assert blocks[-1]["type"] == "context" and {"type": "divider"} in blocks
    assert len(blocks) <= 50


@pytest.mark.parametrize(
    ("status", "body", "headers", "outcome", "retry_after"),
    [
        (400, b"invalid_blocks", {}, Outcome.permanent, None),
        (404, b"no_service", {}, Outcome.permanent, None),
        (410, b"channel_is_archived", {}, Outcome.permanent, None),
        (429, b"rate_limited", {"Retry-After": "7"}, Outcome.retryable, 7.0),
        (500, b"rollup_error", {}, Outcome.retryable, None),
        (503, b"", {"Retry-After": "2"}, Outcome.retryable, 2.0),
    ],
)
async def test_slack_answers(http_sink, client, status, body, headers, outcome, retry_after) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).then(status, body, headers)
    result = await deliver(make("slack", f'url: "{url}{p}"', client))
    assert (result.outcome, result.retry_after, result.status_code) == (outcome, retry_after, status)
    if body:
        assert body.decode() in result.reason
    assert url not in result.reason and p not in result.reason  # webhook URLs are secrets


# --- Microsoft Teams --------------------------------------------------------------------


async def test_teams_adaptive_card_in_workflows_envelope(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).always(202, b"")
    result = await deliver(make("teams", f'url: "{url}{p}"', client), (TWO[0],))
    assert result.outcome is Outcome.ok and result.status_code == 202
    body = sink.at(p)[0].json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["body"][0]["text"] == "[SLA breached] T-1001 · first response"
    assert card["body"][0]["color"] == "Attention"
    container = card["body"][1]
    assert container["type"] == "Container" and "[T-1001](https://helpdesk.example.com/tickets/T-1001)" in container["items"][0]["text"]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open ticket", "url": "https://helpdesk.example.com/tickets/T-1001"}
    ]


async def test_teams_errors(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).then(400, {"error": {"code": "InvalidRequestContent"}}).then(429, b"", {"Retry-After": "3"})
    teams = make("teams", f'url: "{url}{p}"', client)
    assert (await deliver(teams)).outcome is Outcome.permanent
    throttled = await deliver(teams)
    assert (throttled.outcome, throttled.retry_after) == (Outcome.retryable, 3.0)


# --- DingTalk ---------------------------------------------------------------------------


def dingtalk_expected_sign(timestamp: str, secret: str) -> str:
    # DingTalk's documented Python: hmac(secret, f"{timestamp}\n{secret}", sha256) -> base64
    string_to_sign = f"{timestamp}\n{secret}"
    code = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    return base64.b64encode(code).decode()


async def test_dingtalk_markdown_signed_in_query(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).always(200, {"errcode": 0, "errmsg": "ok"})
    secret = "SEC0123456789abcdef+/="
    ding = make(
        "dingtalk",
        f'url: "{url}{p}?access_token=tok123", secret: "{secret}", at_mobiles: ["13800000000"]',
        client,
        language="zh",
    )
    before = int(time.time() * 1000)
    result = await deliver(ding)
    assert result.outcome is Outcome.ok
    [request] = sink.at(p)
    # the raw query, decoded once as a server does: sign must survive '+', '/' and '='
    query = parse_qs(urlsplit("http://x/?" + request_query(request)).query)
    assert query["access_token"] == ["tok123"]
    timestamp = query["timestamp"][0]
    assert before <= int(timestamp) <= int(time.time() * 1000)
    assert query["sign"] == [dingtalk_expected_sign(timestamp, secret)]
    body = request.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "【slawatch】2 条 SLA 事件：已升级 1，已超时 1"
    text = body["markdown"]["text"]
    assert text.startswith("### 【slawatch】") and "[T-1001](https://helpdesk.example.com/tickets/T-1001)" in text
    assert "客户等级: gold" in text and "处理人: 未分配" in text and "已超时 12分钟" in text
    assert "@13800000000" in text
    assert body["at"] == {"atMobiles": ["13800000000"], "atUserIds": [], "isAtAll": False}


def request_query(request) -> str:
    from urllib.parse import urlencode

    return urlencode(request.query)


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after"),
    [
        ({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, Outcome.retryable, 600.0),
        ({"errcode": 310000, "errmsg": "sign not match"}, Outcome.permanent, None),
        ({"errcode": 300001, "errmsg": "token is not exist"}, Outcome.permanent, None),
        ({"errcode": -1, "errmsg": "system busy"}, Outcome.retryable, None),
        ({"unexpected": True}, Outcome.permanent, None),
    ],
)
async def test_dingtalk_200_with_error_body_is_a_failure(http_sink, client, answer, outcome, retry_after) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).then(200, answer)
    result = await deliver(make("dingtalk", f'url: "{url}{p}?access_token=t"', client))
    assert (result.outcome, result.retry_after) == (outcome, retry_after)
    if "errcode" in answer:
        assert f"DingTalk error {answer['errcode']}: {answer['errmsg']}" == result.reason


# --- WeCom ------------------------------------------------------------------------------


async def test_wecom_markdown_within_4096_bytes(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).always(200, {"errcode": 0, "errmsg": "ok"})
    wecom = make("wecom", f'url: "{url}{p}?key=k-1", mention_userids: [li.na]', client, language="zh")
    long_subject = "退款" * 70
    events = [sla_event(ticket=f"T-{i}", subject=long_subject) for i in range(10)]
    prepared = wecom.prepare(notices(*events), NOW)
    assert len(prepared) > 1  # ten long events do not fit in one WeCom message
    assert sorted(n.event.ticket_id for part in prepared for n in part.notices) == sorted(e.ticket_id for e in events)
    for part in prepared:
        assert (await wecom.deliver(part)).outcome is Outcome.ok
    for request in sink.at(p):
        assert request.query == {"key": "k-1"}
        body = request.json()
        assert body["msgtype"] == "markdown"
        content = body["markdown"]["content"]
        assert len(content.encode()) <= 4096
        assert '<font color="warning">**SLA 已超时**</font>' in content
        assert content.endswith("<@li.na>")


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ({"errcode": 45009, "errmsg": "api freq out of limit"}, Outcome.retryable),
        ({"errcode": 93000, "errmsg": "invalid webhook url"}, Outcome.permanent),
        ({"errcode": -1, "errmsg": "system busy"}, Outcome.retryable),
    ],
)
async def test_wecom_error_codes(http_sink, client, answer, outcome) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).then(200, answer)
    result = await deliver(make("wecom", f'url: "{url}{p}?key=k"', client))
    assert result.outcome is outcome and str(answer["errcode"]) in result.reason


# --- Feishu / Lark ----------------------------------------------------------------------


def feishu_expected_sign(timestamp: str, secret: str) -> str:
    # Feishu's documented algorithm: key = f"{timestamp}\n{secret}", HMAC-SHA256 of nothing
    string_to_sign = f"{timestamp}\n{secret}"
    hmac_code = hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    return base64.b64encode(hmac_code).decode("utf-8")


async def test_feishu_interactive_card_signed_in_body(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).always(200, {"code": 0, "msg": "success", "data": {}})
    feishu = make("feishu", f'url: "{url}{p}", secret: "fs-secret"', client, language="zh")
    before = int(time.time())
    result = await deliver(feishu, (TWO[1],))
    assert result.outcome is Outcome.ok
    body = sink.at(p)[0].json()
    assert isinstance(body["timestamp"], str) and before <= int(body["timestamp"]) <= time.time()
    assert body["sign"] == feishu_expected_sign(body["timestamp"], "fs-secret")
    assert body["msg_type"] == "interactive"
    card = body["card"]
    assert card["header"]["title"] == {"tag": "plain_text", "content": "【SLA 已升级】工单 T-1002 · 首次响应 (第 2 级)"}
    assert card["header"]["template"] == "carmine"
    div = card["elements"][0]
    assert div["tag"] == "div" and div["text"]["tag"] == "lark_md"
    assert "[T-1002](https://helpdesk.example.com/tickets/T-1002)" in div["text"]["content"]
    assert "‹!channel›" in div["text"]["content"]
    button = card["elements"][1]["actions"][0]
    assert button["url"] == "https://helpdesk.example.com/tickets/T-1002" and button["text"]["content"] == "打开工单"


async def test_feishu_without_secret_sends_no_signature(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).always(200, {"StatusCode": 0, "StatusMessage": "success"})
    assert (await deliver(make("feishu", f'url: "{url}{p}"', client))).outcome is Outcome.ok
    assert "sign" not in sink.at(p)[0].json()


@pytest.mark.parametrize(
    ("status", "answer", "outcome"),
    [
        (200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}, Outcome.permanent),
        (200, {"code": 11232, "msg": "frequency limited"}, Outcome.retryable),
        (400, {"code": 9499, "msg": "Bad Request"}, Outcome.permanent),
        (400, {"code": 11232, "msg": "frequency limited"}, Outcome.retryable),
        (200, {"code": 19024, "msg": "Key Words Not Found"}, Outcome.permanent),
    ],
)
async def test_feishu_error_codes(http_sink, client, status, answer, outcome) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).then(status, answer)
    result = await deliver(make("feishu", f'url: "{url}{p}", secret: s', client))
    assert result.outcome is outcome and f"Feishu error {answer['code']}" in result.reason


# --- generic webhook --------------------------------------------------------------------


async def test_webhook_json_with_hmac_signature(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).always(204, b"")
    hook = make("webhook", f'url: "{url}{p}", secret: "whsec-1", headers: {{X-Team: billing}}', client)
    result = await deliver(hook)
    assert result.outcome is Outcome.ok
    request = sink.at(p)[0]
    timestamp = request.headers["x-slawatch-timestamp"]
    signature = request.headers["x-slawatch-signature"]
    assert signature.startswith(f"t={timestamp},v1=")
    expected = hmac.new(b"whsec-1", f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert signature.split("v1=")[1] == expected
    assert abs(int(timestamp) - time.time()) < 5
    assert request.headers["x-team"] == "billing"
    assert len(request.headers["x-slawatch-delivery"]) == 24
    body = json.loads(request.body)
    assert body["version"] == 1 and body["receiver"] == "billing"
    assert [e["id"] for e in body["events"]] == [e.id for e in TWO]
    assert body["events"][0] == json.loads(TWO[0].model_dump_json(exclude_none=True))
    assert [n["id"] for n in body["notifications"]] == [e.id for e in TWO]
    # a tampered body does not verify
    bad = hmac.new(b"whsec-1", f"{timestamp}.".encode() + request.body + b" ", hashlib.sha256).hexdigest()
    assert bad != expected


async def test_webhook_delivery_id_is_stable_across_retries(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).then(500, b"boom").then(200, b"")
    hook = make("webhook", f'url: "{url}{p}"', client)
    [prepared] = hook.prepare(notices(*TWO), NOW)
    assert (await hook.deliver(prepared)).outcome is Outcome.retryable
    [again] = hook.prepare(notices(*TWO), NOW)
    assert (await hook.deliver(again)).outcome is Outcome.ok
    ids = {r.headers["x-slawatch-delivery"] for r in sink.at(p)}
    assert len(ids) == 1 and "x-slawatch-signature" not in sink.at(p)[0].headers


async def test_timeouts_and_refused_connections_are_retryable(http_sink, client) -> None:
    sink, url = http_sink
    p = path()
    sink.script(p).delay_s = 1.0
    slow = make("webhook", f'url: "{url}{p}", timeout: 200ms', client)
    result = await deliver(slow)
    assert result.outcome is Outcome.retryable and result.reason.startswith("timeout")
    from slawatch.services.dev.provision import free_port

    closed = make("slack", f'url: "http://127.0.0.1:{free_port()}/x"', client)
    result = await deliver(closed)
    assert result.outcome is Outcome.retryable and result.reason.startswith("connection error")


# --- e-mail -----------------------------------------------------------------------------


async def test_email_text_and_html_parts_in_the_receivers_language(smtp_server) -> None:
    mailbox, port = smtp_server
    mail = make(
        "email",
        f'host: 127.0.0.1, port: {port}, security: none, from: "slawatch@example.com", to: [a@example.com, b@example.com]',
        language="zh",
        extra="timezone: Asia/Shanghai",
    )
    result = await deliver(mail)
    assert result.outcome is Outcome.ok
    [(sender, recipients, message)] = mailbox.messages
    assert sender == "slawatch@example.com" and recipients == ["a@example.com", "b@example.com"]
    assert message["Subject"] == "【slawatch】2 条 SLA 事件：已升级 1，已超时 1"
    assert message["From"] == "slawatch@example.com" and message["To"] == "a@example.com, b@example.com"
    assert message["Content-Language"] == "zh-CN" and message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "工单 T-1001" in text and "已超时 12分钟" in text and "https://helpdesk.example.com/tickets/T-1001" in text
    assert '<html lang="zh-CN">' in html and '<a href="https://helpdesk.example.com/tickets/T-1001">T-1001</a>' in html
    assert "&lt;!channel&gt;" in html and "<!channel>" not in html  # escaped in HTML
    assert "Asia/Shanghai" not in text and "CST" in text  # times in the receiver's zone


async def test_email_english_subject(smtp_server) -> None:
    mailbox, port = smtp_server
    mail = make("email", f'host: 127.0.0.1, port: {port}, security: none, from: s@x.io, to: [o@x.io]')
    assert (await deliver(mail, (TWO[0],))).outcome is Outcome.ok
    message = mailbox.messages[0][2]
    assert message["Subject"] == "[SLA breached] T-1001 · first response"
    assert message["Content-Language"] == "en"
    assert "Customer tier: gold" in message.get_body(("plain",)).get_content()


async def test_email_refusals(smtp_server) -> None:
    from aiosmtpd.controller import Controller

    from slawatch.services.dev.provision import free_port

    class Refusing:
        def __init__(self, code: int) -> None:
            self.code = code

        async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
            return f"{self.code} mailbox unavailable"

    for code, outcome in ((550, Outcome.permanent), (451, Outcome.retryable)):
        port = free_port()
        controller = Controller(Refusing(code), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            mail = make("email", f'host: 127.0.0.1, port: {port}, security: none, from: s@x.io, to: [o@x.io]')
            assert (await deliver(mail)).outcome is outcome
        finally:
            controller.stop()
    nothing = make("email", f"host: 127.0.0.1, port: {free_port()}, security: none, from: s@x.io, to: [o@x.io]")
    assert (await deliver(nothing)).outcome is Outcome.retryable
    starttls = make("email", f'host: 127.0.0.1, port: {smtp_server[1]}, from: s@x.io, to: [o@x.io]')
    refused = await deliver(starttls)  # the server offers no STARTTLS: refuse to send in clear
    assert refused.outcome is Outcome.permanent and "STARTTLS" in refused.reason.upper()


# --- console ----------------------------------------------------------------------------


async def test_console_prints_one_line_per_notification() -> None:
    console = make("console", "name: out")
    assert isinstance(console, ConsoleIntegration)
    console.stream = io.StringIO()
    assert (await deliver(console)).outcome is Outcome.ok
    lines = console.stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[slawatch] ") and "billing: sla.breached ticket=T-1001" in lines[0]
    assert "level=2" in lines[1] and "assignee=-" in lines[1]


CERT = "tests/notifier/data/localhost-cert.pem"
KEY = "tests/notifier/data/localhost-key.pem"


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_email_over_starttls_and_tls_with_certificate_validation(security) -> None:
    import ssl

    from aiosmtpd.controller import Controller

    from slawatch.services.dev.provision import free_port
    from tests.notifier.conftest import Mailbox

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERT, KEY)
    mailbox = Mailbox()
    port = free_port()
    if security == "starttls":
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True)
    else:
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    try:
        trusted = make(
            "email",
            f"host: 127.0.0.1, port: {port}, security: {security}, ca_file: {CERT}, from: s@x.io, to: [o@x.io]",
        )
        assert (await deliver(trusted)).outcome is Outcome.ok
        assert mailbox.messages[0][2]["Subject"].startswith("[slawatch] 2 SLA events")
        untrusted = make("email", f"host: 127.0.0.1, port: {port}, security: {security}, from: s@x.io, to: [o@x.io]")
        result = await deliver(untrusted)  # self-signed and not in the system store
        assert result.outcome is Outcome.retryable and len(mailbox.messages) == 1, result
        assert "certificate" in result.reason.lower() or "ssl" in result.reason.lower(), result.reason
    finally:
        controller.stop()
