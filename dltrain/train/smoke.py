"""`dltrain smoke`: every config trained briefly on a small subset, for a project's CI."""

from __future__ import annotations

import math
import re
import socket
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dltrain.backend import Device
from dltrain.config.load import load_config
from dltrain.config.yaml_file import check_regular
from dltrain.errors import DltrainError, RunError
from dltrain.report.widths import Fitted, Notes, fitted, unique_names


@dataclass
class SmokeResult:
    config: str
    passed: bool
    seconds: float
    message: str
    synthetic: bool | None = None  # trained on stand-in data; None when no fit completed


def verdict(smoke: dict[str, float]) -> str:
    """What a --smoke fit's training loss did (metrics.json's `smoke`), in words."""
    before, after = smoke["loss_before"], smoke["loss_after"]
    if not math.isfinite(after):
        return f"training loss is not finite ({after})"
    if after >= before:
        return f"training loss did not fall: {before:.4f} -> {after:.4f}"
    return f"training loss {before:.4f} -> {after:.4f}"


def config_files(paths: list[Path]) -> list[Path]:
    """The YAML files named, and those directly inside the folders named."""
    found: list[Path] = []
    for path in paths:
        if path.exists():
            check_regular(path, "a YAML config file or a folder of them")
        if path.is_dir():
            found += sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        elif path.is_file():
            found.append(path)
        else:
            raise RunError(f"{path}: no such config file or folder.")
    if not found:
        raise RunError(f"no .yaml configs in {', '.join(map(str, paths))}.")
    return found


def smoke_one(path: Path, device: Device, log: Console, synthetic: bool = False,
              backend: str | None = None) -> SmokeResult:
    """A --smoke fit in a temporary run folder: passes when the training loss is finite and falls.

    `synthetic` trains on stand-ins for the datasets that would be downloaded (see
    dltrain.data.synthetic), so no config needs the network.
    """
    from dltrain.tracking.store import check_ready
    from dltrain.train.fit import fit

    started = time.perf_counter()
    try:
        loaded = load_config(path, [f"backend={backend}"] if backend else [], smoke=True)
        check_ready(loaded.config)  # an MLflow server that does not answer: before training
        with tempfile.TemporaryDirectory(prefix="dltrain-smoke-") as folder:
            metrics = fit(loaded, run_dir=Path(folder) / "run", device=device, console=log,
                          live=False, smoke=True, synthetic=synthetic,
                          pictures=False).metrics  # the folder goes: draw nothing into it
    except DltrainError as exc:
        return SmokeResult(str(path), False, time.perf_counter() - started, str(exc))
    except Exception as exc:  # noqa: BLE001 - one config's crash must not hide the others'
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return SmokeResult(str(path), False, time.perf_counter() - started,
                           f"internal error: {type(exc).__name__}: {first} (for the traceback: "
                           f"dltrain --debug fit {path} --smoke)")
    smoke = metrics["smoke"]
    message = verdict(smoke)
    stand_in = bool(metrics.get("synthetic"))
    if stand_in:
        message += " (synthetic data)"
    return SmokeResult(str(path), bool(smoke["passed"]), time.perf_counter() - started, message,
                       stand_in)


def smoke_table(results: list[SmokeResult]) -> Fitted:
    """One row per config, named by its shortest unique name (its stem, or its folder too
    where stems repeat); a long message (an error) under the table as a numbered note."""
    table = Table(title="Smoke runs", title_justify="left")
    for column in ("config", "result", "seconds", "data"):
        table.add_column(column, no_wrap=True, justify="right" if column == "seconds" else "left")
    table.add_column("detail")
    notes = Notes()
    names = unique_names([result.config for result in results])
    for name, result in zip(names, results, strict=True):
        verdict = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        data = {True: "[yellow]synthetic[/]", False: "real", None: "-"}[result.synthetic]
        table.add_row(escape(name), verdict, f"{result.seconds:.1f}", data,
                      notes.cell(result.message))
    return fitted(table, notes)


# What XML 1.0 cannot hold, even escaped (control characters, a non-UTF-8 name's surrogates),
# and C1 controls: written as visible escapes, so the report still parses.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    return NOT_XML.sub(lambda char: ascii(char.group())[1:-1], text)


def write_junit(results: list[SmokeResult], path: Path, started: datetime | None = None) -> None:
    """JUnit XML, one testcase per config, as CI systems read it; `started`: when the first
    config began (default: now)."""
    failures = sum(not result.passed for result in results)
    # timestamp (ISO 8601, when the suite started) and hostname: the JUnit schema's
    # attributes that CI tools show beside a suite and read to tell two machines' runs apart.
    started = started or datetime.now().astimezone()
    suite = ET.Element("testsuite", name="dltrain smoke", tests=str(len(results)),
                       failures=str(failures), errors="0",
                       time=f"{sum(result.seconds for result in results):.3f}",
                       timestamp=started.isoformat(timespec="seconds"),
                       hostname=xml_text(socket.gethostname()))
    for name, result in zip(unique_names([r.config for r in results]), results, strict=True):
        case = ET.SubElement(suite, "testcase", classname="dltrain.smoke",
                             name=xml_text(name),
                             file=xml_text(result.config),
                             time=f"{result.seconds:.3f}")
        if result.synthetic is not None:
            ET.SubElement(ET.SubElement(case, "properties"), "property", name="synthetic",
                          value=str(result.synthetic).lower())
        if not result.passed:
            message = xml_text(result.message)
            ET.SubElement(case, "failure", message=message).text = message
        else:
            ET.SubElement(case, "system-out").text = xml_text(result.message)
    from dltrain.runs.layout import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)  # reports/smoke.xml in a fresh CI checkout
    write_atomic(path, ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n")
