"""Ctrl-C and SIGTERM at N instants from a fit's start-up to the end of its first epoch.

Every try must end 130 (SIGINT) or 143 (SIGTERM), never 1, with its run `interrupted` and
resumable, or with no run at all when the signal came before the run directory was written
(issue 26: a Ctrl-C while TensorFlow traced the first epoch's graph was an internal error).

First one uninterrupted fit measures when its first history.csv row appears (the end of epoch 1);
the tries' delays are spread evenly from 0 to that time, SIGINT and SIGTERM taking turns. Each
try is a real `python -m dltrain fit` process. A run's resumability is checked from its files
(run.json, config.yaml, last.keras for its completed epochs, history.csv), and `--resumes K` of
them are resumed for real (`dltrain fit --resume RUN` must complete it).

Usage: python bench/signals.py [--tries 30] [--backend tensorflow|jax] [--resumes 2]
(30 fits: minutes, too slow for the suite; tests/test_train_signals.py runs a few instants.)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dltrain.runs.files import temporary_of  # noqa: E402
from dltrain.runs.lock import LOCK_FILE  # noqa: E402

CONFIG = ROOT / "configs" / "quickstart.yaml"
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
MISSED = "missed"  # a try's phase when its fit ended before the instant came


@dataclass
class Fit:
    """How to start one fit: the config, extra options (the smallest data) and the backend."""

    backend: str = "tensorflow"
    # The smoke subset (4 steps an epoch), 3 epochs: a signal near epoch 1's end still lands in
    # training however much faster than the measured fit a try runs.
    extra: tuple[str, ...] = ("--smoke", "--epochs", "3")
    timeout: float = 300.0

    def command(self, run_dir: Path) -> list[str]:
        return [sys.executable, "-m", "dltrain", "fit", str(CONFIG), "--backend", self.backend,
                "--run-dir", str(run_dir), *self.extra]

    def start(self, run_dir: Path) -> subprocess.Popen[str]:
        # CI: plain progress lines; PYTHONPATH: this checkout's dltrain, whatever is installed.
        env = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)}
        return subprocess.Popen(self.command(run_dir), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


@dataclass
class Try:
    delay: float
    signum: int
    code: int | None = None
    phase: str = ""  # how far the fit had come when the signal was sent
    problem: str | None = None
    output: str = ""


@dataclass
class Timeline:
    """When an uninterrupted fit wrote run.json (training's own handlers are about to take
    over) and its first history.csv row (epoch 1's end), in seconds from its start."""

    run_json: float
    epoch_one: float
    tracing: float  # epoch 1's seconds less epoch 2's: mostly the steps' tracing

    def instant(self, fraction: float) -> tuple[bool, float]:
        """The instant `fraction` of the way to epoch 1's end, as (after run.json?, seconds).
        An instant after run.json is counted from run.json's appearance in the try itself:
        start-up's length varies more from process to process than training's does."""
        at = fraction * self.epoch_one
        return (False, at) if at < self.run_json else (True, at - self.run_json)


def measure(fit: Fit, run_dir: Path) -> Timeline:
    """One uninterrupted fit's timeline; it must end 0."""
    started = time.monotonic()
    process = fit.start(run_dir)
    seen: dict[str, float] = {}
    try:
        while "epoch" not in seen:
            elapsed = time.monotonic() - started
            if "run.json" not in seen and (run_dir / "run.json").is_file():
                seen["run.json"] = elapsed
            if history_rows(run_dir) >= 1:
                seen["epoch"] = elapsed
            if process.poll() is not None or elapsed > fit.timeout:
                process.kill()  # past the timeout it still runs: communicate would wait on it
                raise SystemExit(f"the uninterrupted fit ended {process.returncode} before "
                                 f"epoch 1's row: {process.communicate()}")
            time.sleep(0.005)
        out, err = process.communicate(timeout=fit.timeout)
    finally:
        process.kill()
    if process.returncode != 0:
        raise SystemExit(f"the uninterrupted fit ended {process.returncode}: {out}{err}")
    with (run_dir / "history.csv").open(encoding="utf-8") as handle:
        seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
    return Timeline(seen["run.json"], seen["epoch"], seconds[0] - min(seconds[1:], default=0.0))


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def history_rows(run_dir: Path) -> int:
    try:
        lines = (run_dir / "history.csv").read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    return max(len(lines) - 1, 0)


def phase(run_dir: Path) -> str:
    """How far a fit has come, by the files it has written."""
    if not run_dir.is_dir():
        return "start-up"
    if not (run_dir / "run.json").is_file():
        return "run dir"
    return "epoch 1" if history_rows(run_dir) == 0 else "after epoch 1"


def attempt(fit: Fit, run_dir: Path, timeline: Timeline, fraction: float, signum: int) -> Try:
    """One fit, `signum` sent at `fraction` of its timeline; the outcome checked."""
    after_run_json, delay = timeline.instant(fraction)
    result = Try(fraction * timeline.epoch_one, signum)
    process = fit.start(run_dir)
    if after_run_json:
        wait_for(run_dir / "run.json", process, fit.timeout)
    time.sleep(delay)
    result.phase = phase(run_dir)
    if process.poll() is not None:  # faster than the measured fit: the instant was missed
        out, err = process.communicate()
        result.phase, result.code, result.output = MISSED, process.returncode, out + err
        result.problem = None if process.returncode == 0 else f"ended {result.code} unasked"
        return result
    process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=fit.timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        result.problem = f"still running {fit.timeout:.0f} s after the signal"
    result.code, result.output = process.returncode, out + err
    result.problem = result.problem or judge(result, run_dir, out)
    return result


def judge(result: Try, run_dir: Path, out: str) -> str | None:
    """What is wrong with a try's ending, or None. A signal that comes before Python's own
    handlers exist, or after the command returned, kills the process (returncode -N: the
    shell's 128 + N) with no run, or a completed one."""
    wanted = EXIT_CODES[signal.Signals(result.signum)]
    if result.code == -result.signum and (not run_dir.exists() or completed(run_dir)):
        return None  # before the interpreter's handlers, or after the command returned
    if result.code != wanted:
        return f"exit {result.code}, not {wanted}"
    if not (run_dir / "config.yaml").is_file():
        # Nothing kept: fine, as long as `fit --run-dir` takes the folder again (its lock file
        # and a killed fit's temporary files only), and nothing looks like a run.
        left = [path.name for path in run_dir.iterdir() if path.name != LOCK_FILE
                and temporary_of(path.name) is None] if run_dir.is_dir() else []
        return f"a run directory without config.yaml holds {sorted(left)}" if left else None
    return resumable(run_dir, out)


def completed(run_dir: Path) -> bool:
    state = run_dir / "run.json"
    return state.is_file() and json.loads(state.read_text(encoding="utf-8"))["state"] == "completed"


def resumable(run_dir: Path, out: str) -> str | None:
    """What `fit --resume` would trip on in an interrupted run's files, or None."""
    state = json.loads((run_dir / "run.json").read_text(encoding="utf-8")) \
        if (run_dir / "run.json").is_file() else {}
    if state.get("state") == "completed":
        return None  # the signal came after training: the run is whole
    if state.get("state") != "interrupted":
        return f"run.json says {state.get('state')!r}, not 'interrupted'"
    if f"Resume with: dltrain fit --resume {run_dir}" not in out:
        return "no 'Resume with:' line"
    done, rows = state.get("epochs_done", 0), history_rows(run_dir)
    if done and not (run_dir / "last.keras").is_file():
        return f"epochs_done {done} without last.keras"
    if rows not in (done, done + 1):  # a row written before its checkpoint is dropped on resume
        return f"history.csv has {rows} rows for epochs_done {done}"
    return None


def resume(fit: Fit, run_dir: Path) -> str | None:
    """`dltrain fit --resume RUN` of an interrupted run: it must complete it."""
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "dltrain", "fit", "--resume", str(run_dir)],
                          capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=fit.timeout)
    if done.returncode != 0:
        return f"resume exited {done.returncode}: {(done.stdout + done.stderr)[-2000:]}"
    state = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["state"]
    return None if state == "completed" else f"resumed run is {state!r}"


