"""Where a fit's time goes: the phase clock, a call run beside the main thread, compile notes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from dltrain.backend import Compilations, compilations, jax_cache_dir


class Background:
    """A call run in a daemon thread (an error or a kill of the process never waits for it);
    `result` waits for it and raises what it raised."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True,
                                       name="dltrain-background")
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.value = call()
        except BaseException as exc:  # handed to the thread that asks for the result
            self.error = exc

    def result(self) -> Any:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


class Clock:
    """Where a fit's time goes, phase by phase, for metrics.json's phase_seconds."""

    started_once = False

    def __init__(self, origin: float | None = None) -> None:
        self.origin = time.perf_counter() if origin is None else origin
        self.mark = 0.0  # the last lap's end, from the origin, rounded as the laps are
        self.seconds: dict[str, float] = {}
        # None before Keras is imported: a process's first fit counts all its compilations.
        self.compiled_before = compilations() or Compilations()

    @classmethod
    def for_command(cls) -> Clock:
        """The first fit of a process counts from the command's start (imports, the backend's
        start-up); a later one (a fold of a cross-validation, a trial of a search), from now."""
        import dltrain

        first, cls.started_once = not cls.started_once, True
        return cls(dltrain.STARTED if first else None)

    def lap(self, phase: str) -> None:
        """The time since the last lap is `phase`'s. Laps are differences of rounded times from
        the origin, so they add up to no more than the total (each rounded alone could)."""
        now = round(time.perf_counter() - self.origin, 3)
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + now - self.mark, 3)
        self.mark = now

    def phases(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self.origin, 3)}

    def compilations(self) -> Compilations | None:
        """The backend's compilations since this clock started, where it reports them (JAX)."""
        now = compilations()
        return None if now is None else now.since(self.compiled_before)


def compile_note(rows: list[dict[str, float]]) -> list[str]:
    """The first epoch's time against the later ones': the difference is mostly compilation."""
    seconds = [row["seconds"] for row in rows if row.get("seconds") is not None]
    if len(seconds) < 2:
        return []
    steady = sorted(seconds[1:])[len(seconds[1:]) // 2]
    return [f"first epoch {seconds[0]:.1f} s, later epochs {steady:.1f} s (median): about "
            f"{max(seconds[0] - steady, 0.0):.1f} s went to compiling the model."]


def compiled_note(compiled: Compilations) -> str:
    """What JAX compiled for this fit (the model, its steps, initializers and small ops)."""
    cache = jax_cache_dir()
    loaded = (f", {compiled.from_cache} loaded from the compilation cache ({cache})"
              if compiled.from_cache else
              " (none from a compilation cache: it is off)" if cache is None else "")
    return f"compilation: {compiled.programs} programs, {compiled.seconds:.1f} s{loaded}."
