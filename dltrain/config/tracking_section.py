"""The tracking section: where a run is logged besides its own folder (an MLflow experiment)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from dltrain.config.fields import Strict
from dltrain.urls import shown


class MlflowConfig(Strict):
    """An MLflow experiment that each run (and each fold, refit and trial, nested) is logged to."""

    experiment: str | None = Field(None, min_length=1, description="The experiment's name "
                                   "(made when missing); default: the config's name.")
    uri: str | None = Field(None, min_length=1, description="The tracking server or store "
                            "(http://host:5000, sqlite:///path.db); default: $MLFLOW_TRACKING_URI, "
                            "else sqlite:///<output.runs_dir>/mlflow.db beside the runs.")
    run_name: str | None = Field(None, min_length=1, description="The MLflow run's name; "
                                 "default: the run folder's name.")

    @field_validator("uri")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        # The config is saved in every run folder (config.yaml): a password there is a leak.
        if value is not None and urlsplit(value).password is not None:
            raise ValueError(f"holds a password, which every run's config.yaml would keep. "
                             f"Received: {shown(value)}. Give the URI without it and set "
                             "MLFLOW_TRACKING_PASSWORD (and MLFLOW_TRACKING_USERNAME), or put "
                             "the whole URI in MLFLOW_TRACKING_URI")
        return value


class TrackingConfig(Strict):
    """Experiment trackers a run logs to; `--set tracking.mlflow.experiment=NAME` turns MLflow on."""

    mlflow: MlflowConfig | None = Field(None, description="Log to MLflow (needs the mlflow extra).")
