"""Image files decoded to arrays: TensorFlow's decoder on its backend, Pillow elsewhere."""

from __future__ import annotations

from typing import Any

from dltrain.backend.runtime import active_backend, keras_module, tensorflow_module


class ImageDecodeError(ValueError):
    """The bytes are not an image the backend can decode; the message says why."""


def decode_image(data: bytes, channels: int, size: tuple[int, int]) -> Any:
    """Decode PNG/JPEG/BMP/GIF bytes to uint8 [height, width, channels], resized bilinearly.

    TensorFlow's decoder on its backend (as always), Pillow elsewhere; both resize with the
    same half-pixel bilinear kernel and no antialiasing.
    """
    if active_backend() != "tensorflow":
        return _decode_with_pillow(data, channels, size)
    import re

    tf = tensorflow_module()
    try:
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        if _pillow_reads_it(data):  # a grey BMP or GIF asked as RGB, a CMYK JPEG
            return _decode_with_pillow(data, channels, size)
        raise ImageDecodeError(re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]", "",
                                      str(exc).splitlines()[0])) from None
    if tuple(image.shape[:2]) != tuple(size):
        resized = tf.image.resize(image, size)
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return image.numpy()


def _pillow_reads_it(data: bytes) -> bool:
    """Whether bytes TensorFlow refused are an image it cannot take in that form but Pillow
    can (BMP and GIF in another channel count, CMYK JPEG): not a damaged file, which must stay
    refused (a truncated PNG is found and named by its refusal)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            return opened.format in ("BMP", "GIF") or (opened.format == "JPEG"
                                                      and opened.mode == "CMYK")
    except (UnidentifiedImageError, OSError, SyntaxError):
        return False


def _eight_bit(image: Any) -> Any:
    """A 16-bit grey image (PNG's I;16) as 8-bit grey, its high byte as TensorFlow's decoder
    keeps it: Pillow's convert("L") clips, and read almost every pixel as white."""
    if not image.mode.startswith("I"):
        return image
    import numpy as np
    from PIL import Image

    values = np.clip(np.asarray(image).astype(np.int64), 0, 65535) >> 8
    return Image.fromarray(values.astype(np.uint8))


def _decode_with_pillow(data: bytes, channels: int, size: tuple[int, int]) -> Any:
    import io

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = _eight_bit(opened).convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageDecodeError(str(exc).split(" <")[0] if isinstance(
            exc, UnidentifiedImageError) else str(exc)) from None
    array = np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, channels)
    if array.shape[:2] == tuple(size):
        return array
    ops = keras_module().ops
    resized = ops.image.resize(array[None].astype("float32"), size, interpolation="bilinear",
                               antialias=False, data_format="channels_last")[0]
    return np.clip(np.round(ops.convert_to_numpy(resized)), 0, 255).astype(np.uint8)


# What decode_image does to a colour image asked for grey, for a caller who must do the same.
PILLOW_GREY = ("Pillow's Image.convert('L'): ITU-R 601-2 luma, L = (19595*R + 38470*G + 7471*B "
               "+ 32768) >> 16 (a 16-bit grey PNG first becomes its high byte)")
TENSORFLOW_GREY = {
    "png": "libpng's rgb_to_gray as tf.io.decode_png(channels=1) does it: L = (9797*R + "
           "19234*G + 3737*B) >> 15 (ITU-R 601-2 weights, truncated)",
    "jpeg": "libjpeg's own grey output, the file's Y plane (tf.io.decode_jpeg(channels=1); "
            "Pillow: Image.draft('L', image.size) before reading the pixels)",
    "bmp, gif": PILLOW_GREY}


def grey_conversion(backend: str) -> dict[str, str]:
    """How decode_image turns a colour image into one grey channel on `backend`, by format."""
    if backend == "tensorflow":
        return dict(TENSORFLOW_GREY)
    return {"png, jpeg, bmp, gif": PILLOW_GREY}
