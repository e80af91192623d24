"""The routing file: what loads, what is refused (with the line), and that secrets stay secret."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from slawatch.services.notifier.cli import routes_main
from slawatch.services.notifier.config import RoutesError, Secret, parse_rate_limits
from slawatch.services.notifier.providers import PROVIDERS, RateLimit
from slawatch.shared.durations import parse_duration
from tests.notifier.support import routes, sla_event

FULL = """\
version: 1
defaults:
  group_wait: 10s
  repeat_interval: 2h
receivers:
  - name: billing-cn
    language: zh
    timezone: Asia/Shanghai
    group_by: [customer_tier]
    quiet_hours:
      calendar: cn-support
      fallback: oncall
    integrations:
      - type: dingtalk
        url: https://oapi.dingtalk.com/robot/send?access_token=${DING_TOKEN}
        secret: ${DING_SECRET}
        at_mobiles: ["13800000000"]
      - type: wecom
        url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${WECOM_KEY}
      - type: feishu
        url: https://open.feishu.cn/open-apis/bot/v2/hook/${FEISHU_HOOK}
        secret: ${FEISHU_SECRET}
  - name: oncall
    repeat_interval: never
    integrations:
      - type: slack
        url: ${SLACK_URL}
      - type: teams
        url: ${TEAMS_URL}
        rate_limit: 2/s
      - type: email
        host: smtp.example.com
        from: slawatch@example.com
        to: [oncall@example.com]
        password: ${SMTP_PASSWORD}
      - type: webhook
        url: https://hooks.example.com/sla
        secret: ${HOOK_SECRET}
        headers: {X-Team: support}
      - type: console
routes:
  - match: {customer_tier: [gold, platinum], kind: [breached, escalated]}
    receiver: billing-cn
    continue: true
  - match: {level_gte: 2}
    match_re: {group: "bill.*"}
    receiver: oncall
