"""Several processes training one model (JAX's jax.distributed, CPU collectives over gloo):
the options and their refusals, two processes on 127.0.0.1, and one of them killed mid-run.

Every process is a subprocess with a timeout, and the test stops the ones it started.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_batch import run_several

from conftest import CONFIGS, ROOT, wait_for_history
from dltrain.runs.layout import read_history

pytestmark = pytest.mark.skipif(
    __import__("importlib").util.find_spec("jax") is None,
    reason='JAX is not installed: pip install "dltrain-keras[jax]"')
QUICKSTART = CONFIGS / "quickstart.yaml"
# 540 training, 60 validation and 200 test samples: every batch of 64 splits over 2 processes.
SMALL = ["--set", "dataset.train_limit=600", "--set", "dataset.test_limit=200", "--set",
         "training.tensorboard=false", "--set", "distribution.strategy=data_parallel",
         "--backend", "jax"]
TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key != "KERAS_BACKEND" and not key.startswith("KERAS_DISTRIBUTION_")}
    return {**env, "CI": "1", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu",
            "DLTRAIN_JAX_CACHE": str(tmp_path / "jax-cache"), **extra}


def command(*args: object) -> list[str]:
    return [sys.executable, "-c", "import sys; from dltrain.cli import main; sys.exit(main())",
            *map(str, args)]


def dltrain(tmp_path: Path, *args: object, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=TIMEOUT,
                          env=environment(tmp_path, **env), cwd=tmp_path)


def start(tmp_path: Path, port: int, index: int, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command("fit", QUICKSTART, "--run-dir", tmp_path / "run", *SMALL, *args,
                "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                "--process-id", index, "--join-timeout", "20"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment(tmp_path), cwd=tmp_path)


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    return process.returncode, out + err


def message(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join(done.stderr.split())


def test_a_process_id_out_of_range_exits_2_before_anything_starts(tmp_path: Path) -> None:
    done = dltrain(tmp_path, "fit", QUICKSTART, *SMALL, "--coordinator", "127.0.0.1:1",
                   "--num-processes", "2", "--process-id", "2")
    assert done.returncode == 2, done.stderr
    assert "error: --process-id must be 0 to 1 for --num-processes 2. Received: 2." \
        in message(done)
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_the_options_come_from_keras_s_variables_too(tmp_path: Path) -> None:
    done = dltrain(tmp_path, "fit", QUICKSTART, *SMALL,
                   KERAS_DISTRIBUTION_JOB_ADDRESSES="10.0.0.1:1234,10.0.0.2:1234",
                   KERAS_DISTRIBUTION_NUM_PROCESSES="2", KERAS_DISTRIBUTION_PROCESS_ID="7")
    assert done.returncode == 2
    assert "--process-id must be 0 to 1 for --num-processes 2. Received: 7." in message(done)
    done = dltrain(tmp_path, "fit", QUICKSTART, *SMALL, KERAS_DISTRIBUTION_NUM_PROCESSES="2")
    assert done.returncode == 2
    assert ("several processes need --coordinator, --num-processes and --process-id together "
            "(or KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES and _PROCESS_ID). Missing: "
            "--coordinator, --process-id.") in message(done)


def test_several_processes_need_jax_and_data_parallel(tmp_path: Path) -> None:
    cluster = ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "1"]
    done = dltrain(tmp_path, "fit", QUICKSTART, *cluster, "--backend", "tensorflow")
    assert done.returncode == 2
    assert ("several processes (--num-processes) run on the jax backend only (jax.distributed); "
            "TensorFlow's MultiWorkerMirroredStrategy is broken under Keras 3 (keras#20585). "
            "Received: backend tensorflow. Use --backend jax.") in message(done)
    done = dltrain(tmp_path, "fit", QUICKSTART, *cluster, "--backend", "jax")
    assert done.returncode == 2
    assert "only with distribution.strategy: data_parallel. Received: none." in message(done)


@pytest.mark.slow  # processes that start JAX and wait out a timeout
def test_a_coordinator_that_does_not_answer_exits_2_in_bounded_time(tmp_path: Path) -> None:
    started = time.monotonic()
    port = free_port()  # nothing listens there
    done = dltrain(tmp_path, "fit", QUICKSTART, *SMALL, "--coordinator", f"127.0.0.1:{port}",
                   "--num-processes", "2", "--process-id", "1", "--join-timeout", "3")
    assert done.returncode == 2, done.stderr[-2000:]
    assert (f"error: --coordinator 127.0.0.1:{port}: process 0 did not answer within 3 s. Start "
            "process 0 there first (or check the address, port and firewall), or raise "
            "--join-timeout.") in message(done)
    assert time.monotonic() - started < 60
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # processes that start JAX and wait out a timeout
def test_process_0_whose_peers_never_come_exits_2_in_bounded_time(tmp_path: Path) -> None:
    # Past its own check, JAX would abort (SIGABRT, a stack trace) at its own deadline.
    started = time.monotonic()
    port = free_port()
    done = dltrain(tmp_path, "fit", QUICKSTART, *SMALL, "--coordinator", f"127.0.0.1:{port}",
                   "--num-processes", "2", "--process-id", "0", "--join-timeout", "3")
    assert done.returncode == 2, done.stderr[-2000:]
    assert message(done) == (
        f"error: process 0 of 2: the 2 processes did not all join at 127.0.0.1:{port} within "
        "3 s. Start every process (--process-id 0 to 1) with the same --coordinator and "
        "--num-processes, or raise --join-timeout.")
    assert time.monotonic() - started < 60
    assert sorted(path.name for path in tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One JAX compilation cache for the module's fits: theirs are the same programs, and a
    fit's first epoch takes seconds less with them compiled."""
    return tmp_path_factory.mktemp("jax-cache")


