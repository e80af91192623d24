"""`slawatch sources check FILE` (FILE:LINE problems, exit 2) and `slawatch sources test`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from slawatch.services.ingest.sources.cli import sources_main
from tests.sources.payloads import LIVES


def test_check_accepts_a_good_file(tmp_path: Path, capsys) -> None:
    good = tmp_path / "jira.yaml"
    good.write_text(
        "version: 1\nsystem: jira\nstatuses:\n  Waiting on vendor: on_hold\n"
        "priorities: {P1: urgent}\ncustomer_tier:\n  path: issue.fields.customfield_10002.0.name\n"
    )
    assert sources_main(["check", str(good)]) == 0
    assert "ok (jira)" in capsys.readouterr().out


def test_check_reports_every_problem_with_its_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "system: zendesk\n"  # 1
        "statuses:\n"  # 2
        "  Waiting on vendor: onhold\n"  # 3
        "priorites: {}\n"  # 4
        "channel: fax\n"  # 5
        "customer_tier:\n"  # 6
        "  path: 'a b'\n"  # 7
        "statuses: {}\n"  # 8
    )
    assert sources_main(["check", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{bad}:8: duplicate key `statuses` in (document)"], err
    bad.write_text("\n".join(bad.read_text().splitlines()[:7]) + "\n")
    assert sources_main(["check", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{bad}:3: statuses.Waiting on vendor: Input should be"), err
    assert err[1] == f"{bad}:4: priorites: unknown key `priorites`", err
    assert err[2].startswith(f"{bad}:5: channel: Input should be"), err
    assert err[3].startswith(f"{bad}:7: customer_tier.path: String should match"), err
    assert len(err) == 4


def test_check_refuses_yaml_errors_and_missing_files(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("system: jira\nstatuses: [\n")
    assert sources_main(["check", str(broken)]) == 2
    assert capsys.readouterr().err.startswith(f"{broken}:3: invalid YAML")
    assert sources_main(["check", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_test_prints_the_events_a_payload_becomes(tmp_path: Path, capsys) -> None:
    step = LIVES["zammad"][0](datetime(2026, 11, 23, tzinfo=UTC))[1]
    payload = tmp_path / "p.json"
    payload.write_bytes(step.raw())
    assert sources_main(["test", "zammad", str(payload)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["type"] for e in lines] == [t for t, _ in step.expected]
    assert lines[1]["data"] == {"author_role": "agent", "public": True}


def test_test_explains_a_refusal_and_wrong_mapping_system(tmp_path: Path, capsys) -> None:
    payload = tmp_path / "p.json"
    payload.write_text(
        '{"ticket": {"id": 1, "state": "limbo", "created_at": "2026-01-01T00:00:00Z"}}'
    )
    assert sources_main(["test", "zammad", str(payload)]) == 2
    assert "ticket.state" in capsys.readouterr().err
    mapping = tmp_path / "m.yaml"
    mapping.write_text("system: jira\n")
    assert sources_main(["test", "zammad", str(payload), "--mapping", str(mapping)]) == 2
    assert f"{mapping}:1: system: this file is for jira, not zammad" in capsys.readouterr().err
    assert sources_main(["test", "otrs", str(payload)]) == 2
