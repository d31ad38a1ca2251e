"""The reports stage: evaluation (each task's report comes from dltrain.tasks), tables, plots,
predictions and exports."""
