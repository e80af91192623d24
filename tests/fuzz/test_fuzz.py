"""Fuzzing as part of the suite (issue #10): schemathesis against the OpenAPI of all three
running services, hypothesis-made hostile bodies against ingest, poison records straight
onto the events topic; zero 5xx, and every answer as documented. Then a canary ticket
posted through ingest must still breach on time at the monitor: the monitor still runs.

The services are real processes on the real broker and database (tests/fuzz/conftest.py);
the number of examples is bounded so that this module stays within about a minute.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Result

from slawatch.shared.bounds import EVENT_INSTANT_MAX, EVENT_INSTANT_MIN, MAX_JSON_DEPTH
from slawatch.shared.events import EXAMPLES
from slawatch.shared.sla_events import EXAMPLE as SLA_EXAMPLE
from tests.fuzz.conftest import Stack
from tests.fuzz.stack import AUTH, SOURCE_SECRET
from tests.helpers import read_topic
from tests.monitor.harness import produce

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 50


def _ok(result: Result[APIOperation, InvalidSchema]) -> APIOperation:
    """An operation of the published OpenAPI; one schemathesis cannot read fails the test."""
    if isinstance(result, Err):
        raise AssertionError(f"the OpenAPI has an unreadable operation: {result.err()}")
    return result.ok()


def _operations(url: str, skip: tuple[str, ...] = ()):
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    operations = [_ok(result) for result in schema.get_all_operations()]
    return [op for op in operations if op.path not in skip]


def _fuzz(url: str, stack: Stack, skip: tuple[str, ...] = ()) -> None:
    """Every operation, with schema-valid and schema-invalid data (positive and negative
    modes), each answer checked by schemathesis' checks: no 5xx, a documented status code,
    content type and body, invalid data refused. (schemathesis' own pytest plugin does not
    run on this pytest; the same strategies and checks are driven here directly.)"""
    operations = _operations(url, skip)
    assert operations
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                # A valid-looking request may still be refused for reasons a schema cannot
                # state (a silence's end before its start): "valid data accepted" is not required.
                response = case.call(headers=AUTH, timeout=30)
                negative = mode is GenerationMode.NEGATIVE  # noqa: B023 - run() runs in this iteration
                if negative and not _reaches_the_wire(case, response.request.url):
                    # A query the wire cannot carry as generated (a value the HTTP client
                    # drops or re-encodes, or a number or null where the schema wants a
                    # string: a query holds only strings) is not known to be invalid when
                    # sent: only "no 5xx" is asked of it (schemathesis' false positives,
                    # seen once #14 grew the report's query and moved the derandomized seed).
                    assert response.status_code < 500, response.text
                    return
                case.validate_response(response, excluded_checks=[positive_data_acceptance])
                assert all(s.alive() for s in stack.services), "a service died"

            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters or body): positive mode covered it.
                assert mode is GenerationMode.NEGATIVE, operation.label


def _reaches_the_wire(case, url: str) -> bool:
    """Whether every generated query value is sent as generated: strings, arriving unchanged,
    and not a lone string where the parameter is a list (``?ticket_id=x`` is also the valid
    one-element list: the wire cannot tell them apart)."""
    sent = parse_qs(urlsplit(url).query, keep_blank_values=True)
    parameters = {parameter.name: parameter for parameter in case.operation.query}
    for name, value in (case.query or {}).items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) for v in values):
            return False
        if sent.get(name) != values:  # dropped, or re-encoded (a lone surrogate)
            return False
        parameter = parameters.get(name)
        if not isinstance(value, list) and parameter is not None and parameter.is_valid(values):
            return False
    return True


def test_ingest_openapi(stack: Stack) -> None:
    _fuzz(stack.ingest.url, stack)


def test_monitor_openapi(stack: Stack) -> None:
    _fuzz(stack.monitor.url, stack)


def test_notifier_openapi(stack: Stack) -> None:
    _fuzz(stack.notifier.url, stack)


# ------------------------------------------------------------- issue #10's cases, by name

MONITOR_CASES = [
    ("GET", "/v1/tickets/%00/sla", {}, "ticket_id"),
    ("GET", "/v1/tickets/" + "x" * 129 + "/sla", {}, "ticket_id"),
    ("GET", "/v1/sla/at-risk", {"within": "99999999999d"}, "within"),
    ("GET", "/v1/sla/at-risk", {"within": "3651d"}, "within"),
    ("GET", "/v1/sla/at-risk", {"within": "9" * 5000 + "s"}, "within"),
    ("GET", "/v1/sla/at-risk", {"offset": str(10**30)}, "offset"),
    ("GET", "/v1/sla/at-risk", {"offset": "-1"}, "offset"),
    ("GET", "/v1/reports/compliance", {"from": "0001-01-01T00:00:00+14:00"}, "from"),
    ("GET", "/v1/reports/compliance", {"to": "9999-12-31T23:59:59-12:00"}, "to"),
    ("GET", "/v1/reports/compliance", {"from": "1764000000"}, "from"),
    ("GET", "/v1/reports/compliance", {"from": "2026-01-01T00:00:00\x00Z"}, "from"),
]
NOTIFIER_CASES = [
    ("POST", "/v1/silences", {"match": {"group": "g"}, "duration": "99999999999d"}, "duration"),
    (
        "POST",
        "/v1/silences",
        {"match": {"group": "g"}, "duration": "3650d", "starts_at": "9999-12-01T00:00:00Z"},
        "duration",
    ),
    (
        "POST",
        "/v1/silences",
        {"match": {"group": "g"}, "ends_at": "10000-01-01T00:00:00Z"},
        "ends_at",
    ),
    (
        "POST",
        "/v1/silences",
        {"match": {"group": "g"}, "ends_at": "9999-12-31T23:59:59-12:00"},
        "ends_at",
    ),
    (
        "POST",
        "/v1/silences",
        {"match": {"group": "g"}, "duration": "1h", "comment": "a\x00b"},
        "comment",
    ),
    ("POST", "/v1/silences", {"match": {"group": "g\x00"}, "duration": "1h"}, "match.group"),
    ("POST", "/v1/silences", {"match": {"g\x00": "x"}, "duration": "1h"}, "match"),
    (
        "POST",
        "/v1/silences",
        {"match_re": {"group": "a{99999999999}"}, "duration": "1h"},
        "match_re.group",
    ),
    ("POST", "/v1/silences", {"match": {"level": 10**30}, "duration": "1h"}, "match.level"),
    (
        "POST",
        "/v1/silences",
        {"match": {"group": "g"}, "duration": "1h", "created_by": "\x1b[31m"},
        "created_by",
    ),
    ("GET", "/v1/silences/%00", None, "silence_id"),
    ("DELETE", "/v1/silences/%00", None, "silence_id"),
    ("GET", "/v1/notifications", {"offset": str(10**30)}, "offset"),
    ("GET", "/v1/notifications", {"ticket_id": "T\x00"}, "ticket_id"),
    ("GET", "/v1/notifications", {"receiver": "r\x00"}, "receiver"),
]


def _call(url: str, method: str, path: str, data) -> httpx.Response:
    if method == "POST":
        return httpx.post(url + path, json=data, headers=AUTH, timeout=30)
    return httpx.request(method, url + path, params=data, headers=AUTH, timeout=30)


def _documented(url: str, method: str, path: str, response: httpx.Response) -> None:
    """The answer matches the published OpenAPI: its status code and its body."""
    spec = httpx.get(url + "/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    operation = next(
        op
        for op in map(_ok, schema.get_all_operations())
        if op.method.upper() == method
        and op.path.split("{")[0] == path.split("%00")[0].split("x" * 129)[0]
    )
    assert str(response.status_code) in spec["paths"][operation.path][method.lower()]["responses"]
    operation.validate_response(response)


@pytest.mark.parametrize(("method", "path", "data", "field"), MONITOR_CASES)
def test_monitor_refuses_by_name(stack: Stack, method, path, data, field) -> None:
    response = _call(stack.monitor.url, method, path, data)
    assert response.status_code == 422, response.text
    assert field in {d["field"] for d in response.json()["detail"]}, response.text
    _documented(stack.monitor.url, method, path, response)


@pytest.mark.parametrize(("method", "path", "data", "field"), NOTIFIER_CASES)
def test_notifier_refuses_by_name(stack: Stack, method, path, data, field) -> None:
    response = _call(stack.notifier.url, method, path, data)
    assert response.status_code == 422, response.text
    fields = {d["field"] for d in response.json()["detail"]}
    assert any(f == field or f.startswith(field + ".") for f in fields), response.text
    _documented(stack.notifier.url, method, path, response)


def test_notifier_bounds_bodies(stack: Stack) -> None:
    url = stack.notifier.url + "/v1/silences"
    headers = {**AUTH, "Content-Type": "application/json"}
    for body, status in [
        (b"[" * 10_000, 400),
        (b'{"match": ' + b'{"a":' * 40 + b"1" + b"}" * 41, 400),
        (b"\xff\xfe", 400),
        (b'{"match": {"group": "' + b"x" * 70_000 + b'"}, "duration": "1h"}', 413),
        (b'{"match": {"level": ' + b"9" * 5000 + b'}, "duration": "1h"}', 400),
    ]:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == status, (body[:40], response.text)
        assert response.json()["detail"][0]["field"] == "(body)"
        _documented(stack.notifier.url, "POST", "/v1/silences", response)


# ------------------------------------------------------------- hostile bodies for ingest

controls = st.characters(codec="utf-8", categories=["Cc", "Cs"]) | st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\x7f", "\x1b"]
)
hostile_text = st.builds(
    lambda a, c, b: a + c + b, st.text(max_size=5), controls, st.text(max_size=5)
)
extreme_numbers = st.sampled_from(
    [10**30, -(10**30), 10**400, 2**63, -(2**63) - 1, 1e308, -1e308, 5e-324, 0, -1]
)
extreme_instants = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "0000-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T09:15:00+24:00",
            "2026-11-23T09:15:60Z",
            "1700000000",
            "",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.just(EVENT_INSTANT_MIN - timedelta(microseconds=1)).map(datetime.isoformat),
    st.just(EVENT_INSTANT_MAX + timedelta(microseconds=1)).map(datetime.isoformat),
    extreme_numbers,
)
FIELDS = ["event_id", "ticket_id", "occurred_at", "received_at", "source", "channel", "type"]
DATA_FIELDS = ["priority", "customer_tier", "group", "assignee", "tags", "subject", "url", "csat"]


def nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def hostile_events(draw) -> dict:
    event = json.loads(json.dumps(draw(st.sampled_from(list(EXAMPLES.values())))))
    event["event_id"] = "fz-" + uuid.uuid4().hex
    value = draw(
        st.one_of(
            hostile_text,
            extreme_numbers,
            extreme_instants,
            st.integers(MAX_JSON_DEPTH - 2, 3 * MAX_JSON_DEPTH).map(nested),
            st.lists(hostile_text, max_size=70),
        )
    )
    if draw(st.booleans()):
        event[draw(st.sampled_from(FIELDS))] = value
    else:
        event.setdefault("data", {})[draw(st.sampled_from(DATA_FIELDS))] = value
    return event


def encode(body: object) -> bytes:
    # json.dumps writes lone surrogates as \udXXX escapes, as a hostile client would.
    return json.dumps(body, allow_nan=True).encode()


@st.composite
def hostile_requests(draw) -> tuple[bytes, str | None]:
    kind = draw(st.sampled_from(["event", "batch", "deep", "huge_batch", "raw"]))
    if kind == "event":
        body = encode(draw(hostile_events()))
    elif kind == "batch":
        body = encode({"events": draw(st.lists(hostile_events(), min_size=1, max_size=5))})
    elif kind == "deep":
        depth = draw(st.integers(MAX_JSON_DEPTH, 20_000))
        body = draw(st.sampled_from([b"[", b'{"a":', b'{"events":['])) * depth
    elif kind == "huge_batch":
        body = encode({"events": [EXAMPLES["message.created"]] * draw(st.integers(1001, 3000))})
    else:
        body = draw(st.binary(max_size=200)) + draw(st.sampled_from([b"", b"NaN", b"\x00", b"{"]))
    content_type = draw(
        st.sampled_from(
            [
                "application/json",
                None,
                "text/plain",
                "application/x-www-form-urlencoded",
                "application/json; charset=latin-1",
                "application/xml",
                "",
            ]
        )
    )
    return body, content_type


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=hostile_requests())
def test_hostile_bodies_get_a_documented_4xx_never_a_5xx(stack: Stack, request) -> None:
    body, content_type = request
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = httpx.post(
        stack.ingest.url + "/v1/events", content=body, headers=headers, timeout=30
    )
    assert response.status_code in (202, 400, 413, 415, 422), (response.status_code, response.text)
    if response.status_code != 202:
        answer = response.json()
        assert answer["accepted"] == 0 and answer["error"]
        if response.status_code == 422:
            assert all(d["field"] for d in answer["detail"])


# ------------------------------------------------------------- poison on the events topic


def poison_records() -> list[bytes]:
    base = {**EXAMPLES["ticket.created"], "event_id": "poison", "ticket_id": "P-1"}
    return [
        json.dumps({**base, "ticket_id": "R\u0000X"}).encode(),
        json.dumps({**base, "occurred_at": "0001-01-01T00:00:00+14:00"}).encode(),
        json.dumps({**base, "occurred_at": "9999-12-31T23:59:59-12:00"}).encode(),
        json.dumps({**base, "occurred_at": 1764000000}).encode(),
        json.dumps({**base, "data": {"group": "g\u0000"}}).encode(),
        json.dumps({**base, "ticket_id": "T\ud800"}).encode(),
        b'{"x":' * 1000 + b"1" + b"}" * 1000,
        b"\xff\xfe not json",
    ]


def test_poison_records_go_to_the_dead_letter_topic_with_the_reason(stack: Stack) -> None:
    poison = poison_records()
    asyncio.run(produce(stack.settings.kafka_bootstrap, stack.settings.topic_events, poison))
    dead = asyncio.run(
        read_topic(stack.settings.kafka_bootstrap, stack.settings.topic_events_dlq, len(poison))
    )
    values = [record.value for record in dead]
    for record in poison:
        assert record in values, f"not dead-lettered: {record[:80]!r}\n{stack.monitor.log()}"
    assert stack.monitor.alive()


def test_poison_sla_records_go_to_the_notifications_dead_letter_topic(stack: Stack) -> None:
    base = {**SLA_EXAMPLE, "id": "P/first_response/0/breached", "ticket_id": "P"}
    poison = [
        json.dumps({**base, "ticket_id": "P\u0000"}).encode(),
        json.dumps({**base, "policy": "vip\u0000"}).encode(),
        json.dumps({**base, "subject": "s\u0000"}).encode(),
        json.dumps({**base, "tags": ["t\u0000"]}).encode(),
        json.dumps({**base, "deadline": "0001-01-01T00:00:00+14:00"}).encode(),
        json.dumps({**base, "occurred_at": 1764000000}).encode(),
    ]
    topic = stack.settings.topic_sla
    asyncio.run(produce(stack.settings.kafka_bootstrap, topic, poison, key=b"P"))
    dead = asyncio.run(
        read_topic(
            stack.settings.kafka_bootstrap, stack.settings.topic_notifications_dlq, len(poison)
        )
    )
    values = [record.value for record in dead]
    for record in poison:
        assert record in values, f"not dead-lettered: {record[:80]!r}\n{stack.notifier.log()}"
    assert stack.notifier.alive()


# ------------------------------------------------------------- and the monitor still runs


def test_after_the_fuzzing_a_canary_still_breaches_on_time(stack: Stack) -> None:
    """fast-policies.yaml: first response 4 s; the breach must be published by the
    monitor at its deadline (a few seconds of slack for a loaded machine), not late."""
    ticket = "CANARY-" + uuid.uuid4().hex[:8]
    created = datetime.now(UTC)
    event = {
        "event_id": ticket + "-created",
        "type": "ticket.created",
        "ticket_id": ticket,
        "occurred_at": created.isoformat(),
        "channel": "chat",
        "data": {"priority": "high"},
    }
    response = httpx.post(stack.ingest.url + "/v1/events", json=event, headers=AUTH, timeout=30)
    assert response.status_code == 202, response.text
    deadline = created + timedelta(seconds=4)
    breach_id = f"{ticket}/first_response/0/breached"
    found = None
    while found is None and datetime.now(UTC) < deadline + timedelta(seconds=15):
        records = asyncio.run(
            read_topic(stack.settings.kafka_bootstrap, stack.settings.topic_sla, 0, timeout=2)
        )
        found = next((r for r in records if json.loads(r.value)["id"] == breach_id), None)
        if found is None:
            time.sleep(0.5)
    assert found is not None, "the canary never breached:\n" + stack.monitor.log()
    breach = json.loads(found.value)
    assert datetime.fromisoformat(breach["deadline"]) == deadline.replace(
        microsecond=deadline.microsecond // 1000 * 1000
    )
    published = datetime.fromtimestamp(found.timestamp / 1000, UTC)
    assert published - deadline < timedelta(seconds=5), (published, deadline)
    assert not breach.get("detected_late"), breach
    for service in stack.services:
        assert httpx.get(service.url + "/readyz", timeout=5).status_code == 200, service.name


# ------------------------------------------------------------- the helpdesk source endpoints


def _source_headers(system: str, body: bytes, stack: Stack, draw) -> dict[str, str]:
    """The system's own headers, validly signed most of the time (so that the body reaches
    parsing and mapping), sometimes forged, stale or missing, plus junk headers."""
    from tests.sources import payloads

    now = datetime.now(UTC) - timedelta(seconds=draw(st.sampled_from([0, 0, 0, 400, -400])))
    if system == "zoho-desk":
        headers = payloads.zoho_sign(stack.zoho_key, now, webhook="any")
    else:
        signer = payloads.LIVES[system][1]
        assert signer is not None  # every system but Zoho Desk signs the body
        headers = signer(body, draw(st.sampled_from([SOURCE_SECRET] * 4 + ["wrong"])), now)
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(headers)))
        headers[name] = draw(st.sampled_from(["", "sha256=zz", "x" * 300, headers[name][:-2]]))
    headers["Content-Type"] = draw(
        st.sampled_from(
            ["application/json"] * 5 + ["text/plain", "application/json; charset=utf-8"]
        )
    )
    return headers


@st.composite
def hostile_source_requests(draw) -> tuple[str, bytes]:
    from tests.sources import payloads

    system = draw(st.sampled_from(sorted(payloads.LIVES)))
    steps = payloads.LIVES[system][0](datetime.now(UTC))
    document = json.loads(draw(st.sampled_from(steps)).raw())
    kind = draw(st.sampled_from(["mutate", "mutate", "raw", "deep", "scalar"]))
    if kind == "mutate":
        target = document[0] if isinstance(document, list) else document
        for _ in range(draw(st.integers(1, 3))):
            inner = target
            if isinstance(inner, dict) and inner and draw(st.booleans()):
                key = draw(st.sampled_from(sorted(inner)))
                if isinstance(inner[key], dict) and inner[key]:
                    inner = inner[key]
            if isinstance(inner, dict) and inner:
                key = draw(st.sampled_from(sorted(inner)))
                inner[key] = draw(
                    st.one_of(
                        hostile_text,
                        extreme_numbers,
                        extreme_instants,
                        st.none(),
                        st.booleans(),
                        st.lists(hostile_text, max_size=3),
                        st.integers(MAX_JSON_DEPTH - 2, 3 * MAX_JSON_DEPTH).map(nested),
                    )
                )
        body = encode(document)
    elif kind == "raw":
        body = draw(st.binary(max_size=200))
    elif kind == "deep":
        body = b"[" * draw(st.integers(MAX_JSON_DEPTH, 5000))
    else:
        body = encode(
            draw(st.one_of(hostile_text, extreme_numbers, st.lists(st.integers(), max_size=3)))
        )
    return system, body


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=hostile_source_requests(), data=st.data())
def test_source_endpoints_answer_2xx_or_4xx_never_5xx(stack: Stack, request, data) -> None:
    system, body = request
    headers = _source_headers(system, body, stack, data.draw)
    response = httpx.post(
        f"{stack.ingest.url}/v1/sources/{system}", content=body, headers=headers, timeout=30
    )
    assert response.status_code in (200, 202, 400, 401, 413, 415, 422), (
        system,
        response.status_code,
        response.text,
    )
    answer = response.json()
    if response.status_code >= 400:
        assert answer["accepted"] == 0 and answer["error"]
        if response.status_code == 422:
            assert all(d["field"] for d in answer["detail"])
    assert stack.ingest.alive()
