"""dltrain.runs.records: each run file's typed record, its one writer and reader, and the
run folder's JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from dltrain.errors import RunError
from dltrain.runs import records
from dltrain.runs.records import (
    CrossValidation,
    Environment,
    Evaluation,
    Exports,
    Manifest,
    Metrics,
    Preprocessing,
    Record,
    RunState,
    Search,
    Tracking,
)

# One record of each file, with the keys and values its writer writes (and one key no
# record declares: a newer dltrain's, or a backend's version, is kept).
WRITTEN: dict[type[Record], dict] = {
    RunState: {"state": "interrupted", "updated": "2026-01-01T12:00:00+0000", "epochs_done": 2,
               "trained": 2},
    Metrics: {"test": {"loss": 0.5, "accuracy": 0.75}, "test_samples": 8, "epochs_run": 2,
              "best_epoch": 1, "resumed_at_epoch": None, "train_samples": 32,
              "validation_samples": 0, "train_seconds": 1.25, "train_seconds_total": 1.25,
              "samples_per_second": 51.2, "final_epoch": {"epoch": 1, "loss": 0.4},
              "phase_seconds": {"train": 1.2}, "smoke": {"loss_before": 1.0, "loss_after": 0.5,
                                                          "passed": True}},
    Environment: {"dltrain": "0.1.0", "python": "3.11.9", "backend": "tensorflow",
                  "keras": "3.6.0", "tensorflow": "2.18.0", "numpy": "2.0.2",
                  "platform": "Linux", "device": "cpu", "distribution": {"kind": "single"},
                  "cpu_count": 2, "command": ["dltrain", "fit", "q.yaml"],
                  "started": "2026-01-01T12:00:00+0000", "steps_per_execution": 1,
                  "resumed": [{"after_epoch": 1, "device": "cpu"}]},
    Manifest: {"config_sha256": "ab" * 32, "git": {"commit": "c0ffee", "dirty": False},
               "seed": 42, "data": {"x_train": {"shape": [32, 4], "dtype": "float32",
                                                "sample_sha256": "cd" * 32}},
               "versions": {"dltrain": "0.1.0"}, "synthetic": True},
    Preprocessing: {"rescale": 1.0, "mean": [0.5, 0.5], "std": [0.25, 0.25], "flatten_from": None,
                    "class_names": ["a", "b"], "num_classes": 2, "input_shape": [2]},
    Evaluation: {"test": {"loss": 0.5}, "test_samples": 8,
                 "report": {"confusion_matrix": [[1, 0], [0, 1]]}, "model": "run/model.keras"},
    Exports: {"onnx": {"status": "passed", "format": "onnx", "path": "run/model.onnx"}},
    CrossValidation: {"folds": 2, "stratified": True, "smoke": False, "refit": False,
                      "std": "sample standard deviation over the folds (ddof=1)", "samples": 40,
                      "per_fold": [{"fold": 1, "epochs_run": 1}], "refit_result": None},
    Search: {"parent": "runs/t", "study": "t-0123", "method": "random", "objective": "val_loss",
             "direction": "minimize", "planned": 2, "done": 1, "parameters": ["optimizer.lr"],
             "trials": [{"number": 0, "state": "complete"}], "best": None, "notes": []},
    Tracking: {"uri": "http://me:***@127.0.0.1:5000", "experiment_id": "1", "run_id": "ab" * 16,
               "parent_run_id": "cd" * 16, "not_logged": ["epochs 2-3", "status FINISHED"]},
}


def test_every_run_file_has_a_record() -> None:
    assert set(WRITTEN) == set(records.RECORDS)
    assert len({kind.FILE for kind in records.RECORDS}) == len(records.RECORDS)


@pytest.mark.parametrize("kind", list(WRITTEN), ids=lambda kind: kind.FILE)
def test_a_record_round_trips_with_its_schema_version_first(kind: type[Record],
                                                            tmp_path: Path) -> None:
    records.write(tmp_path, kind.of(WRITTEN[kind]))
    on_disk = json.loads((tmp_path / kind.FILE).read_text())
    assert on_disk == {"schema_version": records.SCHEMA_VERSION, **WRITTEN[kind]}
    assert list(on_disk) == ["schema_version", *WRITTEN[kind]]  # the writer's order kept
    read = records.read(tmp_path, kind)
    assert read.schema_version == records.SCHEMA_VERSION
    assert read.as_json() == WRITTEN[kind]
    assert list(read.as_json()) == list(WRITTEN[kind])


def test_a_record_read_and_written_again_keeps_its_keys_order(tmp_path: Path) -> None:
    # An older run's file, its undeclared key ("tensorflow") among the declared ones.
    (tmp_path / "environment.json").write_text(json.dumps(WRITTEN[Environment]))
    recorded = records.read(tmp_path, Environment)
    records.write(tmp_path, recorded.model_copy(update={"device": "gpu", "resumed": []}))
    on_disk = json.loads((tmp_path / "environment.json").read_text())
    assert list(on_disk) == ["schema_version", *WRITTEN[Environment]]
    assert on_disk == {"schema_version": records.SCHEMA_VERSION, **WRITTEN[Environment],
                       "device": "gpu", "resumed": []}


def test_a_run_written_before_schema_version_still_reads(tmp_path: Path) -> None:
    # As today's (0.1) fit wrote them: no schema_version.
    (tmp_path / "run.json").write_text(
        '{\n  "state": "completed",\n  "updated": "2026-01-01T12:00:00+0000"\n}\n')
    (tmp_path / "metrics.json").write_text(
        '{"test": {"loss": 0.4, "accuracy": 0.8}, "epochs_run": 3, "best_epoch": 2, '
        '"train_seconds": 1.5, "samples_per_second": null, "final_epoch": {}}')
    (tmp_path / "export.json").write_text('{"onnx": {"status": "passed"}}')
    state = records.read(tmp_path, RunState)
    assert (state.schema_version, state.state, state.kind) == (None, "completed", None)
    metrics = records.read(tmp_path, Metrics)
    assert metrics.test == {"loss": 0.4, "accuracy": 0.8}
    assert (metrics.epochs_run, metrics.train_seconds, metrics.samples_per_second) == (3, 1.5,
                                                                                       None)
    assert "schema_version" not in metrics.as_json()
    assert records.read_exports(tmp_path).formats() == {"onnx": {"status": "passed"}}


def test_a_key_of_another_type_is_refused_naming_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"state": "completed", "trained": true}')
    with pytest.raises(RunError, match=r"run\.json: trained holds true/false, not the whole "
                                       "number dltrain writes"):
        records.read(tmp_path, RunState)
    (tmp_path / "metrics.json").write_text('["not", "an", "object"]')
    with pytest.raises(RunError, match=r"metrics\.json: not a JSON object.*It holds a list"):
        records.read(tmp_path, Metrics)


def test_absent_files_read_as_none_and_a_damaged_export_json_as_no_exports(
        tmp_path: Path) -> None:
    assert records.read_if_present(tmp_path, Metrics) is None
    with pytest.raises(RunError, match="missing"):
        records.read(tmp_path, Metrics)
    (tmp_path / "export.json").write_text("[]")  # the next export writes it anew, as before
    assert records.read_exports(tmp_path).formats() == {}


def test_the_json_schema_validates_written_records_and_refuses_a_wrong_type(
        tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = records.json_schema()
    folder = {}
    for kind, data in WRITTEN.items():
        records.write(tmp_path, kind.of(data))
        folder[kind.FILE] = json.loads((tmp_path / kind.FILE).read_text())
    jsonschema.validate(folder, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"metrics.json": {**folder["metrics.json"], "epochs_run": "3"}},
                            schema)
    with pytest.raises(jsonschema.ValidationError):  # export.json's formats are objects
        jsonschema.validate({"export.json": {"onnx": "passed"}}, schema)


def test_schema_run_prints_the_shipped_run_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "schema", "--run")
    assert code == 0
    printed = json.loads(out)
    assert printed == records.json_schema()
    assert json.loads((ROOT / "dltrain.run.schema.json").read_text()) == printed
    assert printed["title"] == "dltrain run folder"
    assert set(printed["properties"]) == {kind.FILE for kind in records.RECORDS}
    code, out, _ = run_cli(capsys, "schema")  # the config's, as before
    assert code == 0 and json.loads(out)["title"] == "dltrain experiment config"


def test_preprocessing_read_back_holds_its_steps_not_its_schema_version(tmp_path: Path) -> None:
    # export refuses a key it does not know as a step it cannot build into the model.
    from dltrain.runs.preparation import read_preparation

    records.write(tmp_path, Preprocessing.of(WRITTEN[Preprocessing]))
    saved, preparation = read_preparation(tmp_path / "preprocessing.json", [2])
    assert saved == WRITTEN[Preprocessing]
    assert preparation.rescale == 1.0 and list(preparation.mean) == [0.5, 0.5]
