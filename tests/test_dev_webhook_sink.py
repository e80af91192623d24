"""The dev webhook sink (services/dev/webhook_sink.py), served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from slawatch.services.dev.webhook_sink import PATH, SECRET_DEFAULT, create_app
from slawatch.services.notifier.integrations.webhook import webhook_signature
from tests.helpers import serve
from tests.notifier.support import sla_event

pytestmark = pytest.mark.integration


def signed(body: bytes, secret: str = SECRET_DEFAULT) -> dict[str, str]:
    ts = int(time.time())
    return {"X-Slawatch-Signature": f"t={ts},v1={webhook_signature(secret, ts, body)}"}


async def test_checks_signatures_and_refuses_bad_bodies(capsys) -> None:
    async with serve(create_app()) as url, httpx.AsyncClient(base_url=url) as client:
        good = json.dumps({"events": [sla_event(ticket="DEV-1").model_dump(mode="json")]}).encode()
        assert (await client.post(PATH, content=good, headers=signed(good))).status_code == 204
        assert "signature ok  sla.breached   DEV-1" in capsys.readouterr().out
        forged = signed(good, "not-the-secret")
        assert (await client.post(PATH, content=good, headers=forged)).status_code == 401
        assert (await client.post(PATH, content=good)).status_code == 401
        garbled = {"X-Slawatch-Signature": "t=soon,v1=00"}
        assert (await client.post(PATH, content=good, headers=garbled)).status_code == 401
        for bad in (b"{not json", b'{"events": 3}', b'{"events": [{"kind": "x"}]}'):
            answer = await client.post(PATH, content=bad, headers=signed(bad))
            assert answer.status_code == 400, bad
        assert (await client.get("/healthz")).status_code == 200
