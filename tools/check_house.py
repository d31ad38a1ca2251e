"""Lint: the house rules that keep dltrain's modules small and each fact in one place.

- no module in dltrain/ over 400 lines, no function body over 60 lines (a docstring not counted);
- a run folder's file names (the string values of `dltrain/runs/`'s `*_FILE` constants) are
  spelled only under dltrain/runs/: everyone else asks runs/ for the path or the record;
- a backend's name (tensorflow, jax, torch) is compared only under dltrain/backend/: everyone
  else asks the backend what it can do.

Exit 1 with one line per violation.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dltrain"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
BACKEND_NAMES = {"tensorflow", "jax", "torch"}


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The body's lines, from its first statement after the docstring to its end."""
    body = node.body
    first = body[1] if len(body) > 1 and _is_docstring(body[0]) else body[0]
    return (node.end_lineno or first.lineno) - first.lineno + 1


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def run_file_names(package: Path) -> set[str]:
    """The values of every `NAME_FILE = "..."` constant under the package's runs/."""
    names = set()
    for path in (package / "runs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                    and any(isinstance(t, ast.Name) and t.id.endswith("_FILE")
                            for t in node.targets)):
                names.add(node.value.value)
    return names


def _compared_strings(node: ast.Compare) -> set[str]:
    found = set()
    for side in [node.left, *node.comparators]:
        items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
        found |= {item.value for item in items
                  if isinstance(item, ast.Constant) and isinstance(item.value, str)}
    return found


def check_file(path: Path, package: Path, run_files: set[str]) -> list[str]:
    where = path.relative_to(package.parent)
    inside = path.relative_to(package).parts[0]
    text = path.read_text(encoding="utf-8")
    problems = []
    if (lines := len(text.splitlines())) > MAX_MODULE_LINES:
        problems.append(f"{where}: {lines} lines, over {MAX_MODULE_LINES}: split it by concern.")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if (lines := function_lines(node)) > MAX_FUNCTION_LINES:
                problems.append(f"{where}:{node.lineno}: {node.name}'s body is {lines} lines, "
                                f"over {MAX_FUNCTION_LINES}.")
        elif (inside != "runs" and isinstance(node, ast.Constant)
              and node.value in run_files):
            problems.append(f"{where}:{node.lineno}: spells the run file name {node.value!r}; "
                            "ask dltrain.runs for it.")
        elif inside != "backend" and isinstance(node, ast.Compare):
            if named := sorted(_compared_strings(node) & BACKEND_NAMES):
                problems.append(f"{where}:{node.lineno}: compares a backend name "
                                f"({', '.join(named)}); ask dltrain.backend what it can do.")
    return problems


def check(package: Path = PACKAGE) -> list[str]:
    run_files = run_file_names(package)
    return [problem for path in sorted(package.rglob("*.py"))
            for problem in check_file(path, package, run_files)]


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
