"""The whole pipeline's decisions (NotifierCore), driven with chosen instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slawatch.services.notifier.core import NotifierCore
from slawatch.services.notifier.integrations import build_integration
from slawatch.services.notifier.matchers import Matchers
from slawatch.services.notifier.model import Status
from slawatch.services.notifier.stages.ratelimit import RateLimiter
from slawatch.services.notifier.stages.silences import Silence, SilenceSet
from slawatch.services.notifier.templates import Renderer
from tests.notifier.support import T0, routes, sla_event
from tests.notifier.test_stages import OfficeHours

S = timedelta(seconds=1)

CONFIG = """
receivers:
  - name: team
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 1h
    integrations:
      - {type: slack, url: "http://127.0.0.1:9/slack"}
      - {type: console}
  - name: managers
    send_resolved: true
    group_wait: 0s
    quiet_hours: {calendar: office, fallback: oncall}
    integrations: [{type: console}]
  - name: oncall
    group_wait: 0s
    integrations: [{type: console}]
routes:
  - {match: {kind: [warning, breached]}, receiver: team, continue: true}
  - {match: {level_gte: 1}, receiver: managers}
  - {match: {kind: [met, retracted]}, receiver: managers}
"""


def make_core(**kwargs) -> NotifierCore:
    return NotifierCore(routes(CONFIG), calendars={"office": OfficeHours()}, **kwargs)


def accept(core: NotifierCore, event, now):
    notices = core.expand(event, now)
    return notices, core.admit(event, notices, now)


def flush(core: NotifierCore, now):
    batches, changes = core.due(now)
    return {(b.receiver, b.integration): [n.notification_id for n in b.notices] for b in batches}, changes


NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)


def test_expand_routes_to_each_integration_of_each_receiver() -> None:
    core = make_core()
    notices = core.expand(sla_event("sla.breached"), NOON)
    assert [(n.receiver, n.integration) for n in notices] == [("team", "slack"), ("team", "console")]
    assert all(n.not_before == NOON for n in notices)
    escalation = core.expand(sla_event("sla.escalated", level=1), NOON)
    assert [(n.receiver, n.via) for n in escalation] == [("managers", None)]
    at_night = core.expand(sla_event("sla.escalated", level=1), NIGHT)
    assert [(n.receiver, n.via) for n in at_night] == [("oncall", "managers")]


def test_resolutions_only_when_they_change_a_breach_and_the_receiver_wants_them() -> None:
    core = make_core()
    assert core.expand(sla_event("sla.met", breached=False), NOON) == []
    assert [n.receiver for n in core.expand(sla_event("sla.met", breached=True), NOON)] == ["managers"]
    # at night the fallback (oncall) does not send resolutions: nothing
    assert core.expand(sla_event("sla.retracted"), NIGHT) == []


def test_breach_supersedes_pending_warning_and_late_warning_is_inhibited() -> None:
    core = make_core()
    warning = sla_event("sla.warning", fraction=0.8)
    warn_notices, changes = accept(core, warning, NOON)
    assert changes == [] and core.pending_count == 2
    _, changes = accept(core, sla_event("sla.breached"), NOON + 5 * S)
    assert sorted((c.notice.notification_id, c.status) for c in changes) == sorted(
        (n.notification_id, Status.inhibited) for n in warn_notices
    )
    assert all("superseded by T-1001/first_response/0/breached" == c.reason for c in changes)
    _, late = accept(core, sla_event("sla.warning", fraction=0.9), NOON + 6 * S)
    assert {c.status for c in late} == {Status.inhibited} and len(late) == 2
    batches, _ = flush(core, NOON + 35 * S)
    assert batches == {
        ("team", "slack"): ["T-1001/first_response/0/breached"],
        ("team", "console"): ["T-1001/first_response/0/breached"],
    }


def test_other_tickets_and_targets_are_not_inhibited() -> None:
    core = make_core()
    accept(core, sla_event("sla.warning", fraction=0.8), NOON)
    _, changes = accept(core, sla_event("sla.breached", ticket="T-2"), NOON)
    _, more = accept(core, sla_event("sla.breached", target="resolution"), NOON)
    assert changes == [] and more == [] and core.pending_count == 6


def test_escalation_supersedes_lower_level_even_in_flight() -> None:
    core = make_core()
    accept(core, sla_event("sla.escalated", level=1), NOON)
    batches, _ = flush(core, NOON)
    [level1] = batches[("managers", "console")]
    key = next(iter(core.inflight))
    assert core.is_live(key)
    _, changes = accept(core, sla_event("sla.escalated", level=2), NOON + S)
    assert [(c.notice.notification_id, c.status) for c in changes] == [(level1, Status.inhibited)]
    assert not core.is_live(key)  # the dispatcher drops it before the next attempt


def test_met_clears_pending_and_stops_reminders() -> None:
    core = make_core()
    breach = sla_event("sla.breached")
    accept(core, breach, NOON)
    batches, _ = flush(core, NOON + 30 * S)
    slack = [n for n in core.inflight.values() if n.integration == "slack"]
    reminders = core.complete(slack, Status.sent, NOON + 31 * S)
    assert [r.notification_id for r in reminders] == ["T-1001/first_response/0/breached#repeat-1"]
    assert core.schedule_reminders(reminders, NOON + 31 * S) == []
    assert core.next_wakeup() == NOON + 31 * S + timedelta(hours=1)
    met_notices, changes = accept(core, sla_event("sla.met", breached=True), NOON + 60 * S)
    # the reminder waiting for its hour, and the console notice still in flight
    assert sorted((c.notice.notification_id, c.notice.integration, c.status) for c in changes) == [
        ("T-1001/first_response/0/breached", "console", Status.cleared),
        ("T-1001/first_response/0/breached#repeat-1", "slack", Status.cleared),
    ]
    assert not any(core.is_live(k) for k in core.inflight)
    assert [n.receiver for n in met_notices] == ["managers"]
    # a reminder created after the close (its breach was in flight) is inhibited at once
    late = core.complete([n for n in core.inflight.values()], Status.sent, NOON + 61 * S)
    assert [c.status for c in core.schedule_reminders(late, NOON + 61 * S)] == [Status.inhibited]


def test_silences_apply_when_admitted_and_again_when_due() -> None:
    silences = SilenceSet()
    core = make_core(silences=silences)
    accept(core, sla_event(ticket="T-1"), NOON)
    silences.put(Silence("maint", Matchers.parse({"group": "billing"}), NOON, NOON + 3600 * S))
    _, changes = accept(core, sla_event(ticket="T-2"), NOON + S)
    assert {(c.notice.event.ticket_id, c.status, c.reason) for c in changes} == {
        ("T-2", Status.silenced, "silence maint")
    }
    batches, changes = flush(core, NOON + 30 * S)
    assert batches == {} and {c.notice.event.ticket_id for c in changes} == {"T-1"}
    assert core.pending_count == 0 and not core.inflight


def test_quiet_hours_hold_notices_until_the_calendar_opens() -> None:
    config = routes(
        """
        receivers:
          - {name: day, group_wait: 0s, quiet_hours: {calendar: office}, integrations: [{type: console}]}
        routes: [{receiver: day}]
        """
    )
    core = NotifierCore(config, calendars={"office": OfficeHours()})
    [held], _ = accept(core, sla_event(), NIGHT)
    assert held.not_before == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert flush(core, NIGHT + 3600 * S)[0] == {}
    assert core.next_wakeup() == held.not_before
    assert flush(core, held.not_before)[0] == {("day", "console"): [held.notification_id]}


def test_restore_reapplies_decisions_and_drops_unknown_receivers() -> None:
    core = make_core()
    warning = core.expand(sla_event("sla.warning", fraction=0.8), NOON)
    breach = core.expand(sla_event("sla.breached"), NOON + S)
    ghost = [n.__class__(**{**{f: getattr(n, f) for f in n.__slots__}, "receiver": "gone"}) for n in breach[:1]]
    changes = core.restore(breach + warning + ghost, NOON + 10 * S)
    statuses = sorted((c.notice.receiver, c.notice.event.kind.value, c.status.value) for c in changes)
    assert statuses == [
        ("gone", "sla.breached", "failed"),
        ("team", "sla.warning", "inhibited"),
        ("team", "sla.warning", "inhibited"),
    ]
    assert core.pending_count == 2


def test_storm_of_1000_breaches_becomes_few_messages_within_the_rate_limit() -> None:
    """1,000 breaches in one minute to one Slack webhook: grouped, split, paced, none lost."""
    config = routes(
        """
        receivers:
          - name: team
            group_wait: 30s
            group_interval: 5m
            integrations: [{type: slack, url: "http://127.0.0.1:9/slack"}]
        routes: [{receiver: team}]
        """
    )
    core = NotifierCore(config)
    slack = build_integration(config.receivers["team"].integrations[0], config.receivers["team"], Renderer(), None)
    limiter = RateLimiter(config.receivers["team"].integrations[0].rate_limits)
    expected: set[str] = set()
    messages: list[tuple[float, list[str]]] = []
    pending_messages = []
    for i in range(1000):
        at = T0 + timedelta(milliseconds=60 * i)  # 1,000 over 60 seconds
        event = sla_event(ticket=f"T-{i}", occurred_at=at)
        notices, changes = accept(core, event, at)
        assert changes == []
        expected.update(n.notification_id for n in notices)
        for batch in core.due(at)[0]:
            pending_messages.extend(slack.prepare(batch.notices, at))
    end = T0 + timedelta(minutes=30)
    now = T0
    while now < end:
        now += S
        for batch in core.due(now)[0]:
            pending_messages.extend(slack.prepare(batch.notices, now))
        while pending_messages:
            t_now = (now - T0).total_seconds()
            free_at = limiter.available_at(t_now)
            if free_at > t_now:
                break
            message = pending_messages.pop(0)
            limiter.record(free_at)
            messages.append((free_at, [n.notification_id for n in message.notices]))
            core.complete(message.notices, Status.sent, now)
    delivered = [nid for _, ids in messages for nid in ids]
    assert sorted(delivered) == sorted(expected)  # every breach, exactly once
    assert len(messages) <= 1000 // slack.max_events + 5  # grouped: ~50 messages, not 1,000
    times = [at for at, _ in messages]
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(times, times[1:], strict=False))  # Slack: 1/s
    assert max(times) < 6 * 60 + 60  # all out within the second interval plus pacing


def test_forget_drops_a_partitions_notices_and_restore_reclaims_in_flight_ones() -> None:
    from dataclasses import replace

    core = make_core()
    mine = [replace(n, shard=0) for n in core.expand(sla_event(ticket="T-0"), NOON)]
    theirs = [replace(n, shard=1) for n in core.expand(sla_event(ticket="T-1"), NOON)]
    core.admit(mine[0].event, mine, NOON)
    core.admit(theirs[0].event, theirs, NOON)
    batches, _ = core.due(NOON + 31 * S)  # both groups in flight now
    in_flight = {n.key for b in batches for n in b.notices}
    assert {n.key for n in mine + theirs} == in_flight
    late = [replace(n, shard=1) for n in core.expand(sla_event("sla.warning", ticket="T-1", target="resolution", fraction=0.5), NOON)]
    core.admit(late[0].event, late, NOON + 32 * S)
    assert core.pending_count == len(late)

    dropped = core.forget([1])
    assert {n.key for n in dropped} == {n.key for n in theirs + late}
    assert core.pending_count == 0  # the held warning is gone (still queued in the log)
    assert all(core.is_live(n.key) for n in mine)
    assert not any(core.is_live(n.key) for n in theirs)  # lanes skip them before retrying

    # partition 1 comes straight back: in-flight ones are kept, not queued a second time
    assert core.restore(theirs + late, NOON + 40 * S) == []
    assert all(core.is_live(n.key) for n in theirs)
    assert core.pending_count == len(late)
