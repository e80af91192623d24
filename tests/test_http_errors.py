"""The shared query-parameter rules of the monitor's and the notifier's APIs (shared/http_errors.py):
an unknown parameter or a one-value parameter given twice is a 422 naming it."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from slawatch.shared import http_errors


def _client() -> TestClient:
    app = FastAPI()
    http_errors.install(app, max_body_bytes=1024)

    @app.get("/items")
    async def items(
        assignee: str | None = None, tag: Annotated[list[str] | None, Query()] = None
    ) -> dict:
        return {"assignee": assignee, "tag": tag}

    @app.get("/plain")
    async def plain() -> dict:
        return {"ok": True}

    return TestClient(app)


def test_known_parameters_pass_and_lists_repeat() -> None:
    client = _client()
    answer = client.get("/items?assignee=li.na&tag=a&tag=b")
    assert answer.status_code == 200
    assert answer.json() == {"assignee": "li.na", "tag": ["a", "b"]}


def test_a_misspelt_parameter_is_refused_by_name() -> None:
    answer = _client().get("/items?asignee=li.na")
    assert answer.status_code == 422
    assert answer.json() == {"detail": [{"field": "asignee", "message": "unknown query parameter"}]}


def test_a_one_value_parameter_given_twice_is_refused() -> None:
    answer = _client().get("/items?assignee=a&assignee=b")
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "assignee"


def test_a_route_without_query_parameters_ignores_the_query_string() -> None:
    assert _client().get("/plain?cache-buster=1").status_code == 200
