"""The console's account of training: one line per epoch, or live bars."""

from __future__ import annotations


def format_logs(logs: dict[str, Any]) -> str:
    return "  ".join(f"{key} {float(value):.4f}" for key, value in logs.items()
                     if key != "learning_rate")


class PlainProgress(Callback):  # type: ignore[misc,valid-type]
    """One line per epoch: for CI logs and pipes, where a live display is noise."""

    def __init__(self, console: Console, epochs: int) -> None:
        super().__init__()
        self.console, self.epochs = console, epochs
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self.started
        self.console.print(f"epoch {epoch + 1}/{self.epochs}  {format_logs(logs or {})}  "
                           f"{seconds:.1f}s", highlight=False, soft_wrap=True)


class RichProgress(Callback):  # type: ignore[misc,valid-type]
    """Live bars for epochs and batches with the running loss and metrics."""

    def __init__(self, console: Console, epochs: int, steps: int, done: int = 0) -> None:
        super().__init__()
        self.epochs, self.steps = epochs, steps
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[logs]}"), console=console)
        self.epoch_task = self.progress.add_task("epochs", total=epochs, completed=done, logs="")
        self.batch_task = self.progress.add_task("batches", total=steps, logs="")

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.progress.start()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.progress.reset(self.batch_task, total=self.steps, logs="")
        self.progress.update(self.epoch_task, description=f"epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.progress.update(self.batch_task, completed=batch + 1, logs=format_logs(logs or {}))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.progress.update(self.epoch_task, advance=1, logs=format_logs(logs or {}))
        self.progress.console.print(f"epoch {epoch + 1}/{self.epochs}  {format_logs(logs or {})}",
                                    highlight=False, soft_wrap=True)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.progress.stop()
