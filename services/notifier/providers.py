"""What we know about each provider, in one table: its routing-file fields and its limits.

The limits are the providers' documented ones (see docs/notifications.md for sources):
exceeding DingTalk's 20 messages a minute throttles the robot for ten minutes, so the
defaults sit at the documented ceiling, counted over a sliding window, never above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    url = "url"  # an http(s) URL; a secret (webhook URLs carry their token)
    secret = "secret"
    string = "string"
    strings = "strings"  # a list of strings
    boolean = "boolean"
    port = "port"
    headers = "headers"  # a mapping of header name -> string (values may be secrets)
    security = "security"  # starttls | tls | none


@dataclass(frozen=True)
class FieldSpec:
    kind: Kind
    required: bool = False
    help: str = ""


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` messages in any window of ``per_seconds``."""

    count: int
    per_seconds: float

    def __str__(self) -> str:
        per = self.per_seconds
        unit = {1.0: "s", 60.0: "min", 3600.0: "h"}.get(per, f"{per:g}s")
        return f"{self.count}/{unit}"


@dataclass(frozen=True)
class Provider:
    fields: dict[str, FieldSpec]
    rate_limits: tuple[RateLimit, ...]
    max_events_per_message: int
    max_bytes: int | None  # the provider's message size ceiling, measured as it counts it
    doc: str
    extra: dict[str, str] = field(default_factory=dict)


PROVIDERS: dict[str, Provider] = {
    "slack": Provider(
        {"url": FieldSpec(Kind.url, True, "Incoming-webhook URL (secret).")},
        (RateLimit(1, 1.0),),
        20,  # one section block per event; Slack allows 50 blocks
        38_000,  # request body; `text` is cut at 40,000 characters
        "Slack incoming webhook, Block Kit message",
    ),
    "teams": Provider(
        {"url": FieldSpec(Kind.url, True, "Workflows (Power Automate) webhook URL (secret).")},
        (RateLimit(4, 1.0),),
        25,
        27_000,  # Teams caps a message at about 28 KB
        "Microsoft Teams Workflows webhook, Adaptive Card",
    ),
    "dingtalk": Provider(
        {
            "url": FieldSpec(Kind.url, True, "Robot URL with access_token (secret)."),
            "secret": FieldSpec(Kind.secret, False, "The robot's 加签 secret (SEC...)."),
            "at_mobiles": FieldSpec(Kind.strings, False, "Mobile numbers to @-mention."),
            "at_user_ids": FieldSpec(Kind.strings, False, "User ids to @-mention."),
            "at_all": FieldSpec(Kind.boolean, False, "@-mention everybody."),
        },
        (RateLimit(20, 60.0),),
        20,
        19_000,  # markdown text limit is 20,000 bytes
        "DingTalk custom robot, markdown",
    ),
    "wecom": Provider(
        {
            "url": FieldSpec(Kind.url, True, "Group robot URL with key (secret)."),
            "mention_userids": FieldSpec(Kind.strings, False, "User ids to <@mention>."),
        },
        (RateLimit(20, 60.0),),
        10,
        4_000,  # markdown content is capped at 4,096 UTF-8 bytes
        "WeCom (企业微信) group robot, markdown",
    ),
    "feishu": Provider(
        {
            "url": FieldSpec(Kind.url, True, "Custom bot URL (secret)."),
            "secret": FieldSpec(Kind.secret, False, "The bot's signature secret."),
        },
        (RateLimit(5, 1.0), RateLimit(100, 60.0)),
        20,
        19_000,  # request body is capped at 20 KB
        "Feishu / Lark custom bot, interactive card",
    ),
    "webhook": Provider(
        {
            "url": FieldSpec(Kind.url, True, "Where to POST the JSON body (may be a secret)."),
            "secret": FieldSpec(Kind.secret, False, "HMAC-SHA256 key for X-Slawatch-Signature."),
            "headers": FieldSpec(Kind.headers, False, "Extra request headers."),
        },
        (RateLimit(50, 1.0),),
        100,
        None,
        "Generic webhook, signed JSON",
    ),
    "email": Provider(
        {
            "host": FieldSpec(Kind.string, True, "SMTP server host."),
            "port": FieldSpec(Kind.port, False, "Default 587 (starttls), 465 (tls), 25 (none)."),
            "security": FieldSpec(Kind.security, False, "starttls (default), tls or none."),
            "username": FieldSpec(Kind.string, False, "SMTP AUTH user."),
            "password": FieldSpec(Kind.secret, False, "SMTP AUTH password."),
            "from": FieldSpec(Kind.string, True, "From: address."),
            "to": FieldSpec(Kind.strings, True, "Recipient addresses."),
            "validate_certs": FieldSpec(
                Kind.boolean, False, "Verify the server's certificate (default true)."
            ),
            "ca_file": FieldSpec(
                Kind.string, False, "PEM bundle to verify a private relay's certificate with."
            ),
        },
        (RateLimit(1, 1.0),),
        200,
        None,
        "E-mail over SMTP, text and HTML parts",
    ),
    "console": Provider(
        {},
        (),
        1000,
        None,
        "One line per notification on standard output (dev)",
    ),
}

COMMON_FIELDS: dict[str, str] = {
    "type": "One of: " + ", ".join(PROVIDERS),
    "name": "Unique within the receiver; default: the type (type-2, type-3 for repeats).",
    "timeout": "Per-request timeout (duration), default 10s.",
    "rate_limit": "`N/s`, `N/min`, `N/h`, `N/<duration>`, a list of them, or `none`; default: the provider's.",
    "max_events_per_message": "Most SLA events listed in one grouped message; default: the provider's.",
}

DEFAULT_TIMEOUT_S = 10.0
