"""The augmentation ops dltrain writes itself, on whichever backend runs, and whether Keras's
own augmentation layers compile into the training step there."""

from __future__ import annotations

from typing import Any

from dltrain.backend.names import compiles_image_transforms
from dltrain.backend.runtime import active_backend, keras_module, tensorflow_module


def let_augmentation_compile(layers: list[Any]) -> None:
    """Mark Keras's augmentation layers (and RandAugment's inner ones) as compilable where the
    backend's compiler takes their image transforms (JAX), so that `jit_compile: auto` compiles
    the training step around them. Keras says no for RandomZoom, RandomRotation and kin on every
    backend, and JAX then ran the whole step op by op: 30 s an epoch of 3,200 images with
    rand_augment instead of 4 s compiled, with the same losses.
    """
    if not compiles_image_transforms(active_backend()):
        return
    for layer in layers:
        for part in layer._flatten_layers():  # Keras's walk over a layer and those inside it
            part.supports_jit = True


def brightness_seed(seed: int) -> Any:
    """The seed random_brightness takes: TF's op seed, or Keras's SeedGenerator elsewhere (a
    plain integer would make Keras draw the same factors for every batch)."""
    if active_backend() == "tensorflow":
        return seed
    return keras_module().random.SeedGenerator(seed)


def random_brightness(images: Any, bounds: tuple[float, float], value_max: float,
                      seed: Any) -> Any:
    """Each image times one factor drawn from `bounds`, clipped to [0, value_max]; `seed` a
    SeedGenerator (Keras's draw, on TensorFlow too) or TF's op seed."""
    if active_backend() != "tensorflow" or not isinstance(seed, int):
        keras = keras_module()
        ops = keras.ops
        images = ops.convert_to_tensor(images, dtype="float32")
        factors = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), bounds[0], bounds[1],
                                       seed=seed)
        return ops.clip(images * factors, 0.0, value_max)
    tf = tensorflow_module()
    factors = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], bounds[0], bounds[1], seed=seed)
    return tf.clip_by_value(images * factors, 0.0, value_max)
