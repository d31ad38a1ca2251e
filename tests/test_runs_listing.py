"""The runs table: one row per run directory, what kind of run it was, and a table that fits."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conftest import run_cli
from dltrain.report.tables import runs_table
from dltrain.runs import listing, records
from dltrain.runs.listing import list_runs, summarise
from dltrain.runs.records import CrossValidation, Environment, Metrics, RunState

LONG = "fashion_mnist_best-20261126-031500"


def row(name: str, **fields: Any) -> dict[str, Any]:
    """A row as list_runs makes it, for a completed fit unless told otherwise."""
    return {"name": name, "path": f"runs/{name}", "date": "2026-11-26T03:15:00+00:00",
            "dataset": "fashion_mnist", "state": "completed", "kind": "fit", "backend": "jax",
            "epochs": 30,
            "accuracy": 0.91234, "loss": 0.25678, "seconds": 65.4321,
            "samples_per_second": 1234.5678, **fields}


ROWS = [
    row(LONG),
    row("quickstart-20261126-041500", dataset="fashion_mnist_mini", state="interrupted",
        kind="smoke", epochs=1, seconds=3725.0),
    row("tabular_binary-20261126-051500", dataset="csv", state="failed", kind="synthetic",
        accuracy=None, loss=None, seconds=None, samples_per_second=None),
    row("running-one", date=None, dataset=None, state="running", epochs=0, accuracy=None,
        loss=None, seconds=None, samples_per_second=None),
]


def render(rows: list[dict[str, Any]], width: int) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=width, highlight=False).print(runs_table(rows, Path("runs")))
    return buffer.getvalue().splitlines()


def line_of(lines: list[str], name: str) -> str:
    return next(line for line in lines if name in line)


def test_typical_runs_fit_80_columns_with_whole_names_and_short_cells() -> None:
    rows = [row("quickstart-20261126-041500"),
            row("mnist_cnn-20261126-051500", state="failed", kind="smoke", epochs=1,
                seconds=3725.0, accuracy=None)]
    lines = render(rows, 80)
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split() == ["name", "state", "kind", "epochs", "acc", "loss", "time"]
    assert line_of(lines, "quickstart-").split() == [
        "quickstart-20261126-041500", "completed", "fit", "30", "0.9123", "0.2568", "1m05s"]
    assert line_of(lines, "mnist_cnn-").split() == [
        "mnist_cnn-20261126-051500", "failed", "smoke", "1", "-", "0.2568", "1h02m"]


def test_long_names_stay_whole_at_80_columns_and_fewer_columns_show() -> None:
    lines = render(ROWS, 80)
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split() == ["name", "state", "kind", "acc", "loss"]
    for each in ROWS:
        assert line_of(lines, each["name"]).split()[0] == each["name"]  # never wrapped or cut
    assert line_of(lines, LONG).split()[1:] == ["completed", "fit", "0.9123", "0.2568"]
    assert line_of(lines, "quickstart-").split()[1:] == [
        "interrupted", "smoke", "0.9123", "0.2568"]
    assert line_of(lines, "tabular_binary-").split()[1:] == ["failed", "synthetic", "-", "-"]


def test_a_wide_terminal_shows_every_column_shortened() -> None:
    lines = render(ROWS, 160)
    assert max(len(line) for line in lines) <= 160
    assert lines[1].split() == ["name", "date", "dataset", "state", "kind", "backend", "epochs",
                                "acc", "loss", "time", "samples/s"]
    assert line_of(lines, LONG).split()[1:] == [
        "11-26", "03:15:00", "fashion_mnist", "completed", "fit", "jax", "30", "0.9123", "0.2568",
        "1m05s", "1235"]
    assert line_of(lines, "running-one").split()[1:] == [
        "-", "-", "running", "fit", "jax", "0", "-", "-", "-", "-"]


def test_a_narrow_terminal_still_shows_name_state_kind_and_accuracy() -> None:
    lines = render(ROWS, 70)
    assert max(len(line) for line in lines) <= 70
    assert lines[1].split() == ["name", "state", "kind", "acc"]
    assert line_of(lines, LONG).split() == [LONG, "completed", "fit", "0.9123"]


def write_run(folder: Path, *, state: str = "completed", metrics: dict[str, Any] | None = None,
              extra_state: dict[str, Any] | None = None, command: list[str] | None = None) -> Path:
    folder.mkdir(parents=True)
    records.write(folder, RunState.of({"state": state, **(extra_state or {})}))
    if metrics is not None:
        records.write(folder, Metrics.of(metrics))
    if command is not None:
        records.write(folder, Environment(started="2026-11-26T03:15:00+0000", command=command))
    return folder


FINISHED = {"test": {"accuracy": 0.5, "loss": 1.5}, "epochs_run": 1, "train_seconds": 2.0,
            "samples_per_second": 128.0}


@pytest.mark.parametrize(("metrics", "extra_state", "command", "kind"), [
    (FINISHED, None, ["dltrain", "fit", "c.yaml"], "fit"),
    ({**FINISHED, "smoke": {"loss_before": 2.3, "loss_after": 2.1, "passed": True}}, None, None,
     "smoke"),
    ({**FINISHED, "smoke": {"passed": True}, "synthetic": True}, None, None, "synthetic"),
    (None, {"synthetic": True}, None, "synthetic"),
    (None, {"smoke": True}, None, "smoke"),
    (None, None, ["dltrain", "fit", "c.yaml", "--smoke"], "smoke"),  # stopped before metrics
    (None, None, None, "fit"),
])
def test_each_row_says_what_kind_of_run_it_was(
        tmp_path: Path, metrics: dict[str, Any] | None, extra_state: dict[str, Any] | None,
        command: list[str] | None, kind: str) -> None:
    run = write_run(tmp_path / "run", metrics=metrics, extra_state=extra_state, command=command)
    assert summarise(run)["kind"] == kind


def test_runs_lists_runs_that_have_no_metrics_yet(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "runs"
    write_run(folder / "a-done", metrics=FINISHED, command=["dltrain", "fit", "c.yaml"])
    write_run(folder / "b-starting", state="running")
    (folder / "b-starting" / "history.csv").write_text("epoch,loss,seconds\n1,2.5,1.0\n")
    write_run(folder / "c-smoke", state="running", command=["dltrain", "fit", "c.yaml", "--smoke"])
    (folder / "not-a-run").mkdir()
    code, out, err = run_cli(capsys, "runs", folder, "--json", "--sort", "name")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["name"], r["state"], r["kind"], r["epochs"], r["accuracy"]) for r in rows] == [
        ("a-done", "completed", "fit", 1, 0.5), ("b-starting", "running", "fit", 1, None),
        ("c-smoke", "running", "smoke", 0, None)]
    code, out, err = run_cli(capsys, "runs", folder, "--sort", "accuracy")
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert line_of(lines, "b-starting").split()[1:] == [
        "-", "-", "running", "fit", "1", "-", "-", "-"]
    assert line_of(lines, "c-smoke").split()[1:] == [
        "11-26", "03:15", "-", "running", "smoke", "0", "-", "-", "-"]


def test_list_runs_sorts_by_accuracy_with_the_unscored_last(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    write_run(folder / "low", metrics={**FINISHED, "test": {"accuracy": 0.2}})
    write_run(folder / "none", state="running")
    write_run(folder / "high", metrics={**FINISHED, "test": {"accuracy": 0.9}})
    assert [r["name"] for r in list_runs(folder, "accuracy")] == ["high", "low", "none"]


@pytest.mark.parametrize(("name", "text"), [
    ("run.json", "{not json"), ("run.json", "[1, 2]"), ("run.json", "null"),
    ("metrics.json", '{"test": '), ("metrics.json", '{"test": [0.5]}'),
    ("metrics.json", '{"test": {"accuracy": "high"}}'), ("metrics.json", '"text"'),
    ("environment.json", "[]"), ("history.csv", "epoch,loss\n1,abc\n"),
    ("config.yaml", "dataset: [unclosed"), ("config.yaml", "dataset: 3"),
])
def test_one_broken_run_is_marked_and_the_others_still_list(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str) -> None:
    folder = tmp_path / "runs"
    write_run(folder / "a-good", metrics=FINISHED, command=["dltrain", "fit", "c.yaml"])
    broken = write_run(folder / "b-broken", metrics=FINISHED)
    (broken / name).write_text(text)
    write_run(folder / "c-good", metrics={**FINISHED, "test": {"accuracy": 0.7}})
    code, out, err = run_cli(capsys, "runs", folder, "--json", "--sort", "accuracy")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert [row["name"] for row in json.loads(out)] == ["c-good", "a-good", "b-broken"]
    assert rows["a-good"]["state"] == rows["c-good"]["state"] == "completed"
    assert rows["b-broken"]["state"] == "corrupt"
    assert rows["b-broken"]["unreadable"] == str(broken / name)
    code, out, err = run_cli(capsys, "runs", folder)
    assert code == 0, err
    assert "corrupt" in line_of(out.splitlines(), "b-broken").split()
    for sort in ("date", "name", "loss", "time", "state"):
        assert run_cli(capsys, "runs", folder, "--sort", sort)[0] == 0


def test_rows_name_the_backend_and_older_runs_count_as_tensorflow(tmp_path: Path) -> None:
    for name, env in (("new", {"backend": "jax", "jax": "0.10.2"}),
                      ("old", {"tensorflow": "2.21.0"})):
        run = tmp_path / name
        run.mkdir()
        records.write(run, RunState(state="completed"))
        records.write(run, Environment.of(env))
    rows = {row["name"]: row for row in list_runs(tmp_path, "name")}
    assert rows["new"]["backend"] == "jax" and rows["old"]["backend"] == "tensorflow"


# --- cross-validations -----------------------------------------------------------------------

CV_NAME = "fashion_mnist_cnn-20261126-061500"


def write_cv(folder: Path, *, record: dict[str, Any] | None = None) -> Path:
    """A finished 2-fold cross-validation's parent, with a complete run inside it."""
    parent = write_run(folder, extra_state={"kind": "cv"},
                       command=["dltrain", "cv", "c.yaml", "--folds", "2"])
    fold = {"epochs_run": 5, "train_seconds": 30.0, "validation": {}, "test": {}}
    if record is not None:  # as given, damaged or not
        (parent / "cv.json").write_text(json.dumps(record))
    else:
        records.write(parent, CrossValidation(
            folds=2, per_fold=[fold, {**fold, "epochs_run": 4}],
            test={"accuracy": {"mean": 0.91234, "std": 0.00456},
                  "loss": {"mean": 0.25, "std": 0.01}}, refit_result=None))
    write_run(parent / "fold-0", metrics=FINISHED)
    return parent


