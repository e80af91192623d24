"""Message text from Jinja2 templates, in the receiver's language.

Templates run in Jinja's immutable sandbox: they are configuration that an operator may
replace (``templates_dir``), and ticket fields they print (subjects!) come from customers.
For the same reason every format has its own escaping filter - ``md`` for markdown,
``slack`` for Slack mrkdwn, HTML autoescaping for e-mail - and only http(s) ticket links
are ever turned into links.

Integrations build their JSON envelopes in Python and take only text from here: a
template cannot produce an invalid payload.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from slawatch.services.notifier.config import Receiver
from slawatch.services.notifier.i18n import humanize, translate
from slawatch.services.notifier.model import Notice
from slawatch.services.notifier.reports import ReportView
from slawatch.shared.sla_events import SlaKind

BUILTIN = Path(__file__).with_name("templates")
SUBJECT_MAX = 160
KIND_ORDER = (SlaKind.escalated, SlaKind.breached, SlaKind.warning, SlaKind.met, SlaKind.retracted)
_COLORS = {  # e-mail accent and WeCom font colour per kind
    SlaKind.warning: ("#9a6700", "warning"),
    SlaKind.breached: ("#cf222e", "warning"),
    SlaKind.escalated: ("#a40e26", "warning"),
    SlaKind.met: ("#1a7f37", "info"),
    SlaKind.retracted: ("#656d76", "comment"),
}


@dataclass(frozen=True)
class EventView:
    id: str
    kind: str
    kind_label: str
    ticket_id: str
    subject: str
    url: str | None
    target: str
    target_label: str
    policy: str
    customer_tier: str | None
    priority: str | None
    priority_label: str
    assignee: str | None
    assignee_label: str
    group: str | None
    channel: str | None
    level: int | None
    timing: str  # "overdue by 5m" / "due in 10m" / "due 2026-11-23 09:30"
    overdue_seconds: float | None
    repeat: int
    detected_late: bool
    color: str
    wecom_color: str
    occurred_at: datetime
    deadline: datetime | None


@dataclass(frozen=True)
class MessageView:
    receiver: str
    language: str
    events: tuple[EventView, ...]
    now: datetime
    now_text: str
    title: str
    summary: str
    footer: str
    via: str


def _safe_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.hostname else None


def _clip(text: str | None, limit: int = SUBJECT_MAX) -> str:
    text = " ".join((text or "").split())  # no newlines: one event stays one block
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z").strip()


def event_view(notice: Notice, language: str, zone: ZoneInfo, now: datetime) -> EventView:
    e = notice.event
    t = partial(translate, language)
    overdue = None
    if e.kind == SlaKind.warning:
        if e.deadline is not None and e.deadline > now:
            timing = t("due_in", duration=humanize(e.deadline - now, language))
        elif e.fraction is not None:
            timing = t("warn_fraction", percent=round(e.fraction * 100))
        else:
            timing = t("due_at", deadline=_local(e.deadline, zone)) if e.deadline else ""
    elif e.kind in (SlaKind.breached, SlaKind.escalated):
        if e.deadline is not None:
            overdue = max((now - e.deadline).total_seconds(), 0.0)
        else:
            overdue = max(e.elapsed_seconds - e.target_seconds, 0.0)
        timing = t("overdue_by", duration=humanize(overdue, language))
    else:
        timing = t("due_at", deadline=_local(e.deadline, zone)) if e.deadline else ""
    color, wecom = _COLORS[e.kind]
    return EventView(
        id=e.id,
        kind=e.kind.value,
        kind_label=t(f"kind.{e.kind.value}"),
        ticket_id=e.ticket_id,
        subject=_clip(e.subject),
        url=_safe_url(e.url),
        target=e.target.value,
        target_label=t(f"target.{e.target.value}"),
        policy=e.policy,
        customer_tier=_clip(e.customer_tier, 64) or None,
        priority=e.priority,
        priority_label=t(f"priority.{e.priority}") if e.priority else "-",
        assignee=e.assignee,
        assignee_label=_clip(e.assignee, 64) or t("unassigned"),
        group=e.group,
        channel=e.channel,
        level=e.level if e.kind == SlaKind.escalated else None,
        timing=timing,
        overdue_seconds=overdue,
        repeat=notice.repeat,
        detected_late=e.detected_late,
        color=color,
        wecom_color=wecom,
        occurred_at=e.occurred_at,
        deadline=e.deadline,
    )


def message_view(notices: Sequence[Notice], receiver: Receiver, now: datetime) -> MessageView:
    language = receiver.language
    zone = ZoneInfo(receiver.timezone)
    events = tuple(event_view(n, language, zone, now) for n in notices)
    counts = Counter(n.event.kind for n in notices)
    sep = translate(language, "list_sep")
    summary = sep.join(
        translate(language, f"summary.{kind.value}", n=counts[kind])
        for kind in KIND_ORDER
        if counts[kind]
    )
    now_text = _local(now, zone)
    original = next((n.via for n in notices if n.via), None)
    via = translate(language, "via", receiver=receiver.name, original=original) if original else ""
    view = MessageView(
        receiver=receiver.name,
        language=language,
        events=events,
        now=now,
        now_text=now_text,
        title="",
        summary=summary,
        footer=translate(language, "footer", receiver=receiver.name, now=now_text),
        via=via,
    )
    return view


_MD_SPECIAL = re.compile(r"([\\`*_\[\]])")


def escape_markdown(text: object) -> str:
    """Backslash-escape emphasis and link syntax; angle brackets become look-alikes,
    because WeCom and DingTalk render some HTML (``<font>``) and ignore escapes there."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("<", "‹").replace(">", "›")


