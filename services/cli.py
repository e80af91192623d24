"""The `slawatch` command: run a service, the dev stack, or check a configuration file.

Subcommands that belong to one area live in that area (the engine's `policy check`, the
notifier's `routes check`, ...); this module only dispatches, importing lazily so that
`slawatch policy check` does not pay for FastAPI and aiokafka.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence

# name -> (module, function, help). Services run with no arguments, configured by SLAWATCH_*.
SERVICES: dict[str, tuple[str, str]] = {
    "ingest": (
        "slawatch.services.ingest.main",
        "HTTP API that validates ticket events and publishes them to Kafka",
    ),
    "monitor": (
        "slawatch.services.sla_monitor.main",
        "Kafka consumer keeping SLA clocks; emits SLA events; read API",
    ),
    "notifier": ("slawatch.services.notifier.main", "routes SLA events to chat, webhooks and e-mail"),
    "console": ("slawatch.services.console.main", "the supervisor console: live board, tickets, reports"),
}

# name -> (module, function taking argv and returning an exit code, help)
TOOLS: dict[str, tuple[str, str, str]] = {
    "policy": (
        "slawatch.shared.engine.cli",
        "policy_main",
        "check an SLA policy file: `slawatch policy check FILE`",
    ),
    "routes": (
        "slawatch.services.notifier.cli",
        "routes_main",
        "check a routing file: `slawatch routes check FILE`",
    ),
    "sources": (
        "slawatch.services.ingest.sources.cli",
        "sources_main",
        "helpdesk adapters: `slawatch sources check FILE`, `slawatch sources test SYSTEM PAYLOAD.json`",
    ),
    "db": ("slawatch.services.database.cli", "db_main", "database migrations: `slawatch db upgrade`"),
    "replay": (
        "slawatch.services.sla_monitor.cli",
        "replay_main",
        "recompute one ticket: `slawatch replay --ticket ID`",
    ),
    "demo": ("slawatch.services.dev.demo", "demo_main", "run a demo scenario against `slawatch dev`"),
    "dev": ("slawatch.services.dev.stack", "dev_main", "start broker, database and every service locally"),
    "schemas": ("slawatch.services.schemas", "schemas_main", "write the JSON Schemas to a folder"),
    "topics": (
        "slawatch.shared.kafka",
        "topics_main",
        "create the topics slawatch uses: `slawatch topics create`",
    ),
}


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _load(module: str, function: str) -> Callable[..., object]:
    return getattr(importlib.import_module(module), function)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="slawatch", description="Live SLA monitoring for customer service."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SERVICES.items():
        if available(module):
            sub.add_parser(name, help=help_text)
    for name, (module, _function, help_text) in TOOLS.items():
        if available(module):
            sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in SERVICES and available(SERVICES[command][0]):
        if rest:
            parser.error(
                f"`slawatch {command}` takes no arguments; configure it with SLAWATCH_* variables"
            )
        _load(SERVICES[command][0], "run")()
        return 0
    if command in TOOLS and available(TOOLS[command][0]):
        module, function, _ = TOOLS[command]
        handler = getattr(importlib.import_module(module), function, None)
        if handler is not None:
            return int(handler(rest) or 0)
    parser.error(f"unknown command {command!r}")
    return 2  # parser.error exits; this keeps type checkers content


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
