"""The hand-written Keras 3 scripts dltrain is measured against on a GPU (any backend).

Three programs, as a Keras user writes them: NumPy arrays from keras.datasets straight into
`model.fit`, verbose=0, Keras's default compile. Each prints one JSON line: the epoch times
(the wall time between epoch ends, the first from the start of fit), the test accuracy where
there is one, and the whole process's seconds so far.

  classic EPOCHS       the keras-io MNIST convnet (Conv32-MaxPool-Dense128), batch 128, on
                       Fashion-MNIST, validation_split 0.1 (configs/fashion_mnist_cnn.yaml)
  best EPOCHS          configs/fashion_mnist_gpu.yaml's net and schedule, RandomFlip inside the
                       model, batch 512 (Fashion-MNIST from keras.datasets: KERAS_HOME must hold
                       datasets/fashion-mnist/ offline)
  cifar MODE EPOCHS    cifar_cnn on 50,000 random CIFAR-shaped images, batch 32; MODE is none
                       (no augmentation) or idg (ImageDataGenerator(horizontal_flip=True).flow)
  resnet EPOCHS BATCH PEAK WARMUP DECAY
                       configs/fashion_mnist_resnet.yaml's residual net in the functional API,
                       RandomFlip inside the model, AdamW (its weight decay) on a linear warm-up
                       from PEAK/10 to PEAK over WARMUP steps, then cosine to 0 over DECAY steps
                       (bench.py passes the numbers it gives dltrain with --set)

`--dry` shrinks every dataset to 64 samples (cifar: 512), for a check on a CPU. `--nan-check`
adds Keras's TerminateOnNaN, a batch-level callback like the ones dltrain's fit has, to measure
what the per-batch sync it causes costs. `--bf16` trains with Keras's mixed_bfloat16 policy.
Two flags put one of dltrain's parts into `best`, to see what each costs on its own:
`--dltrain-saver` writes last.keras after every epoch with dltrain's background checkpoint
(train.checkpoints.LastCheckpoint, heard through train.keras_events), `--dltrain-data` feeds
the training and validation batches from dltrain's input pipeline (data.pipeline.pipeline)
instead of NumPy arrays.
"""

from __future__ import annotations

import json
import math
import sys
import time

STARTED = time.perf_counter()

import keras  # noqa: E402
import numpy as np  # noqa: E402

DRY = "--dry" in sys.argv
NAN_CHECK = "--nan-check" in sys.argv
DLTRAIN_SAVER = "--dltrain-saver" in sys.argv
DLTRAIN_DATA = "--dltrain-data" in sys.argv
FLAGS = ("--dry", "--nan-check", "--bf16", "--dltrain-saver", "--dltrain-data")
if "--bf16" in sys.argv:  # Keras's mixed precision: bfloat16 compute, float32 variables
    keras.mixed_precision.set_global_policy("mixed_bfloat16")


class EpochClock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.last, self.seconds = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.seconds.append(round(now - self.last, 3))
        self.last = now


def callbacks(clock: keras.callbacks.Callback) -> list:
    extra = [keras.callbacks.TerminateOnNaN()] if NAN_CHECK else []
    if DLTRAIN_SAVER:
        import tempfile
        from pathlib import Path

        from dltrain.train.checkpoints import LastCheckpoint
        from dltrain.train.events import Stream
        from dltrain.train.keras_events import KerasEvents

        folder = Path(tempfile.mkdtemp(prefix="handwritten-", dir="."))  # bench.py's work folder
        extra.append(KerasEvents(Stream([LastCheckpoint(folder, lambda _: None)]),
                                 keras.backend.backend()))
    return [clock, *extra]


def fashion_mnist():
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    if DRY:
        x_train, y_train, x_test, y_test = x_train[:64], y_train[:64], x_test[:64], y_test[:64]
    scale = lambda x: np.expand_dims(x.astype("float32") / 255, -1)  # noqa: E731
    return scale(x_train), y_train, scale(x_test), y_test


def classic(epochs: int) -> dict:
    x_train, y_train, _, _ = fashion_mnist()
    keras.utils.set_random_seed(42)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=3, activation="relu"),
        keras.layers.MaxPooling2D(pool_size=2),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3),
                  metrics=["accuracy"])
    clock = EpochClock()
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_split=0.1, verbose=0,
              callbacks=callbacks(clock))
    return {"epoch_seconds": clock.seconds}


