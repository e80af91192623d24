"""Message phrases in English and Simplified Chinese.

Templates compose messages from these phrases (``t('overdue_by', duration=...)``) so
both languages share one layout and a new phrase is added in one place. Each language
states whole phrases, with placeholders, rather than words glued together, so that word
order stays natural in both.
"""

from __future__ import annotations

from datetime import timedelta

CATALOG: dict[str, dict[str, str]] = {
    "en": {
        "kind.sla.warning": "SLA at risk",
        "kind.sla.breached": "SLA breached",
        "kind.sla.escalated": "SLA escalated",
        "kind.sla.met": "SLA met after breach",
        "kind.sla.retracted": "SLA breach retracted",
        "target.first_response": "first response",
        "target.next_response": "next response",
        "target.periodic_update": "periodic update",
        "target.resolution": "resolution",
        "target.group_ownership": "group ownership (OLA)",
        "target.group_response": "group response (OLA)",
        "priority.urgent": "urgent",
        "priority.high": "high",
        "priority.normal": "normal",
        "priority.low": "low",
        "ticket": "Ticket",
        "target": "Target",
        "customer_tier": "Customer tier",
        "priority": "Priority",
        "assignee": "Assignee",
        "unassigned": "unassigned",
        "group": "Group",
        "policy": "Policy",
        "overdue": "Overdue",
        "overdue_by": "overdue by {duration}",
        "due_in": "due in {duration}",
        "due_at": "due {deadline}",
        "warn_fraction": "{percent}% of the target used",
        "level": "Escalation level",
        "level_n": "level {level}",
        "reminder": "reminder {n}",
        "detected_late": "detected late",
        "open_ticket": "Open ticket",
        "title.one": "[{kind}] {ticket} · {target}",
        "title.many": "[slawatch] {count} SLA events: {summary}",
        "summary.sla.warning": "{n} at risk",
        "summary.sla.breached": "{n} breached",
        "summary.sla.escalated": "{n} escalated",
        "summary.sla.met": "{n} met",
        "summary.sla.retracted": "{n} retracted",
        "via": "sent to {receiver} because {original} is outside its hours",
        "footer": "slawatch · {receiver} · {now}",
        "list_sep": ", ",
        "report.title.day": "[slawatch] Daily SLA report {name}: {period}",
        "report.title.week": "[slawatch] Weekly SLA report {name}: {period}",
        "report.headline": "{tickets} {tickets_unit} in {groups} {groups_unit}; SLA met {met} ({targets_met} targets met, {breached} breached)",
        "report.line": "{group}: {tickets} {tickets_unit}, SLA met {met}",
        "report.more": "... and {n} more {n_unit} (see the e-mail or the CSV)",
        "unit.ticket.one": "ticket",
        "unit.ticket.other": "tickets",
        "unit.group.one": "group",
        "unit.group.other": "groups",
        "report.hidden": "{n} more groups are in the CSV attachment.",
        "report.empty": "No tickets were created in this period.",
        "report.period": "Tickets created {start} to {end} ({zone})",
        "report.col.policy": "Policy",
        "report.col.customer_tier": "Customer tier",
        "report.col.channel": "Channel",
        "report.col.priority": "Priority",
        "report.col.assignee": "Assignee",
        "report.col.group": "Group",
        "report.col.customer_id": "Customer",
        "report.col.tickets": "Tickets",
        "report.col.targets_met": "Targets met",
        "report.col.targets_breached": "Targets breached",
        "report.col.sla_met_pct": "SLA met",
        "report.col.first_response_p50_s": "First response p50",
        "report.col.first_response_p90_s": "First response p90",
        "report.col.resolution_p50_s": "Resolution p50",
        "report.col.resolution_p90_s": "Resolution p90",
        "report.col.solved": "Solved",
        "report.col.fcr_pct": "FCR",
        "report.col.csat_avg": "CSAT",
        "report.col.csat_responses": "CSAT answers",
        "report.col.nps": "NPS",
        "report.col.nps_responses": "NPS answers",
    },
    "zh": {
        "kind.sla.warning": "SLA 即将超时",
        "kind.sla.breached": "SLA 已超时",
        "kind.sla.escalated": "SLA 已升级",
        "kind.sla.met": "SLA 超时后已完成",
        "kind.sla.retracted": "SLA 超时已撤回",
        "target.first_response": "首次响应",
        "target.next_response": "再次响应",
        "target.periodic_update": "定期更新",
        "target.resolution": "解决",
        "target.group_ownership": "组处理时长（OLA）",
        "target.group_response": "组响应（OLA）",
        "priority.urgent": "紧急",
        "priority.high": "高",
        "priority.normal": "普通",
        "priority.low": "低",
        "ticket": "工单",
        "target": "目标",
        "customer_tier": "客户等级",
        "priority": "优先级",
        "assignee": "处理人",
        "unassigned": "未分配",
        "group": "组",
        "policy": "策略",
        "overdue": "超时",
        "overdue_by": "已超时 {duration}",
        "due_in": "剩余 {duration}",
        "due_at": "截止 {deadline}",
        "warn_fraction": "已用 {percent}% 时限",
        "level": "升级级别",
        "level_n": "第 {level} 级",
        "reminder": "第 {n} 次提醒",
        "detected_late": "延迟发现",
        "open_ticket": "打开工单",
        "title.one": "【{kind}】工单 {ticket} · {target}",
        "title.many": "【slawatch】{count} 条 SLA 事件：{summary}",
        "summary.sla.warning": "即将超时 {n}",
        "summary.sla.breached": "已超时 {n}",
        "summary.sla.escalated": "已升级 {n}",
        "summary.sla.met": "已完成 {n}",
        "summary.sla.retracted": "已撤回 {n}",
        "via": "{original} 当前为非工作时间，已转发给 {receiver}",
        "footer": "slawatch · {receiver} · {now}",
        "list_sep": "，",
        "report.title.day": "【slawatch】SLA 日报 {name}：{period}",
        "report.title.week": "【slawatch】SLA 周报 {name}：{period}",
        "report.headline": "共 {tickets} 张工单，{groups} 个分组；SLA 达成率 {met}（达成 {targets_met} 项，超时 {breached} 项）",
        "report.line": "{group}：{tickets} 张工单，SLA 达成率 {met}",
        "report.more": "……另有 {n} 个分组（见邮件或 CSV）",
        "report.hidden": "另有 {n} 个分组见 CSV 附件。",
        "report.empty": "本期没有新建工单。",
        "report.period": "统计 {start} 至 {end}（{zone}）创建的工单",
        "report.col.policy": "策略",
        "report.col.customer_tier": "客户等级",
        "report.col.channel": "渠道",
        "report.col.priority": "优先级",
        "report.col.assignee": "处理人",
        "report.col.group": "组",
        "report.col.customer_id": "客户",
        "report.col.tickets": "工单数",
        "report.col.targets_met": "达成目标",
        "report.col.targets_breached": "超时目标",
        "report.col.sla_met_pct": "SLA 达成率",
        "report.col.first_response_p50_s": "首次响应 p50",
        "report.col.first_response_p90_s": "首次响应 p90",
        "report.col.resolution_p50_s": "解决 p50",
        "report.col.resolution_p90_s": "解决 p90",
        "report.col.solved": "已解决",
        "report.col.fcr_pct": "首次解决率",
        "report.col.csat_avg": "满意度",
        "report.col.csat_responses": "满意度答复",
        "report.col.nps": "NPS",
        "report.col.nps_responses": "NPS 答复",
    },
}

_UNITS = {
    "en": (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)),
    "zh": (("天", 86400), ("小时", 3600), ("分钟", 60), ("秒", 1)),
}


def unit(language: str, noun: str, count: object) -> str:
    """The noun for ``count`` of it: "1 ticket", "2 tickets" (Chinese phrases use none)."""
    return translate(language, f"unit.{noun}.one" if count == 1 else f"unit.{noun}.other")


def translate(language: str, key: str, **values: object) -> str:
    phrases = CATALOG.get(language, CATALOG["en"])
    text = phrases.get(key)
    if text is None:
        text = CATALOG["en"].get(key, key)
    return text.format(**values) if values else text


def humanize(duration: timedelta | float, language: str) -> str:
    """``1h 5m`` / ``1小时5分钟``: the two largest units, never more (a glance, not a clock)."""
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    remaining = max(int(round(abs(seconds))), 0)
    units = _UNITS.get(language, _UNITS["en"])
    parts = []
    for label, size in units:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{label}")
        if len(parts) == 2:
            break
    if not parts:
        parts = [f"0{units[-1][0]}"]
    return ("" if language == "zh" else " ").join(parts)