def test_a_cross_validation_is_one_row_with_its_mean_and_std(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    write_cv(folder / CV_NAME)
    write_run(folder / "a-fit", metrics=FINISHED)
    rows = {row["name"]: row for row in list_runs(folder, "name")}
    assert sorted(rows) == ["a-fit", CV_NAME]  # the fold inside it is no row of its own
    cv = rows[CV_NAME]
    assert (cv["kind"], cv["accuracy"], cv["accuracy_std"], cv["loss"], cv["loss_std"]) == (
        "cv", 0.91234, 0.00456, 0.25, 0.01)
    assert (cv["epochs"], cv["seconds"], cv["samples_per_second"]) == (5, 60.0, None)


def test_a_cross_validation_row_fits_80_columns_with_its_std() -> None:
    lines = render([*ROWS, row(CV_NAME, kind="cv", accuracy_std=0.00456, epochs=5,
                               samples_per_second=None)], 80)
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split()[:4] == ["name", "state", "kind", "acc"]
    assert line_of(lines, CV_NAME).split()[:4] == [CV_NAME, "completed", "cv", "0.9123±0.0046"]
    assert line_of(lines, LONG).split()[:4] == [LONG, "completed", "fit", "0.9123"]


@pytest.mark.parametrize("record", [{"folds": 2, "per_fold": {}}, {"folds": 2, "per_fold": [],
                                                                   "test": {"accuracy": 0.9}}])
def test_a_broken_cv_json_marks_the_row_corrupt(tmp_path: Path, record: dict[str, Any]) -> None:
    parent = write_cv(tmp_path / "cv", record=record)
    row_ = summarise(parent)
    assert row_["state"] == "corrupt" and row_["unreadable"] == str(parent / "cv.json")


@pytest.mark.parametrize(("name", "content", "says"), [
    ("config.yaml", bytes(range(128, 256)), "config.yaml: 'utf-8' codec can't decode byte 0x80"),
    ("config.yaml", b"dataset: [unclosed", "config.yaml: while parsing a flow sequence"),
    ("config.yaml", b"- a list", "config.yaml: holds a list, not the mapping dltrain writes"),
    ("metrics.json", bytes(range(128, 256)), "metrics.json: not valid JSON ("),
    ("metrics.json", b"[0.5]", "metrics.json: holds a list, not the mapping dltrain writes"),
])
def test_compare_names_a_damaged_file_of_either_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes,
        says: str) -> None:
    runs = []
    for run in ("a", "b"):
        folder = write_run(tmp_path / run, metrics=FINISHED)
        (folder / "config.yaml").write_text("name: x\nseed: 1\n")
        runs.append(folder)
    (runs[1] / name).write_bytes(content)
    code, out, err = run_cli(capsys, "compare", *runs)
    assert code == 2, out + err
    assert f"error: {runs[1] / says}" in " ".join(err.split())
    assert "compare takes two run directories as dltrain writes them" in " ".join(err.split())


