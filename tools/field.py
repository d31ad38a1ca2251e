"""`make field`: every capability once at the shipped sizes, as a user runs it, on the CPU.

The test suite trains on tiny subsets; some bugs live only at real size (a collective that
hangs after a full epoch, the last partial batch, a timing). This script drives the real CLI
in subprocesses over the shipped Fashion-MNIST subset (5,000 training and 1,000 test images)
and prints one line per check with its time. It is not part of CI: run it before calling a
training, data, backend, search, model or report path done, and quote its output.

    python tools/field.py            # every check, 2-6 minutes on 2 cores
    python tools/field.py --only quickstart-tf export --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
SHIPPED = ROOT / "dltrain" / "data" / "shipped" / "fashion_mnist_mini.npz"
TIMEOUT = 600  # seconds for any one command: a hang fails its check instead of the whole script
MIN_ACCURACY = 0.75  # quickstart reaches 0.82-0.86 in 4 epochs; far below means it did not learn
EXPORTS = ("saved_model", "onnx", "tflite")


class CheckFailed(Exception):
    """A check saw something other than what a user should get."""


@dataclass
class Field:
    """The scratch folder every check works in, and the runs that later checks reuse."""

    work: Path
    python: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if key != "KERAS_BACKEND" and not key.startswith("KERAS_DISTRIBUTION_")}
        return {**env, "CI": "true", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu",
                "PYTHONUNBUFFERED": "1", **extra}

    def command(self, *args: object) -> list[str]:
        return [self.python, "-m", "dltrain", *map(str, args)]

    def start(self, *args: object, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env(**(env or {})),
                                cwd=self.work)

    def dltrain(self, *args: object, env: dict[str, str] | None = None) -> str:
        """Run one command to its end; its stdout, or CheckFailed with its last words."""
        return finish(self.start(*args, env=env), 0, args)


def finish(process: subprocess.Popen[str], expect: int, args: tuple[object, ...]) -> str:
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise CheckFailed(f"dltrain {args[0]} did not end within {TIMEOUT} s") from None
    if process.returncode != expect:
        tail = " | ".join(err.strip().splitlines()[-3:])[-400:]
        raise CheckFailed(f"dltrain {args[0]} exited {process.returncode}, not {expect}: {tail}")
    return out


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def state(run: Path) -> str:
    return str(read_json(run / "run.json")["state"])


def history_rows(run: Path) -> int:
    path = run / "history.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def expect_completed(run: Path, epochs: int) -> None:
    if state(run) != "completed" or history_rows(run) != epochs:
        raise CheckFailed(f"{run.name}: state {state(run)}, {history_rows(run)} epochs, "
                          f"expected completed after {epochs}")


def accuracy_of(document: dict) -> float:
    return float(document["test"]["accuracy"])


def fit_quickstart(field: Field, name: str, *args: object,
                   env: dict[str, str] | None = None) -> str:
    run = field.work / name
    document = json.loads(field.dltrain("fit", QUICKSTART, "--run-dir", run, "--json", *args,
                                        env=env))
    accuracy = accuracy_of(document)
    if accuracy < MIN_ACCURACY:
        raise CheckFailed(f"test accuracy {accuracy:.4f} < {MIN_ACCURACY}")
    expect_completed(run, int(document["epochs_run"]))
    return f"test accuracy {accuracy:.4f}, {document['epochs_run']} epochs"


def quickstart_tf(field: Field) -> str:
    return fit_quickstart(field, "quickstart-tf", "--backend", "tensorflow")


def quickstart_jax(field: Field) -> str:
    return fit_quickstart(field, "quickstart-jax", "--backend", "jax")


def data_parallel(field: Field) -> str:
    detail = fit_quickstart(field, "data-parallel", "--backend", "jax", "--epochs", "2",
                            "--set", "distribution.strategy=data_parallel",
                            env={"JAX_NUM_CPU_DEVICES": "2"})
    devices = read_json(field.work / "data-parallel" / "environment.json").get("distribution")
    return f"{detail}, distribution {json.dumps(devices, separators=(',', ':'))}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def two_processes(field: Field) -> str:
    run, port = field.work / "two-processes", free_port()
    processes = [field.start("fit", QUICKSTART, "--run-dir", run, "--backend", "jax",
                             "--epochs", "2", "--set", "distribution.strategy=data_parallel",
                             "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                             "--process-id", index, "--join-timeout", "120")
                 for index in (0, 1)]
    try:
        for process in processes:
            finish(process, 0, ("fit",))
    finally:
        for process in processes:
            process.kill()
    expect_completed(run, 2)
    return f"test accuracy {accuracy_of(read_json(run / 'metrics.json')):.4f}"


def wait_for_rows(process: subprocess.Popen[str], run: Path, rows: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while history_rows(run) < rows:
        if process.poll() is not None:
            raise CheckFailed(f"fit ended ({process.returncode}) before epoch {rows}")
        if time.monotonic() > deadline:
            raise CheckFailed(f"no epoch {rows} within {TIMEOUT} s")
        time.sleep(0.2)


def sigterm_resume(field: Field) -> str:
    run = field.work / "sigterm"
    process = field.start("fit", QUICKSTART, "--run-dir", run)
    try:
        wait_for_rows(process, run, 1)
        process.send_signal(signal.SIGTERM)
        finish(process, 143, ("fit",))
    finally:
        process.kill()
    stopped_at, stopped_state = history_rows(run), state(run)
    if stopped_state != "interrupted":
        raise CheckFailed(f"after SIGTERM the run is {stopped_state}, not interrupted")
    field.dltrain("fit", "--resume", run)
    expect_completed(run, 4)
    return f"stopped after epoch {stopped_at}, exit 143, resumed to 4 epochs"


def cross_validation(field: Field) -> str:
    run = field.work / "cv"
    document = json.loads(field.dltrain("cv", QUICKSTART, "--folds", "3", "--set",
                                        "training.epochs=2", "--run-dir", run, "--json"))
    folds = sorted(path.name for path in run.glob("fold-*"))
    if folds != ["fold-0", "fold-1", "fold-2"]:
        raise CheckFailed(f"fold folders {folds}")
    for fold in folds:
        expect_completed(run / fold, 2)
    accuracy = document["test"]["accuracy"]
    if accuracy["mean"] < MIN_ACCURACY - 0.05:  # 2 epochs on two thirds of the data
        raise CheckFailed(f"mean test accuracy {accuracy['mean']:.4f}")
    return f"3 folds, test accuracy {accuracy['mean']:.4f} ± {accuracy['std']:.4f}"


def tune(field: Field) -> str:
    config = yaml.safe_load(QUICKSTART.read_text())
    config["training"]["epochs"] = 2
    config["search"] = {"method": "grid", "objective": "val_accuracy", "parameters": {
        "optimizer.learning_rate": {"choice": [0.001, 0.003]},
        "training.batch_size": {"choice": [64, 128]}}}
    path = field.work / "quickstart_search.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    run = field.work / "tune"
    field.dltrain("tune", path, "--run-dir", run, "--json")
    trials = sorted(run.glob("trial-*"))
    if len(trials) != 4 or not (run / "best.yaml").exists():
        raise CheckFailed(f"{len(trials)} trial folders, best.yaml {(run / 'best.yaml').exists()}")
    for trial in trials:
        expect_completed(trial, 2)
    return "4 trials completed, best.yaml written"


def export(field: Field) -> str:
    run = trained_run(field)
    details = []
    for fmt in EXPORTS:
        entry = json.loads(field.dltrain("export", run, "--format", fmt, "--json"))
        if entry != read_json(run / "export.json")[fmt] or entry["status"] != "passed":
            raise CheckFailed(f"{fmt}: {json.dumps(entry)[:300]}")
        details.append(f"{fmt} max diff {entry['max_abs_diff']:.2g}")
    return ", ".join(details)


def predict_folder(field: Field) -> str:
    from PIL import Image

    run, folder = trained_run(field), field.work / "images"
    folder.mkdir(exist_ok=True)
    with np.load(SHIPPED) as data:
        images = data["x_test"][:5]
    for index, image in enumerate(images):
        Image.fromarray(np.asarray(image, dtype=np.uint8).squeeze()).save(folder / f"{index}.png")
    document = json.loads(field.dltrain("predict", run, folder, "--json"))
    rows = [row for row in document if row["top"][0]["probability"] > 0]
    if len(rows) != len(images):
        raise CheckFailed(f"{len(rows)} predictions for {len(images)} images")
    return f"{len(rows)} images predicted"


def mlflow_tracking(field: Field) -> str:
    """A fit logged to the embedded store beside the runs, read back as `mlflow ui` shows it."""
    run = field.work / "tracked"
    field.dltrain("fit", QUICKSTART, "--run-dir", run, "--epochs", "2", "--set",
                  "tracking.mlflow.experiment=field", "--json")
    expect_completed(run, 2)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{field.work / 'runs' / 'mlflow.db'}")
    logged = client.get_run(read_json(run / "tracking.json")["run_id"])
    steps = [m.step for m in client.get_metric_history(logged.info.run_id, "loss")]
    if logged.info.status != "FINISHED" or steps != list(range(1, history_rows(run) + 1)):
        raise CheckFailed(f"MLflow run {logged.info.status}, loss at steps {steps}")
    accuracy = logged.data.metrics.get("test_accuracy")
    return f"MLflow run FINISHED, steps {steps}, test_accuracy {accuracy:.4f}"


def lr_find(field: Field) -> str:
    """The range test on quickstart: a rate to use and its plot, and no run written."""
    document = json.loads(field.dltrain("lr-find", QUICKSTART, "--json"))
    rate, plot = document["suggested_learning_rate"], field.work / document["plot"]  # cwd's
    if not 1e-5 < rate < 1e-1 or not plot.is_file():
        raise CheckFailed(f"suggested {rate}, plot {plot} exists: {plot.is_file()}")
    if list((field.work / "runs").glob("*/run.json")):
        raise CheckFailed("lr-find left a run")
    return f"suggested {rate:g} after {document['steps']} steps ({document['stopped']})"


def graph_model(field: Field) -> str:
    """The shipped residual net (a functional graph) on the shipped subset, loaded back by
    plain Keras with no custom objects."""
    run = field.work / "resnet"
    document = json.loads(field.dltrain(
        "fit", ROOT / "configs" / "fashion_mnist_resnet.yaml", "--run-dir", run, "--epochs", "1",
        "--set", "dataset.name=fashion_mnist_mini", "--json"))
    expect_completed(run, 1)
    load = subprocess.run([field.python, "-c", "import keras, sys; m = keras.saving.load_model("
                           "sys.argv[1]); print(type(m).__name__, len(m.layers))",
                           str(run / "model.keras")], capture_output=True, text=True,
                          timeout=TIMEOUT, env=field.env())
    if load.returncode != 0 or not load.stdout.startswith("Functional"):
        raise CheckFailed(f"plain Keras loaded {load.stdout.strip()!r}: {load.stderr[-300:]}")
    return f"test accuracy {accuracy_of(document):.4f} after 1 epoch, {load.stdout.strip()}"


def mixed_precision_auto(field: Field) -> str:
    """quickstart with training.mixed_precision auto on TensorFlow: it learns, the run records
    the policy this CPU calls for (bfloat16 only with avx512_bf16 or amx_bf16), and it exports
    to ONNX (a bf16 model as its float32 twin)."""
    from dltrain.backend.precision import precision_policy

    run = field.work / "precision-auto"
    detail = fit_quickstart(field, run.name, "--backend", "tensorflow",
                            "--set", "training.mixed_precision=auto")
    expected = precision_policy("auto", "tensorflow", on_gpu=False)
    recorded = read_json(run / "environment.json")["mixed_precision"]
    if recorded != expected:
        raise CheckFailed(f"environment.json records {recorded}, this CPU calls for {expected}")
    entry = json.loads(field.dltrain("export", run, "--format", "onnx", "--json"))
    if entry["status"] != "passed":
        raise CheckFailed(f"onnx: {json.dumps(entry)[:300]}")
    twin = entry.get("mixed_precision", {}).get("max_abs_diff")
    return (f"{detail}, policy {recorded}, onnx max diff {entry['max_abs_diff']:.2g}"
            + ("" if twin is None else f" ({twin:.2g} from the model as trained)"))


def trained_run(field: Field) -> Path:
    """quickstart-tf's run, trained here first when that check was not selected."""
    run = field.work / "quickstart-tf"
    if not (run / "model.keras").exists():
        quickstart_tf(field)
    return run


