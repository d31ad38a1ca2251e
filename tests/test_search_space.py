"""The search: section and its space: a space that cannot be valid is exit 2, naming the key,
before any trial runs (and before TensorFlow is imported)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, run_cli
from dltrain.config.load import load_config
from dltrain.config.search_section import SearchConfig
from dltrain.config.yaml_file import read_value
from dltrain.errors import ConfigError
from dltrain.runs import records
from dltrain.runs.records import Metrics, RunState
from dltrain.search.space import applied, check_space, grid_values, override, planned_trials
from dltrain.urls import shown

QUICKSTART = CONFIGS / "quickstart.yaml"


def search_config(tmp_path: Path, search: dict) -> Path:
    raw = yaml.safe_load(QUICKSTART.read_text())
    raw["search"] = search
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def grid(parameters: dict) -> dict:
    return {"method": "grid", "parameters": parameters}


@pytest.mark.parametrize(("search", "expected"), [
    (grid({"training.bach_size": {"choice": [32]}}),
     "search.parameters.training.bach_size: the value 32 does not fit this key: unknown key "
     "'bach_size' at training. Did you mean 'batch_size'?"),
    (grid({"optimizer.learnin_rate": {"choice": [0.01]}}),
     "search.parameters.optimizer.learnin_rate: the value 0.01 does not fit this key"),
    (grid({"model.layers.0.Conv2D.filtrs": {"choice": [8, 16]}}),
     "search.parameters.model.layers.0.Conv2D.filtrs: the value 8 does not fit this key"),
    (grid({"model.layers.9.Dense.units": {"choice": [8]}}),
     "'9' must be an index below 5 into that list"),
    (grid({"training.batch_size": {"choice": [32, "big"]}}),
     "search.parameters.training.batch_size: the value 'big' does not fit this key: "
     "training.batch_size: Input should be a valid integer"),
    (grid({"optimizer.learning_rate": {"choice": [0.01, -1]}}),
     "search.parameters.optimizer.learning_rate: the value -1 does not fit this key: "
     "optimizer.learning_rate: Input should be greater than 0"),
    (grid({"optimizer.learning_rate": {"log_uniform": [0.0001, 0.1]}}),
     "search.parameters.optimizer.learning_rate: method grid needs values it can list, and "
     "log_uniform without step has none"),
    (grid({"model.layers.0.Conv2D.kernel_size": {"choice": [[3, 3]]}}),
     "search.parameters.model.layers.0.Conv2D.kernel_size: choice values must be numbers, "
     "strings, booleans or null"),
    (grid({"search.trials": {"choice": [1]}}), "search.parameters.search.trials: a search "
     "cannot change its own section"),
])
def test_a_space_that_cannot_be_valid_is_exit_2_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], search: dict, expected: str) -> None:
    code, out, err = run_cli(capsys, "tune", search_config(tmp_path, search))
    assert code == 2, out + err
    assert expected in " ".join(err.split()), err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("space", "expected"), [
    ({"uniform": [0.5, 0.1]}, "uniform: low must not be above high. Received: {'uniform': [0.5, 0.1]}"),
    ({"log_uniform": [0, 0.1]}, "log_uniform: both bounds must be above 0 (a log scale). Received: "),
    ({"int": [1, 4], "choice": [1]}, "give exactly one of choice, uniform, log_uniform, int; "
     "received choice, int"),
    ({"choice": [0.1], "step": 2}, "step goes with int or uniform, not choice"),
])
def test_a_bad_range_is_refused_by_the_schema_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], space: dict, expected: str) -> None:
    code, _, err = run_cli(capsys, "tune", search_config(
        tmp_path, grid({"optimizer.learning_rate": space})))
    assert code == 2
    assert "search.parameters.optimizer.learning_rate" in err and expected in " ".join(err.split())


def test_random_and_tpe_need_a_trial_count_and_a_known_objective(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = {"optimizer.learning_rate": {"log_uniform": [0.0001, 0.1]}}
    code, _, err = run_cli(capsys, "tune", search_config(tmp_path, {"method": "tpe",
                                                                    "parameters": space}))
    assert code == 2 and "trials is needed with method tpe" in err
    assert "or dltrain tune --trials 20" in " ".join(err.split())
    # --trials gives the count (it was asked for all the same): the next check speaks.
    code, _, err = run_cli(capsys, "tune", search_config(tmp_path, {
        "method": "tpe", "objective": "val_acc", "parameters": space}), "--trials", "2")
    assert code == 2 and "trials is needed" not in err and "Received: 'val_acc'" in err
    code, _, err = run_cli(capsys, "tune", search_config(tmp_path, {
        "method": "random", "trials": 2, "objective": "val_acc", "parameters": space}))
    assert code == 2 and "search.objective (line 37): must be one of loss, accuracy, val_loss, " \
        "val_accuracy. Received: 'val_acc'. Did you mean 'val_accuracy'?" in " ".join(err.split())


def test_tune_without_a_search_section_says_how_to_add_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "tune", QUICKSTART)
    assert code == 2 and "no search: section, so nothing to tune" in " ".join(err.split())


def test_values_are_applied_as_set_would_and_the_search_section_dropped(tmp_path: Path) -> None:
    path = search_config(tmp_path, grid({"optimizer.learning_rate": {"choice": [1e-5]}}))
    loaded = load_config(path)
    assert check_space(loaded.config, str(path)) == []
    trial = applied(loaded.config.model_dump(mode="json"), str(path), {
        "optimizer.learning_rate": 1e-5, "model.layers.3.Dense.units": 16}).config
    assert trial.optimizer.learning_rate == 1e-5 and trial.search is None
    assert trial.model.layers[3] == {"Dense": {"units": 16, "activation": "relu"}}
    assert read_value(override("k", 1e-5).partition("=")[2], "x") == 1e-5  # a float, not '1e-05'


def test_grid_values_and_planned_trials() -> None:
    search = SearchConfig.model_validate({"method": "grid", "parameters": {
        "a": {"int": [8, 32], "step": 8}, "b": {"uniform": [0.0, 0.5], "step": 0.25},
        "c": {"choice": ["relu", "tanh"]}}})
    assert grid_values(search.parameters["a"]) == [8, 16, 24, 32]
    assert grid_values(search.parameters["b"]) == [0.0, 0.25, 0.5]
    assert planned_trials(search) == 4 * 3 * 2
    assert planned_trials(search.model_copy(update={"trials": 5})) == 5
    assert grid_values(SearchConfig.model_validate({"method": "tpe", "trials": 3, "parameters": {
        "a": {"uniform": [0.0, 1.0]}}}).parameters["a"]) is None


def test_show_accepts_a_search_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = search_config(tmp_path, grid({"optimizer.learning_rate": {"choice": [0.1]}}))
    code, out, err = run_cli(capsys, "show", path, "--no-summary")
    assert (code, err) == (0, "")
    # The search section and the config its trials start from both pass the checks. (The
    # console wraps a long path anywhere, so the text is compared without its white space.)
    said = (f"ok: {path} (keys, values, layer/optimizer/loss/metric names and arguments checked "
            "against Keras")
    assert "".join(out.split()).startswith("".join(said.split()))


def test_each_value_is_checked_not_only_the_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the value 0 does not fit"):
        check_space(load_config(search_config(tmp_path, grid(
            {"training.epochs": {"choice": [2, 0]}}))).config, "x")


def test_tune_takes_a_config_or_a_search_directory(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "tune")
    assert code == 2 and "tune needs a CONFIG file, or --resume SEARCH_DIR" in err
    for extra in ("--smoke", "--backend=jax"):
        code, _, err = run_cli(capsys, "tune", "--resume", tmp_path, extra)
        assert code == 2 and "drop --smoke, --set, --backend and --run-dir" in " ".join(err.split())
    code, _, err = run_cli(capsys, "tune", "--resume", tmp_path)
    assert code == 2 and "not a search directory" in err and "It is" not in err
    run = tmp_path / "cv"  # a cross-validation given to tune --resume: named, with its command
    run.mkdir()
    (run / "config.yaml").write_text((CONFIGS / "quickstart.yaml").read_text())
    (run / "cv.json").write_text("{}")
    code, _, err = run_cli(capsys, "tune", "--resume", run)
    assert code == 2 and " ".join(err.split()).endswith(
        f"tune printed. It is a cross-validation: dltrain cv --resume {run}.")
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "tune" in out


def test_a_storage_password_is_not_written_down(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert shown("postgresql://me:secret@db:5432/studies") == "postgresql://me:***@db:5432/studies"
    assert shown("sqlite:///runs/s/study.db") == "sqlite:///runs/s/study.db"
    (tmp_path / "config.yaml").write_text(QUICKSTART.read_text())
    records.write(tmp_path, RunState(state="interrupted", kind="tune",
                                     storage=shown("mysql://me:pw@db/s")))
    code, _, err = run_cli(capsys, "tune", "--resume", tmp_path)
    assert code == 2 and "its study is in mysql://me:***@db/s; pass --storage again" in err


def test_runs_lists_a_search_as_one_row_of_kind_tune(tmp_path: Path) -> None:
    from dltrain.runs.listing import list_runs

    parent = tmp_path / "runs" / "quickstart-tune-20260101-000000"
    (parent / "trial-0000").mkdir(parents=True)
    (parent / "config.yaml").write_text(QUICKSTART.read_text())
    records.write(parent, RunState(state="completed", kind="tune"))
    records.write(parent, Metrics(test={"accuracy": 0.8, "loss": 0.5}, epochs_run=3, best_trial=0))
    records.write(parent / "trial-0000", RunState(state="completed"))
    rows = list_runs(tmp_path / "runs")
    assert [(row["name"], row["kind"], row["accuracy"]) for row in rows] == [
        (parent.name, "tune", 0.8)]


def test_interrupted_trials_are_told_apart_from_running_and_failed_ones() -> None:
    import os
    import socket
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from dltrain.search.results import interrupted

    def trial(state: str, minutes_ago: float = 0, **attrs: object) -> SimpleNamespace:
        return SimpleNamespace(state=SimpleNamespace(name=state), user_attrs=attrs,
                               datetime_start=datetime.now() - timedelta(minutes=minutes_ago))

    here = socket.gethostname()
    gone = 2**22  # above the largest pid_max Linux allows: no such process
    assert interrupted(trial("FAIL", interrupted=True))
    assert not interrupted(trial("FAIL", error="kernel too large"))
    assert not interrupted(trial("RUNNING", host=here, pid=os.getpid()))  # this process: alive
    assert interrupted(trial("RUNNING", host=here, pid=gone))  # killed
    assert not interrupted(trial("RUNNING", host="elsewhere", pid=gone))  # another machine's
    assert not interrupted(trial("RUNNING"))  # just asked for
    assert interrupted(trial("RUNNING", minutes_ago=10))  # asked for, never started
    assert not interrupted(trial("COMPLETE"))



def test_fit_resume_of_the_search_itself_points_to_tune_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "search"
    parent.mkdir()
    records.write(parent, RunState(state="interrupted", kind="tune"))
    (parent / "config.yaml").write_text((CONFIGS / "quickstart.yaml").read_text())
    before = sorted(path.name for path in parent.iterdir())
    code, out, err = run_cli(capsys, "fit", "--resume", parent)
    assert code == 2, out + err
    assert (f"error: {parent}: a search, not a fit's run; go on with: dltrain tune --resume "
            f"{parent}") in " ".join(err.split())
    assert sorted(path.name for path in parent.iterdir()) == before


def test_fit_resume_of_a_trial_points_to_tune_resume(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "search"
    trial = parent / "trial-0001"
    trial.mkdir(parents=True)
    records.write(parent, RunState(state="interrupted", kind="tune"))
    (trial / "config.yaml").write_text((CONFIGS / "quickstart.yaml").read_text())
    code, out, err = run_cli(capsys, "fit", "--resume", trial)
    assert code == 2, out + err
    assert (f"error: {trial}: a trial of the search {parent}; its study must hear how it ends, "
            f"so go on with: dltrain tune --resume {parent}") in " ".join(err.split())


def test_a_float_range_over_a_whole_number_key_is_refused_before_any_trial(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Its whole bounds passed, then every trial failed on 33.97 and the search exited 0.
    code, _, err = run_cli(capsys, "tune", search_config(tmp_path, {
        "method": "random", "trials": 2,
        "parameters": {"training.batch_size": {"uniform": [16, 64]}}}))
    message = " ".join(err.split())
    assert code == 2 and "search.parameters.training.batch_size: the value 31.27" in message
    assert "Input should be a valid integer" in message
    assert message.endswith("Use int: [low, high] for whole numbers.")


@pytest.mark.parametrize(("storage", "expected"), [
    ("foo://bar", "--storage foo://bar: cannot open it: Can't load plugin: sqlalchemy.dialects:foo. "
     "A URL looks like sqlite:///path/study.db"),
    ("sqlite:////no/such/folder/x.db", "--storage sqlite:////no/such/folder/x.db: cannot open it: "
     "(sqlite3.OperationalError) unable to open database file."),
    # Without psycopg "its driver is not installed ...; pip install "dltrain-keras[postgres]"
    # ...", with it "cannot open it: ... Connection refused".
    ("postgresql://me:secret@127.0.0.1:1/db", "--storage postgresql://me:***@127.0.0.1:1/db: "),
])
def test_a_storage_that_cannot_be_opened_is_refused_before_the_search_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], storage: str, expected: str) -> None:
    # An internal error, and a search folder left "running" for ever.
    space = {"optimizer.learning_rate": {"choice": [0.001, 0.01]}}
    code, _, err = run_cli(capsys, "tune", search_config(tmp_path, grid(space)), "--storage",
                           storage, "--run-dir", tmp_path / "s")
    assert code == 2 and expected in " ".join(err.split())
    assert "secret" not in err and not (tmp_path / "s").exists()


@pytest.mark.parametrize(("trials", "note"), [
    (4, "search.trials 4 caps the grid of 6 combinations."),
    (10, "search.trials 10 is more than the grid's 6 combinations: the search runs 6."),
    (6, None),
    (None, None),
])
def test_a_grid_says_when_its_trial_count_is_not_its_size(
        tmp_path: Path, trials: int | None, note: str | None) -> None:
    """`--trials 10` over a grid of 6 ran 6 trials without a word."""
    search = {**grid({"optimizer.learning_rate": {"choice": [0.001, 0.003, 0.01]},
                      "training.batch_size": {"choice": [32, 64]}}),
              **({} if trials is None else {"trials": trials})}
    path = search_config(tmp_path, search)
    assert check_space(load_config(path).config, str(path)) == ([note] if note else [])


# --- a space of 20,000 choices is checked in seconds, each distinct value once -------------------
# Each key's 20,000 checks cost seconds: one search per path to the key (top level, a section, a
# layer in the list), and where a bad value ends the list, its check is timed too, since every
# value before it passed first.

MANY = 20_000


def checked_in_seconds(tmp_path: Path, key: str, choices: list) -> None:
    """check_space on a grid of `choices` for `key`, in well under a minute."""
    loaded = load_config(search_config(tmp_path, grid({key: {"choice": choices}})))
    started = time.perf_counter()
    try:
        check_space(loaded.config, loaded.source)
    finally:
        seconds = time.perf_counter() - started
        print(f"{key}: {len(choices)} choices checked in {seconds:.1f} s")
        assert seconds < 60  # 5.5 minutes before (2 busy cores): each value copied all the choices


@pytest.mark.slow  # about 10 s: the size is the point (it was quadratic)
def test_twenty_thousand_choices_are_checked_in_seconds(tmp_path: Path) -> None:
    checked_in_seconds(tmp_path, "model.layers.0.Conv2D.filters", list(range(1, MANY + 1)))


@pytest.mark.slow  # about 10 s each, like the test above (the strings: 2 distinct, a second)
@pytest.mark.parametrize(("key", "choices", "bad"), [
    ("optimizer.learning_rate", [1e-3 * (index + 1) for index in range(MANY)] + [-1.0], -1.0),
    ("seed", list(range(MANY)) + [-1], -1),
    ("model.layers.0.Conv2D.activation", ["relu", "tanh"] * (MANY // 2) + ["relux"], "relux"),
])
def test_the_one_bad_value_among_twenty_thousand_is_named_in_seconds(
        tmp_path: Path, key: str, choices: list, bad: object) -> None:
    with pytest.raises(ConfigError, match=f"search.parameters.{key}: the value {bad!r} does not "
                                          "fit this key"):
        checked_in_seconds(tmp_path, key, choices)


def test_a_value_repeated_in_the_choices_is_checked_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dltrain.search import space

    checked: list[object] = []
    original = space.validate
    monkeypatch.setattr(space, "validate", lambda raw, *rest: checked.append(raw) or original(
        raw, *rest))
    loaded = load_config(search_config(tmp_path, grid(
        {"model.layers.0.Conv2D.activation": {"choice": ["relu", "tanh"] * 50},
         "training.batch_size": {"choice": [32, 64, 32, 64]}})))
    check_space(loaded.config, loaded.source)
    assert len(checked) == 4


@pytest.mark.parametrize("text", ["1e-3", "2E5", "3.5e-2"])
def test_a_string_choice_that_looks_like_a_number_stays_a_string(tmp_path: Path, text: str) -> None:
    # dltrain's YAML reads 1e-3 as a number (YAML 1.2), which PyYAML's writer does not know.
    path = tmp_path / "search.yaml"
    path.write_text(QUICKSTART.read_text() + "search:\n  method: grid\n  parameters:\n"
                    f"    name: {{choice: ['{text}', plain]}}\n")
    loaded = load_config(path)
    check_space(loaded.config, loaded.source)
    base = loaded.config.model_dump(mode="json")
    assert applied(base, loaded.source, {"name": text}).config.name == text
