"""Customer contracts: customer_id matching, validity windows read at ticket creation, the
checks of `slawatch policy check` (overlaps are problems, ends within 30 days warnings)."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slawatch.shared.engine import PolicyError, advance, describe, load_policies
from slawatch.shared.engine.cli import policy_main
from slawatch.shared.engine.contracts import expiring
from slawatch.shared.events import parse_event
from tests.engine.helpers import ev, ids, random_ticket, run, utc

CONTRACTS = """
version: 1
calendars:
  always: {timezone: UTC, always_open: true}
  shanghai: {timezone: Asia/Shanghai, always_open: true}
defaults: {calendar: always}
policies:
  - id: acme-2026
    match: {customer_id: [ACME, ACME-EU]}
    valid_from: 2026-01-01
    valid_until: 2026-06-30
    targets: {first_response: 1h, resolution: 8h}
  - id: acme-renewal
    match: {customer_id: ACME}
    valid_from: 2026-07-01
    targets: {first_response: 30m, resolution: 4h}
  - id: beta-cn
    match: {customer_id: [BETA]}
    calendar: shanghai
    valid_from: 2026-07-01
    targets: {first_response: 10m}
  - id: standard
    match: {}
    targets: {first_response: 4h, resolution: 3d}
"""


def contract_policies(text: str = CONTRACTS, source: str = "contracts.yaml"):  # noqa: ANN201
    return load_policies(source, text=text)


def problems(text: str, source: str = "contracts.yaml") -> list[tuple[int, str]]:
    with pytest.raises(PolicyError) as caught:
        load_policies(source, text=text)
    return [(p.line, p.message) for p in caught.value.problems]


def created(at: str, customer: str | None, ticket: str = "T1", **data: str):  # noqa: ANN201
    extra = {"customer_id": customer} if customer is not None else {}
    return ev("created", at, ticket=ticket, **extra, **data)


def test_customer_ids_and_windows_select_at_creation() -> None:
    ps = contract_policies()
    cases = [
        ("2025-12-31T23:59", "ACME", "standard"),  # before the contract
        ("2026-01-01T00:00", "ACME", "acme-2026"),  # valid_from: inclusive
        ("2026-06-30T23:59", "ACME-EU", "acme-2026"),  # valid_until: the whole day
        ("2026-07-01T00:00", "ACME-EU", "standard"),  # ACME-EU was not renewed
        ("2026-07-01T00:00", "ACME", "acme-renewal"),
        ("2026-03-01T00:00", "OTHER", "standard"),
        ("2026-03-01T00:00", None, "standard"),
    ]
    for at, customer, expected in cases:
        state, _ = run([created(at, customer)], ps)
        assert state.policy_id == expected, (at, customer)
    state, _ = run([created("2026-03-01T00:00", "ACME")], ps)
    assert state.why == {"customer_id": "ACME"}
    assert describe(state, utc("2026-03-01T00:10"))["why"] == {"customer_id": "ACME"}


def test_a_date_is_a_day_of_the_policys_calendar() -> None:
    ps = contract_policies()
    # 2026-07-01 00:30 in Shanghai is 2026-06-30T16:30Z: inside beta-cn's window already.
    state, _ = run([created("2026-06-30T16:30", "BETA")], ps)
    assert state.policy_id == "beta-cn"
    state, _ = run([created("2026-06-30T15:59", "BETA")], ps)
    assert state.policy_id == "standard"


def test_a_contract_that_expires_while_the_ticket_is_open_keeps_its_policy() -> None:
    ps = contract_policies()
    events = [
        created("2026-06-30T20:00", "ACME-EU"),  # under acme-2026, which ends at midnight
        ev("updated", "2026-07-01T02:00", priority="high"),  # re-selects: still at creation
    ]
    state, out = run(events, ps)
    assert state.policy_id == "acme-2026"
    state, later = advance(state, utc("2026-07-01T05:00"))
    out += later
    assert ids(out) == ["T1/first_response/0/breached", "T1/resolution/0/breached"]
    assert {record.policy for record in out} == {"acme-2026"}
    # The same events arriving out of order give the same policy (recomputed from the log).
    state, _ = run(list(reversed(events)), ps)
    assert state.policy_id == "acme-2026"


def test_a_contract_that_starts_while_the_ticket_is_open_does_not_apply_to_it() -> None:
    ps = contract_policies()
    events = [
        created("2026-06-30T12:00", "ACME"),  # acme-2026 (ends 06-30), before the renewal
        ev("updated", "2026-07-02T09:00", priority="urgent"),
    ]
    state, _ = run(events, ps)
    assert state.policy_id == "acme-2026"
    beta = [
        created("2026-06-20T09:00", "BETA", ticket="T2"),
        ev("updated", "2026-07-05T09:00", ticket="T2", priority="urgent"),
    ]
    state, out = run(beta, ps)
    assert state.policy_id == "standard"  # beta-cn started on 07-01; T2 was created before
    out += advance(state, utc("2026-07-05T10:00"))[1]
    assert ids(out) == ["T2/first_response/0/breached", "T2/resolution/0/breached"]
    assert {record.policy for record in out} == {"standard"}


def test_overlapping_windows_of_one_customer_are_refused() -> None:
    text = CONTRACTS.replace(
        "valid_from: 2026-07-01\n    targets: {first_response: 30m",
        "valid_from: 2026-06-15\n    targets: {first_response: 30m",
    )
    found = problems(text)
    assert len(found) == 1
    line, message = found[0]
    assert line == 13 and "'acme-renewal'" in message and "'acme-2026' (line 8)" in message
    assert "'ACME'" in message and "2026-06-15" in message
    # A policy without a window and a contract for the same customer overlap as well.
    forever = CONTRACTS.replace(
        "    valid_from: 2026-07-01\n    targets: {first_response: 30m",
        "    targets: {first_response: 30m",
    )
    assert "overlaps" in problems(forever)[0][1]


def test_one_contract_may_have_several_policies() -> None:
    text = CONTRACTS.replace(
        "  - id: acme-2026\n",
        """  - id: acme-2026-urgent
    match: {customer_id: [ACME], priority: urgent}
    valid_from: 2026-01-01
    valid_until: 2026-06-30
    targets: {first_response: 15m}
  - id: acme-2026
