"""The reports stage: evaluation, classification metrics, tables, plots and predictions."""
