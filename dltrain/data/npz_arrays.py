"""Named arrays of an .npz file, each header checked against its zip member before it is read.

A .npy header states the array's shape and dtype, and numpy allocates that much before reading
a byte of data: a tiny file claiming (10**12, 28, 28) ended in an out-of-memory message that
named no file. The zip directory's sizes are checked too, since deflate cannot expand data more
than about 1032:1 and a stored member holds exactly what it claims.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from dltrain.errors import DataError

ZIP_MAGIC = b"PK\x03\x04"
DEFLATE_RATIO = 1032  # deflate's largest expansion: 258 bytes from 2 bits
HEADER_ROOM = 1 << 16  # a member's .npy header and zip framing, beyond its data


def load_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays named `keys` that the .npz at `path` holds (members `key.npy` or `key`)."""
    with path.open("rb") as handle:
        if handle.read(4) != ZIP_MAGIC:
            raise DataError(f"{path}: not a readable .npz file (no zip archive; a single .npy "
                            "array is not a dataset). Save the arrays with numpy.savez.")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            return {key: _read_member(path, archive, members[key], key)
                    for key in keys if key in members}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc}).") from None


def _read_member(path: Path, archive: zipfile.ZipFile, member: str, key: str) -> np.ndarray:
    info = archive.getinfo(member)
    _check_claimed_size(path, info)
    with archive.open(info) as handle:
        version = npy_format.read_magic(handle)
        shape, _, dtype = (npy_format.read_array_header_1_0(handle) if version == (1, 0)
                           else npy_format.read_array_header_2_0(handle))
        header = handle.tell()
    size = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if header + size != info.file_size:
        raise DataError(f"{path}: array {key}'s header claims shape {shape} of {dtype}: "
                        f"{size:,} bytes, but its member {member} holds {info.file_size:,} "
                        "bytes in all. The file is damaged or was not written by numpy.savez; "
                        "write it again.")
    if size > physical_memory():
        raise DataError(f"{path}: array {key} of shape {shape} ({size:,} bytes) is larger than "
                        f"this machine's memory ({physical_memory():,} bytes). Use a smaller "
                        "dataset or a machine that holds it.")
    with archive.open(info) as handle:
        return npy_format.read_array(handle, allow_pickle=False)


def physical_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _check_claimed_size(path: Path, info: zipfile.ZipInfo) -> None:
    """The zip directory's uncompressed size, against what the compressed bytes can hold."""
    limit = {zipfile.ZIP_STORED: info.compress_size,
             zipfile.ZIP_DEFLATED: info.compress_size * DEFLATE_RATIO + HEADER_ROOM}
    if info.compress_type in limit and info.file_size > limit[info.compress_type]:
        raise DataError(f"{path}: member {info.filename} claims {info.file_size:,} bytes "
                        f"uncompressed, but holds {info.compress_size:,} "
                        f"{'stored' if info.compress_type == zipfile.ZIP_STORED else 'deflated'}"
                        " bytes, which cannot give that many. The file is damaged or was not "
                        "written by numpy.savez; write it again.")
