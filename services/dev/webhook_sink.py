"""The receiver of the example routing file's signed webhook, for `slawatch dev` only.

examples/routes.yaml posts every SLA event, signed, to ``SLAWATCH_DEV_WEBHOOK_URL``; this
small server checks the signature the way a customer's endpoint should and prints one line
per event, so a newcomer sees the whole path work. It is its own process (started by
``slawatch dev``), never part of the production notifier.

    python -m slawatch.services.dev.webhook_sink      # 127.0.0.1:SLAWATCH_DEV_WEBHOOK_PORT (8084)
"""

from __future__ import annotations

import hmac
import json
import logging
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from slawatch.services.notifier.integrations.webhook import webhook_signature

SECRET_VAR = "SLAWATCH_DEV_WEBHOOK_SECRET"
SECRET_DEFAULT = "slawatch-dev-webhook-secret"  # as in examples/routes.yaml
PORT_VAR = "SLAWATCH_DEV_WEBHOOK_PORT"
PORT_DEFAULT = 8084
PATH = "/webhook"

log = logging.getLogger(__name__)


def _signature_ok(secret: str, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        expected = webhook_signature(secret, int(parts.get("t", "")), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, parts.get("v1", ""))


def create_app(secret: str = SECRET_DEFAULT) -> Starlette:
    async def receive(request: Request) -> Response:
        body = await request.body()
        if not _signature_ok(secret, request.headers.get("x-slawatch-signature", ""), body):
            log.warning("dev webhook sink: refused a request with a bad signature")
            return Response(status_code=401)
        try:
            events = [
                (e["kind"], e["ticket_id"], e["target"], e.get("level", "-"))
                for e in json.loads(body)["events"]
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            return Response("expected a slawatch webhook body with `events`", status_code=400)
        for kind, ticket, target, level in events:
            print(
                f"[webhook sink] signature ok  {kind:<14} {ticket:<12} {target:<15} level={level}",
                flush=True,
            )
        return Response(status_code=204)

    async def healthz(_request: Request) -> Response:
        return Response("ok")

    return Starlette(
        routes=[Route(PATH, receive, methods=["POST"]), Route("/healthz", healthz)]
    )


def main() -> None:
    import uvicorn

    port = int(os.environ.get(PORT_VAR, PORT_DEFAULT))
    app = create_app(os.environ.get(SECRET_VAR, SECRET_DEFAULT))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
