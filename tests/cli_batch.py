"""Several dltrain command lines in one Python process, for tests whose runs need the same
devices and environment but not a process each: one start and one import of TensorFlow or
JAX instead of one per run. Each command's exit code, stdout and stderr come back apart, as
subprocess.run's would: its file descriptors 1 and 2 go to files of its own while it runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = (
    "import json, os, sys\n"
    "from dltrain.cli import main\n"
    "commands, codes = json.loads(sys.argv[1]), []\n"
    "for args, out, err in commands:\n"
    "    saved = os.dup(1), os.dup(2)\n"
    "    with open(out, 'w') as out_file, open(err, 'w') as err_file:\n"
    "        os.dup2(out_file.fileno(), 1)\n"
    "        os.dup2(err_file.fileno(), 2)\n"
    "        try:\n"
    "            codes.append(main(args))\n"
    "        except SystemExit as stop:\n"
    "            codes.append(stop.code)\n"
    "        finally:\n"
    "            sys.stdout.flush()\n"
    "            sys.stderr.flush()\n"
    "            os.dup2(saved[0], 1)\n"
    "            os.dup2(saved[1], 2)\n")


def run_several(folder: Path, commands: list[list[object]], env: dict[str, str], timeout: float,
                prelude: str = "", python: str = sys.executable, epilogue: str = "",
                ) -> list[subprocess.CompletedProcess[str]]:
    """Run `commands` (dltrain's arguments each) in turn in one process of `python`; `prelude`
    is Python that runs first (e.g. to set TensorFlow's devices), `epilogue` after the last.
    Their output files go in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = [[list(map(str, args)), str(folder / f"{index}.out"), str(folder / f"{index}.err")]
            for index, args in enumerate(commands)]
    done = subprocess.run([python, "-c", f"{prelude}{SCRIPT}{epilogue}\nprint(json.dumps(codes))",
                           json.dumps(plan)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:] + "".join(
        Path(err).read_text()[-3000:] for _, _, err in plan if Path(err).is_file())
    codes = json.loads(done.stdout.splitlines()[-1])
    return [subprocess.CompletedProcess(args, code, Path(out).read_text(), Path(err).read_text())
            for (args, out, err), code in zip(plan, codes, strict=True)]