def test_numbers_json_cannot_hold_are_listed_as_none_and_json_output_stays_strict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An infinite time made `runs` an internal error (OverflowError); NaN went out as NaN.
    folder = tmp_path / "runs"
    write_run(folder / "odd", metrics={**FINISHED, "train_seconds": float("inf"),
                                       "regression": {"r2": float("nan")}})
    code, out, err = run_cli(capsys, "runs", folder)
    assert code == 0, err
    assert "completed" in line_of(out.splitlines(), "odd").split()
    code, out, err = run_cli(capsys, "runs", folder, "--json")
    assert code == 0, err
    (row,) = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert row["seconds"] is None and row["r2"] is None


def test_a_run_file_holds_null_where_a_number_is_not_finite(tmp_path: Path) -> None:
    from dltrain.runs.files import write_json

    write_json(tmp_path / "m.json", {"r2": float("nan"), "loss": [1.0, float("-inf")]})
    assert json.loads((tmp_path / "m.json").read_text(), parse_constant=lambda name: pytest.fail(
        f"{name} in JSON")) == {"r2": None, "loss": [1.0, None]}


def test_compare_of_two_cross_validations_shows_their_means_and_fold_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It showed an empty "Test metrics" table, and not that one had 3 folds and the other 2.
    parents = []
    for name, folds, accuracy in (("a", 3, 0.6775), ("b", 2, 0.6591)):
        parent = write_run(tmp_path / name, extra_state={"kind": "cv"})
        (parent / "config.yaml").write_text("name: x\nseed: 1\n")
        records.write(parent, CrossValidation(
            folds=folds, per_fold=[], test={"accuracy": {"mean": accuracy, "std": 0.01}}))
        parents.append(parent)
    code, out, err = run_cli(capsys, "compare", *parents, "--json")
    assert code == 0, err
    comparison = json.loads(out)
    assert {"key": "cv --folds", "a": 3, "b": 2} in comparison["config"]
    [accuracy] = comparison["metrics"]
    assert (accuracy["a"], accuracy["b"]) == (0.6775, 0.6591)
    assert accuracy["delta"] == pytest.approx(0.6591 - 0.6775)
    code, out, err = run_cli(capsys, "compare", *parents)
    assert "the mean over its folds" in " ".join((out + err).split())


