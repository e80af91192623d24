"""``slawatch sources``: check a mapping file, or show what a payload becomes.

``slawatch sources check FILE`` validates a mapping file (exit 0, or 2 with one
``FILE:LINE: problem`` per problem). ``slawatch sources test SYSTEM PAYLOAD.json
[--mapping FILE] [--header NAME:VALUE ...]`` prints, as JSON lines, the slawatch events the
payload becomes, through the same translation as ``POST /v1/sources/{system}`` (without
the signature check: it is for admins building a trigger body).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from slawatch.services.ingest.sources import ADAPTERS
from slawatch.services.ingest.sources.mapping import MappingError, load_mapping, resolve
from slawatch.services.ingest.sources.pipeline import (
    BadBody,
    Refused,
    delivery,
    parse_body,
    translate,
)


def _check(path: Path) -> int:
    try:
        model = load_mapping(path)
    except MappingError as exc:
        print("\n".join(exc.lines), file=sys.stderr)
        return 2
    print(f"{path}: ok ({model.system})")
    return 0


def _test(system: str, payload: Path, mapping: Path | None, headers: list[str]) -> int:
    if system not in ADAPTERS:
        print(
            f"slawatch sources: unknown system {system!r}; one of {', '.join(ADAPTERS)}",
            file=sys.stderr,
        )
        return 2
    try:
        model = load_mapping(mapping, system) if mapping else None
    except MappingError as exc:
        print("\n".join(exc.lines), file=sys.stderr)
        return 2
    try:
        body = payload.read_bytes()
    except OSError as exc:
        print(f"{payload}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    pairs = {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            print(f"slawatch sources: --header {header!r}: expected NAME:VALUE", file=sys.stderr)
            return 2
        pairs[name.strip()] = value.strip()
    received = delivery(system, pairs, body, datetime.now(UTC))
    try:
        result = translate(
            system,
            received,
            parse_body(system, body),
            resolve(system, ADAPTERS[system].defaults, model),
        )
    except BadBody as exc:
        print(f"{payload}: {exc}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(f"{payload}: {exc.message}", file=sys.stderr)
        for problem in exc.detail:
            where = f"event {problem['index']}: " if problem["index"] is not None else ""
            print(f"  {where}{problem['field']}: {problem['message']}", file=sys.stderr)
        return 2
    if not result.events:
        print(f"no events (ignored: {result.ignored})")
    for item in result.events:
        print(item.model_dump_json(exclude_none=True))
    return 0


def sources_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="slawatch sources", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="validate a mapping file")
    check.add_argument("file", type=Path)
    test = sub.add_parser("test", help="print the slawatch events a payload becomes")
    test.add_argument("system", help=", ".join(ADAPTERS))
    test.add_argument("payload", type=Path)
    test.add_argument("--mapping", type=Path, default=None)
    test.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    args = parser.parse_args(list(argv))
    if args.action == "check":
        return _check(args.file)
    return _test(args.system, args.payload, args.mapping, args.header)
