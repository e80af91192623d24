"""Each pipeline stage alone, with time passed in: no sleeping, no servers."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slawatch.services.notifier.matchers import MatcherError, Matchers
from slawatch.services.notifier.model import DeliveryResult, NoticeKey
from slawatch.services.notifier.providers import RateLimit
from slawatch.services.notifier.stages.grouping import Grouper, GroupTiming, Holding
from slawatch.services.notifier.stages.inhibit import Inhibitor, supersedes
from slawatch.services.notifier.stages.quiet_hours import place
from slawatch.services.notifier.stages.ratelimit import RateLimiter, SlidingWindow
from slawatch.services.notifier.stages.repeat import next_reminder
from slawatch.services.notifier.stages.retry import RetryPolicy
from slawatch.services.notifier.stages.silences import Silence, SilenceSet
from tests.notifier.support import T0, notice, routes, sla_event

S = timedelta(seconds=1)


# --- rate limiting ------------------------------------------------------------------


def test_sliding_window_allows_a_burst_then_waits_for_the_oldest() -> None:
    window = SlidingWindow(RateLimit(3, 60.0))
    for t in (0.0, 1.0, 2.0):
        assert window.available_at(t) == t
        window.record(t)
    assert window.available_at(3.0) == 60.0
    window.record(60.0)
    assert window.available_at(60.0) == 61.0


def test_limiter_combines_windows_and_pauses() -> None:
    limiter = RateLimiter([RateLimit(5, 1.0), RateLimit(100, 60.0)])
    t = 0.0
    sent = []
    for _ in range(120):
        t = limiter.available_at(t)
        limiter.record(t)
        sent.append(t)
    # 5/s: the 6th waits a second; 100/min: the 101st waits for the first to leave
    assert sent[5] == pytest.approx(1.0)
    assert sent[100] == pytest.approx(60.0)
    limiter.pause_until(500.0)
    assert limiter.available_at(100.0) == 500.0


@given(
    limits=st.lists(
        st.tuples(st.integers(1, 20), st.sampled_from([0.5, 1.0, 3.0, 60.0])), min_size=1, max_size=3
    ),
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=80),
)
def test_limiter_never_exceeds_any_window(limits, gaps) -> None:
    rate_limits = [RateLimit(c, p) for c, p in limits]
    limiter = RateLimiter(rate_limits)
    t, sent = 0.0, []
    for gap in gaps:
        t = limiter.available_at(t + gap)
        limiter.record(t)
        sent.append(t)
    for limit in rate_limits:
        for i, start in enumerate(sent):
            inside = [s for s in sent[i:] if s < start + limit.per_seconds - 1e-9]
            assert len(inside) <= limit.count


# --- retry --------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=1.0, cap_s=8.0, budget_s=1e9)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.backoff(attempt, rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2


def test_next_delay_rules() -> None:
    policy = RetryPolicy(max_attempts=4, base_s=1.0, cap_s=60.0, budget_s=100.0)
    rng = random.Random(1)
    busy = DeliveryResult.retryable("HTTP 503")
    assert policy.next_delay(1, 0, busy, rng) is not None
    assert policy.next_delay(4, 0, busy, rng) is None  # out of attempts
    assert policy.next_delay(1, 0, DeliveryResult.permanent("HTTP 400"), rng) is None
    throttled = DeliveryResult.retryable("HTTP 429", retry_after=30.0)
    delay = policy.next_delay(1, 0, throttled, rng)
    assert delay is not None and delay >= 30.0  # Retry-After is a floor
    assert policy.next_delay(1, 80, throttled, rng) is None  # would overrun the budget
    assert "gave up after 4 attempts" in policy.give_up_reason(4, busy)
    assert "budget" in policy.give_up_reason(2, busy)
    assert policy.give_up_reason(1, DeliveryResult.permanent("HTTP 400")).startswith("permanent")


# --- grouping -----------------------------------------------------------------------

TIMING = GroupTiming(group_wait=timedelta(seconds=30), group_interval=timedelta(minutes=5))


def test_group_waits_then_flushes_at_intervals() -> None:
    grouper = Grouper()
    first = notice(sla_event(ticket="T-1"))
    grouper.add(first, (), TIMING, T0)
    assert grouper.next_due() == T0 + 30 * S
    grouper.add(notice(sla_event(ticket="T-2")), (), TIMING, T0 + 10 * S)
    assert grouper.due(T0 + 29 * S) == []
    [batch] = grouper.due(T0 + 30 * S)
    assert [n.event.ticket_id for n in batch.notices] == ["T-1", "T-2"]
    # a newcomer right after a flush waits for the group interval, not group_wait
    grouper.add(notice(sla_event(ticket="T-3")), (), TIMING, T0 + 40 * S)
    assert grouper.next_due() == T0 + 30 * S + 5 * 60 * S
    assert len(grouper.due(T0 + 5 * 60 * S)) == 0
    [batch] = grouper.due(T0 + 330 * S)
    assert [n.event.ticket_id for n in batch.notices] == ["T-3"]
    # after a quiet interval the group is forgotten: the next notice waits group_wait again
    grouper.due(T0 + 700 * S)
    grouper.add(notice(sla_event(ticket="T-4")), (), TIMING, T0 + 701 * S)
    assert grouper.next_due() == T0 + 731 * S


def test_groups_are_per_receiver_integration_and_labels() -> None:
    grouper = Grouper()
    grouper.add(notice(sla_event(ticket="T-1"), "a", "slack"), ("gold",), TIMING, T0)
    grouper.add(notice(sla_event(ticket="T-2"), "a", "slack"), ("silver",), TIMING, T0)
    grouper.add(notice(sla_event(ticket="T-3"), "a", "email"), ("gold",), TIMING, T0)
    grouper.add(notice(sla_event(ticket="T-4"), "b", "slack"), ("gold",), TIMING, T0)
    batches = grouper.due(T0 + 30 * S)
    assert sorted((b.receiver, b.integration, b.group) for b in batches) == [
        ("a", "email", ("gold",)),
        ("a", "slack", ("gold",)),
        ("a", "slack", ("silver",)),
        ("b", "slack", ("gold",)),
    ]


def test_discard_removes_from_its_group() -> None:
    grouper = Grouper()
    n = notice(sla_event())
    grouper.add(n, (), TIMING, T0)
    assert grouper.get(n.key) == n
    assert grouper.discard(n.key) == n
    assert grouper.next_due() is None and grouper.due(T0 + 60 * S) == []


@given(st.lists(st.tuples(st.integers(0, 600), st.integers(0, 2)), max_size=200))
def test_every_notice_is_flushed_exactly_once(arrivals) -> None:
    grouper = Grouper()
    seen: list[NoticeKey] = []
    keys = set()
    for i, (second, group) in enumerate(sorted(arrivals)):
        at = T0 + second * S
        for batch in grouper.due(at):
            seen.extend(n.key for n in batch.notices)
        n = notice(sla_event(ticket=f"T-{i}"), integration=f"i{group}")
        keys.add(n.key)
        grouper.add(n, (), TIMING, at)
    for batch in grouper.due(T0 + 10_000 * S):
        seen.extend(n.key for n in batch.notices)
    assert sorted(seen) == sorted(keys)


def test_holding_releases_in_not_before_order() -> None:
    holding = Holding()
    a = replace(notice(sla_event(ticket="A")), not_before=T0 + 60 * S)
    b = replace(notice(sla_event(ticket="B")), not_before=T0 + 10 * S)
    holding.add(a)
    holding.add(b)
    assert holding.next_due() == T0 + 10 * S
    assert [n.event.ticket_id for n in holding.ready(T0 + 30 * S)] == ["B"]
    holding.discard(a.key)
    assert holding.next_due() is None and holding.ready(T0 + 90 * S) == []
    holding.add(replace(a, not_before=T0 + 120 * S))  # re-added later: old heap entry ignored
    assert holding.ready(T0 + 90 * S) == []
    assert len(holding.ready(T0 + 120 * S)) == 1


# --- inhibition ---------------------------------------------------------------------


def test_severity_order_and_supersession() -> None:
    warn50 = sla_event("sla.warning", fraction=0.5)
    warn80 = sla_event("sla.warning", fraction=0.8)
    breach = sla_event("sla.breached")
    esc1 = sla_event("sla.escalated", level=1)
    esc2 = sla_event("sla.escalated", level=2)
    chain = [warn50, warn80, breach, esc1, esc2]
    for i, weaker in enumerate(chain):
        for stronger in chain[i + 1 :]:
            assert supersedes(stronger, weaker)
            assert not supersedes(weaker, stronger)
    other_target = sla_event("sla.breached", target="resolution")
    assert not supersedes(other_target, warn50)
    assert not supersedes(sla_event("sla.met"), warn50)  # met clears, it does not supersede


def test_inhibitor_verdicts() -> None:
    inhibitor = Inhibitor()
    assert inhibitor.observe(sla_event("sla.breached")).supersedes
    late_warning = inhibitor.observe(sla_event("sla.warning", fraction=0.8))
    assert late_warning.inhibited and "stronger" in late_warning.reason
    assert inhibitor.observe(sla_event("sla.escalated", level=2)).supersedes
    assert inhibitor.observe(sla_event("sla.escalated", level=1)).inhibited
    assert inhibitor.is_stale(sla_event("sla.breached"))
    assert inhibitor.observe(sla_event("sla.met")).clears
    assert inhibitor.is_stale(sla_event("sla.escalated", level=2))  # reminders stop
    # after a close (reopened ticket): new alerts are news again
    assert not inhibitor.observe(sla_event("sla.warning", fraction=0.5)).inhibited
    assert inhibitor.observe(sla_event("sla.retracted")).clears


def test_inhibitor_memory_is_bounded() -> None:
    inhibitor = Inhibitor(capacity=10)
    for i in range(50):
        inhibitor.observe(sla_event(ticket=f"T-{i}"))
    assert len(inhibitor) == 10


# --- silences -----------------------------------------------------------------------


def test_silence_window_and_matchers() -> None:
    silence = Silence(
        "s1",
        Matchers.parse({"group": "billing", "receiver": "a"}, extra_fields=("receiver",)),
        T0,
        T0 + 3600 * S,
    )
    silences = SilenceSet.of([silence])
    event = sla_event()
    assert silences.match(event, "a", T0) == silence
    assert silences.match(event, "b", T0) is None
    assert silences.match(event, "a", T0 - S) is None
    assert silences.match(event, "a", T0 + 3600 * S) is None  # end is exclusive
    assert silences.match(sla_event(group="sales"), "a", T0) is None


def test_matchers_roundtrip_and_errors() -> None:
    m = Matchers.parse({"kind": ["breached"], "level_gte": 1}, {"ticket_id": "T-1.*"})
    assert Matchers.parse(m.describe()["match"], m.describe()["match_re"]) == m
    assert m.describe() == {"match": {"kind": ["sla.breached"], "level_gte": 1}, "match_re": {"ticket_id": "T-1.*"}}
    with pytest.raises(MatcherError) as info:
        Matchers.parse({"receiver": "a"})  # only silences may match receivers
    assert info.value.field == "receiver"
    with pytest.raises(MatcherError):
        Matchers.parse({"level_gte": 3, "level_lte": 1})
    assert Matchers.parse({}).empty


# --- quiet hours --------------------------------------------------------------------


class OfficeHours:
    """09:00-18:00 UTC every day: enough to test the stage without the engine."""

    def is_open(self, at: datetime) -> bool:
        return 9 <= at.astimezone(UTC).hour < 18

    def next_open(self, at: datetime) -> datetime:
        if self.is_open(at):
            return at
        day = at.astimezone(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
        return day if at < day else day + timedelta(days=1)


QUIET = """
receivers:
  - {name: team, quiet_hours: {calendar: office}, integrations: [{type: console}]}
  - {name: managers, quiet_hours: {calendar: office, fallback: oncall}, integrations: [{type: console}]}
  - {name: oncall, integrations: [{type: console}]}
