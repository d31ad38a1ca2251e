"""The install lines name this project's distribution: "dltrain" on PyPI is another author's."""

import re
import subprocess
from pathlib import Path

import dltrain
from dltrain.backend.names import INSTALL

ROOT = Path(__file__).resolve().parents[1]
# pip install dltrain, "dltrain[jax]", 'dltrain[torch]', dltrain==0.1: all install someone else's code.
FOREIGN = re.compile(r"""pip install (-U |--upgrade )?["']?dltrain(?![\w-])""")
# ... and an extra of it anywhere, a line break away from its "pip install" too.
FOREIGN_EXTRA = re.compile(r"""(?<![\w.-])dltrain\[""")


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True, timeout=30).stdout.split()
    return [ROOT / name for name in names if Path(name).suffix in {
        ".py", ".md", ".toml", ".yaml", ".yml", ".json", ".txt", ".cfg", ""}]


def test_the_pattern_catches_each_spelling_of_the_foreign_name():
    for line in ['pip install dltrain', 'pip install "dltrain[jax]"', "pip install 'dltrain[torch]'",
                 "pip install -U dltrain"]:
        assert FOREIGN.search(line), line
    assert FOREIGN_EXTRA.search("""'install "dltrain[jax]"'""")
    for line in ['pip install "dltrain-keras[jax]"', 'pip install -e ".[jax]"']:
        assert not FOREIGN.search(line) and not FOREIGN_EXTRA.search(line), line


def test_no_file_tells_anyone_to_pip_install_dltrain():
    offenders = []
    for path in _tracked_text_files():
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if FOREIGN.search(line) or FOREIGN_EXTRA.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_distribution_is_named_in_pyproject_and_in_every_extra_hint():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'name = "{dltrain.DISTRIBUTION}"' in pyproject
    assert dltrain.DISTRIBUTION != "dltrain"
    assert INSTALL["jax"] == 'pip install "dltrain-keras[jax]" (from a clone: pip install -e ".[jax]")'
    assert INSTALL["torch"].startswith('pip install "dltrain-keras[torch]"')
