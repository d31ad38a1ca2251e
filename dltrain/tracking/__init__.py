"""Experiment tracking: a run (and a cross-validation's or search's parent) logged to MLflow as
well as to its own folder. MLflow is imported only here, lazily, and only when a config has a
tracking.mlflow section; train.tracking is the event-stream subscriber that drives it."""
