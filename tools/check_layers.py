"""Lint: dltrain's imports follow the pipeline, form no cycle, and only the `backend` package
knows TensorFlow.

Every import counts, the lazy ones inside functions too: a stage may import its own stage and
earlier ones, never a later one. The exceptions, SHARED: dltrain.backend.names, the one list of
backends and what each can do, which the config (a stage before backend) validates against, and
dltrain.runs.names, the run folder's file names, which the config loader names when it is given
a run's folder; they may be imported from any stage because they import nothing of dltrain's
(but the root package's constants) and no framework, which is checked too. Exit 1 with one line per violation.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dltrain"
# The pipeline's order; the modules at the package's top level (errors, console) come first,
# then the tasks, which every later stage asks what differs by task (and which see no config).
STAGES = ["dltrain", "tasks", "config", "backend", "data", "model", "runs", "report", "tracking",
          "train", "search", "cli"]
FRAMEWORKS = {"tensorflow", "keras", "jax", "torch"}
FRAMEWORK_SEAM = "dltrain.backend"  # the package and every module in it
# Any stage may import these: they import nothing of ours.
SHARED = {"dltrain.backend.names", "dltrain.runs.names"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def in_seam(module: str) -> bool:
    return module == FRAMEWORK_SEAM or module.startswith(FRAMEWORK_SEAM + ".")


def stage(module: str) -> int:
    if module == "dltrain.__main__":  # `python -m dltrain`: the command line's own entry
        return STAGES.index("cli")
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else 0


def imports(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file; `from a import b` counts a.b if
    a.b is a module of the package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                if _is_module(child, package):
                    found.append((node.lineno, child))
    return found


def _is_module(name: str, package: Path) -> bool:
    relative = Path(*name.split(".")[1:])
    return name.startswith("dltrain.") and ((package / relative).with_suffix(".py").is_file()
                                            or (package / relative / "__init__.py").is_file())


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def check(package: Path = PACKAGE) -> list[str]:
    problems = []
    graph: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        where = path.relative_to(package.parent)
        for line, target in imports(path, package):
            top = target.split(".")[0]
            if top in FRAMEWORKS and not in_seam(module):
                problems.append(f"{where}:{line}: imports {target}; only {FRAMEWORK_SEAM} "
                                "imports a framework (ask it for keras_module()).")
            # The root package holds constants only (version, distribution name): shared too.
            if module in SHARED and (top in FRAMEWORKS or (top == "dltrain" and target != "dltrain")):
                problems.append(f"{where}:{line}: imports {target}; {module} is imported by "
                                "every stage, so it imports nothing of dltrain's and no framework.")
            if top != "dltrain" or target == "dltrain":
                continue
            # A package's __init__ is not a dependency of its own modules.
            if not module.startswith(target + ".") and target != module:
                graph.setdefault(module, set()).add(target)
            if stage(target) > stage(module) and target not in SHARED:
                problems.append(f"{where}:{line}: {module} (stage {STAGES[stage(module)]}) "
                                f"imports {target}, a later stage ({STAGES[stage(target)]}).")
    cycle = find_cycle(graph)
    if cycle:
        problems.append("import cycle: " + " -> ".join(cycle))
    return problems


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