def share_cache(folder: Path, compiled: Path) -> Path:
    """`folder`, its jax-cache (environment's DLTRAIN_JAX_CACHE) a link to `compiled`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jax-cache").symlink_to(compiled, target_is_directory=True)
    return folder


@pytest.mark.slow
def test_two_processes_train_one_run_that_evaluates(tmp_path: Path, compiled: Path) -> None:
    share_cache(tmp_path, compiled)
    port = free_port()
    processes = [start(tmp_path, port, index, "--epochs", "2") for index in (0, 1)]
    (code0, out0), (code1, out1) = (finish(process) for process in processes)
    assert code0 == 0, out0[-3000:]
    assert code1 == 0, out1[-3000:]
    assert "process 1 done; process 0 wrote the run directory." in out1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["jax-cache", "run"]
    run = tmp_path / "run"
    recorded = json.loads((run / "environment.json").read_text())["distribution"]
    assert (recorded["strategy"], recorded["processes"], len(recorded["devices"])) \
        == ("data_parallel", 2, 2)
    assert [row["epoch"] for row in read_history(run / "history.csv")] == [1, 2]
    done = dltrain(tmp_path, "eval", run, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    # The same model file, the same 200 test images, the same one-device program on the same
    # CPU (process 0 scores alone, off the mesh): bit for bit the same outputs, so exactly as
    # many images right, not about as many. One image is 1/200 of the accuracy.
    scored = [json.loads(done.stdout), json.loads((run / "metrics.json").read_text())]
    right = [round(result["test"]["accuracy"] * 200) for result in scored]
    assert right[0] == right[1], right


@dataclasses.dataclass(frozen=True)
class Killed:
    """Two processes trained until one was killed: the other's exit code, its output
    (whitespace joined) and the seconds it took to exit; the port; the run, its epochs and
    its state before the resume."""

    code: int
    text: str
    seconds: float
    port: int
    run: Path
    kept: int
    state: str


def kill_one(tmp_path: Path, epochs: int, rows: int, victim: int) -> Killed:
    """Two processes train; once process 0's history has `rows` rows, `victim` is killed. The
    other must exit 2 within 90 s: its next gradient exchange fails at once, and JAX's
    heartbeat (--join-timeout 20) bounds the rest, with room for a loaded machine."""
    port = free_port()
    processes = [start(tmp_path, port, index, "--epochs", epochs) for index in (0, 1)]
    try:
        wait_for_history(processes[0], tmp_path / "run" / "history.csv", rows, TIMEOUT)
        processes[victim].kill()
        stopped = time.monotonic()
        code, output = finish(processes[1 - victim])
    finally:
        for process in processes:
            process.kill()
    run = tmp_path / "run"
    return Killed(code, " ".join(output.split()), time.monotonic() - stopped, port, run,
                  len(read_history(run / "history.csv")),
                  json.loads((run / "run.json").read_text())["state"])


Resumed = dict[int, tuple[Killed, subprocess.CompletedProcess[str]]]


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory, compiled: Path) -> Resumed:
    """By the victim: process 1 killed in a 5-epoch run after 2 epochs, process 0 in a
    3-epoch run after 1 (each killed with epochs to spare, so the other cannot finish first);
    and the resume of its run on one machine (2 CPU devices). Both resumes run in one process
    (cli_batch): one start, not two."""
    folder = tmp_path_factory.mktemp("killed")
    runs = {1: kill_one(share_cache(folder / "process-1", compiled), 5, 2, 1),
            0: kill_one(share_cache(folder / "process-0", compiled), 3, 1, 0)}
    resumed = run_several(folder / "resume", [["fit", "--resume", runs[victim].run]
                                              for victim in runs],
                          environment(share_cache(folder / "resume", compiled),
                                      JAX_NUM_CPU_DEVICES="2"), 2 * TIMEOUT)
    return {victim: (runs[victim], done) for victim, done in zip(runs, resumed, strict=True)}


@pytest.mark.slow
def test_a_killed_process_stops_the_other_and_the_run_resumes(killed: Resumed) -> None:
    lost, done = killed[1]
    assert lost.seconds < 90
    assert lost.code == 2, lost.text[-3000:]
    assert "error: process 0 of 2: training stopped because another process stopped or " \
           "cannot be reached" in lost.text
    assert f"{lost.run} keeps the completed epochs: finish the run on one machine with dltrain " \
           "fit --resume RUN_DIR" in lost.text
    assert lost.kept >= 2
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert [row["epoch"] for row in read_history(lost.run / "history.csv")] == list(range(1, 6))
    assert json.loads((lost.run / "run.json").read_text())["state"] == "completed"


@pytest.mark.slow
def test_a_lost_process_0_stops_the_other_with_exit_2_naming_the_coordinator(
        killed: Resumed) -> None:
    # JAX's coordination service lives in process 0: once it is gone, JAX's client in process
    # 1 ended it with SIGABRT and a C++ stack trace (exit 134), unless the failed gradient
    # exchange got to its own exit first.
    lost, done = killed[0]
    assert lost.seconds < 90
    assert lost.code == 2, lost.text[-3000:]
    assert (f"error: process 1 of 2: training stopped because process 0, the coordinator at "
            f"127.0.0.1:{lost.port}, stopped or cannot be reached (") in lost.text
    assert lost.text.endswith("process 0's run directory keeps the completed epochs: finish the "
                              "run on one machine with dltrain fit --resume RUN_DIR, or start "
                              "all 2 processes again with a new --run-dir.")
    # Killed, process 0 could not mark its run: it still says running, and its lock went with
    # the process, so the run resumes.
    assert lost.state == "running"
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert [row["epoch"] for row in read_history(lost.run / "history.csv")] == [1, 2, 3]


JOIN_THEN_WAIT = (
    "import sys, time\n"
    "from dltrain.backend.distribution import Cluster, join\n"
    "join(Cluster(sys.argv[1], 2, int(sys.argv[2])), 20)\n"
    "print('joined', flush=True)\n"
    "time.sleep(60)\n")


@pytest.mark.slow  # processes that import Keras and JAX: seconds
def test_jax_s_abort_on_a_lost_coordinator_becomes_exit_2(tmp_path: Path) -> None:
    # Without training there is no gradient exchange to fail: JAX's own client notices that
    # the coordination service is gone and aborts (its C++ trace first), then dltrain's
    # SIGABRT handler has the last word.
    address = f"127.0.0.1:{free_port()}"
    processes = [subprocess.Popen([sys.executable, "-c", JOIN_THEN_WAIT, address, str(index)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=environment(tmp_path), cwd=tmp_path) for index in (0, 1)]
    try:
        assert processes[1].stdout is not None
        assert processes[1].stdout.readline() == "joined\n", processes[1].communicate()
        processes[0].kill()
        code, output = finish(processes[1])
    finally:
        for process in processes:
            process.kill()
    assert code == 2, output[-3000:]
    assert " ".join(output.split()).endswith(
        f"error: process 1 of 2: training stopped because process 0, the coordinator at "
        f"{address}, stopped or cannot be reached (JAX's distributed client stopped this "
        "process). process 0's run directory keeps the completed epochs: finish the run on one "
        "machine with dltrain fit --resume RUN_DIR, or start all 2 processes again with a new "
        "--run-dir.")
