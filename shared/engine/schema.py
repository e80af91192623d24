"""Write docs/schemas/policy.schema.json from the loader's own key lists.

python -m shared.engine.schema [PATH]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shared.engine.policy import policy_json_schema


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "docs/schemas/policy.schema.json")
    path.write_text(json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
