"""``slawatch policy check FILE``: validate a policy file before a monitor loads it.

Exit 0 when the file compiles (a short summary on stdout), 2 with one ``FILE:LINE:
problem`` per line on stderr when it does not, or when the command line is wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shared.engine.durations import format_duration
from shared.engine.policy import PolicyError, load_policies


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
            match = "; ".join(f"{k} in {sorted(v)}" for k, v in policy.match.items()) or "catch-all"
            print(f"  {policy.id}: {match} -> {targets} ({policy.calendar.name})")
        for group, ola in sorted(policies.olas.items()):
            targets = ", ".join(
                f"{spec.name} {format_duration(spec.ms / 1000)}" for spec in ola.targets.values()
            )
            print(f"  OLA {ola.id}: group {group} -> {targets} ({ola.calendar.name})")
    return 0


def main() -> None:  # pragma: no cover - convenience for `python -m shared.engine.cli`
    raise SystemExit(policy_main(sys.argv[1:]))


if __name__ == "__main__":  # pragma: no cover
    main()
