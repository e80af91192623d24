"""Export the event contracts and the configuration files as JSON Schema (docs/schemas/),
generated from the models (`slawatch schemas`). It lives above the services because it
gathers every service's contract; the project library (shared/) never imports a service.

The files under docs/schemas/ are generated, never hand-edited; a test fails when they
drift from the models, so the published contract is always the enforced one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from slawatch.services.ingest.sources.mapping import mapping_json_schema
from slawatch.services.notifier.routes_file import json_schema as routes_json_schema
from slawatch.shared.engine.policy_file import PolicyFile
from slawatch.shared.events import (
    customer_event_adapter,
    posted_event_adapter,
    ticket_event_adapter,
)
from slawatch.shared.sla_events import SlaEvent


def _batch_schema() -> dict[str, Any]:
    single = posted_event_adapter.json_schema()
    defs = single.pop("$defs", {})
    return {
        "title": "IngestBatch",
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {"events": {"type": "array", "minItems": 1, "items": single}},
        "$defs": defs,
    }


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "ticket-event.schema.json": lambda: {
        "title": "TicketEvent",
        **ticket_event_adapter.json_schema(),
    },
    "customer-event.schema.json": lambda: {
        "title": "CustomerEvent",
        **customer_event_adapter.json_schema(),
    },
    "ingest-batch.schema.json": _batch_schema,
    "sla-event.schema.json": lambda: SlaEvent.model_json_schema(),
    "policy.schema.json": lambda: PolicyFile.model_json_schema(),
    "routes.schema.json": routes_json_schema,
    "source-mapping.schema.json": mapping_json_schema,
}


def render(name: str) -> str:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **SCHEMAS[name]()}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schemas_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="slawatch schemas", description=__doc__)
    parser.add_argument("folder", nargs="?", default="docs/schemas", type=Path)
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"slawatch schemas: {args.folder} is not a folder", file=sys.stderr)
        return 2
    for name in SCHEMAS:
        (args.folder / name).write_text(render(name))
        print(args.folder / name)
    return 0
