"""Write tests/module_costs.json from a JUnit XML of a full test run: each test module's seconds.

`make test` hands modules to its two processes longest first (tests/conftest.py orders them by
these costs), so the run does not end with one process idle while the other works through a
module of slow fits. Refresh after the slow tests change much:

    .venv/bin/python -m pytest -n 2 --dist loadscope --junitxml=/tmp/run.xml
    .venv/bin/python tools/module_costs.py /tmp/run.xml
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "module_costs.json"


def module_costs(junit: Path) -> dict[str, int]:
    """Seconds per test file (tests/test_x.py), from each testcase's classname and time."""
    costs: Counter[str] = Counter()
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        costs[module] += float(case.get("time") or 0)
    return {module: round(seconds) for module, seconds in sorted(costs.items())}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    OUT.write_text(json.dumps(module_costs(Path(argv[0])), indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
