"""The training stage: fit and resume with callbacks, signals, and smoke runs for CI."""