# --- issue 27: sorting by the full start time, every heading a sort value, one row shape -----

def started_run(folder: Path, started: str, **fields: Any) -> Path:
    run = write_run(folder, metrics=FINISHED)
    records.write(run, Environment(started=started, command=["dltrain", "fit", "c.yaml"],
                                   **fields))
    return run


def test_runs_started_within_one_minute_list_newest_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Sorted by a date shown to the minute, these listed oldest first (by name, in a tie).
    folder = tmp_path / "runs"
    started_run(folder / "a-first", "2026-11-26T03:15:05+0000")
    started_run(folder / "b-second", "2026-11-26T03:15:40+0000")
    started_run(folder / "c-earlier-elsewhere", "2026-11-26T04:15:20+0100")  # 03:15:20 UTC
    started_run(folder / "d-older", "2026-11-26T03:14:59+0000")
    expected = ["b-second", "c-earlier-elsewhere", "a-first", "d-older"]
    assert [row["name"] for row in list_runs(folder)] == expected
    code, out, err = run_cli(capsys, "runs", folder, "--json")
    assert code == 0, err
    assert [row["name"] for row in json.loads(out)] == expected
    lines = render(list_runs(folder), 160)
    assert line_of(lines, "b-second").split()[1:3] == ["11-26", "03:15:40"]
    assert line_of(lines, "a-first").split()[1:3] == ["11-26", "03:15:05"]


