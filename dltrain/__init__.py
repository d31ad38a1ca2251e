"""dltrain: train Keras models from one YAML file."""

import time

__version__ = "0.1.0"
STARTED = time.perf_counter()  # near enough the command's start: metrics.json's phase_seconds
