"""Acknowledgements in the pipeline's decisions (NotifierCore + the repeat stage)."""

from __future__ import annotations

from datetime import timedelta

from slawatch.services.notifier.model import Status
from slawatch.services.notifier.stages.repeat import Acknowledgement, Acknowledgements
from tests.notifier.support import sla_event
from tests.notifier.test_core import NOON, S, accept, flush, make_core


def ack(ticket: str = "T-1001", target: str = "first_response", cycle: int = 0, **kw):
    return Acknowledgement(
        id=kw.pop("id", "a1"),
        ticket_id=ticket,
        target=target,
        cycle=cycle,
        acknowledged_by="li.na",
        acknowledged_at=NOON,
        **kw,
    )


def sent_breach(core):
    accept(core, sla_event("sla.breached"), NOON)
    flush(core, NOON + 30 * S)
    slack = [n for n in core.inflight.values() if n.integration == "slack"]
    return core.complete(slack, Status.sent, NOON + 31 * S)


def test_a_waiting_reminder_of_an_acknowledged_breach_is_not_sent() -> None:
    core = make_core()
    reminders = sent_breach(core)
    assert core.schedule_reminders(reminders, NOON + 31 * S) == []
    core.acks.put(ack())
    batches, changes = flush(core, NOON + 31 * S + timedelta(hours=1, minutes=1))
    assert ("team", "slack") not in batches
    assert [(c.notice.notification_id, c.status, c.reason) for c in changes] == [
        ("T-1001/first_response/0/breached#repeat-1", Status.acknowledged, "acknowledged by li.na")
    ]


def test_no_next_reminder_once_acknowledged_and_restored_reminders_stop_too() -> None:
    core = make_core(acks=Acknowledgements.of([ack()]))
    reminders = sent_breach(core)
    assert reminders == []
    other = make_core()
    pending = sent_breach(other)
    other.acks.put(ack())
    [change] = other.schedule_reminders(pending, NOON + 32 * S)
    assert change.status is Status.acknowledged


def test_acknowledgement_is_per_sla_clock_and_does_not_stop_breaches_or_escalations() -> None:
    core = make_core(acks=Acknowledgements.of([ack(target="resolution")]))
    assert [r.notification_id for r in sent_breach(core)] == [
        "T-1001/first_response/0/breached#repeat-1"
    ]
    acked = make_core(acks=Acknowledgements.of([ack()]))
    _, changes = accept(acked, sla_event("sla.escalated", level=1), NOON)
    batches, dropped = flush(acked, NOON)
    assert changes == [] and dropped == [] and batches[("managers", "console")]


def test_withdrawn_acknowledgements_do_not_stand() -> None:
    withdrawn = ack(withdrawn_at=NOON + S, withdrawn_by="li.na")
    assert len(Acknowledgements.of([withdrawn])) == 0
    acks = Acknowledgements.of([ack()])
    acks.put(withdrawn)
    assert len(acks) == 0
    acks.put(ack(id="a2"))
    acks.remove(ack(id="a1"))  # another id: the standing one stays
    assert len(acks) == 1
