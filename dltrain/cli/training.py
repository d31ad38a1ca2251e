"""Commands that start from a config: fit (and resume), show, smoke and schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dltrain.backend.names import BackendName, Device
from dltrain.cli.options import (
    ConfigArg,
    ConfigBackendOpt,
    CoordinatorOpt,
    DeviceOpt,
    JoinTimeoutOpt,
    JsonOpt,
    NumProcessesOpt,
    ProcessIdOpt,
    SetOpt,
)
from dltrain.cli.setup import checked_config, ready_to_train, shows_live_progress
from dltrain.cli.targets import check_target
from dltrain.config.starter import TEMPLATES
from dltrain.console import emit_json, err, for_results, out
from dltrain.errors import ConfigError, DltrainError

if TYPE_CHECKING:  # for annotations only: `dltrain --help` imports none of them
    from dltrain.backend.distribution import Cluster
    from dltrain.config.load import Loaded
    from dltrain.train.fit import FitResult


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
    device: DeviceOpt = "auto",
    backend: Annotated[BackendName | None, typer.Option(
        help="Shortcut for --set backend=NAME (default: $KERAS_BACKEND, else tensorflow). "
             "A resumed run keeps its own.", show_default=False)] = None,
    as_json: JsonOpt = False,
    coordinator: CoordinatorOpt = None,
    num_processes: NumProcessesOpt = None,
    process_id: ProcessIdOpt = None,
    join_timeout: JoinTimeoutOpt = 300,
) -> None:
    """Validate, train, evaluate on the test split and write a run directory.

    Example: dltrain fit configs/cifar_cnn.yaml --set optimizer.learning_rate=0.01 --epochs 2

    Resume: dltrain fit --resume runs/cifar_cnn-20260101-120000 [--epochs 20]

    N machines (JAX, distribution.strategy data_parallel), on machine I of 0..N-1:
    dltrain fit CONFIG --coordinator HOST0:PORT --num-processes N --process-id I
    """
    from dltrain.backend.distribution import cluster
    from dltrain.config.load import shortcut_overrides

    if config is None and resume is None:
        raise DltrainError("fit needs a CONFIG file, or --resume RUN_DIR.")
    joined = cluster(coordinator, num_processes, process_id)
    if joined is not None and resume is not None:
        raise DltrainError("--resume continues a run in one process, on this machine's devices; "
                           "drop --coordinator, --num-processes and --process-id (and unset "
                           "KERAS_DISTRIBUTION_*).")
    overrides = [*(set_ or []), *shortcut_overrides(
        epochs=epochs, batch_size=batch_size, seed=seed,
        backend=None if resume is not None else backend)]
    loaded = (None if config is None else
              _loaded_for_fit(config, overrides, smoke, device, joined, join_timeout,
                              resuming=resume is not None))
    console = for_results(as_json)
    if resume is not None:
        _check_resume_options(backend, run_dir, smoke, loaded is None and bool(set_))
        from dltrain.train import resume as resuming

        result = resuming.resume(resume, epochs=epochs, changed=loaded, device=device,
                                 console=console, live=shows_live_progress(console))
    else:
        assert loaded is not None  # config is given without --resume
        result = _fit_new(loaded, joined, run_dir, device, console, smoke)
    if joined is not None and joined.process_id != 0:
        console.print(f"process {joined.process_id} done; process 0 wrote the run directory.",
                      highlight=False)
        return
    _show_fit(console, result.run_dir, result.metrics, as_json, smoke)


def _loaded_for_fit(config: Path, overrides: list[str], smoke: bool, device: Device,
                    joined: Cluster | None, join_timeout: int, resuming: bool) -> Loaded:
    """The config checked; a new run's backend chosen and, with several processes, the cluster
    joined (before JAX starts). A resumed run keeps its own backend (resume chooses it)."""
    from dltrain.backend.distribution import check_cluster, join
    from dltrain.report.tables import print_notes

    loaded = (checked_config(config, overrides, smoke) if resuming
              else ready_to_train(config, overrides, device, smoke))
    if loaded.config.search is not None:
        print_notes(err, [f"{config} has a search: section: fit trains the config as written; "
                          f"dltrain tune {config} runs the search."])
    if joined is not None:
        check_cluster(joined, loaded.config.backend, loaded.config.distribution.strategy)
        join(joined, join_timeout)  # before JAX starts
    return loaded


def _check_resume_options(backend: BackendName | None, run_dir: Path | None, smoke: bool,
                          set_without_config: bool) -> None:
    if backend is not None:
        raise DltrainError("--resume continues the run on the backend it was trained on "
                           "(its config.yaml says which); drop --backend.")
    if run_dir is not None or smoke or set_without_config:
        raise DltrainError("--resume continues the run in its own folder with its own "
                           "config; drop --run-dir, --smoke and --set.")


def _fit_new(loaded: Loaded, joined: Cluster | None, run_dir: Path | None, device: Device,
             console: Console, smoke: bool) -> FitResult:
    from dltrain.backend.distribution import abandon
    from dltrain.tracking.store import check_ready
    from dltrain.train import fit as runner

    check_ready(loaded.config)  # an MLflow server that does not answer: before any folder
    try:
        return runner.fit(loaded, run_dir=run_dir, device=device, console=console,
                          live=shows_live_progress(console), smoke=smoke)
    except DltrainError:
        raise
    except Exception as exc:  # several processes: a lost one fails the others' collectives
        if joined is None:
            raise
        abandon(joined, exc, run_dir)


def _show_fit(console: Console, run_dir: Path, metrics: dict, as_json: bool, smoke: bool) -> None:
    """The fit's table (or JSON); a failed --smoke check exits 1, as `dltrain smoke` does."""
    from dltrain.report.tables import print_fit

    print_fit(console, run_dir, metrics)
    if as_json:
        emit_json({"run_dir": str(run_dir), **metrics})
    if smoke and not metrics["smoke"]["passed"]:
        from dltrain.train.smoke import verdict

        err.print(f"smoke failed: {verdict(metrics['smoke'])}", style="red", highlight=False)
        raise typer.Exit(1)


