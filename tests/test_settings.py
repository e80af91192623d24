"""Settings: every variable documented, and a bad one stops a service with one clear line."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from slawatch.services.cli import SERVICES, available
from slawatch.shared.settings import CommonSettings

DOC = Path("docs/configuration.md").read_text()


def all_settings_classes() -> list[type[CommonSettings]]:
    for module, _ in SERVICES.values():
        settings_module = module.rsplit(".", 1)[0] + ".settings"
        if available(settings_module):
            importlib.import_module(settings_module)
    found, todo = [], [CommonSettings]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_setting_is_documented_with_a_default() -> None:
    documented = set(re.findall(r"^\| `(SLAWATCH_[A-Z0-9_]+)` \| [^|]+ \|", DOC, flags=re.M))
    names = {
        f"SLAWATCH_{field.upper()}" for cls in all_settings_classes() for field in cls.model_fields
    }
    assert names - documented == set(), "document these in docs/configuration.md"


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "slawatch.services.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (
            {"SLAWATCH_INGEST_PORT": "eighty", "SLAWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
            "SLAWATCH_INGEST_PORT",
        ),
        ({"SLAWATCH_KAFKA_BOOTSTRAP": "no-port"}, "SLAWATCH_KAFKA_BOOTSTRAP"),
        ({}, "SLAWATCH_KAFKA_BOOTSTRAP"),
        ({"SLAWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, "SLAWATCH_INGEST_API_KEYS"),
        (
            {"SLAWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1", "SLAWATCH_INGEST_API_KEYS": "crm:nothex"},
            "SLAWATCH_INGEST_API_KEYS",
        ),
        (
            {
                "SLAWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1",
                "SLAWATCH_DATABASE_URL": "mysql://u:hunter2@h/db",
            },
            "SLAWATCH_DATABASE_URL",
        ),
        ({"SLAWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1", "SLAWATCH_ENV": "staging"}, "SLAWATCH_ENV"),
    ],
)
def test_bad_setting_stops_ingest_with_one_line_naming_it(
    env: dict[str, str], variable: str
) -> None:
    result = run_cli("ingest", **env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("slawatch:")]
    assert lines and all(variable in line for line in lines), result.stderr
    assert "hunter2" not in result.stderr and "nothex" not in result.stderr


@pytest.mark.parametrize("command", [("db", "upgrade"), ("replay", "--ticket", "T-1")])
def test_database_commands_without_a_database_exit_2_naming_it(command: tuple[str, ...]) -> None:
    result = run_cli(*command)
    assert result.returncode == 2
    assert result.stderr.strip() == "slawatch: bad setting SLAWATCH_DATABASE_URL: required"


def test_cli_usage_errors_exit_2() -> None:
    assert run_cli().returncode == 2
    assert run_cli("frobnicate").returncode == 2
    assert run_cli("ingest", "--port", "1").returncode == 2
    assert run_cli("--help").returncode == 0


def test_notifier_refuses_bad_configuration_with_one_line_each(tmp_path: Path) -> None:
    base = {"SLAWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "SLAWATCH_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/db"}
    missing = run_cli("notifier", SLAWATCH_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert missing.returncode == 2 and "SLAWATCH_DATABASE_URL: required" in missing.stderr

    routes = tmp_path / "routes.yaml"
    routes.write_text("receivers:\n  - name: r\n    integrations: [{type: pager}]\n")
    bad = run_cli("notifier", **base, SLAWATCH_ROUTES_FILE=str(routes))
    assert bad.returncode == 2
    assert f"{routes}:3:" in bad.stderr and "SLAWATCH_ROUTES_FILE" in bad.stderr
    assert "hunter2" not in bad.stderr

    keys = run_cli("notifier", **base, SLAWATCH_NOTIFIER_API_KEYS="ops:nothex")
    assert keys.returncode == 2 and "SLAWATCH_NOTIFIER_API_KEYS" in keys.stderr
    assert "nothex" not in keys.stderr
