"""Hyperparameter search and cross-validation: many fits of one config, in one parent run."""
