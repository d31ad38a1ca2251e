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
    # One logged via $MLFLOW_TRACKING_URI, resumed without it: the same server.
    assert store.tracking_uri(tracked_config(), "http://host:5000") == "http://host:5000"
    with pytest.raises(DltrainError) as raised:  # its password was not kept
        store.tracking_uri(tracked_config(), "https://me:***@host")
    assert "logged to MLflow at https://me:***@host, whose password no run file keeps: set " \
        "MLFLOW_TRACKING_URI" in str(raised.value)
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


class Answer:
    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *args: object) -> None:
        pass


def test_the_probe_takes_mlflows_tls_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    contexts: list[ssl.SSLContext] = []
    monkeypatch.setattr(store.urllib.request, "urlopen",
                        lambda url, timeout, context: contexts.append(context) or Answer())
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    store.probe("https://host")
    assert contexts[-1].verify_mode == ssl.CERT_NONE and not contexts[-1].check_hostname
    monkeypatch.delenv("MLFLOW_TRACKING_INSECURE_TLS")
    store.probe("https://host")
    assert contexts[-1].verify_mode == ssl.CERT_REQUIRED
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/no/such/ca.pem")
    with pytest.raises(DltrainError, match="does not answer"):  # named, not a traceback
        store.probe("https://host")


def test_a_certificate_the_probe_cannot_check_is_left_to_mlflow(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl
    import urllib.error

    def refuse(url: str, timeout: float, context: ssl.SSLContext) -> None:
        raise urllib.error.URLError(ssl.SSLCertVerificationError("self-signed certificate"))

    monkeypatch.setattr(store.urllib.request, "urlopen", refuse)
    store.probe("https://host")  # something answers: MLflow's client checks it as it does


def test_an_error_page_that_breaks_off_is_no_mlflow_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import urllib.error

    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise ConnectionResetError("reset")

    def answer(url: str, timeout: float, context: object) -> None:
        raise urllib.error.HTTPError(url, 502, "Bad Gateway", {}, Broken())  # type: ignore[arg-type]

    monkeypatch.setattr(store.urllib.request, "urlopen", answer)
    with pytest.raises(DltrainError, match=r"answers, but not as an MLflow tracking server "
                                           r"\(HTTP 502\)"):
        store.probe("http://host:5000")