def escape_slack(text: object) -> str:
    """Slack mrkdwn control characters; also defuses <!channel>-style mentions."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote_url(url: object) -> str:
    """Keep a URL intact as a link target in markdown and Slack: encode what ends a link."""
    return quote(str(url), safe=":/?#[]@!$&'*+,;=%-._~")


class Renderer:
    """Renders the message parts; one per process (templates are compiled once)."""

    def __init__(self, directory: Path | None = None) -> None:
        paths = [str(directory)] if directory else []
        paths.append(str(BUILTIN))
        common = {
            "loader": FileSystemLoader(paths),
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self._text = ImmutableSandboxedEnvironment(autoescape=False, **common)
        self._html = ImmutableSandboxedEnvironment(autoescape=True, **common)
        for env in (self._text, self._html):
            env.filters["md"] = escape_markdown
            env.filters["md_url"] = quote_url
            env.filters["slack"] = escape_slack
            env.filters["slack_url"] = quote_url
            env.filters["humanize"] = humanize

    def _context(self, view: MessageView, **extra: object) -> dict[str, object]:
        context: dict[str, object] = {
            "t": partial(translate, view.language),
            "events": view.events,
            "receiver": view.receiver,
            "language": view.language,
            "now": view.now,
            "now_text": view.now_text,
            "summary": view.summary,
            "footer": view.footer,
            "via": view.via,
        }
        context.update(extra)
        return context

    def title(self, view: MessageView) -> str:
        text = self._text.get_template("title.j2").render(self._context(view))
        return " ".join(text.split())

    def text(self, view: MessageView) -> str:
        return self._render(self._text, "text.j2", view, title=self.title(view)).strip() + "\n"

    def html(self, view: MessageView) -> str:
        return self._render(self._html, "html.j2", view, title=self.title(view))

    def markdown(self, view: MessageView, flavor: str) -> str:
        """``flavor``: dingtalk (blank-line breaks), wecom (font colours), feishu (lark_md)."""
        rule = "---" if flavor == "dingtalk" else ""
        text = self._render(
            self._text, "markdown.j2", view, title=self.title(view), flavor=flavor, rule=rule
        )
        if flavor == "dingtalk":
            # DingTalk joins single newlines into one paragraph; give every line its own.
            text = re.sub(r"(?<!\n)\n(?!\n)", "\n\n", text)
        return re.sub(r"\n{3,}", "\n\n", text).strip()

    def slack_event(self, view: MessageView, index: int) -> str:
        return self._render(self._text, "slack_event.j2", view, e=view.events[index]).strip()

    def teams_event(self, view: MessageView, index: int) -> str:
        return self._render(self._text, "teams_event.j2", view, e=view.events[index]).strip()

    def console(self, view: MessageView, index: int) -> str:
        line = self._render(self._text, "console.j2", view, e=view.events[index])
        return " ".join(line.split())

    # -- scheduled reports (services/notifier/reports.py)
    def _report_context(self, report: ReportView, **extra: object) -> dict[str, object]:
        zone = report.period_start.tzinfo
        return {
            "t": partial(translate, report.language),
            "r": report,
            "language": report.language,
            "period_text": translate(
                report.language,
                "report.period",
                start=report.period_start.strftime("%Y-%m-%d %H:%M"),
                end=report.period_end.strftime("%Y-%m-%d %H:%M"),
                zone=str(zone),
            ),
            **extra,
        }

    def report_text(self, report: ReportView) -> str:
        template = self._text.get_template("report_text.j2")
        return template.render(self._report_context(report)).strip() + "\n"

    def report_html(self, report: ReportView) -> str:
        return self._html.get_template("report_html.j2").render(self._report_context(report))

    def report_markdown(self, report: ReportView, flavor: str) -> str:
        """The chat summary; ``flavor``: dingtalk, wecom, feishu, slack or teams."""
        esc = escape_slack if flavor == "slack" else escape_markdown
        template = self._text.get_template("report_markdown.j2")
        text = template.render(self._report_context(report, flavor=flavor, esc=esc))
        if flavor == "slack":
            text = text.replace("**", "*")
        if flavor == "dingtalk":
            text = re.sub(r"(?<!\n)\n(?!\n)", "\n\n", text)
        return re.sub(r"\n{3,}", "\n\n", text).strip()

    def _render(
        self, env: ImmutableSandboxedEnvironment, name: str, view: MessageView, **extra: object
    ) -> str:
        return env.get_template(name).render(self._context(view, **extra))
