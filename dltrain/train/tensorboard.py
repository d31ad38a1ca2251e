"""TensorBoard logs: Keras's own callback, kept as a Keras callback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from dltrain.backend import keras_module, tensorboard_available, tensorflow_module
from dltrain.report.tables import print_notes
from dltrain.runs import layout as runs

KerasTensorBoard = keras_module().callbacks.TensorBoard


class TensorBoard(KerasTensorBoard):  # type: ignore[misc,valid-type]
    """Keras's TensorBoard, not a subscriber of the run's events: it writes through tf.summary
    with Keras's own train and validation step counters, and its graph, histograms, images,
    embeddings and profiler hooks would all have to be written again.

    Safe on Keras's worker thread (`async_safe`): its batch hook writes nothing at update_freq
    "epoch" (dltrain's) without a profiler.
    """

    async_safe = True


def tensorboard(enabled: bool, backend: str, path: Path, console: Console) -> list[Any]:
    """The TensorBoard callback when the config asks for one and TensorFlow can write it."""
    if enabled and tensorboard_available():
        tensorflow_module()  # on JAX and torch: imported now, quietly and off their GPUs
        return [TensorBoard(log_dir=str(path / runs.TENSORBOARD_DIR), write_graph=False)]
    if enabled:
        print_notes(console, [f"training.tensorboard: no TensorBoard logs on the {backend} "
                              "backend without TensorFlow installed (Keras writes them through "
                              "tf.summary); pip install tensorflow to get them."])
    return []