""",
    )
    ps = contract_policies(text)
    state, _ = run([created("2026-02-01T00:00", "ACME", priority="urgent")], ps)
    assert state.policy_id == "acme-2026-urgent"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "valid_until: 2026-06-30",
            "valid_until: 2025-06-30",
            "valid_until must be after valid_from",
        ),
        ("valid_until: 2026-06-30", "valid_until: '2026-06-30T00:00:00'", "has no offset"),
        ("valid_until: 2026-06-30", "valid_until: next summer", "is neither a date"),
        ("valid_until: 2026-06-30", "valid_until: 2150-01-01", "outside 1971..2099"),
        (
            "match: {customer_id: [ACME, ACME-EU]}",
            "match: {customer_id: []}",
            "needs at least one value",
        ),
    ],
)
def test_bad_windows_and_ids_are_refused(old: str, new: str, message: str) -> None:
    assert old in CONTRACTS
    found = problems(CONTRACTS.replace(old, new))
    assert any(message in text for _line, text in found), found


def test_an_instant_window_and_a_windowed_match_all_is_not_a_catch_all() -> None:
    text = CONTRACTS.replace("valid_until: 2026-06-30", "valid_until: 2026-06-30T12:00:00+02:00")
    ps = contract_policies(text)
    assert run([created("2026-06-30T09:59", "ACME")], ps)[0].policy_id == "acme-2026"
    assert run([created("2026-06-30T10:00", "ACME")], ps)[0].policy_id == "standard"
    windowed = CONTRACTS.replace(
        "  - id: standard\n    match: {}\n",
        "  - id: standard\n    match: {}\n    valid_until: 2030-01-01\n",
    )
    assert any("no catch-all policy" in text for _line, text in problems(windowed))


def test_customer_ids_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "ids").mkdir()
    (tmp_path / "ids" / "gold.txt").write_text("# gold customers\nG-1\n\n  G-2  # since May\n")
    policy_file = tmp_path / "policies.yaml"
    text = CONTRACTS.replace(
        "match: {customer_id: [BETA]}", "match: {customer_id: {file: ids/gold.txt}}"
    )
    policy_file.write_text(text)
    ps = load_policies(policy_file)
    beta = ps.get("beta-cn")
    assert beta is not None and beta.match["customer_id"] == frozenset({"G-1", "G-2"})
    assert run([created("2026-08-01T00:00", "G-2")], ps)[0].policy_id == "beta-cn"
    # The fingerprint covers the file: a changed list recomputes open tickets.
    (tmp_path / "ids" / "gold.txt").write_text("G-1\nG-3\n")
    assert load_policies(policy_file).fingerprint != ps.fingerprint
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "ids/gold.txt" in row)
    for content, message in [
        (None, "no such file"),
        ("# nobody yet\n", "lists no customer id"),
        ("G-1\nG\x002\n", "line 2: the id"),
        ("x" * 300 + "\n", "longer than 256 characters"),
        (b"\xff\xfe", "not UTF-8"),
    ]:
        target = tmp_path / "ids" / "gold.txt"
        target.unlink(missing_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        elif content is not None:
            target.write_text(content)
        with pytest.raises(PolicyError) as caught:
            load_policies(policy_file)
        [problem] = caught.value.problems
        assert problem.line == line and message in problem.message, problem


def test_expiry_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ps = contract_policies()
    soon = expiring(ps.contract_policies(), utc("2026-06-10T00:00"))
    assert (
        len(soon) == 1
        and soon[0][0] == 8
        and "'acme-2026'" in soon[0][1]
        and "in 21 days" in soon[0][1]
    )
    assert expiring(ps.contract_policies(), utc("2026-05-01T00:00")) == []  # 61 days away
    ended = expiring(ps.contract_policies(), utc("2026-08-01T00:00"))
    assert len(ended) == 1 and "ended at 2026-07-01T00:00:00+00:00" in ended[0][1]
    path = tmp_path / "contracts.yaml"
    path.write_text(CONTRACTS)
    assert policy_main(["check", str(path), "--today", "2026-06-10"]) == 0
    captured = capsys.readouterr()
    assert f"{path}:8: warning: policy 'acme-2026': the contract ends at 2026-07-01" in captured.err
    assert (
        "[contract from 2026-01-01T00:00:00+00:00 until 2026-07-01T00:00:00+00:00]" in captured.out
    )
    assert policy_main(["check", str(path), "--today", "2026-06-10", "--strict"]) == 2
    assert "1 warning (--strict: not accepted)" in capsys.readouterr().err
    assert policy_main(["check", str(path), "--today", "2026-04-01", "--strict"]) == 0
    assert policy_main(["check", str(path), "--today", "June"]) == 2


SWITCH = """
version: 1
calendars:
  always: {{timezone: UTC, always_open: true}}
  office:
    timezone: Asia/Shanghai
    hours: {{mon: "09:00-18:00", tue: "09:00-18:00", wed: "09:00-18:00", thu: "09:00-18:00", fri: "09:00-18:00"}}
