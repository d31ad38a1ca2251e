"""Data-parallel training: the config section, its refusals, `show`'s mesh, and real fits over
two CPU devices on JAX (JAX_NUM_CPU_DEVICES) and TensorFlow (two logical CPUs).

The device count is fixed when JAX or TensorFlow starts, so the fits run in subprocesses with a
timeout (one per backend, the SIGTERM'd fit included); the in-process tests run on TensorFlow's
one CPU, as the other tests do.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_batch import run_several

from conftest import CONFIGS, ROOT, run_cli, write_yaml
from dltrain.backend.distribution import Placement, check_even_batches
from dltrain.config.load import load_config
from dltrain.errors import ConfigError
from dltrain.runs.layout import read_history

QUICKSTART = CONFIGS / "quickstart.yaml"
# 540 training, 60 validation and 200 test samples: every batch of 64 splits over 2 devices.
SMALL = ["--set", "dataset.train_limit=600", "--set", "dataset.test_limit=200", "--set",
         "training.tensorboard=false"]
PARALLEL = ["--set", "distribution.strategy=data_parallel"]
TIMEOUT = 300
# How far one device's and two devices' runs may differ, from float32 arithmetic alone, on any
# x86-64 CPU: the order of a sum differs (one batch against two halves then their mean; each
# CPU's vector width and kernel blocking), and a sum of N float32 terms in any order is off by
# at most N x eps x (the sum of their magnitudes), eps = 2^-23; two runs, twice that.
EPS = float(np.finfo(np.float32).eps)
# Weights: the longest gradient sum is the Conv2D kernel's, 64 rows x 26 x 26 positions =
# 43,264 products. Adam's step, lr x m / sqrt(v), is scale-free: a gradient off by a fraction
# f moves a weight by f x lr (lr = 1e-3) more or less. 2 epochs of 9 steps (540 samples, batch
# 64): 2 x 43,264 x eps x 1e-3 x 18 = 1.9e-4. Measured: 3e-7 (JAX) and 1.5e-7 (TensorFlow) on
# an AMD EPYC with AVX-512, 4.7e-5 (TensorFlow) on one without. A batch split wrongly (one half
# lost) changes the gradient itself, not its last bits: a weight's first step moves by up to
# lr = 1e-3 already.
WEIGHTS_ATOL = 2 * 64 * 26 * 26 * EPS * 1e-3 * 18
# Losses: an epoch's loss comes from logits whose longest sum is the first Dense layer's, 13 x
# 13 x 32 = 5,408 products: 2 x 5,408 x eps = 1.3e-3 of the loss (measured: 1.2e-7).
LOSS_RTOL = 2 * 13 * 13 * 32 * EPS
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason='JAX is not installed: pip install "dltrain-keras[jax]"')
# TensorFlow's device count is fixed at its start: two logical CPUs, before dltrain's CLI.
TWO_TF_CPUS = (
    "import sys, tensorflow as tf\n"
    "cpu = tf.config.list_physical_devices('CPU')[0]\n"
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n")


def test_the_section_defaults_to_none_and_checks_its_values() -> None:
    config = load_config(QUICKSTART).config
    assert (config.distribution.strategy, config.distribution.devices) == ("none", "all")
    chosen = load_config(QUICKSTART, ["distribution={strategy: data_parallel, devices: 2}"]).config
    assert (chosen.distribution.strategy, chosen.distribution.devices) == ("data_parallel", 2)
    for bad in ("distribution.devices=0", "distribution.strategy=ddp", "distribution.gpus=2"):
        with pytest.raises(ConfigError, match="distribution"):
            load_config(QUICKSTART, [bad])


def test_data_parallel_on_torch_exits_2_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "fit", QUICKSTART, "--backend", "torch", *PARALLEL)
    assert code == 2, out + err
    assert ("distribution.strategy: data_parallel runs on the jax and tensorflow backends; "
            "Keras's torch distribution is not in a release. Received: backend torch. Use "
            "backend: jax (or tensorflow), or strategy: none") in " ".join(err.split())
    assert list(tmp_path.iterdir()) == []


def test_more_devices_than_exist_exits_2_and_says_how_many_there_are(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    code, out, err = run_cli(capsys, "fit", QUICKSTART, *PARALLEL, "--set",
                             "distribution.devices=4", "--run-dir", tmp_path / "run")
    assert code == 2, out + err
    assert ("--set distribution.devices=4: distribution.devices: 4 devices asked for, but "
            "TensorFlow sees 1 here (/device:CPU:0). Use devices: "
            "all, or a number up to 1.") in " ".join(err.split())
    assert not (tmp_path / "run").exists()


def test_show_prints_the_device_mesh(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    path = write_yaml(tmp_path / "t.yaml", QUICKSTART.read_text()
                      + "distribution: {strategy: data_parallel, devices: all}\n")
    code, out, _ = run_cli(capsys, "show", path)
    assert code == 0
    assert ("distribution: data_parallel over 1 device (/device:CPU:0): trained as with none, "
            "no engine needed") in " ".join(out.split())
    code, out, _ = run_cli(capsys, "show", QUICKSTART)
    assert "distribution: none (one device, the backend's default)" in out


def test_jax_refuses_a_batch_the_devices_cannot_share(monkeypatch: pytest.MonkeyPatch) -> None:
    from dltrain.backend import distribution

    monkeypatch.setattr(distribution, "active_backend", lambda: "jax")
    two = Placement("data_parallel", ("cpu:0", "cpu:1"))
    check_even_batches(two, 64, {"training": 540, "test": 200})  # 28 and 8 left: even
    with pytest.raises(ConfigError) as caught:
        check_even_batches(two, 64, {"training": 540, "validation": 61})
    assert str(caught.value) == (
        "distribution: on jax every batch is split evenly over the 2 devices, but the "
        "validation split (61 samples, batches of 64) has a batch of 61. Choose "
        "training.batch_size (and dataset.train_limit/test_limit) so that every batch, the last "
        "one too, is a multiple of 2.")
    check_even_batches(Placement("data_parallel", ("cpu:0",)), 63, {"training": 61})


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    return {**env, "CI": "1", "PYTHONPATH": str(ROOT),
            "DLTRAIN_JAX_CACHE": str(tmp_path / "jax-cache"), **extra}


def two_devices(tmp_path: Path, backend: str) -> dict[str, str]:
    return environment(tmp_path, KERAS_BACKEND=backend, JAX_NUM_CPU_DEVICES="2",
                       JAX_PLATFORMS="cpu")


def weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(path).get_weights()


# The fits over two devices of one backend, each a command of one process (cli_batch): the
# device count is fixed once per process, not per run, and each process start costs seconds.
# Each test reads its runs' folders, exit codes and output.
Runs = dict[str, tuple[Path, subprocess.CompletedProcess[str]]]


def fit_both_strategies(folder: Path, backend: str) -> dict[str, list[object]]:
    """The same 2-epoch fit with strategy none and data_parallel, to compare their weights."""
    # tf.data's shuffle draws another order once MirroredStrategy rewrites the dataset: the
    # TensorFlow runs compare without shuffling, so both see the same batches.
    order = ["--set", "training.shuffle=false"] if backend == "tensorflow" else []
    return {strategy: ["fit", QUICKSTART, "--backend", backend, "--run-dir", folder / strategy,
                       *SMALL, *order, "--epochs", "2", "--set",
                       f"distribution.strategy={strategy}"]
            for strategy in ("none", "data_parallel")}


def run_batch(folder: Path, backend: str, commands: dict[str, list[object]],
              prelude: str = "") -> Runs:
    done = run_several(folder / "batch", list(commands.values()), two_devices(folder, backend),
                       TIMEOUT * len(commands),
                       (TWO_TF_CPUS if backend == "tensorflow" else "") + prelude)
    return {name: (folder / name, result) for name, result in zip(commands, done, strict=True)}


# SIGTERM for the batch's process, from a thread of its own, once `history` has 2 epochs' rows:
# the fit running then (that run's) stops as a SIGTERM'd process's does (exit 143), and the
# commands after it run on, as in any process whose command caught a signal.
SIGTERM_AFTER_2_EPOCHS = (
    "import os, signal, threading, time\n"
    "from pathlib import Path\n"
    "from dltrain.runs.layout import read_history\n"
    "def sigterm_after_2_epochs(history, deadline):\n"
    "    while len(read_history(history)) < 2:\n"
    "        if time.monotonic() > deadline:\n"
    "            return\n"
    "        time.sleep(0.05)\n"
    "    os.kill(os.getpid(), signal.SIGTERM)\n"
    "threading.Thread(target=sigterm_after_2_epochs, daemon=True,\n"
    "                 args=(Path({history!r}), time.monotonic() + {timeout})).start()\n")


@pytest.fixture(scope="module")
def jax_runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """One JAX process with two CPU devices for: the fits of both strategies, quickstart at its
    shipped size, a diverging fit (it fails), then a 5-epoch data_parallel fit sent SIGTERM once
    2 epochs are done (3 to spare, so it cannot finish first) and its run's resume."""
    folder = tmp_path_factory.mktemp("jax-two-devices")
    commands = fit_both_strategies(folder, "jax")
    commands["shipped"] = ["fit", QUICKSTART, "--backend", "jax", "--run-dir",
                           folder / "shipped", *PARALLEL, "--epochs", "2", "--set",
                           "training.tensorboard=false"]
    # 540 training samples at batch 64: 9 steps an epoch, the 10th diverges.
    commands["diverging"] = ["fit", QUICKSTART, "--backend", "jax", "--run-dir",
                             folder / "diverging", *SMALL, *PARALLEL, "--epochs", "3", "--set",
                             "optimizer.schedule={name: PiecewiseConstantDecay, boundaries: "
                             "[9], values: [0.001, 1.0e+12]}"]
    commands["sigterm'd"] = ["fit", QUICKSTART, "--backend", "jax", "--run-dir",
                             folder / "sigterm", *SMALL, *PARALLEL, "--epochs", "5"]
    commands["sigterm"] = ["fit", "--resume", folder / "sigterm"]
    return run_batch(folder, "jax", commands, SIGTERM_AFTER_2_EPOCHS.format(
        history=str(folder / "sigterm" / "history.csv"), timeout=TIMEOUT * len(commands)))


