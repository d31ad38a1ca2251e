"""Print dltrain's requirements for an environment without TensorFlow: the dependencies in
pyproject.toml except tensorflow and tensorboard, plus the jax extra (for `make tf-free-env`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    sys.exit("tools/tf_free_requirements.py needs Python 3.11 or later (tomllib)")

WITHOUT = {"tensorflow", "tensorboard"}


def requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["jax"]]
    return [line for line in wanted
            if re.split(r"[\s<>=!~\[;]", line, maxsplit=1)[0].lower() not in WITHOUT]


if __name__ == "__main__":
    print("\n".join(requirements(Path(__file__).resolve().parents[1] / "pyproject.toml")))
