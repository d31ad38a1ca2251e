"""`dltrain init`: write a short, commented starter config that trains on data shipped with dltrain.

The templates live beside this module (templates/*.yaml); a template that reads a CSV brings a
copy of dltrain's sample file, so the config works as written and shows where a user's own
file goes. Nothing is ever overwritten.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from dltrain.errors import DltrainError

# template -> the shipped sample files it reads, copied beside the config
TEMPLATES: dict[str, tuple[str, ...]] = {
    "image": (),
    "tabular": ("pima_diabetes.csv",),
    "regression": ("auto_mpg.csv",),
}
SCHEMA_FILE = "dltrain.schema.json"  # what each template's modeline names


DEFAULT_TEMPLATE = "image"
CONFIG_SUFFIXES = (".yaml", ".yml")


def starter_target(first: str, second: str | None) -> tuple[str, Path]:
    """`dltrain init`'s arguments as (template, path): TEMPLATE [PATH], a PATH alone (the
    default template), or PATH TEMPLATE. A path is told from a template by its .yaml ending.

    Raises:
        DltrainError: `first` is neither a template nor a config path.
    """
    if first in TEMPLATES:
        return first, Path(second) if second is not None else Path(f"{first}.yaml")
    if first.endswith(CONFIG_SUFFIXES) and (second is None or second in TEMPLATES):
        return second or DEFAULT_TEMPLATE, Path(first)
    from dltrain.config.names import did_you_mean

    if first.endswith(CONFIG_SUFFIXES) and str(second).endswith(CONFIG_SUFFIXES):
        raise DltrainError(f"two config paths ({first}, {second}): give one PATH and, if not "
                           f"the default ({DEFAULT_TEMPLATE}), one of {', '.join(TEMPLATES)}. "
                           "Example: dltrain init tabular mine.yaml")
    wrong = str(second) if first.endswith(CONFIG_SUFFIXES) else first
    raise DltrainError(f"{wrong!r} is not one of {', '.join(TEMPLATES)} (the templates), nor a "
                       f"config PATH ending in .yaml.{did_you_mean(wrong, TEMPLATES)} "
                       "Example: dltrain init tabular mine.yaml")


def template_text(template: str) -> str:
    return (resources.files("dltrain.config") / "templates" / f"{template}.yaml").read_text(
        encoding="utf-8")


def sample_bytes(name: str) -> bytes:
    # A resource lookup in the shipped data, not an import of the data stage.
    return (resources.files("dltrain.data.shipped") / name).read_bytes()


def write_starter(template: str, path: Path) -> list[Path]:
    """Write the template to `path` (with its sample data and the schema beside it).

    Returns the files written, the config first. Raises DltrainError, before writing anything,
    when the config exists (a link too), its folder does not, it would take a companion file's
    name, or a sample file of another content is in the way; an identical sample file or an
    existing schema file is kept as it is. Nothing is left behind when a write fails.
    """
    if template not in TEMPLATES:
        raise DltrainError(f"unknown template {template!r}. Choose one of: "
                           f"{', '.join(sorted(TEMPLATES))}.")
    folder = path.parent
    companions = {folder / name: sample_bytes(name) for name in TEMPLATES[template]}
    companions[folder / SCHEMA_FILE] = (json.dumps(editor_schema(), indent=2) + "\n").encode()
    check_starter(path, companions)
    text = template_text(template).replace(f"{template}.yaml", path.name)  # its how-to lines
    try:
        with path.open("x", encoding="utf-8") as file:  # "x": never over a file made meanwhile
            file.write(text)
    except FileExistsError:
        raise DltrainError(f"{path} already exists; dltrain init never overwrites a file. "
                           "Choose another PATH.") from None
    written = [path]
    try:
        for target, data in companions.items():
            if not target.exists():
                target.write_bytes(data)
                written.append(target)
    except BaseException:  # a full disk, Ctrl-C: no starter half made
        for done in written:
            done.unlink(missing_ok=True)
        raise
    return written


def check_starter(path: Path, companions: dict[Path, bytes]) -> None:
    """Everything that would make `write_starter` refuse, checked before it writes anything."""
    folder = path.parent
    if not folder.is_dir():
        raise DltrainError(f"no such folder: {folder}. Create it first, or give another PATH.")
    if path.exists() or path.is_symlink():
        raise DltrainError(f"{path} already exists; dltrain init never overwrites a file. "
                           "Choose another PATH.")
    if path.name in {target.name for target in companions}:
        raise DltrainError(f"{path}: {path.name} is the name of a file init writes beside the "
                           "config; name the config otherwise, e.g. "
                           f"{path.with_name('starter.yaml')}.")
    for target, data in companions.items():
        if target.is_symlink() and not target.exists():  # writing would create its target
            raise DltrainError(f"{target} is a link to nothing; dltrain init does not write "
                               "through links. Remove it or write the config to another folder.")
        if target.name != SCHEMA_FILE and target.exists() and target.read_bytes() != data:
            raise DltrainError(f"{target} already exists and is not dltrain's sample data; "
                               "move it away or write the config to another folder.")


def editor_schema() -> dict:
    from dltrain.config.catalog import with_layer_names
    from dltrain.config.schema import json_schema

    return with_layer_names(json_schema())
