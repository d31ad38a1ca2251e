"""Importing Keras without the optional packages it loads for features dltrain never calls.

Keras and TensorFlow import these at start-up whenever they are installed: scikit-learn (and
SciPy through it) for Keras's scikit-learn wrappers, pandas for DataFrames as fit's input,
matplotlib's pyplot for Keras's image gallery (dltrain draws without pyplot, and imports
matplotlib only when it draws), and JAX for TFLite's converter from JAX: 2-2.5 s of CPU, of
some 5, in every command that imports Keras, where all are installed. Each is refused only
while Keras imports, and only where it was not loaded already: dltrain's own later imports
(scikit-learn's folds in `cv`, the plots, MLflow's pandas) find it as usual.

On JAX and torch, TensorFlow itself is one of them (another 2.5 s): Keras imports it there to
seed it and to recognise its tensors, which a run on those backends never holds. dltrain
imports it there only to write TensorBoard logs or a SavedModel (runtime.tensorflow_module).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

UNUSED = ("sklearn", "pandas", "matplotlib", "jax", "tensorflow")


@contextlib.contextmanager
def unused_imports_refused(backend: str) -> Iterator[None]:
    """While the block runs, `import NAME` of UNUSED raises ImportError (None in sys.modules,
    as Python documents), so Keras takes the branch it has for each one missing; the backend
    (JAX, TensorFlow) is imported as usual."""
    refused = [name for name in UNUSED if name not in sys.modules and name != backend]
    for name in refused:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in refused:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def keras_takes_tensorflow_for_absent() -> None:
    """Keras looks TensorFlow up lazily, at the first seed or fit, and keeps the answer: asked
    now, inside unused_imports_refused, it answers that TensorFlow is not installed for the
    whole process, as in an environment without it, even once dltrain imports it for logs."""
    from keras.src.utils.module_utils import tensorflow

    _ = tensorflow.available  # the lookup is the point: Keras caches its answer
