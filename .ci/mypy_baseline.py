"""mypy on the package, against a baseline: errors already known (.ci/mypy-baseline.txt) pass, any new
one fails. Lines are compared without line numbers, so unrelated edits don't churn the baseline.

    python .ci/mypy_baseline.py            # check (CI)
    python .ci/mypy_baseline.py --update   # rewrite the baseline after fixing errors
"""

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

BASELINE = Path(__file__).with_name("mypy-baseline.txt")
CMD = [sys.executable, "-m", "mypy", "lvsal_nb", "--ignore-missing-imports", "--no-error-summary"]


def errors() -> Counter:
    out = subprocess.run(CMD, capture_output=True, text=True, cwd=BASELINE.parent.parent).stdout
    lines = [re.sub(r"^([^:]+):\d+(:\d+)?: ", r"\1: ", ln) for ln in out.splitlines() if ": error: " in ln]
    return Counter(lines)


def main() -> int:
    now = errors()
    if "--update" in sys.argv:
        BASELINE.write_text("".join(f"{ln}\n" for ln in sorted(now.elements())))
        print(f"mypy baseline: {sum(now.values())} known errors written to {BASELINE}")
        return 0
    known = Counter(BASELINE.read_text().splitlines()) if BASELINE.exists() else Counter()
    new = now - known
    fixed = sum((known - now).values())
    print(f"mypy: {sum(now.values())} errors, {sum(known.values())} in the baseline, {fixed} fixed since")
    if new:
        print("new mypy errors (fix them; never add to the baseline by hand):")
        print("\n".join(sorted(new.elements())))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
