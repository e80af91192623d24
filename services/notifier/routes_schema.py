"""The routing file's JSON Schema, built from the loader's own key lists and provider table.

Editors and CI linters can check a routing file with it; ``slawatch routes check`` stays
the authority (it also resolves ``${VAR}``, checks fallbacks and calendars, and says the
line). Regenerate docs/schemas/routes.schema.json with::

    python -m services.notifier.routes_schema
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.notifier.config import (
    GROUP_BY_FIELDS,
    LANGUAGES,
    RECEIVER_DEFAULTS,
    ROUTE_KEYS,
    TOP_KEYS,
)
from services.notifier.matchers import KINDS, LEVEL_FIELDS, STRING_FIELDS, TARGETS
from services.notifier.providers import COMMON_FIELDS, PROVIDERS, Kind

DEFAULT_PATH = Path("docs/schemas/routes.schema.json")
DURATION = {
    "description": "e.g. 30s, 5m, 1h30m, 250ms, 2d; a bare number is seconds",
    "oneOf": [{"type": "string", "pattern": r"^\s*(\d+(\.\d+)?(ms|s|m|h|d)?)+\s*$"}, {"type": "number", "minimum": 0}],
}
_KIND_SCHEMA: dict[Kind, dict[str, Any]] = {
    Kind.url: {"type": "string", "description": "http(s) URL; may contain ${VAR}"},
    Kind.secret: {"type": "string"},
    Kind.string: {"type": "string"},
    Kind.strings: {"type": "array", "items": {"type": "string"}},
    Kind.boolean: {"type": "boolean"},
    Kind.port: {"type": "integer", "minimum": 1, "maximum": 65535},
    Kind.headers: {"type": "object", "additionalProperties": {"type": "string"}},
    Kind.security: {"enum": ["starttls", "tls", "none"]},
}


def _strings_or_list(values: list[str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"enum": values} if values else {"type": "string"}
    return {"oneOf": [item, {"type": "array", "minItems": 1, "items": item}]}


def _matchers() -> dict[str, Any]:
    kinds = sorted(KINDS | {k.removeprefix("sla.") for k in KINDS})
    equal: dict[str, Any] = {name: _strings_or_list() for name in STRING_FIELDS}
    equal["kind"] = _strings_or_list(kinds)
    equal["target"] = _strings_or_list(sorted(TARGETS))
    for name in LEVEL_FIELDS:
        equal[name] = {"type": "integer", "minimum": 0}
    return {
        "match": {"type": "object", "properties": equal, "additionalProperties": False},
        "match_re": {
            "type": "object",
            "properties": {name: {"type": "string", "format": "regex"} for name in STRING_FIELDS},
            "additionalProperties": False,
        },
    }


def _receiver_settings() -> dict[str, Any]:
    settings: dict[str, Any] = {
        "language": {"enum": list(LANGUAGES)},
        "group_wait": DURATION,
        "group_interval": DURATION,
        "repeat_interval": {"oneOf": [DURATION, {"enum": ["never", None, 0, False]}]},
        "repeat_limit": {"type": "integer", "minimum": 0},
        "group_by": {"type": "array", "items": {"enum": list(GROUP_BY_FIELDS)}},
        "send_resolved": {"type": "boolean"},
        "timezone": {"type": "string", "description": "IANA zone, e.g. Asia/Shanghai"},
    }
    assert set(settings) == set(RECEIVER_DEFAULTS), "keep the schema in step with the loader"
    return settings


def _integration(kind: str) -> dict[str, Any]:
    provider = PROVIDERS[kind]
    common = {
        "type": {"const": kind},
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$"},
        "timeout": DURATION,
        "rate_limit": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "max_events_per_message": {"type": "integer", "minimum": 1, "maximum": 1000},
    }
    assert set(common) == set(COMMON_FIELDS)
    fields = {
        name: {**_KIND_SCHEMA[spec.kind], "description": spec.help}
        for name, spec in provider.fields.items()
    }
    return {
        "type": "object",
        "description": provider.doc,
        "properties": {**common, **fields},
        "required": ["type", *(n for n, spec in provider.fields.items() if spec.required)],
        "additionalProperties": False,
    }


def routes_json_schema() -> dict[str, Any]:
    settings = _receiver_settings()
    matchers = _matchers()
    route_props = {
        **matchers,
        "receiver": {"type": "string"},
        "continue": {"type": "boolean"},
    }
    assert set(route_props) == set(ROUTE_KEYS)
    top = {
        "version": {"const": 1},
        "defaults": {"type": "object", "properties": settings, "additionalProperties": False},
        "receivers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/receiver"}},
        "routes": {"type": "array", "items": {"$ref": "#/$defs/route"}},
        "default_receiver": {"type": "string"},
    }
    assert set(top) == set(TOP_KEYS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "slawatch routing file",
        "description": "SLAWATCH_ROUTES_FILE; see docs/notifications.md",
        "type": "object",
        "properties": top,
        "required": ["receivers"],
        "additionalProperties": False,
        "$defs": {
            "receiver": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$"},
                    "integrations": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"oneOf": [{"$ref": f"#/$defs/integration_{k}"} for k in PROVIDERS]},
                    },
                    "quiet_hours": {
                        "type": "object",
                        "properties": {"calendar": {"type": "string"}, "fallback": {"type": "string"}},
                        "required": ["calendar"],
                        "additionalProperties": False,
                    },
                    **settings,
                },
                "required": ["name", "integrations"],
                "additionalProperties": False,
            },
            "route": {
                "type": "object",
                "properties": route_props,
                "required": ["receiver"],
                "additionalProperties": False,
            },
            **{f"integration_{k}": _integration(k) for k in PROVIDERS},
        },
    }


def render() -> str:
    return json.dumps(routes_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_PATH
    path.write_text(render())
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
