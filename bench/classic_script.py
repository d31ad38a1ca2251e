"""The hand-written Keras script dltrain is measured against: keras-io's mnist_convnet habits.

Same model as configs/mnist_cnn.yaml, NumPy arrays straight into `model.fit`, validation_split
0.1, batch 128, default compile (Keras decides jit_compile) and verbose=0, the fastest a script
gets (a progress bar would sync every batch). Writes the wall time from the start of training to
each epoch's end, as JSON, to the file named on the command line.

Usage: python bench/classic_script.py DATASET EPOCHS OUT.json [BATCH [VALIDATION_SPLIT]]
(DATASET: mnist | fashion_mnist; BATCH: 128 and VALIDATION_SPLIT 0.1 unless given; 0 validates
nothing)
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import numpy as np  # noqa: E402


class EpochClock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.last, self.seconds = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now


def main(dataset: str, epochs: int, out: str, batch: int = 128, validation: float = 0.1) -> None:
    (x_train, y_train), _ = getattr(keras.datasets, dataset).load_data()
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
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
    model.fit(x_train, y_train, batch_size=batch, epochs=epochs, validation_split=validation,
              verbose=0, callbacks=[clock])
    with open(out, "w", encoding="utf-8") as file:
        json.dump(clock.seconds, file)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 128,
         float(sys.argv[5]) if len(sys.argv) > 5 else 0.1)
