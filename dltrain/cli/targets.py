"""Where a command will write, checked before it starts: a refusal after minutes of work (a
smoke run, an export) would lose the work, and a link would be written through to its target."""

from __future__ import annotations

import os
from pathlib import Path

from dltrain.errors import DltrainError

EXAMPLE = {"--junit": "smoke.xml", "PATH": "starter.yaml"}  # a file name to suggest in a folder


def check_target(path: Path, option: str, folder: bool = False) -> None:
    """Refuse a target that cannot be written as asked, naming `option` and the path.

    The target must not be a link (nor a folder, unless `folder`: a SavedModel is one); the
    nearest folder above it that exists must be a folder, and writable, so the rest can be made.

    Raises:
        DltrainError: what is in the way and what to do instead.
    """
    where = f"{option} {path}"
    if path.is_symlink():
        raise DltrainError(f"{where}: is a link (to {os.readlink(path)}); dltrain does not write "
                           "through links, which could replace a file elsewhere. Give a plain path.")
    if path.is_dir() and not folder:
        raise DltrainError(f"{where}: is a folder; a file goes there. Name a file, e.g. "
                           f"{path / EXAMPLE.get(option, 'out')}.")
    above = _nearest_existing(path.parent)
    if not above.is_dir():
        raise DltrainError(f"{where}: {above} is a file, not a folder, so nothing can be written "
                           "under it. Choose another path.")
    if not os.access(above, os.W_OK | os.X_OK):
        raise DltrainError(f"{where}: the folder {above} cannot be written (permissions or a "
                           "read-only disk). Make it writable or choose another path.")


def _nearest_existing(folder: Path) -> Path:
    folder = folder.absolute()
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder
