"""Runs of many fits from one config: K-fold cross-validation (`cv`) and hyperparameter search
(`tune`)."""
