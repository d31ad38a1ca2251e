"""The learning-rate range test (dltrain lr-find): the curve's rules on made-up losses, then one
real test on tiny data shared by the module (TensorFlow, in-process, with a schedule), one on
JAX in a process of its own, and the messages of inputs it cannot use."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, run_cli, write_yaml
from dltrain.cli import main
from dltrain.config.load import load_config
from dltrain.errors import DltrainError
from dltrain.train import lr_find

TINY = """\
name: tiny
seed: 1
dataset: {name: fashion_mnist_mini, train_limit: 512, test_limit: 64}
model:
  input_shape: [28, 28, 1]
  layers:
    - Conv2D: {filters: 8, kernel_size: 3, activation: relu}
    - MaxPooling2D: {pool_size: 2}
    - Flatten
    - Dense: {units: 32, activation: relu}
    - Dense: {units: 10, activation: softmax}
optimizer: {name: adam, learning_rate: 0.001, schedule: {name: CosineDecay, decay_steps: 1000}}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 3, batch_size: 32}
"""
STEPS = ["--steps", "120"]


def falling_then_rising(steps: int = 200) -> tuple[list[float], list[float]]:
    """A range test's typical curve: flat, a fall steepest at 1e-3, a floor, then a blow-up."""
    rates = list(np.geomspace(1e-7, 10, steps))
    logs = np.log10(rates)
    losses = 2.3 - 1.5 / (1 + np.exp(-3 * (logs + 3))) + np.where(logs > -1, 10 ** (logs + 1), 0)
    return rates, list(losses)


# --- the rules, on made-up curves ---------------------------------------------------------------

def test_suggests_the_steepest_fall_before_the_minimum() -> None:
    rates, losses = falling_then_rising()
    suggested, lowest = lr_find.suggest(rates, lr_find.smooth(losses), "diverged")
    assert 5e-4 <= suggested <= 2e-3
    assert 3e-2 <= lowest <= 0.2


def test_a_loss_that_diverges_at_once_has_no_suggestion() -> None:
    rates = list(np.geomspace(1e-7, 10, 100))
    losses = [2.3 * 1.2 ** i for i in range(100)]
    with pytest.raises(DltrainError, match=r"did not fall before the test stopped \(diverged "
                       r"at 3e-07\).*Start lower \(e.g. --start 1e-09\)"):
        lr_find.suggest(rates, lr_find.smooth(losses), "diverged at 3e-07")


def test_a_loss_that_never_falls_has_no_suggestion() -> None:
    rates = list(np.geomspace(1e-7, 10, 100))
    losses = [2.3 + 0.01 * math.sin(i) for i in range(100)]
    with pytest.raises(DltrainError, match=r"did not fall between 1e-07 and .*dltrain fit "
                       r"--smoke\), or widen the range"):
        lr_find.suggest(rates, lr_find.smooth(losses), "reached --end 10 without diverging")


def test_smoothing_is_centred_and_keeps_the_non_finite_tail() -> None:
    smoothed = lr_find.smooth([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, math.nan])
    assert smoothed[:6] == pytest.approx([2.0, 2.5, 3.0, 4.0, 4.5, 5.0])
    assert math.isnan(smoothed[6])


def watched(losses: list[float]) -> tuple[int, str | None]:
    """The step at which DivergenceWatch calls the losses diverged, and why (None: never)."""
    watch = lr_find.DivergenceWatch()
    for step, loss in enumerate(losses):
        if (why := watch.diverged(loss)) is not None:
            return step, why
    return len(losses), None


def cosine_similarity_curve() -> list[float]:
    """A cosine_similarity loss (-1 is perfect): noisy near 0, falls to -0.9, stays, climbs back."""
    noise = np.random.default_rng(0).normal(0, 0.15, 200)
    steps = np.arange(200)
    fall = -0.9 / (1 + np.exp(-(steps - 80) / 8))
    climb = np.where(steps > 150, 0.9 * (1 - np.exp(-(steps - 150) / 5)), 0)
    return list(fall + climb + noise)


