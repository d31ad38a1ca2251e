"""dltrain: train Keras models from one YAML file."""

import time

__version__ = "0.1.0"
# The distribution's name (pyproject.toml): "dltrain" on PyPI is another author's package, so
# every install line names this one; the import package and the command stay `dltrain`.
DISTRIBUTION = "dltrain-keras"


def install_line(extra: str) -> str:
    """The line that installs this project with an extra, published or from a clone."""
    return f'pip install "{DISTRIBUTION}[{extra}]" (from a clone: pip install -e ".[{extra}]")'
STARTED = time.perf_counter()  # near enough the command's start: metrics.json's phase_seconds
