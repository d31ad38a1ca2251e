"""Stage 4, training: fit and resume with callbacks, signals, and smoke runs for CI."""
