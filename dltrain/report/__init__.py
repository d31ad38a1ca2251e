"""Stage 5, reports: evaluation, classification metrics, tables, plots and predictions."""
