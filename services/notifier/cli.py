"""`slawatch routes check FILE`: validate a routing file before deploying it.

Exit 0 when the file is valid; exit 2 with one ``FILE:LINE: problem`` per line on
standard error otherwise. Secrets are never printed, only the names of unset variables.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from slawatch.services.notifier.config import RoutesError, load_routes


def _calendar_names(policy_file: str) -> tuple[set[str] | None, str | None]:
    """Calendar names of a policy file, or (None, why not) when they cannot be read."""
    from slawatch.services.notifier.calendars import CalendarsUnavailable, load_calendars

    try:
        return set(load_calendars(policy_file)), None
    except CalendarsUnavailable as exc:
        return None, str(exc)


def routes_main(argv: list[str] | Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="slawatch routes",
        description="Check a notification routing file (see docs/notifications.md).",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate FILE; exit 0, or 2 listing the problems")
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--policy",
        metavar="POLICY_FILE",
        help="also check quiet-hours calendar names against this SLA policy file",
    )
    check.add_argument(
        "--allow-unset-env",
        action="store_true",
        help="accept ${VAR} references to unset variables (CI checks without the secrets)",
    )
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)

    calendars: set[str] | None = None
    if args.policy:
        calendars, why = _calendar_names(args.policy)
        if calendars is None:
            print(f"{args.policy}: {why}", file=sys.stderr)
            return 2
    try:
        config = load_routes(
            args.file, os.environ, calendars=calendars, allow_unset_env=args.allow_unset_env
        )
    except RoutesError as exc:
        for issue in exc.issues:
            print(issue.render(exc.source), file=sys.stderr)
        count = len(exc.issues)
        print(f"{exc.source}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 2
    integrations = sum(len(r.integrations) for r in config.receivers.values())
    print(
        f"{args.file}: ok ({len(config.receivers)} receivers, {integrations} integrations, "
        f"{len(config.routes)} routes)"
    )
    if config.calendars and calendars is None:
        print(
            f"{args.file}: note: calendar names ({', '.join(sorted(config.calendars))}) "
            "not checked; pass --policy POLICY_FILE to check them"
        )
    return 0
