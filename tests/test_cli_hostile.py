"""Hostile input at the command line and in its environment: a wrong KERAS_BACKEND, huge values,
files that are no regular files, control characters, unwritable targets, a terminal that cannot
show a name. Each is exit 2 (or a clean 0) with a message naming what to fix, promptly, with no
traceback and nothing written where it was not asked for."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_os_errors import tmpfs

from conftest import CONFIGS, ROOT, run_cli, write_yaml

QUICKSTART = CONFIGS / "quickstart.yaml"
LONG = "x" * 100_000


def one_line(text: str) -> str:
    return " ".join(text.split())


def dltrain(*args: str | bytes, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """`python -m dltrain ARGS` in a subprocess; bytes in and out (a name may not decode)."""
    return subprocess.run([sys.executable, "-m", "dltrain", *args], cwd=cwd, capture_output=True,
                          env={**os.environ, "CI": "true", **(env or {})}, timeout=timeout)


# --- KERAS_BACKEND -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["tensorflw", "numpy", "TensorFlow", " jax", "jax,torch"])
@pytest.mark.parametrize("command", [["show", str(QUICKSTART), "--no-summary"],
                                     ["fit", str(QUICKSTART), "--smoke"],
                                     ["eval", "no-such-run"]])
def test_an_invalid_keras_backend_variable_is_named_with_the_valid_names(
        value: str, command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", value)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *command)
    message = one_line(err)
    print(message)
    assert code == 2, message
    assert "KERAS_BACKEND" in message and repr(value) in message
    assert "tensorflow, jax or torch" in message
    assert "Traceback" not in err and "internal error" not in message
    assert list(tmp_path.iterdir()) == []  # no run begun


def test_a_valid_keras_backend_variable_or_none_is_accepted(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert run_cli(capsys, "show", QUICKSTART, "--no-summary")[0] == 0
    monkeypatch.setenv("KERAS_BACKEND", "")  # Keras reads an empty one as unset
    assert run_cli(capsys, "show", QUICKSTART, "--no-summary")[0] == 0
    monkeypatch.delenv("KERAS_BACKEND")
    assert run_cli(capsys, "show", QUICKSTART, "--no-summary")[0] == 0


# --- huge values in messages -----------------------------------------------------------------------

@pytest.mark.parametrize("override", [
    f"loss={LONG}", f"optimizer={LONG}", f"metrics=[{LONG}]", f"{LONG}=1", f"optimizer.{LONG}=1",
    f"model.layers.0.Conv2D.activation={LONG}", f"name={LONG}", f"training.epochs={LONG}",
    f"model.layers.1={LONG}"])
def test_a_huge_set_value_is_cut_in_the_message(
        override: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "show", QUICKSTART, "--no-summary", "--set", override)
    print(err)
    assert code == 2
    assert err.startswith("error: --set ")
    assert len(err) < 1500
    assert re.search(r"… \(100,0\d\d characters\)", err)  # how long it was, not all of it


@pytest.mark.parametrize("old,new", [
    ("loss: sparse_categorical_crossentropy", f"loss: {LONG}"),
    ("metrics: [accuracy]", f"metrics: [{LONG}]"),
    ("{name: adam,", f"{{name: {LONG},"),
    ("activation: softmax", f"activation: {LONG}"),
    ("seed: 42", f"seed: 42\n? {LONG}\n: 1")])  # an explicit key: YAML's plain keys stop at 1024
def test_a_huge_value_in_the_file_is_cut_in_the_message(
        old: str, new: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_yaml(tmp_path / "long.yaml", QUICKSTART.read_text().replace(old, new))
    code, _, err = run_cli(capsys, "show", config, "--no-summary")
    print(err)
    assert code == 2 and str(config) in one_line(err)
    assert len(err) < 1500 and re.search(r"… \(100,0\d\d characters\)", err)


# --- files that are not regular files --------------------------------------------------------------

def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("make", [fifo, lambda _: Path("/dev/zero"), lambda _: Path("/dev/null")],
                         ids=["fifo", "dev-zero", "dev-null"])
@pytest.mark.parametrize("command", [["show", "{}", "--no-summary"], ["fit", "{}", "--smoke"],
                                     ["smoke", "{}"]])
def test_a_config_that_is_not_a_regular_file_is_refused_without_opening_it(
        make: object, command: list[str], tmp_path: Path) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    (tmp_path / "work").mkdir()
    done = dltrain(*[part.replace("{}", str(path)) for part in command], cwd=tmp_path / "work",
                   timeout=60)  # a blocking open() of a FIFO would hang: the timeout fails it
    err = one_line(done.stderr.decode())
    assert done.returncode == 2, err
    assert f"{path}: not a regular file" in err, err
    assert "Traceback" not in err
    assert list((tmp_path / "work").iterdir()) == []


# --- control characters in YAML -------------------------------------------------------------------

@pytest.mark.parametrize("char,shown", [("\x00", "\\x00"), ("\x07", "\\x07"), ("\x1b", "\\x1b"),
                                        ("\x7f", "\\x7f"), ("\x9b", "\\x9b"), ("\ufffe", "\\ufffe")])
def test_a_control_character_in_the_file_is_named_with_its_line_and_column(
        char: str, shown: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = QUICKSTART.read_text().replace("name: quickstart", f"name: quick{char}start")
    config = write_yaml(tmp_path / "control.yaml", text)
    code, _, err = run_cli(capsys, "show", config, "--no-summary")
    message = one_line(err)
    assert code == 2, message
    assert f"{config} (line 3, column 12): " in message
    assert shown in message and "internal error" not in message


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b"])
def test_a_control_character_in_a_set_value_names_the_option(
        char: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "show", QUICKSTART, "--no-summary", "--set", f"name=a{char}b")
    message = one_line(err)
    assert code == 2, message
    assert message.startswith("error: --set name=a") and "internal error" not in message
    assert repr(char)[1:-1] in message


# --- targets that cannot be written ----------------------------------------------------------------

def a_folder(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


def under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "out"


def a_link(tmp_path: Path) -> Path:
    (tmp_path / "elsewhere").write_text("keep me")
    (tmp_path / "out").symlink_to(tmp_path / "elsewhere")
    return tmp_path / "out"


def a_dangling_link(tmp_path: Path) -> Path:
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    return tmp_path / "out"


TARGETS = [a_folder, under_a_file, a_link, a_dangling_link]
WHY = {"a_folder": "is a folder", "under_a_file": "is a file, not a folder",
       "a_link": "is a link", "a_dangling_link": "is a link"}


def snapshot(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): (os.readlink(path) if path.is_symlink() else
                                            "dir" if path.is_dir() else path.read_text())
            for path in sorted(folder.rglob("*"))}


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """smoke's and export's work fails the test if it starts: the target is checked first."""
    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the work started before the target was checked")

    monkeypatch.setattr("dltrain.train.smoke.smoke_one", started)
    monkeypatch.setattr("dltrain.report.export.export_run", started)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("command", [
    ["smoke", str(QUICKSTART), "--junit", "{}"],
    ["export", "{run}", "--format", "onnx", "--output", "{}"],
    ["init", "image", "{}"]], ids=["smoke-junit", "export-output", "init"])
@pytest.mark.usefixtures("no_work")
def test_an_unwritable_target_is_refused_before_any_work(
        target: object, command: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    path = target(tmp_path)  # type: ignore[operator]
    before = snapshot(tmp_path)
    args = [part.replace("{run}", str(tmp_path / "run")).replace("{}", str(path))
            for part in command]
    code, _, err = run_cli(capsys, *args)
    message = one_line(err)
    assert code == 2, message
    assert str(path) in message and WHY[target.__name__] in message  # type: ignore[attr-defined]
    option = {"smoke": "--junit", "export": "--output", "init": "PATH"}[command[0]]
    assert option in message
    assert "internal error" not in message
    assert snapshot(tmp_path) == before


# --- a terminal that cannot show a name ------------------------------------------------------------

ASCII_TERMINAL = {"PYTHONIOENCODING": "ascii", "LC_ALL": "C", "LANG": "C"}


@pytest.mark.parametrize("name", ["données.yaml", "模型.yaml", os.fsdecode(b"caf\xe9.yaml")])
def test_a_terminal_that_cannot_show_the_name_still_gets_the_answer(
        name: str, tmp_path: Path) -> None:
    config = tmp_path / name
    config.write_bytes(QUICKSTART.read_bytes())
    done = dltrain("show", os.fsencode(config), "--no-summary", cwd=ROOT, env=ASCII_TERMINAL)
    out, err = done.stdout.decode("ascii"), done.stderr.decode("ascii")  # nothing else came out
    assert done.returncode == 0, err
    assert out.startswith("ok: ") and "Traceback" not in err
    missing = dltrain("show", os.fsencode(tmp_path / ("no-" + name)), "--no-summary", cwd=ROOT,
                      env=ASCII_TERMINAL)
    err = missing.stderr.decode("ascii")
    assert missing.returncode == 2, err
    assert "no such config file" in err and "Traceback" not in err


def test_init_says_what_it_wrote_on_a_terminal_that_cannot_show_the_name(tmp_path: Path) -> None:
    done = dltrain("init", "tabular", "exécution.yaml", cwd=tmp_path, env=ASCII_TERMINAL)
    out, err = done.stdout.decode("ascii"), done.stderr.decode("ascii")
    assert done.returncode == 0, err
    assert "wrote ex\\xe9cution.yaml" in out and "Traceback" not in err
    assert (tmp_path / "exécution.yaml").is_file()


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs at tmp_path/ro, unmounted afterwards; skips where none can be mounted."""
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as folder:
        yield folder


