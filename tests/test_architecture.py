"""The shape of the code: light imports, no import cycles, no import from a higher layer, small files.

The import graph is read from the source (every ``import`` statement,
function-level ones included), so a lazy import that opens a door upward is
caught as surely as a module-level one.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

# Lower layers never import higher ones (dataset -> defense -> attacks/certification -> results -> reporter).
LAYERS = [
    {"bench.config", "bench.schema", "bench.schema.read", "bench.results", "bench.progress", "bench.registry",
     "bench.defense_catalog",
     "bench.stats", "bench.errors", "bench.runkey", "bench.rundir"},
    {"bench.data", "bench.perf", "bench.nets", "bench.contract", "bench.training", "bench.losses", "bench.lipschitz",
     "bench.perturbation", "bench.information", "bench.representation"},
    {"bench.defenses", "bench.zoo"},
    {"bench.attacks", "bench.certification"},
    {"bench.executors"},  # where attacks and certification run (local, Ray); above both, below the pipeline
    {"bench.pipeline", "bench.runsetup", "bench.runspec", "bench.validate", "bench.contract_checks", "bench.api",
     "bench.modelspec", "bench.planning", "bench.extrastages",
     "bench.sweep"},
    {"bench.report"},
    {"bench.cli", "bench.__main__", "bench"},
]
# Stages of one layer that must not know each other.
FORBIDDEN = [("bench.certification", "bench.attacks"), ("bench.attacks", "bench.certification")]


def module_name(path: Path) -> str:
    parts = path.relative_to(BENCH.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    path = BENCH.parent / dotted.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports_of(path: Path) -> set[str]:
    """Every bench module a file imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "bench"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "bench":
                continue
            submodules = {f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")}
            found |= submodules
            if len(submodules) < len(node.names):  # names defined in the module (or package) itself
                found.add(base)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in BENCH.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules} for name, path in modules.items()}


def layer(module: str) -> int:
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{module} is in no layer of tests/test_architecture.py"
    return best[0]


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_no_module_imports_from_a_higher_layer():
    graph = import_graph()
    upward = [f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer(b) > layer(a)]
    assert upward == []
    across = [f"{a} -> {b}" for a, targets in graph.items() for b in targets
              for lo, hi in FORBIDDEN if a.startswith(lo) and b.startswith(hi)]
    assert across == []


def test_files_and_functions_stay_small():
    too_big = []
    for path in BENCH.rglob("*.py"):
        source = path.read_text()
        if len(source.splitlines()) > 300:
            too_big.append(f"{path.relative_to(BENCH)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                too_big.append(f"{path.relative_to(BENCH)}:{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert too_big == []


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_import_bench_and_the_reporter_load_no_torch():
    result = _python("import sys, bench, bench.report, bench.schema.read, bench.attacks.registry, bench.sweep.page\n"
                     "assert 'torch' not in sys.modules, 'torch was imported'")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["defenses"], ["attacks"], ["run", "--help"], ["report", "--help"],
                                  ["sweep", "--help"]])
def test_light_commands_load_no_torch(argv):
    result = _python("import sys\nfrom bench.cli import cli\n"
                     f"try:\n    cli({argv!r})\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
                     "assert 'torch' not in sys.modules, 'torch was imported'")
    assert result.returncode == 0, result.stderr