def show(
    config: ConfigArg,
    set_: SetOpt = None,
    summary: Annotated[bool, typer.Option(
        help="Build the model and print its summary (imports TensorFlow). --no-summary checks "
             "the config's keys, values, and Keras names and arguments, without TensorFlow.")]
    = True,
    backend: ConfigBackendOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a config and print the model summary, without loading data or training.

    Example: dltrain show configs/mnist_cnn.yaml
    """
    from dltrain.config.catalog import check_loaded, checked_scope
    from dltrain.config.graph import described, graph_lines, is_chain
    from dltrain.config.load import load_config, shortcut_overrides
    from dltrain.report.tables import print_notes

    loaded = load_config(config, [*(set_ or []), *shortcut_overrides(
        backend=backend)])
    checked = check_loaded(loaded)
    print_notes(err, loaded.notes)
    console = for_results(as_json)
    document: dict = {"config": loaded.config.model_dump(mode="json"), "notes": loaded.notes}
    graph = loaded.config.model.nodes
    if not is_chain(graph):
        document["graph"] = described(graph)
        console.print("graph (each layer <- the layers it takes):", highlight=False)
        for line in graph_lines(graph):
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    if summary:
        from dltrain.backend import use_backend
        from dltrain.backend.distribution import place
        from dltrain.model.build import build_model

        use_backend(loaded.config.backend)
        try:
            placement = place(loaded.config.distribution)
            with placement.scope():
                model = build_model(loaded.config)
        except ConfigError as exc:
            raise loaded.locate(exc) from None
        model.summary(print_fn=lambda line, **_: console.print(line, markup=False))
        console.print(f"parameters: {model.count_params():,}")
        console.print(placement.describe(), markup=False, highlight=False, soft_wrap=True)
        document["parameters"] = model.count_params()
        document["distribution"] = placement.to_json()
        document["layers"] = [{"name": layer.name, "class": type(layer).__name__,
                               "output_shape": list(layer.output.shape),
                               "parameters": layer.count_params()} for layer in model.layers]
        console.print(f"[green]ok[/]: {escape(str(config))}")
    else:
        console.print(f"[green]ok[/]: {escape(str(config))} ({escape(checked_scope(checked))})")
    if as_json:
        emit_json(document)


def smoke(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Config files or folders of them (default: configs).", show_default=False)] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write JUnit XML here.",
                                               show_default=False)] = None,
    synthetic: Annotated[bool, typer.Option(
        help="Offline: stand-in data with the shapes, dtypes and classes of each dataset that "
             "would be downloaded (mnist, fashion_mnist, cifar10, cifar100); shipped and local "
             "files are read as usual. Checks that configs run, not how well they learn.")]
    = False,
    backend: Annotated[BackendName | None, typer.Option(
        help="Run every config on this Keras backend (default: each config's own).",
        show_default=False)] = None,
) -> None:
    """Train every config briefly on a small subset; pass when the loss is finite and falls.

    Exits 1 when any config fails. Example: dltrain smoke configs/ --junit smoke.xml
    Without network: dltrain smoke configs/ --synthetic
    """
    from datetime import datetime

    from dltrain.backend import use_backend
    from dltrain.train.smoke import config_files, smoke_one, smoke_table, write_junit

    if junit is not None:
        check_target(junit, "--junit")
    if backend is not None:
        use_backend(backend)
    results, started = [], datetime.now().astimezone()
    for path in config_files(paths or [Path("configs")]):
        err.print(f"smoke: {path}", highlight=False)
        results.append(smoke_one(path, "auto", err, synthetic,
                                 backend))
    out.print(smoke_table(results))
    if junit is not None:
        write_junit(results, junit, started)
    failed = sum(not result.passed for result in results)
    out.print(f"{len(results) - failed} passed, {failed} failed", highlight=False)
    if failed:
        raise typer.Exit(1)


def schema(
    run: Annotated[bool, typer.Option(
        "--run", help="The JSON Schema of a run folder's JSON files (run.json, metrics.json, "
                      "...) instead, for tools that read runs.")] = False,
) -> None:
    """Print the JSON Schema of the config file, with Keras's layer names, for editors.

    Example: dltrain schema > dltrain.schema.json; dltrain schema --run > dltrain.run.schema.json
    """
    if run:
        from dltrain.runs.records import json_schema as run_schema

        emit_json(run_schema())
        return
    from dltrain.config.catalog import with_layer_names
    from dltrain.config.schema import json_schema

    emit_json(with_layer_names(json_schema()))


def init(
    template: Annotated[str, typer.Argument(
        help="What to train: image (Fashion-MNIST subset, the default), tabular (classes from "
             "a CSV), regression (numbers from a CSV). A PATH alone takes image.",
        metavar="TEMPLATE", autocompletion=lambda: list(TEMPLATES))] = "image",
    path: Annotated[str | None, typer.Argument(
        help="Where to write the config (default: TEMPLATE.yaml here).", show_default=False,
        metavar="PATH")] = None,
) -> None:
    """Write a short, commented starter config that trains on data shipped with dltrain.

    Never overwrites a file. Examples: dltrain init tabular my_first.yaml; dltrain init mine.yaml
    """
    from dltrain.config.starter import starter_target, write_starter

    name, target = starter_target(template, path)
    check_target(target, "PATH")
    written = write_starter(name, target)
    for file in written:
        out.print(f"wrote {escape(str(file))}", highlight=False)
    out.print(f"next: dltrain show {escape(str(target))}, then dltrain fit {escape(str(target))}",
              highlight=False)
