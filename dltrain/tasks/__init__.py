"""Tasks: what differs between a classification and a regression (and the next task), as one
object per task, resolved once when the config loads (`Config.task_spec`).

A task owns its losses and default metrics, its config checks, target preparation, output-layer
and label checks, evaluation report and plots, predict's output, export's parity measure and
whether cross-validation stratifies. `registry.TASKS` lists them; this stage comes before
config, so its methods take plain values (`base.ConfigFacts`, `base.Labels`).
"""