def test_a_negative_loss_diverges_only_once_it_climbs_back() -> None:
    # 4x the lowest of a loss below 0 is below it: the old rule stopped at step 6.
    step, why = watched(cosine_similarity_curve())
    assert 150 < step < 175
    assert why == "diverged at {rate} (running loss back near its start)"


def test_a_positive_loss_still_diverges_at_4x_its_lowest() -> None:
    losses = [1.0] * 50 + [0.8] * 50 + [0.8 * 1.1 ** i for i in range(50)]  # fell by 20%
    step, why = watched(losses)
    assert 100 < step < 125
    assert why == "diverged at {rate} (running loss over 4x its lowest)"


def test_noise_around_0_is_no_divergence() -> None:
    noise = np.random.default_rng(1).normal(0, 0.15, 200)
    assert watched(list(noise)) == (200, None)


def test_a_negative_loss_falling_gets_a_suggestion_and_a_flat_one_none() -> None:
    rates, losses = falling_then_rising()
    below_0 = [loss - 3.0 for loss in losses]  # from -0.7 to -2.2, then up
    suggested, _ = lr_find.suggest(rates, lr_find.smooth(below_0), "diverged")
    assert 5e-4 <= suggested <= 2e-3
    flat = [-0.5 + 0.001 * math.sin(i) for i in range(100)]  # 0.98x of a negative is above it
    with pytest.raises(DltrainError, match="did not fall between"):
        lr_find.suggest(rates[::2], lr_find.smooth(flat), "reached --end 10 without diverging")


def test_the_step_log_recovers_each_step_s_loss_from_keras_s_means() -> None:
    # 70 samples in batches of 32: 32, 32 and a last batch of 6, each epoch; Keras logs the
    # epoch's running mean, weighted by batch size.
    log = lr_find.StepLog(1e-3, 1e-1, 7, 32, 70)
    losses = [2.0, 1.0, 4.0, 1.5, 1.25, 0.5, 0.75]
    stops = []
    for epoch in range(3):
        total = seen = 0.0
        for index, size in enumerate((32, 32, 6)):
            step = 3 * epoch + index
            if step == len(losses):
                break
            total, seen = total + losses[step] * size, seen + size
            stops.append(log.record(index, {"loss": total / seen}))
    assert log.losses == pytest.approx(losses)
    assert log.rates == pytest.approx(list(np.geomspace(1e-3, 1e-1, 7)))
    assert stops == [False] * 6 + [True]
    assert log.stopped == "reached --end 0.1 without diverging"


@pytest.mark.parametrize("read_back", [None, (6, 0.1 * 100 ** (1 / 6)), (7, 1e-3)])
def test_a_ramp_that_did_not_reach_the_optimizer_is_an_internal_error(
        read_back: tuple[int, float] | None) -> None:
    rates = list(np.geomspace(1e-3, 1e-1, 7))
    with pytest.raises(RuntimeError, match="lr-find's ramp did not reach the optimizer"):
        lr_find.check_ramp_reached(rates, 100 ** (1 / 6), read_back)


def test_the_ramp_replaces_the_schedule_and_runs_one_step_a_call(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path / "tiny.yaml", TINY)).config
    ramp = lr_find.ramped(config, 1e-6, 1.0, 61)
    assert ramp.optimizer.learning_rate == 1e-6
    assert ramp.optimizer.schedule is not None
    assert ramp.optimizer.schedule.name == "ExponentialDecay"
    assert ramp.optimizer.schedule.kwargs["decay_rate"] ** 60 == pytest.approx(1e6)
    assert ramp.steps_per_execution() == 1
    assert config.optimizer.schedule.name == "CosineDecay"  # the config itself is not changed
    assert lr_find.what_changes(config) == [
        "the config's CosineDecay schedule is replaced during the test by its exponential ramp; "
        "the suggestion is the schedule's starting rate."]
    assert lr_find.default_plot(config) == Path("runs/lr_find/tiny/lr_find.png")


