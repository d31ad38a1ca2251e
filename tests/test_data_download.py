"""Keras-cache downloads against a real HTTP server on 127.0.0.1, and reading the Keras cache."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFIGS, run_cli, write_mnist
from dltrain.config.dataset_section import DatasetConfig
from dltrain.data import download
from dltrain.data.download import MIRROR_ENV, Remote, file_sha256
from dltrain.data.keras_files import DATA_DIR_ENV, IDX_FILES
from dltrain.data.sources import read_source
from dltrain.errors import DataError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


class Handler(SimpleHTTPRequestHandler):
    """Serves a folder; under /truncated/ it promises the whole file but sends half and hangs up."""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if not self.path.startswith("/truncated/"):
            return super().do_GET()
        body = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 for the test's lifetime: (base URL, folder it serves)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    # shutdown() waits for the loop to look again: every 0.5 s by default, half a second a test.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    return tmp_path / "keras" / "datasets"


@pytest.fixture
def nothing_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point downloads at a closed port on loopback: any download attempt fails at once."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}/")


def synthetic_mnist_npz(folder: Path) -> dict:
    arrays = write_mnist(folder / "idx", seed=3, train=40, test=20)
    np.savez(folder / "mnist.npz", **arrays)
    return arrays


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*")) if cache.exists() else []


def test_good_download_lands_in_the_keras_cache(
        served: tuple[str, Path], keras_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, folder = served
    arrays = synthetic_mnist_npz(folder)
    # The real file cannot be served offline; the test's file stands in with its own checksum.
    sha = file_sha256(folder / "mnist.npz")
    monkeypatch.setitem(download.REMOTES, "mnist", Remote(url, "", {"mnist.npz": sha}))
    raw = read_source(DatasetConfig(name="mnist"))
    np.testing.assert_array_equal(raw.x_train, arrays["x_train"])
    np.testing.assert_array_equal(raw.y_test, arrays["y_test"])
    assert leftovers(keras_home) == ["mnist.npz"]
    (folder / "mnist.npz").unlink()  # the cache alone serves the next read
    assert len(read_source(DatasetConfig(name="mnist")).x_train) == 40


def test_a_download_says_so_on_stderr_and_leaves_stdout_to_the_results(
        served: tuple[str, Path], keras_home: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    # Keras's "Downloading data from" and its progress bar went to stdout: `--json` was no JSON.
    url, folder = served
    synthetic_mnist_npz(folder)
    sha = file_sha256(folder / "mnist.npz")
    monkeypatch.setitem(download.REMOTES, "mnist", Remote(url, "", {"mnist.npz": sha}))
    read_source(DatasetConfig(name="mnist"))
    out, err = capfd.readouterr()
    assert out == ""
    assert err == f"downloading {url}mnist.npz\n"  # no terminal: one plain line, no bar


def test_bad_checksum_caches_nothing(served: tuple[str, Path], keras_home: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url, folder = served
    synthetic_mnist_npz(folder)
    monkeypatch.setenv(MIRROR_ENV, url)
    with pytest.raises(DataError) as caught:
        read_source(DatasetConfig(name="mnist"))
    assert f"{url}mnist.npz: the download does not match Keras's published checksum" in str(
        caught.value)
    assert "dataset.data_dir" in str(caught.value)
    assert leftovers(keras_home) == []


def test_server_gone_mid_transfer_leaves_no_file(served: tuple[str, Path], keras_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url, folder = served
    synthetic_mnist_npz(folder)
    monkeypatch.setenv(MIRROR_ENV, url + "truncated/")
    with pytest.raises(DataError) as caught:
        read_source(DatasetConfig(name="mnist"))
    assert "mnist.npz is not in the Keras cache" in str(caught.value)
    assert "retrieval incomplete: got only" in str(caught.value)
    assert leftovers(keras_home) == []


def test_offline_and_uncached_says_how_to_stage_the_files(
        keras_home: Path, nothing_listening: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "fit", CONFIGS / "cifar_cnn.yaml", "--smoke")
    assert code == 2
    assert "cifar-10-python.tar.gz is not in the Keras cache" in err
    assert "set dataset.data_dir" in err and DATA_DIR_ENV in err
    assert not (tmp_path / "runs").exists()
    assert leftovers(keras_home) == []


def test_fashion_mnist_is_read_from_the_keras_cache_without_network(
        keras_home: Path, nothing_listening: None) -> None:
    arrays = write_mnist(keras_home / "fashion-mnist", seed=5, train=30, test=10)
    raw = read_source(DatasetConfig(name="fashion_mnist"))
    np.testing.assert_array_equal(raw.x_train, arrays["x_train"])
    assert raw.class_names[9] == "Ankle boot"


def test_keras_extracted_cifar_cache_is_used(keras_home: Path, nothing_listening: None,
                                             cifar_dir: Path) -> None:
    shutil.copytree(cifar_dir, keras_home / "cifar-10-batches-py-target")
    raw = read_source(DatasetConfig(name="cifar10"))
    assert raw.x_train.shape == (200, 32, 32, 3) and raw.x_test.shape == (60, 32, 32, 3)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist "
                    "(.ci/run installs it)")
def test_real_fashion_mnist_from_debian_in_the_keras_cache(keras_home: Path,
                                                           nothing_listening: None) -> None:
    (keras_home / "fashion-mnist").mkdir(parents=True)
    for name in IDX_FILES.values():
        shutil.copy(DEBIAN_FASHION / name, keras_home / "fashion-mnist" / name)
    raw = read_source(DatasetConfig(name="fashion_mnist"))
    assert raw.x_train.shape == (60000, 28, 28) and raw.x_test.shape == (10000, 28, 28)
    assert np.bincount(raw.y_train).tolist() == [6000] * 10
    assert np.bincount(raw.y_test).tolist() == [1000] * 10


def test_offline_fashion_mnist_hint_names_its_idx_files_and_debian_folder(
        keras_home: Path, nothing_listening: None) -> None:
    with pytest.raises(DataError) as caught:
        read_source(DatasetConfig(name="fashion_mnist"))
    message = str(caught.value)
    assert "mnist.npz" not in message
    assert ("Offline, put the four IDX files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) "
            "in a folder and set dataset.data_dir to it") in message
    assert ("On Debian or Ubuntu: apt-get install dataset-fashion-mnist, then "
            "DLTRAIN_DATA_DIR=/usr/share/datasets or "
            "--set dataset.data_dir=/usr/share/datasets/fashion-mnist") in message
    assert "DLTRAIN_DATA_DIR to a folder holding fashion_mnist/ or fashion-mnist/" in message
    assert message.endswith("To try a config offline on real images: "
                            "--set dataset.name=fashion_mnist_mini (6,000 shipped with dltrain).")


def test_offline_mnist_hint_offers_the_shipped_digits(keras_home: Path,
                                                      nothing_listening: None) -> None:
    with pytest.raises(DataError) as caught:
        read_source(DatasetConfig(name="mnist"))
    assert str(caught.value).endswith("To try a config offline on real digits: "
                                      "--set dataset.name=mnist_mini (5,000 shipped with dltrain).")


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_the_debian_folder_the_hint_names_is_read_as_is() -> None:
    raw = read_source(DatasetConfig(name="fashion_mnist", data_dir=DEBIAN_FASHION))
    assert raw.x_train.shape == (60000, 28, 28) and raw.class_names[0] == "T-shirt/top"