def fractions(tries: int, start: float) -> list[float]:
    """`tries` instants spread evenly from `start` to 1 (epoch 1's end)."""
    return [start + (1 - start) * index / max(tries - 1, 1) for index in range(tries)]


def run_tries(fit: Fit, folder: Path, tries: int, resumes: int, training_only: bool) -> list[Try]:
    timeline = measure(fit, folder / "uninterrupted")
    start = timeline.run_json / timeline.epoch_one if training_only else 0.0
    print(f"{fit.backend}: run.json after {timeline.run_json:.2f} s, epoch 1's history row after "
          f"{timeline.epoch_one:.2f} s (tracing about {timeline.tracing:.2f} s of it); {tries} "
          f"tries from {start * timeline.epoch_one:.2f} s", flush=True)
    results = []
    for index, fraction in enumerate(fractions(tries, start)):
        signum = (signal.SIGINT, signal.SIGTERM)[index % 2]
        result = attempt(fit, folder / f"try-{index:02d}", timeline, fraction, signum)
        if result.phase == MISSED:  # once more: how fast a fit runs here varies with the load
            shutil.rmtree(folder / f"try-{index:02d}")
            result = attempt(fit, folder / f"try-{index:02d}", timeline, fraction, signum)
        results.append(result)
        print(report(index, result), flush=True)
    # The latest runs with a run directory are resumed for real (those after epoch 1 first).
    kept = [index for index, result in enumerate(results)
            if result.problem is None and (folder / f"try-{index:02d}" / "config.yaml").is_file()]
    for index in kept[::-1][:resumes]:
        problem = resume(fit, folder / f"try-{index:02d}")
        results[index].problem = problem and f"--resume: {problem}"
        print(f"resume of try {index:2d}: {problem or 'completed'}", flush=True)
    return results