def test_a_fine_tuned_backbone_is_tested_in_its_first_phase(tmp_path: Path) -> None:
    text = TINY.replace("    - Conv2D: {filters: 8, kernel_size: 3, activation: relu}\n", (
        "    - Backbone: {name: MobileNetV2, weights: null, input_size: [32, 32], pooling: avg,\n"
        "                 fine_tune: {at_epoch: 1, layers: 5, learning_rate: 0.00001}}\n"))
    text = text.replace("    - MaxPooling2D: {pool_size: 2}\n    - Flatten\n", "")
    config = load_config(write_yaml(tmp_path / "tiny.yaml", text)).config
    assert lr_find.what_changes(config)[1] == (
        "the test trains the first phase (the backbone frozen); fine_tune's own learning_rate is "
        "not tested.")


@pytest.mark.parametrize(("schedule", "key", "note"), [
    ("decay_steps: 1000", "optimizer.learning_rate", "the suggestion is the schedule's starting "
     "rate."),
    ("decay_steps: 1000, initial_learning_rate: 0.01", "optimizer.schedule.initial_learning_rate",
     "the suggestion is the schedule's starting rate."),
    # A warm-up rises from the starting rate to warmup_target, then decays from there.
    ("decay_steps: 1000, warmup_target: 0.01, warmup_steps: 100",
     "optimizer.schedule.warmup_target", "the suggestion is the rate its warm-up rises to "
     "(warmup_target), from which it decays."),
])
def test_the_suggestion_s_key_is_the_one_the_schedule_reads(
        tmp_path: Path, schedule: str, key: str, note: str) -> None:
    text = TINY.replace("decay_steps: 1000}", schedule + "}")
    config = load_config(write_yaml(tmp_path / "tiny.yaml", text)).config
    assert lr_find.suggestion_key(config) == key
    assert lr_find.what_changes(config)[0].endswith("exponential ramp; " + note)


PIECEWISE = TINY.replace("{name: CosineDecay, decay_steps: 1000}",
                         "{name: PiecewiseConstantDecay, boundaries: [100], values: [0.01, 0.001]}")