def test_every_sortable_heading_is_a_sort_value_and_the_old_names_still_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dltrain.report.tables import RUN_COLUMNS

    folder = tmp_path / "runs"
    started_run(folder / "low", "2026-11-26T03:15:05+0000")
    (folder / "low" / "metrics.json").unlink()
    records.write(folder / "low", Metrics.of({**FINISHED, "test": {"accuracy": 0.2}}))
    started_run(folder / "high", "2026-11-26T03:15:06+0000")
    (folder / "high" / "metrics.json").unlink()
    records.write(folder / "high", Metrics.of({**FINISHED, "test": {"accuracy": 0.9}}))
    code, out, err = run_cli(capsys, "runs", folder, "--sort", "acc", "--json")
    assert code == 0, err
    assert [row["name"] for row in json.loads(out)] == ["high", "low"]
    for heading in [header for header, _, _ in RUN_COLUMNS] + ["accuracy", "r2", "date"]:
        code, out, err = run_cli(capsys, "runs", folder, "--sort", heading)
        assert code == 0, f"--sort {heading}: {err}"
    code, out, err = run_cli(capsys, "runs", folder, "--sort", "nonsense")
    assert code == 2 and "acc" in err
    from dltrain.cli.results import SortKey
    from dltrain.runs.listing import SORT_KEYS

    assert sorted(key.value for key in SortKey) == sorted(SORT_KEYS)


ISO_SECONDS_AND_ZONE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$"


def test_json_rows_have_one_set_of_keys_and_iso_dates_with_seconds_and_zone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import re
    from datetime import datetime

    folder = tmp_path / "runs"
    started_run(folder / "a-fit", "2026-11-26T03:15:05+0000", backend="jax")
    broken = started_run(folder / "b-corrupt", "2026-11-26T03:16:05+0000")
    (broken / "metrics.json").write_text("{not json")
    write_run(folder / "c-running", state="running", command=["dltrain", "fit", "c.yaml"])
    write_run(folder / "d-stopped", state="interrupted", command=["dltrain", "fit", "c.yaml"])
    write_cv(folder / CV_NAME)
    tune = write_run(folder / "f-tune", extra_state={"kind": "tune"},
                     metrics={"test": {"accuracy": 0.8, "loss": 0.5}, "epochs_run": 3,
                              "best_trial": 0})
    write_run(tune / "trial-0000", metrics=FINISHED)
    code, out, err = run_cli(capsys, "runs", folder, "--json", "--sort", "name")
    assert code == 0, err
    rows = json.loads(out)
    assert [(row["name"], row["state"], row["kind"]) for row in rows] == [
        ("a-fit", "completed", "fit"), ("b-corrupt", "corrupt", "fit"),
        ("c-running", "running", "fit"), ("d-stopped", "interrupted", "fit"),
        ("f-tune", "completed", "tune"), (CV_NAME, "completed", "cv")]
    keys = set(rows[0])
    assert all(set(row) == keys for row in rows), [sorted(set(row) ^ keys) for row in rows]
    assert {"backend", "unreadable", "error", "writer", "accuracy_std", "date"} <= keys
    assert rows[1]["backend"] is None and rows[0]["unreadable"] is None
    assert rows[5]["accuracy_std"] == 0.00456 and rows[0]["accuracy_std"] is None
    dates = [row["date"] for row in rows if row["date"] is not None]
    assert len(dates) == 4  # the corrupt run's and the tune's (no environment.json) are null
    for date in dates:
        assert re.match(ISO_SECONDS_AND_ZONE, date), date
        assert datetime.fromisoformat(date).tzinfo is not None
    assert rows[0]["date"] == "2026-11-26T03:15:05+00:00"