routes: [{receiver: team}]
"""


def test_quiet_hours_hold_until_open_or_go_to_fallback() -> None:
    config = routes(QUIET)
    calendars = {"office": OfficeHours()}
    noon = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    night = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    assert place("team", config, calendars, noon).not_before == noon
    held = place("team", config, calendars, night)
    assert (held.receiver, held.not_before, held.via) == ("team", datetime(2026, 11, 24, 9, tzinfo=UTC), None)
    moved = place("managers", config, calendars, night)
    assert (moved.receiver, moved.not_before, moved.via) == ("oncall", night, "managers")
    # a calendar that is not loaded means no quiet hours (and a warning), never a lost alert
    assert place("team", config, {}, night).not_before == night


def test_engine_calendar_adapter_answers_quiet_hours() -> None:
    from slawatch.services.notifier.calendars import EngineCalendar
    from slawatch.shared.engine.calendar import Calendar, parse_interval

    engine = Calendar(
        "cn-support",
        "Asia/Shanghai",
        hours={d: [parse_interval("09:00-18:00")] for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    calendar = EngineCalendar(engine)
    friday_night = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
    assert not calendar.is_open(friday_night)
    assert calendar.next_open(friday_night) == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Mon 09:00
    monday = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert calendar.is_open(monday) and calendar.next_open(monday) == monday


# --- reminders ----------------------------------------------------------------------


def test_reminders_follow_repeat_interval_and_limit() -> None:
    config = routes(
        """
        receivers:
          - {name: r, repeat_interval: 1h, repeat_limit: 2, integrations: [{type: webhook, url: "http://127.0.0.1:9/"}]}
          - {name: quiet, repeat_interval: never, integrations: [{type: console}]}
        """
    )
    receiver = config.receivers["r"]
    sent = notice(sla_event())
    first = next_reminder(sent, receiver, T0)
    assert first is not None
    assert first.repeat == 1 and first.notification_id.endswith("#repeat-1")
    assert first.not_before == T0 + 3600 * S
    second = next_reminder(first, receiver, T0 + 3600 * S)
    assert second is not None
    assert second.repeat == 2
    assert next_reminder(second, receiver, T0 + 7200 * S) is None
    assert next_reminder(notice(sla_event("sla.warning", fraction=0.5)), receiver, T0) is None
    assert next_reminder(sent, config.receivers["quiet"], T0) is None