default_receiver: oncall
"""

ENV = {
    "DING_TOKEN": "tok",
    "DING_SECRET": "SEC-ding",
    "WECOM_KEY": "k",
    "FEISHU_HOOK": "h",
    "FEISHU_SECRET": "fs",
    "SLACK_URL": "https://hooks.slack.com/services/T/B/x",
    "TEAMS_URL": "https://prod.westus.logic.azure.com/workflows/x",
    "SMTP_PASSWORD": "hunter2",
    "HOOK_SECRET": "whsec",
}


def problems(text: str, env: dict[str, str] | None = None, **kwargs) -> list[str]:
    with pytest.raises(RoutesError) as info:
        routes(textwrap.dedent(text), env, **kwargs)
    return [issue.render("routes.yaml") for issue in info.value.issues]


def test_full_file_loads_with_defaults_overrides_and_secrets() -> None:
    config = routes(FULL, ENV, calendars={"cn-support"})
    cn, oncall = config.receivers["billing-cn"], config.receivers["oncall"]
    assert cn.language == "zh" and cn.timezone == "Asia/Shanghai"
    assert cn.group_wait == timedelta(seconds=10) and cn.repeat_interval == timedelta(hours=2)
    assert cn.group_interval == timedelta(minutes=5)  # built-in default
    assert (cn.calendar, cn.fallback) == ("cn-support", "oncall")
    assert oncall.repeat_interval is None
    assert [s.name for s in oncall.integrations] == [
        "slack",
        "teams",
        "email",
        "webhook",
        "console",
    ]
    ding = cn.integration("dingtalk")
    assert isinstance(ding.options["url"], Secret)
    assert ding.options["url"].reveal().endswith("access_token=tok")
    assert ding.options["secret"].reveal() == "SEC-ding"
    assert "SEC-ding" not in repr(ding) and "tok" not in repr(ding.options)
    assert ding.rate_limits == PROVIDERS["dingtalk"].rate_limits
    assert oncall.integration("teams").rate_limits == (RateLimit(2, 1.0),)
    assert config.default_receiver == "oncall" and config.calendars == {"cn-support"}


def test_routes_first_match_wins_unless_continue() -> None:
    config = routes(FULL, ENV)
    gold_breach = sla_event("sla.breached", customer_tier="gold")
    # billing-cn continues, but the level route does not match a breach (level 0); the
    # default receiver is only for events no route matched.
    assert config.route(gold_breach) == ["billing-cn"]
    gold_escalation = sla_event("sla.escalated", level=3, customer_tier="gold")
    assert config.route(gold_escalation) == ["billing-cn", "oncall"]
    esc = sla_event("sla.escalated", level=2, customer_tier="silver")
    assert config.route(esc) == ["oncall"]
    warning = sla_event("sla.warning", fraction=0.8)
    assert config.route(warning) == ["oncall"]  # nothing matched: default receiver


def test_route_order_and_continue_exactly() -> None:
    config = routes(
        """
        receivers:
          - {name: a, integrations: [{type: console}]}
          - {name: b, integrations: [{type: console}]}
          - {name: c, integrations: [{type: console}]}
        routes:
          - {match: {priority: urgent}, receiver: a, continue: true}
          - {match: {priority: [urgent, high]}, receiver: b}
          - {receiver: c}
        """
    )
    assert config.route(sla_event(priority="urgent")) == ["a", "b"]
    assert config.route(sla_event(priority="high")) == ["b"]
    assert config.route(sla_event(priority="low")) == ["c"]
    no_default = routes(
        """
        receivers: [{name: a, integrations: [{type: console}]}]
        routes: [{match: {channel: chat}, receiver: a}]
        """
    )
    assert no_default.route(sla_event(channel="email")) == []


def test_matchers_cover_every_field() -> None:
    config = routes(
        """
        receivers: [{name: a, integrations: [{type: console}]}]
        routes:
          - receiver: a
            match:
              kind: escalated
              target: resolution
              policy: vip-urgent
              customer_tier: gold
              priority: urgent
              channel: email
              group: billing
              assignee: li.na
              tags: [refund, vip]
              level_gte: 2
              level_lte: 3
        """
    )
    ok = sla_event("sla.escalated", target="resolution", level=2, tags=["vip"])
    assert config.route(ok) == ["a"]
    assert (
        config.route(sla_event("sla.escalated", target="resolution", level=4, tags=["vip"])) == []
    )
    assert config.route(sla_event("sla.escalated", target="resolution", level=2, tags=["x"])) == []
    assert (
        config.route(
            sla_event("sla.escalated", target="resolution", level=2, tags=["vip"], group="sales")
        )
        == []
    )
    assert config.route(sla_event("sla.breached", target="resolution", tags=["vip"])) == []


def test_level_matchers_treat_breach_as_level_zero_and_skip_other_kinds() -> None:
    config = routes(
        """
        receivers: [{name: a, integrations: [{type: console}]}]
        routes: [{match: {level: 0}, receiver: a}]
        """
    )
    assert config.route(sla_event("sla.breached")) == ["a"]
    assert config.route(sla_event("sla.escalated", level=1)) == []
    assert config.route(sla_event("sla.warning", fraction=0.5)) == []


def test_every_problem_is_reported_with_its_line() -> None:
    found = problems(
        """\
        receivers:
          - name: a
            langauge: en
            integrations:
              - type: slak
                url: https://x
          - name: a
            integrations: [{type: console}]
          - name: b
            group_wait: soon
            quiet_hours: {calendar: nowhere, fallback: ghost}
            integrations:
              - type: webhook
              - type: email
                host: smtp
                from: me@x
                to: [not-an-address]
        routes:
          - match: {kind: breachd}
            receiver: a
          - receiver: nobody
          - match: {level_gte: -1}
            receiver: a
          - match_re: {group: "("}
            receiver: a
        default_receiver: zz
        extra: 1
        """,
        calendars={"cn-support"},
    )
    text = "\n".join(found)
    expected = [
        "routes.yaml:3: unknown key `langauge` in receivers[0] (did you mean `language`?)",
        "routes.yaml:5: receivers[0].integrations[0]: `type` must be one of",
        "routes.yaml:7: receiver 'a' is defined twice",
        "routes.yaml:10: `group_wait`: 'soon' is not a duration",
        "routes.yaml:11: `quiet_hours.calendar` names unknown calendar 'nowhere' (the policy file has: cn-support)",
        "routes.yaml:9: receiver 'b': `quiet_hours.fallback` names unknown receiver 'ghost'",
        "routes.yaml:13: receivers[2].integrations[0] (webhook): `url` is required",
        "routes.yaml:17: receivers[2].integrations[1].to: not an e-mail address: 'not-an-address'",
        "routes.yaml:19: routes[0]: unknown kind 'breachd'",
        "routes.yaml:21: routes[1]: unknown receiver 'nobody'",
        "routes.yaml:22: routes[2]: `level_gte` must be a whole number >= 0",
        "routes.yaml:24: routes[3]: `group` is not a valid regular expression",
        "routes.yaml:26: `default_receiver` names unknown receiver 'zz'",
        "routes.yaml:27: unknown key `extra` in (document)",
    ]
    for line in expected:
        assert line in text, f"missing: {line}\n---\n{text}"
    assert len(found) == len(expected), text


def test_yaml_syntax_error_and_duplicate_keys_have_lines() -> None:
    assert problems("receivers:\n  - name: a\n    integrations: [\n")[0].startswith(
        "routes.yaml:4: invalid YAML"
    )
    dup = problems(
        """\
        receivers:
          - name: a
            name: b
            integrations: [{type: console}]
        """
    )
    assert dup == ["routes.yaml:3: duplicate key `name` in receivers[0]"]


def test_fallback_loops_are_refused() -> None:
    found = problems(
        """\
        receivers:
          - {name: a, quiet_hours: {calendar: c, fallback: b}, integrations: [{type: console}]}
          - {name: b, quiet_hours: {calendar: c, fallback: a}, integrations: [{type: console}]}
        """
    )
    assert any("fallbacks form a loop: a -> b -> a" in p for p in found), found


def test_unset_variable_is_named_and_values_never_echoed() -> None:
    found = problems(
        """\
        receivers:
          - name: a
            integrations:
              - type: slack
                url: ${SLACK_URL}
              - type: webhook
                url: ftp://user:hunter2@example.com/${NOPE:-x}
                secret: ${HOOK_SECRET}
        """,
        {"HOOK_SECRET": "whsec_live_123"},
    )
    assert found == [
        "routes.yaml:5: receivers[0].integrations[0].url: environment variable SLACK_URL is not set",
        "routes.yaml:7: receivers[0].integrations[1].url must be an http:// or https:// URL",
    ]
    assert not any("hunter2" in p or "whsec" in p for p in found)


def test_variable_defaults_and_dollar_escapes() -> None:
    config = routes(
        """
        receivers:
          - name: a
            integrations:
              - {type: webhook, url: "${HOOK:-http://127.0.0.1:9/x}", secret: "a$$b"}
        """
    )
    spec = config.receivers["a"].integrations[0]
    assert spec.options["url"].reveal() == "http://127.0.0.1:9/x"
    assert spec.options["secret"].reveal() == "a$b"
    assert problems(
        "receivers: [{name: a, integrations: [{type: webhook, url: 'http://x/${BAD'}]}]\n"
    )[0].endswith(
        "malformed variable reference; write ${NAME}, ${NAME:-default} or $$ for a dollar sign"
    )


def test_allow_unset_env_checks_structure_only() -> None:
    config = routes(
        "receivers: [{name: a, integrations: [{type: slack, url: '${SLACK_URL}'}]}]\n",
        allow_unset_env=True,
    )
    assert config.receivers["a"].integrations[0].options["url"].reveal() == "${SLACK_URL}"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("2d", 172800),
        ("0s", 0),
        ("1m30s500ms", 90.5),
    ],
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text).total_seconds() == seconds


# One grammar (shared/durations.py): no bare numbers (seconds? minutes?), no fractions.
@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "-1s", True, [1], "1h-5m", 15, "0", "1.5h", "30m1h"])
def test_bad_durations(text) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_rate_limits() -> None:
    assert parse_rate_limits("20/min") == (RateLimit(20, 60.0),)
    assert parse_rate_limits(["5/s", "100/minute"]) == (RateLimit(5, 1.0), RateLimit(100, 60.0))
    assert parse_rate_limits("20/61s") == (RateLimit(20, 61.0),)
    assert parse_rate_limits("none") == ()
    for bad in ("0/s", "x/s", "5", "5/fortnight", 5):
        with pytest.raises(ValueError):
            parse_rate_limits(bad)


# --- `slawatch routes check` ------------------------------------------------------------


def test_routes_check_ok_and_errors(tmp_path: Path, capsys, monkeypatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    good = tmp_path / "routes.yaml"
    good.write_text(FULL)
    assert routes_main(["check", str(good)]) == 0
    out = capsys.readouterr()
    assert "ok (2 receivers, 8 integrations, 2 routes)" in out.out
    assert "calendar names (cn-support) not checked" in out.out

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "receivers:\n  - name: a\n    integrations:\n      - type: slack\n        url: ${MISSING_URL}\n"
    )
    assert routes_main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{bad}:5: receivers[0].integrations[0].url: environment variable MISSING_URL is not set"
        in err
    )
    assert routes_main(["check", str(bad), "--allow-unset-env"]) == 0

    assert routes_main(["check", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err
    assert routes_main([]) == 2
    assert routes_main(["check"]) == 2


def test_routes_check_against_policy_calendars(tmp_path: Path, capsys) -> None:
    policy = tmp_path / "policies.yaml"
    policy.write_text(
        textwrap.dedent(
            """\
            version: 1
            calendars:
              cn-support:
                timezone: Asia/Shanghai
                hours: {mon: ["09:00-18:00"], tue: ["09:00-18:00"]}
            policies:
              - id: default
                calendar: cn-support
                targets: {first_response: 1h}
            """
        )
    )
    file = tmp_path / "routes.yaml"
    file.write_text(
        "receivers:\n  - name: a\n    quiet_hours: {calendar: cn-support}\n    integrations: [{type: console}]\n"
        "  - name: b\n    quiet_hours: {calendar: us-support}\n    integrations: [{type: console}]\n"
    )
    assert routes_main(["check", str(file), "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert "unknown calendar 'us-support' (the policy file has: cn-support)" in err
    assert ":6:" in err


def test_slawatch_routes_check_via_the_cli(tmp_path: Path) -> None:
    file = tmp_path / "routes.yaml"
    file.write_text("receivers: [{name: a, integrations: [{type: consol}]}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "slawatch.services.cli", "routes", "check", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{file}:1: receivers[0].integrations[0]: `type` must be one of" in result.stderr


def test_example_routes_file_is_valid() -> None:
    assert routes_main(["check", "examples/routes.yaml"]) == 0


def test_published_routes_schema_matches_the_models() -> None:
    import json

    from slawatch.services.schemas import render

    published = Path("docs/schemas/routes.schema.json").read_text()
    assert published == render("routes.schema.json"), "regenerate: slawatch schemas"
    assert json.loads(published)["title"] == "slawatch routing file"


@pytest.mark.parametrize("source", ["full", "example"])
def test_routes_schema_knows_every_key_of_valid_files(source: str) -> None:
    """Every key a valid file uses is a property the schema allows, where it is used."""
    import yaml

    from slawatch.services.notifier.routes_file import json_schema

    text = FULL if source == "full" else Path("examples/routes.yaml").read_text()
    doc = yaml.safe_load(text)
    schema = json_schema()
    defs = schema["$defs"]
    assert set(doc) <= set(schema["properties"])
    for receiver in doc["receivers"]:
        assert set(receiver) <= set(defs["Receiver"]["properties"]), receiver["name"]
        for integration in receiver["integrations"]:
            allowed = defs[f"{integration['type'].capitalize()}Integration"]["properties"]
            assert set(integration) <= set(allowed), integration["type"]
    for route in doc.get("routes", []):
        assert set(route) <= set(defs["Route"]["properties"])
        match = defs["Route"]["properties"]["match"]["properties"]
        assert set(route.get("match", {})) <= set(match)