LONGER = "fashion_mnist_cnn_with_augmentation-20261126-031500"


@pytest.mark.parametrize("width", [80, 60, 40])
def test_at_any_width_each_row_keeps_its_whole_name_and_whole_numbers(width: int) -> None:
    rows = [row(LONGER), row(LONGER.replace("031500", "031501"), accuracy=0.5, loss=12.345678),
            row("mnist-20261126-041500", accuracy=None, r2=0.91234, kind="cv",
                accuracy_std=None)]
    lines = render(rows, width)
    assert max(len(line) for line in lines) <= width
    text = "\n".join(lines)
    for each in rows:  # whole, on one line, never cut to the prefix two names share
        assert each["name"] in text.replace("\n", "") and line_of(lines, each["name"][:20])
    if width > len(LONGER):  # else folded on lines of its own: whole, to be copied
        assert sum(LONGER.replace("031500", "031501") in line for line in lines) == 1
    assert "0.9123" in text and "0.5000" in text and "R² 0.912" in text


# --- issue 27: compare names leaves, subtracts only like scores, and fits any width -----------

CLASSIFIER = {"name": "q", "seed": 1, "loss": "sparse_categorical_crossentropy", "task": None,
              "model": {"input_shape": [28, 28, 1], "layers": [
                  {"Conv2D": {"filters": 32, "kernel_size": 3}}, {"Flatten": {}},
                  {"Dense": {"units": 10, "activation": "softmax"}}]}}


def compared_run(folder: Path, config: dict[str, Any], metrics: dict[str, Any]) -> Path:
    import yaml

    run = write_run(folder, metrics=metrics)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


def test_compare_names_the_changed_layer_key_and_does_not_subtract_unlike_losses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    regressor = json.loads(json.dumps(CLASSIFIER))
    regressor["model"]["layers"][0]["Conv2D"]["filters"] = 16
    regressor.update(loss="mse")
    a = compared_run(tmp_path / LONGER, CLASSIFIER,
                     {"test": {"accuracy": 0.85, "loss": 0.4}})
    b = compared_run(tmp_path / LONGER.replace("031500", "031501"), regressor,
                     {"test": {"loss": 2.5, "mae": 1.1},
                      "regression": {"mae": 2.1, "rmse": 2.9, "r2": 0.85, "target_std": 7.8}})
    code, out, err = run_cli(capsys, "compare", a, b, "--json")
    assert code == 0, err
    comparison = json.loads(out)
    changes = {change["key"]: (change["a"], change["b"]) for change in comparison["config"]}
    assert changes == {"model.layers.0.Conv2D.filters": (32, 16),
                       "loss": ("sparse_categorical_crossentropy", "mse")}
    loss = next(m for m in comparison["metrics"] if m["metric"] == "loss")
    assert (loss["a"], loss["b"], loss["delta"]) == (0.4, 2.5, None)
    assert loss["why"] == ("a is a classification (loss sparse_categorical_crossentropy), b a "
                           "regression (loss mse): their scores do not compare")
    assert all(set(m) == {"metric", "a", "b", "delta", "why"} for m in comparison["metrics"])
    code, out, err = run_cli(capsys, "compare", a, b)
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    joined = "".join(line.strip() for line in lines)
    assert str(a) in joined and str(b) in joined  # whole, if folded
    assert line_of(lines, "model.layers.0.Conv2D.filters").split()[1:] == ["32", "16"]
    assert line_of(lines, "0.4000").split() == ["loss", "0.4000", "2.5000", "n/a"]
    assert "their scores do not compare" in " ".join(out.split())


def test_compare_of_two_losses_subtracts_the_other_scores_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huber = {**CLASSIFIER, "loss": {"name": "huber", "delta": 1.0}}
    a = compared_run(tmp_path / "a", {**CLASSIFIER, "loss": "mse"},
                     {"test": {"loss": 2.5, "mae": 1.5}})
    b = compared_run(tmp_path / "b", huber, {"test": {"loss": 0.9, "mae": 1.25}})
    code, out, err = run_cli(capsys, "compare", a, b, "--json")
    assert code == 0, err
    metrics = {m["metric"]: m for m in json.loads(out)["metrics"]}
    assert metrics["mae"]["delta"] == pytest.approx(-0.25) and metrics["mae"]["why"] is None
    assert metrics["loss"]["delta"] is None
    assert metrics["loss"]["why"] == "different losses (mse, huber): their values do not compare"


