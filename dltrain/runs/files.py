"""Every file dltrain writes, written whole or not at all: temporary name, flush, fsync, rename.

Models, JSON, CSV, YAML, figures and reports all go through `atomic_target`, so a crash or a
SIGKILL at any moment leaves the previous version of a file or the next, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dltrain.backend import one_step_per_execution_saved
from dltrain.console import finite
from dltrain.errors import RunError

# atomic_target's temporary names: "." + the target's name + "." + mkstemp's 8 random characters
# + the suffix. A kill leaves them behind; `temporary_of` tells them from a user's files.
TEMPORARY = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}(\.tmp|\.keras|\.png)")


def temporary_of(name: str) -> str | None:
    """The target whose temporary file `name` is (written by atomic_target), else None."""
    match = TEMPORARY.fullmatch(name)
    return match["target"] if match else None


@contextlib.contextmanager
def atomic_target(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside `path` to write; renamed over `path` once the block succeeds.

    The suffix matters to writers that pick a format from the file name (Keras: `.keras`,
    matplotlib: `.png`).
    """
    refuse_link(path)
    try:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise _naming(exc, path) from exc
    os.close(handle)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are for sharing
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise _naming(exc, path) from exc
    finally:
        tmp.unlink(missing_ok=True)


def refuse_link(path: Path) -> None:
    """A symbolic link where dltrain is about to write is refused, never replaced or followed: a
    link planted in a run (to a file outside it) says the folder was tampered with."""
    if path.is_symlink():
        raise RunError(f"{path}: a symbolic link (to {os.readlink(path)}), where dltrain writes "
                       "a file of its own; dltrain never writes through a link, which could "
                       "change a file outside the run. Remove the link (and put the run's own "
                       "file back, or start the run again).")


def _naming(exc: OSError, path: Path) -> OSError:
    """The error with the file the user asked for as its name, not the temporary one (writers
    such as zipfile give none): a full disk or a read-only folder is reported for `path`."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(finite(data), indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing; is {path.parent} a dltrain run directory?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # damaged on disk: not ours to fix
        raise RunError(f"{path}: not valid JSON ({exc}).") from None


def read_object(path: Path, fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """A JSON object dltrain wrote, with each of `fields` of its type where present (or null):
    the commands that read run.json, manifest.json, ... name a damaged one instead of failing
    on it."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise RunError(f"{path}: not a JSON object; the run's files are damaged, so start the "
                       f"run again with dltrain fit. It holds {json_type(data)}, where dltrain "
                       "writes an object.")
    check_fields(path, data, fields)
    return data


def check_fields(path: Path, data: dict[str, Any],
                 fields: dict[str, type | tuple[type, ...]]) -> None:
    """Each of `fields` in `data` of its type where present (or null); RunError naming it."""
    for key, kind in fields.items():
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            raise RunError(f"{path}: {key} holds {json_type(value)}, not the "
                           f"{KINDS.get(kind, 'value')} dltrain writes; the run's files are "
                           "damaged, so start the run again with dltrain fit.")


KINDS: dict[type | tuple[type, ...], str] = {str: "string", dict: "object", list: "list",
                                             int: "whole number", (int, float): "number"}


def json_type(value: Any) -> str:
    """What a JSON value is, in JSON's words: a run file holding the wrong one is named so."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(value), "a number")


def save_model(model: Any, path: Path) -> None:
    """Keras saves in place; save beside the target and rename, so the target is always whole.
    The file runs on any backend (backend.one_step_per_execution_saved)."""
    with atomic_target(path, suffix=".keras") as tmp, one_step_per_execution_saved(model):
        model.save(tmp)


def copy_file(source: Path, path: Path) -> None:
    """`path` gets `source`'s content: as a second name of the same file where the filesystem
    has hard links, else as a copy. A link writes nothing (best.keras is last.keras of its
    epoch: 20 MB for fashion_mnist_gpu), and is safe because no file here is ever rewritten in
    place: the next last.keras is a new file, renamed over the name, and best.keras keeps the
    old one."""
    with atomic_target(path, suffix=source.suffix) as tmp:
        try:
            tmp.unlink()
            os.link(source, tmp)
        except OSError:  # no hard links here (some network and FUSE filesystems): copy
            shutil.copyfile(source, tmp)


FIGURE_DPI = 110


def save_figure(figure: Any, path: Path) -> None:
    """A matplotlib figure as PNG, cropped to what it draws; one that pyplot made (Optuna's) is
    closed either way, so pyplot lets it go (the report's own figures are made without pyplot).
    Optuna's are cropped by savefig's own measure: their legends stand beside the axes, placed
    as the figure is drawn."""
    made_by_pyplot = figure.canvas.manager is not None
    try:
        with atomic_target(path, suffix=".png") as tmp:
            figure.savefig(tmp, dpi=FIGURE_DPI,
                           bbox_inches="tight" if made_by_pyplot else tight_box(figure))
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close(figure)


def tight_box(figure: Any) -> Any:
    """The box `bbox_inches="tight"` crops a figure made without pyplot to, in inches, padded
    as it pads. Measured here, the figure is laid out once: savefig's "tight" first draws the
    whole figure (without its pixels) to measure it, then draws it again to save it; about a
    seventh of a fit's figures' CPU time, for the same pixels (each of report.plots' pictures
    compared byte for byte)."""
    from matplotlib import rcParams
    from matplotlib.backends.backend_agg import RendererAgg

    dpi = figure.dpi
    figure.set_dpi(FIGURE_DPI)  # the text's extents are measured at the dpi it is saved at
    try:
        width, height = figure.get_size_inches() * FIGURE_DPI
        renderer = RendererAgg(int(width), int(height), FIGURE_DPI)
        return figure.get_tightbbox(renderer).padded(rcParams["savefig.pad_inches"])
    finally:
        figure.set_dpi(dpi)


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    if not rows:
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, out.getvalue())


def read_history(path: Path) -> list[dict[str, float]]:
    """history.csv as rows of floats (epoch as int); [] when there is none yet."""
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
        if reader.fieldnames and "epoch" not in reader.fieldnames:
            raise ValueError("no epoch column")
        return [{key: (int(value) if key == "epoch" else float(value)) for key, value in row.items()}
                for row in rows]
    except (TypeError, ValueError, csv.Error):  # UnicodeDecodeError is a ValueError
        raise RunError(f"{path}: not a history written by dltrain.") from None
