"""``slawatch policy check FILE``: validate a policy file before a monitor loads it.

Exit 0 when the file compiles (a short summary on stdout), 2 with one ``FILE:LINE:
problem`` per line on stderr when it does not, or when the command line is wrong.

Warnings go to stderr as ``FILE:LINE: warning: ...`` and leave the exit code 0 (``--strict``
makes them exit 2): a calendar whose holiday data is not official from some date on (the
coverage guard, shared/engine/coverage.py) and a contract that ends within 30 days or
has ended (shared/engine/contracts.py), both as of today (``--today`` to ask about
another day).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from slawatch.shared.engine import contracts
from slawatch.shared.engine.durations import format_duration
from slawatch.shared.engine.policy import PolicyError, PolicySet, load_policies


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _values(key: str, values: frozenset[str], shown: int = 5) -> str:
    """``key in [...]``, a long list (a file of customer ids) cut to its first values."""
    ordered = sorted(values)
    if len(ordered) <= shown:
        return f"{key} in {ordered}"
    return f"{key} in {len(ordered)} values ({', '.join(map(repr, ordered[:shown]))}, ...)"


def warnings(policies: PolicySet, today: date) -> list[tuple[int, str]]:
    """(line, warning) for what deserves attention in a usable file, as of ``today`` (UTC)."""
    out = [
        (policies.calendar_lines.get(item.calendar, 0), message)
        for item in policies.check_coverage(today)
        if (message := item.warning()) is not None
    ]
    now = datetime.combine(today, time(0), tzinfo=UTC)
    out += contracts.expiring(policies.contract_policies(), now)
    return sorted(out)


def policy_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="slawatch policy", description="Work with SLA policy files."
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    check = sub.add_parser(
        "check", help="validate a policy file; exit 0 if usable, 2 with the problems if not"
    )
    check.add_argument("file", help="the policy file (YAML)")
    check.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing when the file is fine"
    )
    check.add_argument("--strict", action="store_true", help="exit 2 when there are warnings, too")
    check.add_argument(
        "--today",
        type=_day,
        default=None,
        metavar="YYYY-MM-DD",
        help="check coverage and contract ends as of this day (default: today, UTC)",
    )
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.action != "check":
        parser.print_usage(sys.stderr)
        print("slawatch policy: name an action, e.g. `slawatch policy check FILE`", file=sys.stderr)
        return 2
    try:
        policies = load_policies(args.file)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        count = len(exc.problems)
        print(
            f"{args.file}: {count} problem{'s' if count != 1 else ''}; the file was not accepted",
            file=sys.stderr,
        )
        return 2
    if not args.quiet:
        print(
            f"{args.file}: OK - {len(policies.calendars)} calendar(s), {len(policies.policies)} policies "
            f"(fingerprint {policies.fingerprint})"
        )
        for policy in policies.policies:
            targets = ", ".join(
                f"{spec.name} {format_duration(spec.ms / 1000)}" for spec in policy.targets.values()
            )
            match = "; ".join(_values(k, v) for k, v in policy.match.items()) or "catch-all"
            window = (
                f" [contract {contracts.describe_window(policy.window)}]"
                if policy.window != (None, None)
                else ""
            )
            print(f"  {policy.id}: {match} -> {targets} ({policy.calendar.name}){window}")
        for group, ola in sorted(policies.olas.items()):
            targets = ", ".join(
                f"{spec.name} {format_duration(spec.ms / 1000)}" for spec in ola.targets.values()
            )
            print(f"  OLA {ola.id}: group {group} -> {targets} ({ola.calendar.name})")
    found = warnings(policies, args.today or datetime.now(UTC).date())
    for line, message in found:
        where = f"{args.file}:{line}" if line else args.file
        print(f"{where}: warning: {message}", file=sys.stderr)
    if found and args.strict:
        count = len(found)
        print(
            f"{args.file}: {count} warning{'s' if count != 1 else ''} (--strict: not accepted)",
            file=sys.stderr,
        )
        return 2
    return 0


def main() -> None:  # pragma: no cover - convenience for `python -m slawatch.shared.engine.cli`
    raise SystemExit(policy_main(sys.argv[1:]))


if __name__ == "__main__":  # pragma: no cover
    main()