defaults: {{calendar: always}}
policies:
  - id: old-contract
    match: {{customer_id: [ACME]}}
    valid_until: "{edge}"
    targets: {{first_response: 30m, next_response: 1h, resolution: 4h}}
  - id: new-contract
    match: {{customer_id: [ACME]}}
    valid_from: "{edge}"
    calendar: office
    targets: {{first_response: 2h, periodic_update: 3h, resolution: 2d}}
  - id: standard
    match: {{}}
    targets: {{first_response: 1h, resolution: 8h}}
"""


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    edge_minutes=st.integers(-600, 600),
    customer=st.sampled_from(["ACME", "OTHER", None]),
)
def test_the_contract_in_force_at_creation_whatever_the_arrival_order(
    seed: int, edge_minutes: int, customer: str | None
) -> None:
    rng = random.Random(seed)
    events = random_ticket(rng)
    first = events[0].model_dump(mode="json")
    first["data"]["customer_id"] = customer
    events[0] = parse_event(first)
    created_at = events[0].occurred_at
    edge = created_at + timedelta(minutes=edge_minutes)
    ps = load_policies("switch.yaml", text=SWITCH.format(edge=edge.isoformat()))
    expected = (
        "standard"
        if customer != "ACME"
        else ("old-contract" if created_at < edge else "new-contract")
    )
    now = events[-1].occurred_at + timedelta(days=3)
    state, out = run(events, ps)
    state, later = advance(state, now)
    assert state.policy_id == expected
    shuffled = events[:]
    rng.shuffle(shuffled)
    again, out2 = run(shuffled, ps)
    again, later2 = advance(again, now)
    assert again.policy_id == expected
    standing = {k: e.escalation_level for k, e in state.ledger.items() if e.breach_stands}
    assert standing == {k: e.escalation_level for k, e in again.ledger.items() if e.breach_stands}
    # Every SLA event of the ticket's targets carries the policy in force at creation
    # (met or breached outcomes keep theirs; nothing here re-selects to another policy).
    assert {r.policy for r in out + later if r.kind.value != "sla.retracted"} <= {expected}


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.text(max_size=40),
    st.dates().map(str),
    st.datetimes(timezones=st.sampled_from([None, UTC])).map(lambda d: d.isoformat()),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.sampled_from(["file", "x"]), st.text(max_size=20), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(valid_from=_VALUES, valid_until=_VALUES, customer=_VALUES, through=_VALUES)
def test_fuzzed_contract_keys_load_or_are_refused_with_problems(
    valid_from: object, valid_until: object, customer: object, through: object
) -> None:
    """Whatever the contract keys hold, the loader compiles or lists problems (exit 2 in
    `slawatch policy check`), never fails otherwise."""
    doc = {
        "version": 1,
        "calendars": {
            "cn": {
                "timezone": "Asia/Shanghai",
                "hours": {"mon": "09:00-18:00"},
                "holidays": {"country": "CN", "official_through": through},
            },
        },
        "policies": [
            {
                "id": "c",
                "calendar": "cn",
                "match": {"customer_id": customer},
                "valid_from": valid_from,
                "valid_until": valid_until,
                "targets": {"resolution": "1h"},
            },
            {"id": "standard", "calendar": "cn", "targets": {"resolution": "1h"}},
        ],
    }
    text = json.dumps(doc)  # JSON is YAML
    try:
        ps = load_policies("/nonexistent/fuzz.yaml", text=text)
    except PolicyError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        return
    ps.select("normal", None, "email", None, (), customer="x", at=0)
    ps.check_coverage(date(2026, 12, 1))
