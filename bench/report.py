"""Collect the JSON figures each benchmark wrote and render bench/RESULTS.md.

Every benchmark reports ratios against a baseline measured in the same run, so the
report is comparable across machines; it still names the machine and the date.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _section(data: dict) -> list[str]:
    lines = [f"## {data['benchmark']}", ""]
    rows = data.get("rows", [])
    if rows:
        columns = list(rows[0])
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in rows:
            cells = [
                f"{v:,.2f}" if isinstance(v, float) else "-" if v is None else str(v)
                for v in row.values()
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    for note in data.get("notes", []):
        lines.append(f"- {note}")
    if data.get("notes"):
        lines.append("")
    if "goal" in data:
        verdict = "met" if data.get("met") else "NOT met"
        lines.append(f"Goals: `{json.dumps(data['goal'])}` - **{verdict}**")
        lines.append("")
    return lines


def _kept_sections(out: Path, fresh: set[str]) -> dict[str, list[str]]:
    """The sections of an existing report for benchmarks not run this time, so that
    `make bench-<name>` followed by this script updates only that benchmark's section."""
    if not out.exists():
        return {}
    kept: dict[str, list[str]] = {}
    name = None
    for line in out.read_text().splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
        if name is not None and name not in fresh:
            kept.setdefault(name, []).append(line)
    return kept


def main(results_dir: str, out: str) -> int:
    files = sorted(Path(results_dir).glob("*.json"))
    if not files:
        print(f"bench/report.py: no results in {results_dir}", file=sys.stderr)
        return 2
    results = {data["benchmark"]: data for data in (json.loads(p.read_text()) for p in files)}
    kept = _kept_sections(Path(out), set(results))
    lines = [
        "# Benchmark results",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}",
        "",
        "Each figure is measured beside its baseline in the same run (`make bench`).",
        "",
    ]
    if kept:
        lines += [
            f"Sections kept from the previous report (not run this time): {', '.join(kept)}.",
            "",
        ]
    for name in sorted(set(results) | set(kept)):
        if name in results:
            lines += _section(results[name])
        else:
            lines += kept[name]
    Path(out).write_text("\n".join(lines))
    print(f"wrote {out} from {len(files)} benchmark(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
