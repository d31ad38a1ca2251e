"""The names of the files and folders in a run directory: spelt here only, so each file's name
has one owner. It imports nothing, so any stage may import it (tools/check_layers.py's SHARED):
the config loader names a run's config.yaml when it is given the run's folder."""

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
LAST_FILE = "last.keras"
LAST_META = "last.json"  # older runs' epoch of last.keras: now its optimizer's step count says
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
EVAL_FILE = "eval.json"
ENV_FILE = "environment.json"
STATE_FILE = "run.json"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion_matrix.png"
PREDICTED_FILE = "predicted_vs_actual.png"  # a regression's, instead of the confusion matrix
RESIDUALS_FILE = "residuals.png"
TENSORBOARD_DIR = "tensorboard"
MANIFEST_FILE = "manifest.json"
PREPARATION_FILE = "preprocessing.json"
EXPORT_FILE = "export.json"  # `dltrain export`: each format's latest export and its parity check
TRACKING_FILE = "tracking.json"  # the MLflow run a run (or a cv's, a search's parent) logs to
CV_FILE = "cv.json"  # a cross-validation's plan and folds' results; its folds are child runs
# What fit writes in a run directory: a kill can leave their temporary files behind.
FIT_FILES = frozenset({CONFIG_FILE, STATE_FILE, ENV_FILE, MANIFEST_FILE, PREPARATION_FILE,
                       HISTORY_FILE, LAST_FILE, LAST_META, BEST_FILE, MODEL_FILE, CURVES_FILE,
                       CONFUSION_FILE, PREDICTED_FILE, RESIDUALS_FILE, METRICS_FILE, TRACKING_FILE})
# A search's parent run (`dltrain tune`).
TUNE_FILE = "tune.json"
BEST_CONFIG = "best.yaml"
HISTORY_PLOT = "trials.png"
IMPORTANCE_PLOT = "importance.png"
STUDY_FILE = "study.db"
STUDY_LOCK = "study.lock"  # the search budget's lock, beside the run's own (runs.lock)


def for_model(name: str, model_stem: str) -> str:
    """A run file of the scores of a model file other than the run's model.keras, named after
    it: eval.json of best.keras is eval-best.json, confusion_matrix.png confusion_matrix-best.png."""
    stem, _, suffix = name.rpartition(".")
    return f"{stem}-{model_stem}.{suffix}"


def scores_of_model(model_stem: str) -> list[str]:
    """The files `eval --model STEM.keras` writes into a run: its eval-STEM.json and pictures."""
    return [for_model(name, model_stem)
            for name in (EVAL_FILE, CONFUSION_FILE, PREDICTED_FILE, RESIDUALS_FILE)]
