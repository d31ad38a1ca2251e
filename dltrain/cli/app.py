"""The `dltrain` command: parse options, call one library function per command, show the result.

Exit codes: 0 success, 2 a problem with the user's input (config, data, arguments),
1 an internal error (traceback with --debug), 130 interrupted.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from dltrain import __version__
from dltrain.cli import crossval, hints, lr_find, results, training, tuning
from dltrain.console import err, for_terminal, out, shown, survive_any_encoding
from dltrain.errors import DltrainError, Terminated
from dltrain.train.signals import catch_early

app = typer.Typer(
    help="Train Keras models from one YAML file.\n\n"
    "Example: dltrain fit configs/quickstart.yaml",
    no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: it wraps at word boundaries, never cuts a path
)


def _version(value: bool) -> None:
    if value:
        out.print(f"dltrain {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
    = False,
) -> None:
    """Train Keras models from one YAML file."""


def wrap_at_spaces_only() -> None:
    """click's help wraps at hyphens too, which split `--num-processes`, `no-smoke` and a run's
    name (`mnist_cnn-` / `tune-2026...`) across lines: wrap only at spaces. Recent typer keeps
    a private copy of click's wrapper, older typer uses click's own: both are set, whichever is
    here; where they move, tests/test_cli_help.py says so."""
    from importlib import import_module

    for module in ("typer._click._textwrap", "click._textwrap"):
        try:
            wrapper = import_module(module).TextWrapper
        except (ImportError, AttributeError):
            continue
        wrapper.wordsep_re = wrapper.wordsep_simple_re


wrap_at_spaces_only()


def first_sentence(command: Callable[..., Any]) -> str:
    """A command's line in `dltrain --help`: its docstring's first sentence, whole (click would
    cut it to the width with '...')."""
    paragraph = " ".join((command.__doc__ or "").strip().split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0]


# One style for every command: a plain function in the module of its kind, registered here.
for command in (training.fit, results.eval_, training.show, results.runs, results.compare,
                results.predict, results.export, training.smoke, training.schema, training.init,
                tuning.tune):
    app.command(command.__name__.rstrip("_"), short_help=first_sentence(command))(command)
app.command("cv", short_help=first_sentence(crossval.cv))(crossval.cv)  # K-fold (search/cv.py)
app.command("lr-find", short_help=first_sentence(lr_find.lr_find))(lr_find.lr_find)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn DltrainError into a red message and exit 2, Ctrl-C into 130."""
    args = sys.argv[1:] if argv is None else argv
    survive_any_encoding()
    command = typer.main.get_command(app)
    try:
        check_keras_backend(args)
        with catch_early():
            code = command.main(args=args, prog_name="dltrain", standalone_mode=False)
    except DltrainError as exc:
        err.print(f"[red]error:[/] {escape(for_terminal(str(exc)))}", highlight=False,
                  soft_wrap=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        err.print("[red]interrupted[/]")
        return 130
    except Terminated:
        return 143
    except typer.TyperException as exc:  # usage errors: click's own message and exit code 2
        hints.improve(exc, args, command)
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:  # noqa: BLE001 - the one place internal errors are reported
        message = environment_error(exc, args)
        if message is not None:
            err.print(f"[red]error:[/] {escape(for_terminal(message))}", highlight=False,
                      soft_wrap=True)
            return 2
        if "--debug" in args:
            raise
        from dltrain.runs.lock import hidden

        # --debug: a root option, before the command; a URL's password not echoed.
        again = shlex.join(["dltrain", "--debug", *map(hidden, args)])
        err.print(f"[red]internal error:[/] {escape(for_terminal(repr(exc)))}. For the "
                  f"traceback, run again as {escape(again)}, and please report it.")
        return 1
    if code == 130:  # typer turns Ctrl-C into exit code 130 by itself, silently
        err.print("[red]interrupted[/]")
    return code if isinstance(code, int) else 0


def run() -> NoReturn:
    """The `dltrain` script and `python -m dltrain`: main(), and an interrupted command leaves
    without tearing the interpreter down. A SIGTERM that lands while TensorFlow is imported
    leaves it half made, and its teardown at exit crashed (exit -11, 2 in about 70 tries);
    everything a run keeps is on disk by then, and its lock is the kernel's to drop."""
    code = main()
    if code in INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


INTERRUPTED = (130, 143)  # Ctrl-C, SIGTERM


# The commands that run Keras, so read KERAS_BACKEND (as the default of a config's backend:).
RUN_KERAS = {"fit", "eval", "show", "smoke", "predict", "export", "tune", "cv", "lr-find"}


def check_keras_backend(args: list[str]) -> None:
    """A KERAS_BACKEND that names no backend, refused by name: it decides the backend of every
    config without one, and Keras itself would fail on it at import, deep in a run. An empty
    one is unset, as Keras reads it."""
    value = os.environ.get("KERAS_BACKEND")
    command = next((arg for arg in args if not arg.startswith("-")), "")
    if not value or command not in RUN_KERAS or "--help" in args:
        return
    from dltrain.backend.names import BACKENDS  # not the config's pydantic: not for --help

    if value in BACKENDS:
        return
    raise DltrainError(f"the environment variable KERAS_BACKEND must be one of "
                       f"{', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}. Received: {shown(value)}. "
                       "Set it to one of them, or unset it (unset KERAS_BACKEND) to train on "
                       "each config's backend: (default tensorflow).")


# OS errors that are the user's environment, with what to do about each.
CANNOT_WRITE = {errno.ENOSPC: "Free space", errno.EDQUOT: "Free space",
                errno.EROFS: "Make it writable or work in another folder."}
# Where each command can be told to write elsewhere, for the hint on a full disk.
WRITES_TO = {"fit": "--run-dir", "cv": "--run-dir", "tune": "--run-dir", "smoke": "--run-dir",
             "export": "--output"}
CANNOT_USE = {errno.EACCES: "Make it writable or work in another folder.",
              errno.EPERM: "Make it writable or work in another folder.",
              errno.ENAMETOOLONG: "Choose a shorter name.",
              errno.EISDIR: "A file belongs there: move the folder away.",
              errno.ENOTDIR: "A part of that path is a file, not a folder: choose another path.",
              errno.EIO: "The disk reported an error: check it, or work on another one."}


def environment_error(exc: BaseException, args: list[str]) -> str | None:
    """The message for an error the user's disk, permissions or input caused; None for ours.

    A full disk, a read-only folder, a folder where a file belongs or a failing disk can strike
    at any read or write, deep in Keras or matplotlib; memory can run out in any step (a batch
    or a model too large for the GPU);
    a number with more digits than Python converts (sys.get_int_max_str_digits) can come from
    any YAML the user gives.
    """
    if isinstance(exc, OSError) and exc.errno in (CANNOT_WRITE | CANNOT_USE):
        path = exc.filename if exc.filename is not None else "a file"
        verb = "write" if exc.errno in CANNOT_WRITE else "use"
        hint = _full_disk_hint(args) if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (
            CANNOT_WRITE | CANNOT_USE)[exc.errno]
        return f"cannot {verb} {path}: {exc.strerror or os.strerror(exc.errno)}. {hint}"
    if os.strerror(errno.ENOSPC) in str(exc):  # TensorFlow's: a ResourceExhaustedError
        where = str(exc).splitlines()[0][:300]
        return f"cannot write: the disk is full ({where}). {_full_disk_hint(args)}"
    from dltrain.backend import out_of_memory

    detail = out_of_memory(exc)
    if detail is not None:
        return (f"out of memory ({detail}). Lower training.batch_size, train in "
                "training.mixed_precision: bf16 on a GPU, or make the model smaller.")
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        limit = sys.get_int_max_str_digits()
        return (f"{_too_long_number(args, limit)}: a number has more digits than Python reads "
                f"({limit}). Write a shorter number.")
    return None


def _full_disk_hint(args: list[str]) -> str:
    """Free space, or the command's option that writes elsewhere."""
    command = next((arg for arg in args if not arg.startswith("-")), "")
    option = WRITES_TO.get(command)
    return f"Free space or choose another {option}." if option else "Free space."


def _too_long_number(args: list[str], limit: int) -> str:
    """The argument that holds the number, shortened; else the config files given."""
    for arg in args:
        digits = max((len(run) for run in re.findall(r"\d+", arg)), default=0)
        if digits > limit:
            shown = arg[:arg.index("=") + 21] if "=" in arg[:100] else arg[:20]
            return f"{'' if arg.startswith('-') else '--set '}{shown}... ({digits} digits)"
    files = [arg for arg in args if arg.endswith((".yaml", ".yml"))]
    return ", ".join(files) or "the config"


if __name__ == "__main__":
    sys.exit(main())
