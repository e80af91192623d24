"""Policy files: the examples load, mistakes are refused naming line and problem, CLI codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slawatch.shared.engine import PolicyError, load_policies, policy_json_schema
from slawatch.shared.engine.cli import policy_main
from tests.engine.helpers import POLICIES, policies

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["policies.yaml", "demo-policies.yaml"])
def test_example_files_load(name: str) -> None:
    ps = load_policies(ROOT / "examples" / name)
    assert ps.policies[-1].match == {}
    assert len(ps.fingerprint) == 12


def test_selection_and_why() -> None:
    ps = policies()
    vip = ps.select("urgent", "gold", "email", None, ())
    assert vip.id == "vip"
    assert vip.why("urgent", "gold", "email", None, ()) == {"customer_tier": "gold", "priority": "urgent"}
    assert ps.select("low", "gold", "email", None, ()).id == "standard"
    assert ps.select("low", "silver", "chat", "x", ("a",)).id == "office"
    assert ps.select("low", None, "chat", None, ()).why("low", None, "chat", None, ()) == {}
    example = load_policies(ROOT / "examples" / "policies.yaml")
    security = example.select("normal", None, "email", None, ("bug", "security"))
    assert security.id == "security"
    assert security.why("normal", None, "email", None, ("bug", "security")) == {"tags": ["security"]}


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(PolicyError) as caught:
        load_policies("p.yaml", text=text)
    return [(p.line, p.message) for p in caught.value.problems]


def good(**replace: str) -> str:
    text = POLICIES
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("escalations: [0m, 30m, 2h]", "escalatoins: [0m]", "escalatoins", "unknown key 'escalatoins'"),
        ("timezone: Asia/Shanghai", "timezone: Asia/Shanghia", "Shanghia", "unknown time zone 'Asia/Shanghia'"),
        ('mon: ["09:00-12:00", "13:00-18:00"]', 'mon: ["09:00-12:00", "11:00-18:00"]', "11:00-18:00", "overlap"),
        ('tue: ["09:00-12:00", "13:00-18:00"]', 'tue: ["09:00-25:00"]', "25:00", "bad interval '09:00-25:00'"),
        ("calendar: office", "calendar: offce", "offce", "unknown calendar 'offce'"),
        ("first_response: 15m", "first_response: 15x", "15x", "bad duration '15x'"),
        ("resolution: 8h", "resolution: 0m", "resolution: 0m", "must be longer than zero"),
        ("warn_at: [0.5, 0.8]", "warn_at: [0.5, 1.2]", "1.2", "not a fraction"),
        ("priority: [urgent, high]", "priority: [urgent, hgh]", "hgh", "unknown value 'hgh'"),
        ("holidays: {country: CN}", "holidays: {country: XX}", "XX", "holidays for country 'XX'"),
        ("    match: {}\n", "    match: {customer_tier: [bronze]}\n", "policies:", "no catch-all policy"),
        ("escalations: [0m, 30m, 2h]", "escalations: [30m, 10m]", "30m, 10m", "must increase"),
        ("pause_statuses: [pending, on_hold]", "pause_statuses: [pending, solved]", "pause_statuses", "'solved' cannot pause"),
        ("version: 1", "version: 2", "version", "unsupported version 2"),
    ],
)
def test_problems_name_line_and_problem(old: str, new: str, needle: str, message: str) -> None:
    text = good(**{old: new})
    found = problems(text)
    expected_line = line_of(text, needle)
    assert any(line == expected_line and message in text_ for line, text_ in found), found


def test_duplicate_id_unreachable_and_duplicate_keys() -> None:
    text = POLICIES + """  - id: vip
    match: {}
    calendar: always
    targets: {first_response: 1h}
"""
    found = problems(text)
    assert any("duplicate id" in m for _, m in found)
    last_item = len(text.splitlines()) - 3  # the "- id: vip" line of the appended policy
    catch_all = line_of(text, "- id: standard")
    assert (last_item, f"policy 'vip' can never apply: it comes after the catch-all policy 'standard' (line {catch_all})") in found
    dup = problems(good(**{"targets: {first_response: 1h, periodic_update: 2h, resolution: 8h}":
                           "targets: {first_response: 1h, first_response: 2h}"}))
    assert any("duplicate key 'first_response'" in m for _, m in dup)


def test_yaml_syntax_error_has_a_line() -> None:
    found = problems("version: 1\ncalendars: [\n")
    assert found[0][0] >= 2 and "not valid YAML" in found[0][1]


def test_every_problem_is_reported_at_once() -> None:
    text = good(**{"escalations: [0m, 30m, 2h]": "escalatoins: [0m]", "first_response: 15m": "first_response: 15x"})
    assert len(problems(text)) == 2


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text(POLICIES)
    assert policy_main(["check", str(ok)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(good(**{"first_response: 15m": "first_response: 15x"}))
    assert policy_main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:{line_of(bad.read_text(), '15x')}: policy 'vip': targets: first_response: bad duration" in err
    assert policy_main(["check", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert policy_main([]) == 2
    assert policy_main(["check"]) == 2
    (tmp_path / "empty.yaml").write_text("")
    assert policy_main(["check", str(tmp_path / "empty.yaml")]) == 2


def test_published_schema_matches_the_loader() -> None:
    path = ROOT / "docs" / "schemas" / "policy.schema.json"
    assert json.loads(path.read_text()) == policy_json_schema(), "regenerate: slawatch schemas"
