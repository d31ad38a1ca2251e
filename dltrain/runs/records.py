"""The run folder's JSON files as typed records: one pydantic model per file, with `write` as
its one writer and `read` as its one reader, and the JSON Schema other tools read a run with.

A record holds the keys dltrain writes (extra keys are kept: an older or newer dltrain's, or a
backend's versions), each with the type its readers rely on, and `schema_version`. Runs written
before `schema_version` existed have none and still read (None).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from dltrain.errors import RunError
from dltrain.runs import names
from dltrain.runs.files import json_type, read_json, write_json

SCHEMA_VERSION = 1  # raised when a key changes meaning or type; a new optional key needs none

Json = dict[str, Any]


class Record(BaseModel):
    """A JSON object in a run folder, named by FILE."""

    model_config = ConfigDict(extra="allow", strict=True, protected_namespaces=())
    FILE: ClassVar[str]

    schema_version: int | None = Field(None, description=(
        "The layout of this file; absent (null) in runs written before dltrain recorded it."))

    # The keys in the order given or read: a file read and written again keeps its layout
    # (pydantic would put the declared fields first, then the others).
    _order: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def of(cls, data: Json) -> Self:
        """The record holding `data` exactly as given (a writer's dict): written as it is."""
        return cast(Self, cls.model_construct(**data)).keeping_order(data)

    def keeping_order(self, data: Json) -> Self:
        self._order = tuple(data)
        return self

    def as_json(self) -> Json:
        """The keys as written (or read), in that order, schema_version aside."""
        dumped = self.model_dump(exclude_unset=True, exclude={"schema_version"}, warnings=False)
        ordered = {key: dumped[key] for key in self._order if key in dumped}
        return {**ordered, **dumped}


R = TypeVar("R", bound=Record)


class RunState(Record):
    """run.json: where the run is (`eval`, `predict` and `export` trust only completed ones)."""

    FILE = names.STATE_FILE
    state: str | None = Field(None, description="running, completed, interrupted or failed")
    updated: str | None = Field(None, description="When the state was set (ISO 8601)")
    kind: str | None = Field(None, description="cv or tune for the folders that hold runs")
    trained: int | None = Field(None, description="Epochs trained when training was over")
    epochs_done: int | None = Field(None, description="Epochs kept by an interrupted run")
    resumed_from_epoch: int | None = None
    error: str | None = Field(None, description="A failed run's error")
    folds_done: int | None = Field(None, description="An interrupted cross-validation's folds")
    storage: str | None = Field(None, description="A search's study, its password hidden")


class Metrics(Record):
    """metrics.json: the final model's test scores and how the training went."""

    FILE = names.METRICS_FILE
    test: dict[str, Any] | None = Field(None, description="Keras's test metrics by name")
    test_samples: int | None = None
    report: dict[str, Any] | None = Field(None, description="A classifier's per-class report")
    regression: dict[str, Any] | None = Field(
        None, description="A regression's scores, in its targets' units")
    epochs_run: int | None = None
    best_epoch: int | None = None
    resumed_at_epoch: int | None = None
    train_samples: int | None = None
    validation_samples: int | None = None
    train_seconds: float | None = Field(None, description="This command's training time")
    train_seconds_total: float | None = Field(None, description="Every session's epochs")
    samples_per_second: float | None = None
    final_epoch: dict[str, Any] | None = Field(None, description="The last row of history.csv")
    synthetic: bool | None = None
    smoke: dict[str, Any] | None = Field(None, description="A --smoke fit's loss check")
    phase_seconds: dict[str, Any] | None = None
    compilation: dict[str, Any] | None = None
    best_trial: int | None = Field(None, description="A search's best trial")


class Environment(Record):
    """environment.json: the session that started the run, and one entry per resume."""

    FILE = names.ENV_FILE
    dltrain: str | None = None
    python: str | None = None
    backend: str | None = None
    keras: str | None = None
    numpy: str | None = None
    platform: str | None = None
    device: str | None = None
    distribution: dict[str, Any] | None = None
    cpu_count: int | None = None
    command: list[Any] | None = Field(None, description="The command line (sys.argv)")
    started: str | None = Field(None, description="When the run started (ISO 8601)")
    steps_per_execution: int | None = None
    resumed: list[Any] | None = Field(None, description="Each resume's session, in order")


class Manifest(Record):
    """manifest.json: what a run needs to be trusted later."""

    FILE = names.MANIFEST_FILE
    config_sha256: str | None = Field(None, description="SHA-256 of config.yaml's text")
    git: dict[str, Any] | None = Field(None, description="The commit and whether it was dirty")
    seed: int | None = None
    data: dict[str, Any] | None = Field(None, description="Each split's shape, dtype and hash")
    versions: dict[str, Any] | None = None
    synthetic: bool | None = None


class Preprocessing(Record):
    """preprocessing.json: what predict and export do to an input before the model sees it
    (its values are checked by `dltrain.runs.preparation`)."""

    FILE = names.PREPARATION_FILE
    rescale: float | None = None
    mean: Any = Field(None, description="Numbers nested as a sample's shape, or null")
    std: Any = Field(None, description="Numbers nested as a sample's shape, or null")
    flatten_from: list[int] | None = None
    target_names: list[str] | None = None
    target_mean: Any = None
    target_std: Any = None
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    num_classes: int | None = None
    input_shape: list[int] | None = None
    backbone: dict[str, Any] | None = None


class Evaluation(Record):
    """eval.json: `dltrain eval`'s scores of a model on its run's test split."""

    FILE = names.EVAL_FILE
    test: dict[str, Any] | None = None
    test_samples: int | None = None
    report: dict[str, Any] | None = None
    regression: dict[str, Any] | None = None
    model: str | None = Field(None, description="The model file scored")


class Exports(Record):
    """export.json: each format's latest export and its parity check, keyed by format."""

    FILE = names.EXPORT_FILE
    model_config = ConfigDict(extra="allow", strict=True, protected_namespaces=(),
                              json_schema_extra={"additionalProperties": {"type": "object"}})

    def formats(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CrossValidation(Record):
    """cv.json: a cross-validation's plan and its folds' results (the folds are run folders)."""

    FILE = names.CV_FILE
    folds: int | None = None
    stratified: bool | None = None
    smoke: bool | None = None
    refit: bool | None = None
    std: str | None = None
    samples: int | None = None
    per_fold: list[dict[str, Any]] | None = None
    refit_result: dict[str, Any] | None = None
    test: dict[str, Any] | None = Field(None, description="Each metric's mean and std")


class Search(Record):
    """tune.json: a search's trials, its best one and its notes."""

    FILE = names.TUNE_FILE
    parent: str | None = None
    study: str | None = None
    method: str | None = None
    objective: str | None = None
    direction: str | None = None
    planned: int | None = None
    done: int | None = None
    parameters: list[str] | None = None
    trials: list[dict[str, Any]] | None = None
    best: dict[str, Any] | None = None
    notes: list[str] | None = None


class Tracking(Record):
    """tracking.json: the MLflow run this run logs to (`fit --resume` continues it), and what
    a tracking server that went away did not receive."""

    FILE = names.TRACKING_FILE
    uri: str | None = Field(None, description="The tracking URI, its password hidden")
    experiment_id: str | None = None
    run_id: str | None = Field(None, description="The MLflow run's id")
    parent_run_id: str | None = Field(None, description="A fold's, refit's or trial's parent")
    not_logged: list[str] | None = Field(None, description="What the server did not receive")


RECORDS: tuple[type[Record], ...] = (RunState, Metrics, Environment, Manifest, Preprocessing,
                                     Evaluation, Exports, CrossValidation, Search, Tracking)
RECORD_OF: dict[str, type[Record]] = {kind.FILE: kind for kind in RECORDS}


def write(run_dir: Path, record: Record, name: str | None = None) -> None:
    """The record's file in `run_dir` (or `name`: eval-best.json is an Evaluation too), whole
    or not at all, its keys as given and schema_version first."""
    write_json(run_dir / (name or record.FILE),
               {"schema_version": SCHEMA_VERSION, **record.as_json()})


def read(run_dir: Path, kind: type[R]) -> R:
    """The record `kind` from its file in `run_dir`.

    Raises:
        RunError: naming the file when it is missing, not JSON, not an object, or a key holds
            another type than dltrain writes.
    """
    return parse(run_dir / kind.FILE, read_json(run_dir / kind.FILE), kind)


def read_if_present(run_dir: Path, kind: type[R]) -> R | None:
    """The record, or None where the run has not written its file (yet)."""
    return read(run_dir, kind) if (run_dir / kind.FILE).is_file() else None


def read_exports(run_dir: Path) -> Exports:
    """export.json; empty where there is none or it is not an object (the next export writes
    it anew, as it always did)."""
    data = read_json(run_dir / Exports.FILE) if (run_dir / Exports.FILE).is_file() else None
    return parse(run_dir / Exports.FILE, data, Exports) if isinstance(data, dict) else Exports()


def parse(path: Path, data: Any, kind: type[R]) -> R:
    """`data` read from `path` as the record `kind`; RunError as `read` says."""
    if not isinstance(data, dict):
        raise RunError(f"{path}: not a JSON object; the run's files are damaged, so start the "
                       f"run again with dltrain fit. It holds {json_type(data)}, where dltrain "
                       "writes an object.")
    try:
        return kind.model_validate(data).keeping_order(data)
    except ValidationError as exc:
        raise RunError(wrong_type(path, data, exc)) from None


# pydantic's error types, as JSON names what was expected.
EXPECTED = {"int_type": "whole number", "float_type": "number", "string_type": "string",
            "dict_type": "object", "list_type": "list", "bool_type": "true/false"}


def wrong_type(path: Path, data: Json, exc: ValidationError) -> str:
    """The first key that holds another type, in the words of `files.check_fields`."""
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    return (f"{path}: {key} holds {json_type(error['input'])}, not the "
            f"{EXPECTED.get(error['type'], 'value')} dltrain writes; the run's files are "
            "damaged, so start the run again with dltrain fit.")


def json_schema() -> Json:
    """The JSON Schema of a run folder's records: an object keyed by file name, each file's
    schema under $defs, for tools that read runs without dltrain."""
    from pydantic.json_schema import models_json_schema

    refs, schema = models_json_schema([(kind, "validation") for kind in RECORDS],
                                      ref_template="#/$defs/{model}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "dltrain run folder",
            "description": (f"The JSON files of a dltrain run folder, schema_version "
                            f"{SCHEMA_VERSION}; each file's record is under $defs."),
            "type": "object",
            "properties": {kind.FILE: refs[(kind, "validation")] for kind in RECORDS},
            **schema}