def report(index: int, result: Try) -> str:
    name = signal.Signals(result.signum).name
    verdict = ("ok" if result.problem is None else f"FAIL: {result.problem}") \
        if result.phase != MISSED else "missed: the fit ended before the instant, twice"
    return (f"try {index:2d}  {name:7}  at {result.delay:6.2f} s  ({result.phase:13})  "
            f"exit {result.code}  {verdict}")


def summary(results: list[Try]) -> str:
    failed = [result for result in results if result.problem is not None]
    codes = sorted({str(result.code) for result in results})
    phases = {name: sum(result.phase == name for result in results)
              for name in ("start-up", "run dir", "epoch 1", "after epoch 1", MISSED)}
    ok = len(results) - len(failed) - phases[MISSED]
    return (f"{ok}/{len(results)} ok, {len(failed)} failed; exit codes "
            f"{', '.join(codes)}; signals sent in: "
            + ", ".join(f"{name} {count}" for name, count in phases.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=30)
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--resumes", type=int, default=2, help="runs resumed for real")
    parser.add_argument("--extra", default=shlex.join(Fit.extra),
                        help="options added to each fit")
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder")
    parser.add_argument("--training-only", action="store_true",
                        help="every instant between run.json's appearance and epoch 1's end")
    options = parser.parse_args()
    fit = Fit(options.backend, tuple(shlex.split(options.extra)))
    with tempfile.TemporaryDirectory(prefix="dltrain-signals-") as scratch:
        folder = options.keep or Path(scratch)
        results = run_tries(fit, folder, options.tries, options.resumes,
                            options.training_only)
    for index, result in enumerate(results):
        if result.problem is not None:
            print(f"--- try {index}: {result.output[-3000:]}")
    print(summary(results))
    return 1 if any(result.problem is not None for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
