"""States stored in format 1 by the engine before its fields had names still load, say the
same and carry on the same; written back they are format 2, and load from it to the same.

fixtures/format1.json was written by the engine at 825bb8f (the script that made it is in
commit 634b4a4, tests/engine/fixtures/make_format1.py; it read that engine's positional
ledger rows, so it does not run on a later one): per case a ticket history under
tests/engine/helpers.py's policy file, the blob that engine stored, and what it said about
the stored state - describe() and facts() at ``now``, the met/breached counts the monitor
derived from its ledger, next_due(), and the SLA events a later advance() and a later
event produced."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import zstandard

from slawatch.shared.engine import (
    FORMAT_VERSION,
    advance,
    apply,
    describe,
    deserialise,
    facts,
    next_due,
    serialise,
)
from slawatch.shared.events import parse_event
from slawatch.shared.sla_events import parse_sla_event
from tests.engine.helpers import policies

PS = policies()
FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "format1.json").read_text())
CASES = FIXTURES["cases"]


def _records(out: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(record.to_json()) for record in out]


def _described(state: Any, now: Any) -> dict[str, Any]:  # noqa: ANN401
    """describe() as the old engine said it: without ``estimated`` (added with the calendar
    coverage guard; False for every target here, no coverage check having run)."""
    out = describe(state, now, PS)
    for target in out["targets"]:
        assert target.pop("estimated", False) is False
    return out


def _blob(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["blob"])


def _counts(state: Any) -> dict[str, int]:  # noqa: ANN401
    got = facts(state)
    return {"targets_met": got["targets_met"], "targets_breached": got["targets_breached"]}


def test_the_fixtures_are_format_1_from_the_old_engine() -> None:
    assert FIXTURES["format"] == 1 and FIXTURES["engine"] == "825bb8f"
    assert FORMAT_VERSION == 2  # what is written now
    assert all(_blob(case)[:1] in (b"[", b"x") for case in CASES)  # JSON, or zlib of it
    assert len(CASES) >= 20 and any(case["compressed"] for case in CASES)
    assert any(case["counts"]["targets_breached"] for case in CASES)
    assert any(
        o["kind"] == "sla.retracted" for case in CASES for o in case.get("apply", {}).get("out", ())
    )


# What the engine says beyond the old engine (issue 13): added keys, the old ones unchanged.
NEW_FACTS = {
    "agent_work_business_ms",
    "agent_work_calendar_ms",
    "requester_wait_business_ms",
    "requester_wait_calendar_ms",
    "tags",
}
NEW_DESCRIBE = {"group_cycles", "work_time"}


def _old_keys(got: dict[str, Any], old: dict[str, Any], added: set[str]) -> dict[str, Any]:
    assert set(got) - set(old) == added, "only the documented keys are new"
    return {key: got[key] for key in old}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_a_format_1_state_loads_and_says_what_the_old_engine_said(case: dict[str, Any]) -> None:
    blob = _blob(case)
    now = parse_event({**case["events"][0], "occurred_at": case["now"]}).occurred_at
    state = deserialise(blob, PS)
    # facts gained customer_id and handle_seconds (#14): an old state has neither
    expected = {**case["facts"], **case["counts"], "customer_id": None, "handle_seconds": 0.0}
    if state.fingerprint == PS.fingerprint:
        written = serialise(state)  # written back: format 2, read back to the same state
        assert (
            zstandard.ZstdDecompressor().decompress(written)[:1] == b"\x02"
            if written[:4] == b"\x28\xb5\x2f\xfd"
            else written[:1] == b"\x02"
        )
        assert _same(deserialise(written, PS), state)
        assert serialise(deserialise(written, PS)) == written
    else:  # its policy file is not loaded here: clocks and "why" wait for a recompute
        expected["why"] = None
    assert _old_keys(facts(state), expected, NEW_FACTS) == expected
    assert _old_keys(_described(state, now), case["describe"], NEW_DESCRIBE) == case["describe"]
    if "next_due" in case:
        due = next_due(state)
        assert (None if due is None else due.isoformat()) == case["next_due"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_a_format_1_state_carries_on_as_the_old_engine_did(case: dict[str, Any]) -> None:
    later = parse_event({**case["events"][0], "occurred_at": case["advance"]["to"]}).occurred_at
    state, fired = advance(deserialise(_blob(case), PS), later, PS)
    assert _records(fired) == case["advance"]["out"]
    old = case["advance"]["describe"]
    assert _old_keys(_described(state, later), old, NEW_DESCRIBE) == old
    assert _counts(state) == case["advance"]["counts"]
    for record in fired:
        assert parse_sla_event(record.to_json()) == record.to_event()
    if "apply" in case:
        state, produced = apply(
            deserialise(_blob(case), PS), parse_event(case["apply"]["event"]), PS
        )
        assert _records(produced) == case["apply"]["out"]
        old = case["apply"]["describe"]
        assert _old_keys(_described(state, later), old, NEW_DESCRIBE) == old
        assert _counts(state) == case["apply"]["counts"]


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if "signatures" not in c["name"] and "another" not in c["name"]],
    ids=lambda case: case["name"],
)
def test_the_same_events_store_what_the_old_engines_state_writes_back(
    case: dict[str, Any],
) -> None:
    """Computed afresh from the same events (the two altered cases aside: one had its
    signatures stripped, one was computed under another policy file), a state is the one
    the old engine stored, and stores the same format-2 bytes as it does once loaded."""
    state = None
    for raw in case["events"]:
        state, _ = apply(state, parse_event(raw), PS)
    assert state is not None
    now = parse_event({**case["events"][0], "occurred_at": case["now"]}).occurred_at
    state, _ = advance(state, now, PS)
    assert serialise(state) == serialise(deserialise(_blob(case), PS))
    assert _same(state, deserialise(_blob(case), PS))


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_a_format_1_state_written_as_format_2_carries_on_the_same(case: dict[str, Any]) -> None:
    """Loaded from format 1 or from the format 2 it is written back as, a state emits the
    same on the same later calls."""
    later = parse_event({**case["events"][0], "occurred_at": case["advance"]["to"]}).occurred_at
    old = deserialise(_blob(case), PS)
    new = deserialise(serialise(deserialise(_blob(case), PS)), PS)
    assert _same(old, new)
    old, old_fired = advance(old, later, PS)
    new, new_fired = advance(new, later, PS)
    assert _records(new_fired) == _records(old_fired) and _same(old, new)
    if "apply" in case:
        event = parse_event(case["apply"]["event"])
        old, old_out = apply(old, event, PS)
        new, new_out = apply(new, event, PS)
        assert _records(new_out) == _records(old_out) and _same(old, new)


# Every State field a stored state carries (the rest are caches or the call in hand).
_STORED = (
    "ticket_id", "fingerprint", "log", "event_hashes", "horizon", "projected_until", "ledger",
    "created_at", "channel", "priority", "customer_tier", "customer_id", "group", "assignee",
    "tags", "url", "subject", "status", "status_history", "tag_history", "first_reply_at",
    "public_agent_replies", "solved_at", "csat", "nps", "handle_ms", "policy_id",
    "first_response_done", "first_response_ms", "resolution_ms", "next_response_cycle",
    "next_response_started_at", "periodic_update_cycle", "periodic_update_started_at",
    "ola_groups", "last_met",
)  # fmt: skip


def _same(a: Any, b: Any) -> bool:  # noqa: ANN401
    """Two states hold the same: every stored field, each clock's, the log's entries."""
    for name in _STORED:
        x, y = getattr(a, name), getattr(b, name)
        if name == "log":
            x = [(e.at, e.hashed, e.kind, e.fields) for e in x]
            y = [(e.at, e.hashed, e.kind, e.fields) for e in y]
        assert x == y, name
    assert a.clocks.keys() == b.clocks.keys()
    for target, clock in a.clocks.items():
        other = b.clocks[target]
        for name in ("cycle", "cycle_start", "checkpoint", "counted_ms", "running",
                     "next_threshold", "met", "times_met", "breached_at"):  # fmt: skip
            assert getattr(clock, name) == getattr(other, name), (target, name)
        assert clock.spec is other.spec
    assert (a.last_entry is None) == (b.last_entry is None)
    if a.last_entry is not None:
        assert a.last_entry.at == b.last_entry.at and a.last_entry.hashed == b.last_entry.hashed
    return True
