"""`slawatch db`: migrate the one database the monitor and the notifier share."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from slawatch.shared.settings import SettingsError, database_settings


def db_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="slawatch db", description="Migrate slawatch's database (SLAWATCH_DATABASE_URL)."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("upgrade", help="migrate to the newest schema (default) or to REVISION")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="migrate down to REVISION")
    down.add_argument("revision")
    sub.add_parser("current", help="print the schema revision")
    args = parser.parse_args(argv)
    try:
        settings = database_settings()
    except SettingsError as exc:
        return int(exc.code or 2)
    assert settings.database_url is not None  # database_settings() exits without it
    from slawatch.services.database import migrate

    if args.action == "upgrade":
        migrate.upgrade(settings.database_url, args.revision)
    elif args.action == "downgrade":
        migrate.downgrade(settings.database_url, args.revision)
    else:
        migrate.current(settings.database_url)
    return 0