def best(epochs: int) -> dict:
    """The fashion_mnist_gpu net: VGG-style, BatchNorm, flips in the model, AdamW, warm-up+cosine."""
    x_train, y_train, x_test, y_test = fashion_mnist()
    keras.utils.set_random_seed(42)
    layers = keras.layers

    def conv(filters, pool=False):
        block = [layers.Conv2D(filters, 3, padding="same", use_bias=False)]
        block += [layers.MaxPooling2D(2)] if pool else []
        return block + [layers.BatchNormalization(), layers.Activation("relu")]

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)), layers.RandomFlip("horizontal", seed=42),
        *conv(32, pool=True), layers.Dropout(0.1), *conv(64), *conv(64, pool=True),
        layers.Dropout(0.25), *conv(128), layers.Flatten(),
        layers.Dense(256, use_bias=False), layers.BatchNormalization(), layers.Activation("relu"),
        layers.Dropout(0.4), layers.Dense(10, activation="softmax"),
    ])
    steps = math.ceil(len(x_train) * 0.95 / 512)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0008, decay_steps=steps * (epochs - 1), warmup_target=0.008, warmup_steps=steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy"])
    clock = EpochClock()
    y_train = keras.utils.to_categorical(y_train, 10)
    if DLTRAIN_DATA:  # the same split as validation_split: the last 5% validates
        from dltrain.data.pipeline import pipeline

        cut = len(x_train) - int(len(x_train) * 0.05)
        model.fit(pipeline(x_train[:cut], y_train[:cut], 512, shuffle=True, seed=42),
                  validation_data=pipeline(x_train[cut:], y_train[cut:], 512), epochs=epochs,
                  verbose=0, callbacks=callbacks(clock))
    else:
        model.fit(x_train, y_train, batch_size=512, epochs=epochs, validation_split=0.05,
                  verbose=0, callbacks=callbacks(clock))
    _, accuracy = model.evaluate(x_test, keras.utils.to_categorical(y_test, 10), verbose=0)
    return {"epoch_seconds": clock.seconds, "test_accuracy": round(float(accuracy), 4)}


def resnet(epochs: int, batch: int, peak: float, warmup: int, decay: int) -> dict:
    """fashion_mnist_resnet's net: a stem, 3 stages of a strided conv and 2 residual blocks."""
    x_train, y_train, x_test, y_test = fashion_mnist()
    keras.utils.set_random_seed(42)
    layers = keras.layers

    def conv(filters, x, **options):
        return layers.Conv2D(filters, 3, padding="same", **options)(x)

    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.RandomFlip("horizontal", seed=42)(inputs)
    x = conv(32, x, activation="relu")
    for filters in (32, 64, 128):
        x = conv(filters, x, strides=2, activation="relu")
        for _ in range(2):  # the block: two convs, BatchNorm, the shortcut added, relu
            y = conv(filters, x, activation="relu")
            # gamma at zero: each block starts as the identity, as the config's (int's a0004ab)
            y = layers.BatchNormalization(gamma_initializer="zeros")(
                conv(filters, y, use_bias=False))
            x = layers.Activation("relu")(layers.Add()([y, x]))
    x = layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(x))
    schedule = keras.optimizers.schedules.CosineDecay(
        peak / 10, decay_steps=decay, warmup_target=peak, warmup_steps=warmup)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.0001),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = EpochClock()
    model.fit(x_train, y_train, batch_size=batch, epochs=epochs, validation_split=0.05,
              verbose=0, callbacks=callbacks(clock))
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return {"epoch_seconds": clock.seconds, "test_accuracy": round(float(accuracy), 4)}


def cifar(mode: str, epochs: int) -> dict:
    count = 512 if DRY else 50_000
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8).astype("float32") / 255
    y = rng.integers(0, 10, size=count)
    keras.utils.set_random_seed(42)
    model = keras.Sequential([
        keras.Input(shape=(32, 32, 3)),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    clock = EpochClock()
    if mode == "idg":
        from keras.src.legacy.preprocessing.image import ImageDataGenerator

        flow = ImageDataGenerator(horizontal_flip=True).flow(x, y, batch_size=32, seed=0)
        model.fit(flow, epochs=epochs, verbose=0, callbacks=callbacks(clock))
    else:
        model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks(clock))
    return {"epoch_seconds": clock.seconds}


def main(argv: list[str]) -> None:
    args = [arg for arg in argv if arg not in FLAGS]
    program = args[0]
    if program == "cifar":
        result = cifar(args[1], int(args[2]))
    elif program == "resnet":
        result = resnet(int(args[1]), int(args[2]), float(args[3]), int(args[4]), int(args[5]))
    else:
        result = {"classic": classic, "best": best}[program](int(args[1]))
    result.update(backend=keras.backend.backend(), process_seconds=round(
        time.perf_counter() - STARTED, 2))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