@pytest.mark.parametrize("command", [
    ["smoke", str(QUICKSTART), "--junit", "{}/reports/smoke.xml"],
    ["export", "{run}", "--format", "onnx", "--output", "{}/model.onnx"],
    ["init", "image", "{}/image.yaml"]], ids=["smoke-junit", "export-output", "init"])
@pytest.mark.usefixtures("no_work")
def test_a_target_on_a_read_only_disk_is_refused_before_any_work(
        read_only: Path, command: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    args = [part.replace("{run}", str(tmp_path / "run")).replace("{}", str(read_only))
            for part in command]
    code, _, err = run_cli(capsys, *args)
    message = one_line(err)
    assert code == 2, message
    assert f"the folder {read_only} cannot be written" in message
    assert list(read_only.iterdir()) == []


@pytest.mark.parametrize("command", [
    ["init", "image", f"{LONG}.yaml"], ["show", f"{LONG}.yaml"], ["smoke", LONG],
    ["fit", str(QUICKSTART), "--smoke", "--run-dir", LONG], ["eval", LONG], ["tune", LONG]])
def test_a_huge_file_name_is_cut_in_the_message(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *command)
    assert code == 2, err[:300]
    assert len(err) < 1500 and re.search(r"… \(100,0\d\d characters\)", err), err[:300]
    assert "File name too long" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("char", ["\x1b", "\x07", "\x9b"])
def test_a_control_character_in_a_file_name_is_printed_as_an_escape(
        char: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "show", tmp_path / f"a{char}[2Jb.yaml")
    assert code == 2 and f"a{repr(char)[1:-1]}[2Jb.yaml: no such config file" in err, err
    assert char not in err