def test_a_schedule_of_values_alone_gets_a_note_and_no_line_to_use_it(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    # make_learning_rate passes optimizer.learning_rate only to schedules that take an
    # initial_learning_rate: a --set of it would change nothing here.
    config = load_config(write_yaml(tmp_path / "tiny.yaml", PIECEWISE)).config
    assert lr_find.suggestion_key(config) is None
    notes = lr_find.what_changes(config)

    def made_up(loaded: Any, **_: Any) -> lr_find.RangeTest:
        return lr_find.RangeTest([1e-7, 1e-3], [2.3, 1.0], [2.3, 1.0], 1e-4, 1e-3, "reached",
                                 tmp_path / "x.png", 1.0, None, notes, (2, 1e-2))

    monkeypatch.setattr(lr_find, "run_range_test", made_up)
    code, out, err = run_cli(capsys, "lr-find", tmp_path / "tiny.yaml", "--json")
    assert code == 0, err
    message = " ".join(err.split())
    assert ("PiecewiseConstantDecay has no starting rate that one --set could change (its rates "
            "are its values), so no line to use the suggestion is printed: scale "
            "optimizer.schedule.values so that the first is about the suggestion.") in message
    assert "use it:" not in message
    result = json.loads(out)
    assert result["suggested_learning_rate"] == 1e-4
    assert not {"key", "set", "command"} & set(result)


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "1", "--end", "0.1"], "lr-find needs 0 < --start < --end, both finite. "
     "Received: --start 1 --end 0.1. Try --start 1e-07 --end 10."),
    (["--start", "0"], "Received: --start 0 --end 10"),
    (["--end", "inf"], "Received: --start 1e-07 --end inf"),
    # The ratio overflows, or is so near 1 that the ramp's growth rounds to 1.
    (["--start", "1e-300", "--end", "1e300"], "lr-find measures the loss's fall over a decade of "
     "rates: --end must be at least 10x --start (and the ratio a finite number). Received: "
     "--start 1e-300 --end 1e+300, a ratio of inf. Try --start 1e-07 --end 10."),
    (["--start", "1", "--end", "1.0000000000000002"], "a ratio of 1."),
    (["--start", "0.01", "--end", "0.05"], "Received: --start 0.01 --end 0.05, a ratio of 5."),
    (["--steps", "5"], "lr-find needs at least 20 --steps to see the loss's trend. Received: 5. "
     "Try --steps 200."),
])
def test_a_range_it_cannot_run_is_refused_before_keras(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", TINY)
    code, out, err = run_cli(capsys, "lr-find", config, *args)
    assert code == 2
    assert message in " ".join(err.split())
    assert not (tmp_path / "runs").exists()


def test_an_output_that_is_a_folder_is_refused(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", TINY)
    code, _, err = run_cli(capsys, "lr-find", config, "--output", tmp_path)
    assert code == 2
    assert "is a folder; a file goes there" in " ".join(err.split())


def test_the_command_s_defaults_are_the_range_test_s() -> None:
    # cli/lr_find.py writes them out again so that --help imports no Keras: keep them one.
    import inspect

    from dltrain.cli.lr_find import lr_find as command

    defaults = {name: parameter.default
                for name, parameter in inspect.signature(command).parameters.items()}
    assert (defaults["start"], defaults["end"], defaults["steps"]) == (
        lr_find.START, lr_find.END, lr_find.STEPS)


def test_a_mistyped_command_is_pointed_at_lr_find(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "lrfind", "configs/quickstart.yaml")
    assert code == 2
    assert "Did you mean 'lr-find'? Run: dltrain lr-find configs/quickstart.yaml" in err


# --- one real test, shared ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`dltrain lr-find tiny.yaml --json` run in a folder that already holds a run's files;
    the JSON, the output and the folder's files before and after."""
    folder = tmp_path_factory.mktemp("lr_find")
    write_yaml(folder / "tiny.yaml", TINY)
    (folder / "runs" / "earlier").mkdir(parents=True)
    (folder / "runs" / "earlier" / "history.csv").write_text("epoch,loss\n1,0.5\n")
    before = snapshot(folder)
    out, err = io.StringIO(), io.StringIO()
    cwd = Path.cwd()
    trained: dict[str, Any] = {}
    train_rising = lr_find.train_rising

    def keeping(model: Any, *args: Any) -> Any:  # the model and step log, to look inside
        trained.update(model=model, log=train_rising(model, *args))
        return trained["log"]

    try:
        os.chdir(folder)
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            patch.setattr(lr_find, "train_rising", keeping)
            code = main(["lr-find", "tiny.yaml", *STEPS, "--json"])
    finally:
        os.chdir(cwd)
    assert code == 0, err.getvalue()
    return {"json": json.loads(out.getvalue()), "err": " ".join(err.getvalue().split()),
            "folder": folder, "before": before, "after": snapshot(folder), **trained}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in folder.rglob("*") if path.is_file()}


@pytest.mark.slow
def test_json_says_the_rate_the_rule_the_plot_and_the_curve(found: dict[str, Any]) -> None:
    result = found["json"]
    assert result["rule"] == lr_find.RULE
    assert result["plot"] == "runs/lr_find/tiny/lr_find.png"
    assert result["set"] == f"--set optimizer.learning_rate={result['suggested_learning_rate']:g}"
    assert result["command"] == f"dltrain fit tiny.yaml {result['set']}"
    series = result["series"]
    assert len(series) == result["steps"] <= 120
    rates = [point["learning_rate"] for point in series]
    assert rates[0] == pytest.approx(1e-7) and rates == sorted(rates)
    assert rates[0] < result["suggested_learning_rate"] < result["minimum_loss_learning_rate"]
    assert result["stopped"].startswith("diverged at")
    assert "CosineDecay schedule is replaced during the test" in found["err"]
    assert f"use it: {result['command']}" in found["err"]


@pytest.mark.slow
def test_the_optimizer_took_each_step_at_the_recorded_rate(found: dict[str, Any]) -> None:
    # Read from the optimizer, not computed: Keras's learning_rate is the schedule at its step
    # count, so after n steps it is the rate the (n+1)th would take, the ramp's next.
    optimizer, rates = found["model"].optimizer, found["log"].rates
    assert int(optimizer.iterations) == len(rates) == found["json"]["steps"]
    growth = (rates[-1] / rates[0]) ** (1 / (len(rates) - 1))
    assert float(optimizer.learning_rate) == pytest.approx(rates[-1] * growth, rel=1e-4)
    assert found["json"]["optimizer"] == {"steps": len(rates),
                                          "learning_rate": float(optimizer.learning_rate)}


@pytest.mark.slow
def test_writes_the_plot_and_touches_nothing_else(found: dict[str, Any]) -> None:
    from dltrain.runs.listing import list_runs

    plot = found["folder"] / found["json"]["plot"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 < plot.stat().st_size < 500_000
    added = set(found["after"]) - set(found["before"])
    assert added == {"runs/lr_find/tiny/lr_find.png"}
    assert {key: found["after"][key] for key in found["before"]} == found["before"]
    assert list_runs(found["folder"] / "runs") == []  # the plot's folder is no run


def final_loss(folder: Path, rate: float, epochs: int = 3) -> tuple[float, float]:
    """The training loss before and after `epochs` epochs of the config at `rate`."""
    from dltrain.model.build import build_model
    from dltrain.train.fit import prepared_data

    config = load_config(folder / "tiny.yaml", [f"optimizer.learning_rate={rate}"]).config
    model = build_model(config)
    splits = prepared_data(config, model)
    before = float(model.evaluate(splits.x_train, splits.y_train, verbose=0)[0])
    history = model.fit(splits.x_train, splits.y_train, batch_size=32, epochs=epochs, verbose=0)
    return before, float(history.history["loss"][-1])


@pytest.mark.slow
def test_the_suggestion_trains_and_ten_times_the_divergence_does_not(
        found: dict[str, Any]) -> None:
    result = found["json"]
    before, after = final_loss(found["folder"], result["suggested_learning_rate"])
    assert after < 0.6 * before
    diverged = result["series"][-1]["learning_rate"]
    before, after = final_loss(found["folder"], 10 * diverged)
    assert not after < 0.9 * before  # NaN, or no better than the untrained model


@pytest.mark.slow
def test_too_few_samples_for_a_batch(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", TINY.replace("train_limit: 512", "train_limit: 20"))
    code, _, err = run_cli(capsys, "lr-find", config, "--output", tmp_path / "x.png")
    assert code == 2
    assert ("lr-find compares the loss of whole batches of training.batch_size (32), but the "
            "training split holds 20 samples. Lower it (--set training.batch_size=20)"
            in " ".join(err.split()))
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_a_loss_that_never_falls_still_plots_its_curve(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", TINY)
    plot = tmp_path / "curve.png"
    code, _, err = run_cli(capsys, "lr-find", config, "--start", "100", "--end", "1e4",
                           "--steps", "20", "--output", plot)
    assert code == 2
    message = " ".join(err.split())
    assert "error: the loss did not fall" in message
    assert "check that the config trains (dltrain fit --smoke)" in message.lower()
    assert message.endswith(f"The curve is in {plot}.")
    assert plot.stat().st_size > 20_000


@pytest.mark.slow
def test_on_jax(tmp_path: Path) -> None:
    """The same test on JAX, where the rate is read in the jitted step, in its own process."""
    pytest.importorskip("jax")
    write_yaml(tmp_path / "tiny.yaml", TINY)
    env = {**{k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}, "CI": "1",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "dltrain", "lr-find", "tiny.yaml", *STEPS,
                           "--backend", "jax", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert 1e-4 < result["suggested_learning_rate"] < 3e-2
    # The rates came from the jitted step's optimizer: its step count and next rate, read back.
    rates = [point["learning_rate"] for point in result["series"]]
    growth = (lr_find.END / lr_find.START) ** (1 / (120 - 1))
    assert result["optimizer"]["steps"] == len(rates)
    assert result["optimizer"]["learning_rate"] == pytest.approx(rates[-1] * growth, rel=1e-4)
    assert result["command"].endswith(f"--backend jax {result['set']}")
    assert (tmp_path / result["plot"]).stat().st_size > 20_000
