"""The pixel size an image file's header claims, read without decoding it, so that a
decompression bomb (a small PNG claiming 30000x30000 pixels) is named before any decoder
allocates for it: Pillow raised its DecompressionBombError through dltrain as an internal error."""

from __future__ import annotations

import struct
from typing import BinaryIO

from dltrain.errors import DataError

# JPEG's start-of-frame markers, which hold the size: C0-CF but C4 (Huffman tables), C8
# (reserved) and CC (arithmetic coding conditioning).
JPEG_FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_SEGMENTS = 1000  # a header with more segments than this is not a photo's


def max_pixels() -> int:
    """Pillow's own bound for a decompression bomb: twice MAX_IMAGE_PIXELS (178,956,970 by
    default), where its DecompressionBombError begins; below, it only warns, and a large
    photo (a 96 MP aerial one) decodes."""
    from PIL import Image

    return 2 * int(Image.MAX_IMAGE_PIXELS or 0) or 1 << 62


def check_pixels(handle: BinaryIO, where: str) -> None:
    """Refuse an image whose header claims more pixels than Pillow's bomb limit."""
    size = claimed_size(handle)
    if size is None:
        return  # not a header these formats have: the decoder names the file when it fails
    width, height = size
    if width * height > max_pixels():
        raise DataError(f"{where}: an image of {width}x{height} pixels ({width * height:,}), "
                        f"more than the {max_pixels():,} Pillow accepts: decoding it would take "
                        "gigabytes (a decompression bomb, or a photo far larger than a model "
                        "takes). Shrink it, or remove it.")


def claimed_size(handle: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, BMP or JPEG header; None when it is none of them."""
    head = handle.read(32)
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return struct.unpack("<HH", head[6:10])
    if head.startswith(b"BM") and len(head) >= 26:
        if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2's header: 16-bit sizes
            return struct.unpack("<HH", head[18:22])
        width, height = struct.unpack("<ii", head[18:26])
        return abs(width), abs(height)  # a negative height: rows stored top-down
    if head.startswith(b"\xff\xd8"):
        handle.seek(2)
        return _jpeg_size(handle)
    return None


def _jpeg_size(handle: BinaryIO) -> tuple[int, int] | None:
    """Walk the segments to the first start-of-frame, skipping each by its length."""
    for _ in range(JPEG_SEGMENTS):
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        if marker[1] == 0xFF:  # fill byte before a marker
            handle.seek(-1, 1)
            continue
        if marker[1] in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            continue
        body = handle.read(7)
        if len(body) < 2:
            return None
        if marker[1] in JPEG_FRAMES:
            if len(body) < 7:
                return None
            height, width = struct.unpack(">HH", body[3:7])
            return width, height
        handle.seek(struct.unpack(">H", body[:2])[0] - 7, 1)
    return None
