"""Monitor tools: `slawatch db upgrade|downgrade REV|current` and `slawatch replay --ticket ID`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from slawatch.shared.settings import SettingsError, database_settings


def _format_line(line: dict) -> str:
    what = line["what"]
    target = f"{line['target']}#{line['cycle']}" if "target" in line else ""
    extras = {k: v for k, v in line.items() if k not in ("at", "what", "target", "cycle", "detail")}
    detail = line.get("detail", "")
    rest = " ".join(f"{k}={v}" for k, v in extras.items())
    return f"{line['at']}  {what:<10} {target:<20} {detail} {rest}".rstrip()


def replay_main(argv: Sequence[str]) -> int:
    """Recompute one ticket from its retained events and print what its SLA clocks did.

    The tool for a disputed breach: it uses the events as stored and the policy file given
    (default SLAWATCH_POLICY_FILE), so "what would the current policy have said" is one flag.
    """
    parser = argparse.ArgumentParser(
        prog="slawatch replay", description=(replay_main.__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--ticket", required=True, help="the ticket id")
    parser.add_argument("--policies", type=Path, help="policy file (default: SLAWATCH_POLICY_FILE)")
    parser.add_argument(
        "--until", help="also run the clocks up to this RFC 3339 instant (default: now)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    args = parser.parse_args(argv)
    try:
        settings = database_settings()
    except SettingsError as exc:
        return int(exc.code or 2)
    assert settings.database_url is not None  # database_settings() exits without it
    until: datetime | None = datetime.now(UTC)
    if args.until:
        try:
            until = datetime.fromisoformat(args.until.replace("Z", "+00:00"))
        except ValueError:
            until = None
        if until is None or until.tzinfo is None:
            print(
                "slawatch replay: --until needs RFC 3339 with an offset, e.g. 2026-11-23T09:00:00Z",
                file=sys.stderr,
            )
            return 2
    from slawatch.services.sla_monitor import engine_port
    from slawatch.shared.engine import timeline
    from slawatch.shared.events import parse_event

    try:
        policies = engine_port.load_policies(args.policies or settings.policy_file)
    except engine_port.PolicyError as exc:
        print(f"slawatch replay: {exc}", file=sys.stderr)
        return 2
    payloads = asyncio.run(_retained(settings.database_url, args.ticket))
    if not payloads:
        print(f"slawatch replay: no retained events for ticket {args.ticket!r}", file=sys.stderr)
        return 2
    lines = timeline([parse_event(p) for p in payloads], policies, until)
    for line in lines:
        print(json.dumps(line) if args.json else _format_line(line))
    return 0


async def _retained(database_url: str, ticket_id: str) -> list[str]:
    from slawatch.services.sla_monitor.store import Store

    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        return await store.retained_events(ticket_id)
    finally:
        await store.close()
