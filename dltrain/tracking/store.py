"""Where a run is tracked: the URI (the config's, $MLFLOW_TRACKING_URI, else a SQLite store
beside the runs), whether MLflow is installed, and whether a server answers, all checked before
a run folder exists, so a wrong URI costs no training."""

from __future__ import annotations

import importlib.util
import logging
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dltrain import install_line
from dltrain.config.schema import Config
from dltrain.errors import DltrainError
from dltrain.urls import hides_password, shown

DEFAULT_STORE = "mlflow.db"  # in output.runs_dir: `mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`
PROBE_SECONDS = 5.0
# MLflow's own defaults retry a lost server for minutes (7 tries, backoff 2) with a 120 s
# timeout each: a run whose server went away would stall on every call. Set unless the user
# set them; the run's URL, which MLflow prints on stdout, would break `--json`.
CLIENT_ENVIRONMENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                      "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                      "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def tracked(config: Config) -> bool:
    """Whether the config logs its runs to MLflow (it has a tracking.mlflow section)."""
    return config.tracking is not None and config.tracking.mlflow is not None


def tracking_uri(config: Config, recorded: str | None = None) -> str:
    """tracking.mlflow.uri, else $MLFLOW_TRACKING_URI, else the store a resumed run (or its
    cross-validation or search) recorded, wherever the command now runs from, else
    sqlite:///<output.runs_dir>/mlflow.db from the working directory.

    Raises:
        DltrainError: the recorded URI had a password, which no run file keeps: a new run in
            another store would be made instead, so $MLFLOW_TRACKING_URI must give it again.
    """
    assert config.tracking is not None and config.tracking.mlflow is not None
    chosen = config.tracking.mlflow.uri or os.environ.get("MLFLOW_TRACKING_URI")
    if chosen:
        return chosen
    if recorded and hides_password(recorded):
        raise DltrainError(f"this run was logged to MLflow at {recorded}, whose password no run "
                           "file keeps: set MLFLOW_TRACKING_URI to that URI, password included, "
                           "and run the command again.")
    if recorded:
        return recorded
    return "sqlite:///" + str((Path.cwd() / config.output.runs_dir / DEFAULT_STORE).resolve())


def check_ready(config: Config, recorded: str | None = None) -> None:
    """DltrainError, before any training, when MLflow is not installed or a tracking server
    does not answer (its URI named without the password)."""
    if not tracked(config):
        return
    if importlib.util.find_spec("mlflow") is None:
        raise DltrainError("tracking.mlflow logs the run to MLflow, which is not installed: "
                           f"{install_line('mlflow')}; or drop the tracking section.")
    uri = tracking_uri(config, recorded)
    if urlsplit(uri).scheme in ("http", "https"):
        probe(uri)


def probe(uri: str, seconds: float = PROBE_SECONDS) -> None:
    """MLflow's REST API answers at `uri` within `seconds` (a 401 or 403 too: credentials are
    MLflow's to check); otherwise a DltrainError naming the URI without its password. TLS as
    MLflow's client is told ($MLFLOW_TRACKING_INSECURE_TLS, $MLFLOW_TRACKING_SERVER_CERT_PATH)."""
    parts = urlsplit(uri)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))  # no credentials
    asked = bare.rstrip("/") + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=dltrain"
    try:
        with urllib.request.urlopen(asked, timeout=seconds, context=tls_context()):
            return
    except urllib.error.HTTPError as exc:
        # No such experiment is MLflow's 404 with its error code; a proxy's 404 has none.
        if exc.code in (401, 403) or b"error_code" in body(exc):
            return
        problem = f"answers, but not as an MLflow tracking server (HTTP {exc.code})"
    except (OSError, ValueError) as exc:
        if isinstance(getattr(exc, "reason", exc), ssl.SSLCertVerificationError):
            # Something answers; MLflow's client checks its certificate with its own CA bundle
            # (requests'), and says so when the run opens if it refuses it too.
            return
        problem = f"does not answer ({getattr(exc, 'reason', exc)})"
    raise DltrainError(f"the MLflow tracking URI {shown(uri)} {problem}; nothing was trained. "
                       "Start it (mlflow server --host 127.0.0.1 --port 5000), fix "
                       "tracking.mlflow.uri or $MLFLOW_TRACKING_URI, or drop the tracking "
                       "section.")


def tls_context() -> ssl.SSLContext:
    """The TLS settings MLflow's client takes from the environment, for the probe."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("true", "1"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
                                      or None)


def body(exc: urllib.error.HTTPError) -> bytes:
    """The start of an error response's body (none when reading it fails too)."""
    try:
        return exc.read(2000) or b""
    except Exception:  # a connection reset mid-body: what came is not MLflow's answer
        return b""


def client(uri: str) -> Any:
    """MLflow's client for `uri` (MLflow imported here, the first time a run is tracked)."""
    for key, value in CLIENT_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    from mlflow.tracking import MlflowClient

    # Its INFO lines (a new store's tables) would land among the run's own output.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=uri)


def experiment_id(mlflow: Any, name: str, uri: str) -> str:
    """The experiment's id, made when missing; a local store keeps its artifacts beside the
    database (MLflow's default is ./mlruns wherever the command runs)."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    try:
        return str(mlflow.create_experiment(name, artifact_location=location))
    except Exception:  # another process (a search's) made it in between
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)