@pytest.mark.parametrize("width", [80, 50, 30])
def test_compare_tables_keep_both_run_names_whole_and_numbers_unsplit(width: int) -> None:
    from dltrain.report.tables import compare_tables

    name_a, name_b = f"runs/{LONGER}", f"runs/{LONGER.replace('031500', '031501')}"
    comparison = {
        "a": name_a, "b": name_b, "mean_of_folds": [False, False],
        "config": [{"key": "model.layers.0.Conv2D.kernel_size", "a": 3, "b": 5},
                   {"key": "optimizer.learning_rate", "a": 0.001, "b": 0.000123456}],
        "metrics": [{"metric": "sparse_top_k_categorical_accuracy", "a": 0.912345, "b": 0.5,
                     "delta": 0.5 - 0.912345, "why": None},
                    {"metric": "loss", "a": 0.25, "b": 1234.5, "delta": None,
                     "why": "different losses (mse, huber): their values do not compare"}]}
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, highlight=False)
    for table in compare_tables(comparison):
        console.print(table)
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    joined = "".join(line.strip() for line in lines)
    assert name_a in joined and name_b in joined  # each whole, told apart by its last digit
    words = buffer.getvalue().split()
    for number in ("0.9123", "0.5000", "-0.4123", "0.2500", "1234.5", "3", "5", "0.001",
                   "0.000123456"):
        assert number in words, number


@pytest.mark.parametrize("width", [80, 56])
def test_runs_and_compare_keep_long_run_names_whole_at_the_terminals_width(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        width: int) -> None:
    from dltrain import console

    monkeypatch.setattr(console.out, "_width", width)
    monkeypatch.chdir(tmp_path)
    names = [LONGER, LONGER.replace("031500", "031501")]
    for name, seconds in zip(names, ("05", "40"), strict=True):
        started_run(Path("runs") / name, f"2026-11-26T03:15:{seconds}+0000")
    code, out, err = run_cli(capsys, "runs")
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width
    assert [line.split()[0] for line in lines if line.startswith(LONGER[:20])] == names[::-1]
    for name in names:
        (Path("runs") / name / "config.yaml").write_text("name: x\nseed: 1\n")
    code, out, err = run_cli(capsys, "compare", *(Path("runs") / name for name in names))
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width
    joined = "".join(line.strip() for line in lines)
    assert f"a:runs/{names[0]}b:runs/{names[1]}" in joined.replace(" ", "")
    assert "0.5000" in out.split()


def test_a_start_time_with_a_colonless_zone_reads_where_fromisoformat_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Run folders write `+0000` (strftime's %z); Python 3.10's fromisoformat takes only
    `+00:00`, so the date must not depend on 3.11's wider parser."""
    class Strict310(datetime):
        @classmethod
        def fromisoformat(cls, text: str) -> Strict310:
            if re.search(r"[+-]\d{4}$", text):
                raise ValueError(f"Invalid isoformat string: {text!r}")
            return super().fromisoformat(text)  # type: ignore[return-value]

    monkeypatch.setattr(listing, "datetime", Strict310)
    assert listing.iso_date("2026-12-06T20:31:05+0000") == "2026-12-06T20:31:05+00:00"
    assert listing.iso_date("2026-12-06T20:31:05-0130") == "2026-12-06T20:31:05-01:30"
    assert listing.iso_date("not a date") is None


def test_a_loss_given_by_name_alone_compares_with_its_bare_name() -> None:
    bare, named = (listing.scored_by({"loss": loss}) for loss in ("mse", {"name": "mse"}))
    assert listing.unlike("loss", bare, named) is None
    huber = listing.scored_by({"loss": {"name": "huber", "delta": 2.0}})
    other = listing.scored_by({"loss": {"name": "huber", "delta": 1.0}})
    assert listing.unlike("loss", huber, other) == (
        "different losses (huber with other arguments): their values do not compare")
