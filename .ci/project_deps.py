"""Print the project's requirements (pyproject.toml), one per line, for `pip install -r`: its
dependencies plus those of the extras named on the command line, the project's own extras
("lvsal-nb[notebook]") expanded in place. Lets setup install the dependencies before the project.

    python .ci/project_deps.py dev      # dependencies + dev + notebook (dev names lvsal-nb[notebook])
"""

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the copy pip vendors
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements(extras: list[str]) -> list[str]:
    """Requirement strings of the project and `extras`, self-references expanded, each once, in order."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    own = re.compile(rf"^{re.escape(project['name'])}\[([^\]]+)\]$", re.IGNORECASE)
    out: list[str] = []
    todo, seen = list(extras), set()

    def add(reqs: list[str]) -> None:
        for r in reqs:
            m = own.match(r.replace(" ", ""))
            if m:
                todo.extend(e.strip() for e in m.group(1).split(","))
            elif r not in out:
                out.append(r)

    add(project.get("dependencies", []))
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in project.get("optional-dependencies", {}):
            sys.exit(f"pyproject.toml has no extra {extra!r}")
        add(project["optional-dependencies"][extra])
    return out


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:])))
