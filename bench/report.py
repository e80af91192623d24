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
            cells = [f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row.values()]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if "goal" in data:
        verdict = "met" if data.get("met") else "NOT met"
        lines.append(f"Goals: `{json.dumps(data['goal'])}` - **{verdict}**")
        lines.append("")
    return lines


def main(results_dir: str, out: str) -> int:
    files = sorted(Path(results_dir).glob("*.json"))
    if not files:
        print(f"bench/report.py: no results in {results_dir}", file=sys.stderr)
        return 2
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
    for path in files:
        lines += _section(json.loads(path.read_text()))
    Path(out).write_text("\n".join(lines))
    print(f"wrote {out} from {len(files)} benchmark(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