@pytest.fixture(scope="module")
def tensorflow_runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """One TensorFlow process with two logical CPUs for the fits of both strategies."""
    folder = tmp_path_factory.mktemp("tensorflow-two-devices")
    return run_batch(folder, "tensorflow", fit_both_strategies(folder, "tensorflow"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", [pytest.param("jax", marks=needs_jax), "tensorflow"])
def test_data_parallel_on_two_devices_trains_the_weights_one_device_does(
        backend: str, request: pytest.FixtureRequest) -> None:
    runs = request.getfixturevalue(f"{backend}_runs")
    for strategy in ("none", "data_parallel"):
        done = runs[strategy][1]
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    folders = {strategy: runs[strategy][0] for strategy in ("none", "data_parallel")}
    recorded = json.loads((folders["data_parallel"] / "environment.json").read_text())
    assert recorded["distribution"]["strategy"] == "data_parallel"
    assert len(recorded["distribution"]["devices"]) == 2
    assert recorded["distribution"]["processes"] == 1
    for one, two in zip(weights(folders["none"] / "model.keras"),
                        weights(folders["data_parallel"] / "model.keras"), strict=True):
        np.testing.assert_allclose(two, one, atol=WEIGHTS_ATOL, rtol=0)
    losses = [[row["loss"] for row in read_history(folders[s] / "history.csv")] for s in folders]
    np.testing.assert_allclose(losses[1], losses[0], rtol=LOSS_RTOL)


@pytest.mark.slow
@needs_jax
def test_data_parallel_trains_quickstart_at_its_shipped_size(jax_runs: Runs) -> None:
    # 5,400 training samples: 85 steps an epoch. With Keras dispatching the batch-end callbacks
    # to its worker threads, the loop ran ahead of the two CPU devices until one device's half
    # of a step waited for a launch slot that later steps held: the other half waited in its
    # all-reduce, and XLA aborted after 40 s (exit 134) in epoch 2. 600 samples (9 steps) never
    # ran that far ahead.
    run_dir, done = jax_runs["shipped"]
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert [row["epoch"] for row in read_history(run_dir / "history.csv")] == [1, 2]
    assert json.loads((run_dir / "run.json").read_text())["state"] == "completed"
    assert json.loads((run_dir / "environment.json").read_text())["distribution"]["devices"] \
        == ["cpu:0", "cpu:1"]


@pytest.mark.slow
@needs_jax
def test_sigterm_then_resume_under_data_parallel(jax_runs: Runs) -> None:
    stopped = jax_runs["sigterm'd"][1]
    assert stopped.returncode == 143, stopped.stdout + stopped.stderr
    run_dir, done = jax_runs["sigterm"]
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert [row["epoch"] for row in read_history(run_dir / "history.csv")] == list(range(1, 6))
    assert json.loads((run_dir / "run.json").read_text())["state"] == "completed"
    assert json.loads((run_dir / "environment.json").read_text())["distribution"]["devices"] \
        == ["cpu:0", "cpu:1"]


@pytest.mark.slow
@needs_jax
def test_a_diverging_loss_under_data_parallel_keeps_the_good_epoch(jax_runs: Runs) -> None:
    run_dir, done = jax_runs["diverging"]
    assert done.returncode == 2, done.stderr[-3000:]
    assert "error: the loss became NaN or infinite; training stopped." in " ".join(
        done.stderr.split())
    assert json.loads((run_dir / "run.json").read_text())["state"] == "failed"
    assert len(read_history(run_dir / "history.csv")) >= 1
    assert (run_dir / "last.keras").is_file()


def test_data_parallel_on_one_device_runs_without_an_engine() -> None:
    # "data_parallel with one device changes nothing": MirroredStrategy over one device cost
    # 26% an epoch of quickstart on this CPU (bench/distribution.py), for nothing to share.
    from dltrain.backend.distribution import place
    from dltrain.config.training_section import DistributionConfig

    placement = place(DistributionConfig(strategy="data_parallel", devices=1))
    assert placement.engine is None and len(placement.devices) == 1
    assert placement.describe() == ("distribution: data_parallel over 1 device (/device:CPU:0): "
                                    "trained as with none, no engine needed")
    assert placement.to_json()["strategy"] == "data_parallel"


def test_an_abort_with_the_coordinator_up_goes_on_from_jax_s_own_thread(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """JAX aborts from its polling thread: the handler that lets another fault's abort go on
    put the default back with signal.signal, which works in the main thread only (ValueError,
    'Exception ignored')."""
    import ctypes
    import threading

    from dltrain.backend import distribution

    monkeypatch.setattr(distribution, "_answers", lambda address: True)
    distribution._exit_2_when_jax_aborts(distribution.Cluster("127.0.0.1:1", 2, 1))
    libc = ctypes.CDLL(None)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    try:
        polling = threading.Thread(target=distribution._on_abort[0], args=(signal.SIGABRT,))
        polling.start()
        polling.join(timeout=30)
        assert libc.signal(signal.SIGABRT, None) is None  # SIG_DFL: the abort goes on
    finally:
        libc.signal(signal.SIGABRT, None)
    assert "Error" not in capfd.readouterr().err
