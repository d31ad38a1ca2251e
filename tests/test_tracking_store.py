"""Where a run is tracked, and the checks before any folder exists: MLflow installed, the
server answering (named without its password)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from conftest import CONFIGS
from dltrain.config.load import load_config
from dltrain.config.schema import Config
from dltrain.errors import DltrainError
from dltrain.tracking import store


def tracked_config(*overrides: str) -> Config:
    return load_config(CONFIGS / "quickstart.yaml",
                       ["tracking.mlflow.experiment=exp", *overrides]).config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_uri_is_the_configs_then_the_environments_then_a_store_beside_the_runs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store.tracking_uri(tracked_config("output.runs_dir=out")) == (
        f"sqlite:///{tmp_path.resolve()}/out/mlflow.db")
    # A resumed run run from elsewhere keeps the default store it was logged to.
    assert store.tracking_uri(tracked_config(), "sqlite:////old/runs/mlflow.db") == (
        "sqlite:////old/runs/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert store.tracking_uri(tracked_config(), "sqlite:////old/runs/mlflow.db") == (
        "http://env:5000")
    assert store.tracking_uri(tracked_config("tracking.mlflow.uri=http://given:5000")) == (
        "http://given:5000")


def test_without_a_tracking_section_nothing_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.importlib.util, "find_spec", lambda name: None)
    store.check_ready(load_config(CONFIGS / "quickstart.yaml").config)


def test_without_mlflow_installed_the_message_gives_the_install_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DltrainError, match=r'pip install "dltrain-keras\[mlflow\]"'):
        store.check_ready(tracked_config())


def test_a_server_that_does_not_answer_is_named_without_its_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"http://me:secret@127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(DltrainError) as raised:
        store.check_ready(tracked_config())
    message = str(raised.value)
    assert f"http://me:***@127.0.0.1:{uri.rsplit(':', 1)[1]} does not answer" in message
    assert "secret" not in message and "nothing was trained" in message


def test_a_password_in_the_configs_uri_is_refused_without_echoing_it() -> None:
    from dltrain.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        tracked_config("tracking.mlflow.uri=http://me:secret@host:5000")
    assert "secret" not in str(raised.value)
    assert "tracking.mlflow.uri: holds a password" in str(raised.value)
    assert "MLFLOW_TRACKING_PASSWORD" in str(raised.value)