CHECKS: dict[str, Callable[[Field], str]] = {
    "quickstart-tf": quickstart_tf,
    "quickstart-jax": quickstart_jax,
    "data-parallel": data_parallel,
    "two-processes": two_processes,
    "sigterm-resume": sigterm_resume,
    "cv": cross_validation,
    "tune": tune,
    "export": export,
    "predict-folder": predict_folder,
    "mlflow": mlflow_tracking,
    "lr-find": lr_find,
    "graph-model": graph_model,
    "precision-auto": mixed_precision_auto,
}


def run_check(name: str, field: Field) -> bool:
    started = time.monotonic()
    try:
        detail, ok = CHECKS[name](field), True
    except CheckFailed as error:
        detail, ok = str(error), False
    except (OSError, ValueError, KeyError, TypeError) as error:  # a file not as documented
        detail, ok = f"{type(error).__name__}: {error}", False
    print(f"{'ok  ' if ok else 'FAIL'} {name:<15} {time.monotonic() - started:6.1f} s  {detail}",
          flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(CHECKS), help="run these checks only")
    parser.add_argument("--list", action="store_true", help="list the checks and stop")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(CHECKS))
        return 0
    field = Field(Path(tempfile.mkdtemp(prefix="dltrain-field-")), sys.executable)
    started = time.monotonic()
    try:
        results = [run_check(name, field) for name in args.only or CHECKS]
    finally:
        if args.keep:
            print(f"scratch kept in {field.work}")
        else:
            shutil.rmtree(field.work, ignore_errors=True)
    passed = sum(results)
    print(f"field: {passed} passed, {len(results) - passed} failed in "
          f"{time.monotonic() - started:.0f} s on {os.cpu_count()} cores")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
