"""The engine's output: an SLA event as the engine decides it, before it becomes a message.

Why not the ``SlaEvent`` model directly: building a pydantic model (24 fields, two
datetimes) cost more than deciding the event - about a third of the engine's time, with
~0.9 SLA events per ticket event. A record keeps plain slots (instants as epoch ms, the
ticket's attributes as one tuple) and converts at the edge: ``to_event()`` gives the
``SlaEvent`` model, ``to_json()`` the bytes ``dump_sla_event`` would write for it (the
monitor's outbox goes straight from record to bytes). Reading a record looks like reading
the model: the same attribute names give the same values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic_core import to_json

from slawatch.shared.engine.calendar import from_ms, iso_ms
from slawatch.shared.sla_events import SlaEvent, SlaKind, Target, sla_event_id

_TARGETS = {t.value: t for t in Target}
_KIND_VALUES: dict[str, str] = {k: k.value for k in SlaKind}  # a member's plain str
_FIELDS = frozenset(SlaEvent.model_fields)
_new_object = object.__new__
_set = object.__setattr__

# (priority, customer_tier, channel, group, assignee, tags, url, subject)
Attributes = tuple[
    str, str | None, str | None, str | None, str | None, tuple[str, ...], str | None, str | None
]


class SlaRecord:
    __slots__ = (
        "kind",
        "ticket_id",
        "target_name",
        "policy",
        "cycle",
        "at_ms",
        "deadline_ms",
        "elapsed_ms",
        "target_ms",
        "fraction",
        "level",
        "breached",
        "revision",
        "retracts",
        "detected_late",
        "attributes",
    )

    def __init__(
        self,
        *,
        kind: SlaKind,
        ticket_id: str,
        target_name: str,
        policy: str,
        cycle: int,
        at_ms: int,
        deadline_ms: int | None,
        elapsed_ms: int,
        target_ms: int,
        attributes: Attributes,
        fraction: float | None = None,
        level: int | None = None,
        breached: bool | None = None,
        revision: int = 0,
        retracts: str | None = None,
        detected_late: bool = False,
    ) -> None:
        """Keyword arguments only: a record has fifteen fields, most of them alike (ids,
        instants, counts), and a positional call is where two of them get swapped."""
        self.kind = kind
        self.ticket_id = ticket_id
        self.target_name = target_name
        self.policy = policy
        self.cycle = cycle
        self.at_ms = at_ms
        self.deadline_ms = deadline_ms
        self.elapsed_ms = elapsed_ms
        self.target_ms = target_ms
        self.fraction = fraction
        self.level = level
        self.breached = breached
        self.revision = revision
        self.retracts = retracts
        self.detected_late = detected_late
        self.attributes = attributes

    # ------------------------------------------------------------ read like an SlaEvent
    @property
    def id(self) -> str:
        return sla_event_id(
            self.ticket_id,
            self.target_name,
            self.cycle,
            self.kind,
            level=self.level,
            fraction=self.fraction,
            revision=self.revision,
        )

    @property
    def target(self) -> Target:
        return _TARGETS[self.target_name]

    @property
    def occurred_at(self) -> datetime:
        return from_ms(self.at_ms)

    @property
    def deadline(self) -> datetime | None:
        return None if self.deadline_ms is None else from_ms(self.deadline_ms)

    @property
    def elapsed_seconds(self) -> float:
        return self.elapsed_ms / 1000

    @property
    def target_seconds(self) -> float:
        return self.target_ms / 1000

    @property
    def priority(self) -> str:
        return self.attributes[0]

    @property
    def customer_tier(self) -> str | None:
        return self.attributes[1]

    @property
    def channel(self) -> str | None:
        return self.attributes[2]

    @property
    def group(self) -> str | None:
        return self.attributes[3]

    @property
    def assignee(self) -> str | None:
        return self.attributes[4]

    @property
    def tags(self) -> list[str]:
        return list(self.attributes[5])

    @property
    def url(self) -> str | None:
        return self.attributes[6]

    @property
    def subject(self) -> str | None:
        return self.attributes[7]

    # ------------------------------------------------------------ conversions
    def flagged_late(self) -> SlaRecord:
        """A copy marked ``detected_late`` (the monitor found the condition only after it)."""
        return SlaRecord(
            kind=self.kind,
            ticket_id=self.ticket_id,
            target_name=self.target_name,
            policy=self.policy,
            cycle=self.cycle,
            at_ms=self.at_ms,
            deadline_ms=self.deadline_ms,
            elapsed_ms=self.elapsed_ms,
            target_ms=self.target_ms,
            attributes=self.attributes,
            fraction=self.fraction,
            level=self.level,
            breached=self.breached,
            revision=self.revision,
            retracts=self.retracts,
            detected_late=True,
        )

    def fields(self) -> dict[str, Any]:
        """Every SlaEvent field, in the model's order, with the model's Python values."""
        pri, tier, chan, grp, asg, tags, url, subj = self.attributes
        deadline = self.deadline_ms
        return {
            "id": self.id,
            "kind": self.kind,
            "ticket_id": self.ticket_id,
            "target": _TARGETS[self.target_name],
            "policy": self.policy,
            "cycle": self.cycle,
            "deadline": None if deadline is None else from_ms(deadline),
            "occurred_at": from_ms(self.at_ms),
            "elapsed_seconds": self.elapsed_ms / 1000,
            "target_seconds": self.target_ms / 1000,
            "fraction": self.fraction,
            "level": self.level,
            "breached": self.breached,
            "retracts": self.retracts,
            "detected_late": self.detected_late,
            "priority": pri,
            "customer_tier": tier,
            "channel": chan,
            "group": grp,
            "assignee": asg,
            "tags": list(tags),
            "url": url,
            "subject": subj,
        }

    def to_event(self) -> SlaEvent:
        """The SlaEvent model, built without re-validation: every value comes from validated
        ticket events and the compiled policy set (tests validate every emitted record)."""
        event = _new_object(SlaEvent)
        _set(event, "__dict__", self.fields())
        _set(event, "__pydantic_fields_set__", set(_FIELDS))
        _set(event, "__pydantic_extra__", None)
        _set(event, "__pydantic_private__", None)
        return event

    def to_json(self) -> bytes:
        """Exactly ``dump_sla_event(self.to_event())`` (tested byte for byte), without the
        model: fields in model order, None left out, instants as ISO 8601 with ``Z``.

        Built straight from the slots, the enums as their plain values: pydantic-core
        encodes a str-enum member ~3x slower than a str, and the datetimes ``fields()``
        builds were most of the cost (bench: 8.9 -> ~3 us a record)."""
        pri, tier, chan, grp, asg, tags, url, subj = self.attributes
        doc: dict[str, Any] = {
            "id": self.id,
            "kind": _KIND_VALUES[self.kind],
            "ticket_id": self.ticket_id,
            "target": self.target_name,
            "policy": self.policy,
            "cycle": self.cycle,
        }
        if self.deadline_ms is not None:
            doc["deadline"] = iso_ms(self.deadline_ms, "Z")
        doc["occurred_at"] = iso_ms(self.at_ms, "Z")
        doc["elapsed_seconds"] = self.elapsed_ms / 1000
        doc["target_seconds"] = self.target_ms / 1000
        if self.fraction is not None:
            doc["fraction"] = self.fraction
        if self.level is not None:
            doc["level"] = self.level
        if self.breached is not None:
            doc["breached"] = self.breached
        if self.retracts is not None:
            doc["retracts"] = self.retracts
        doc["detected_late"] = self.detected_late
        for key, value in (
            ("priority", pri), ("customer_tier", tier), ("channel", chan), ("group", grp),
            ("assignee", asg),
        ):  # fmt: skip
            if value is not None:
                doc[key] = value
        doc["tags"] = list(tags)
        if url is not None:
            doc["url"] = url
        if subj is not None:
            doc["subject"] = subj
        return to_json(doc)  # pydantic-core's encoder: the model's own, ~4x the stdlib's

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SlaRecord):
            return self.fields() == other.fields()
        if isinstance(other, SlaEvent):
            return self.to_event() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SlaRecord({self.id!r}, at={self.occurred_at.isoformat()})"
