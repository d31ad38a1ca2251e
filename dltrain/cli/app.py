"""The `dltrain` command: parse options, call one library function per command, show the result.

Exit codes: 0 success, 2 a problem with the user's input (config, data, arguments),
1 an internal error (traceback with --debug), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dltrain import __version__, commands
from dltrain.console import emit_json, err, for_results, out
from dltrain.errors import ConfigError, DltrainError, Terminated

app = typer.Typer(
    help="Train Keras models from one YAML file.\n\n"
    "Example: dltrain fit configs/quickstart.yaml",
    no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout; "
                                                      "logs go to stderr.")]

ConfigArg = Annotated[Path, typer.Argument(help="The experiment's YAML config file.",
                                           show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a config value: key.path=value (repeatable).", show_default=False)]


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"


DeviceOpt = Annotated[Device, typer.Option(help="Where to run the model.")]


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


@app.command()
def fit(
    config: Annotated[Path | None, typer.Argument(
        help="The experiment's YAML config file (optional with --resume).", show_default=False)]
    = None,
    set_: SetOpt = None,
    epochs: Annotated[int | None, typer.Option(help="Shortcut for --set training.epochs=N.",
                                                  show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Shortcut for --set training.batch_size=N.", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Shortcut for --set seed=N.",
                                                show_default=False)] = None,
    smoke: Annotated[bool, typer.Option(
        help="1 epoch on a small stratified subset (256 train / 128 test): for CI.")] = False,
    run_dir: Annotated[Path | None, typer.Option(
        help="Put this run exactly here (default: runs/<name>-<timestamp>/).",
        show_default=False)] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Continue this interrupted run from its last completed epoch; --epochs may extend "
             "it.", show_default=False)] = None,
    device: DeviceOpt = Device.auto,
    as_json: JsonOpt = False,
) -> None:
    """Validate, train, evaluate on the test split and write a run directory.

    Example: dltrain fit configs/cifar_cnn.yaml --set optimizer.learning_rate=0.01 --epochs 2

    Resume: dltrain fit --resume runs/cifar_cnn-20260101-120000 [--epochs 20]
    """
    from dltrain.config import load_config, shortcut_overrides
    from dltrain.report import print_fit, print_notes

    overrides = [*(set_ or []), *shortcut_overrides(epochs=epochs, batch_size=batch_size,
                                                     seed=seed)]
    if config is None and resume is None:
        raise DltrainError("fit needs a CONFIG file, or --resume RUN_DIR.")
    loaded = load_config(config, overrides, smoke=smoke) if config is not None else None
    if loaded is not None:
        print_notes(err, loaded.notes)
    from dltrain import train

    console = for_results(as_json)
    live = console.is_terminal and not os.environ.get("CI")
    if resume is not None:
        if run_dir is not None or smoke or (loaded is None and set_):
            raise DltrainError("--resume continues the run in its own folder with its own "
                               "config; drop --run-dir, --smoke and --set.")
        result = train.resume(resume, epochs=epochs, changed=loaded, device=device.value,  # type: ignore[arg-type]
                              console=console, live=live)
    else:
        result = train.fit(loaded, run_dir=run_dir, device=device.value, console=console,  # type: ignore[arg-type]
                           live=live, smoke=smoke)
    print_fit(console, result.run_dir, result.metrics)
    if as_json:
        emit_json({"run_dir": str(result.run_dir), **result.metrics})


@app.command("eval")
def evaluate(
    target: Annotated[Path, typer.Argument(help="A run directory, or a .keras file with --config.",
                                           show_default=False)],
    config: Annotated[Path | None, typer.Option(
        help="The config that says which data to use (default: the run's config.yaml).",
        show_default=False)] = None,
    model: Annotated[Path | None, typer.Option(
        help="Evaluate this model file instead of the run's model.keras (e.g. best.keras).",
        show_default=False)] = None,
    device: DeviceOpt = Device.auto,
    as_json: JsonOpt = False,
) -> None:
    """Reload a saved model, score it on the test split and write eval.json.

    Example: dltrain eval runs/quickstart-20260101-120000
    """
    from dltrain.evaluate import evaluate_run
    from dltrain.report import print_eval
    from dltrain.runs import EVAL_FILE, write_json

    if target.suffix == ".keras":
        if config is None:
            raise DltrainError(f"{target}: a bare model file needs --config to say which data "
                               "to evaluate on.")
        run_dir, model = target.parent, target
    elif target.is_dir():
        run_dir = target
    else:
        raise DltrainError(f"{target}: not a run directory or a .keras file.")
    result = evaluate_run(run_dir, model_path=model, config_path=config,
                          device=device.value)  # type: ignore[arg-type]
    write_json(run_dir / EVAL_FILE, result)
    print_eval(for_results(as_json), result)
    if as_json:
        emit_json(result)


@app.command()
def show(
    config: ConfigArg,
    set_: SetOpt = None,
    summary: Annotated[bool, typer.Option(
        help="Build the model and print its summary (imports TensorFlow). --no-summary only "
             "checks the config's keys and values.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Validate a config and print the model summary, without loading data or training.

    Example: dltrain show configs/mnist_cnn.yaml
    """
    from dltrain.config import load_config
    from dltrain.report import print_notes

    loaded = load_config(config, set_ or [])
    print_notes(err, loaded.notes)
    console = for_results(as_json)
    document: dict = {"config": loaded.config.model_dump(mode="json"), "notes": loaded.notes}
    if summary:
        from dltrain.build import build_model

        try:
            model = build_model(loaded.config)
        except ConfigError as exc:
            raise loaded.locate(exc) from None
        model.summary(print_fn=lambda line, **_: console.print(line, markup=False))
        console.print(f"parameters: {model.count_params():,}")
        document["parameters"] = model.count_params()
        document["layers"] = [{"name": layer.name, "class": type(layer).__name__,
                               "output_shape": list(layer.output.shape),
                               "parameters": layer.count_params()} for layer in model.layers]
    console.print(f"[green]ok[/]: {escape(str(config))}")
    if as_json:
        emit_json(document)


commands.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn DltrainError into a red message and exit 2, Ctrl-C into 130."""
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="dltrain", standalone_mode=False)
    except DltrainError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):  # typer itself turns Ctrl-C into exit code 130
        err.print("[red]interrupted[/]")
        return 130
    except Terminated:
        return 143
    except typer.TyperException as exc:  # usage errors: click's own message and exit code 2
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    except Exception:  # noqa: BLE001 - the one place internal errors are reported
        if "--debug" in args:
            raise
        err.print(f"[red]internal error:[/] {escape(repr(sys.exc_info()[1]))}. "
                  "Run again with --debug for the traceback, and please report it.")
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
