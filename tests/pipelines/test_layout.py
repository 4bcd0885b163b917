"""The house rules that hold the layout: import contracts (no cycle, one direction) and no path literals."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("features", "models", "serving", "pipelines")
CATALOG = Path("pipelines/catalog.py")
_OUTPUTS_PATH = re.compile(r"(?<![\w<>{}./-])outputs/")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (documentation may name the default layout)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _bare_outputs_in_paths(tree: ast.AST) -> set[int]:
    """ids of `"outputs"` constants used as a path: `Path("outputs")` or `x / "outputs"`."""
    operands: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Path":
            operands += node.args
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            operands += [node.left, node.right]
    return {id(a) for a in operands if isinstance(a, ast.Constant) and a.value == "outputs"}


def path_literals(source: str) -> list[int]:
    """Lines of string constants (docstrings aside) that spell a path under `outputs`."""
    tree = ast.parse(source)
    skip, bare = _docstrings(tree), _bare_outputs_in_paths(tree)
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and (id(node) in bare or _OUTPUTS_PATH.search(node.value))
    )


@pytest.mark.parametrize(
    ("source", "found"),
    [
        pytest.param('p = Path("outputs/models")', True, id="path-call"),
        pytest.param('p = ROOT / "outputs" / "models"', True, id="join"),
        pytest.param('print(f"saved to outputs/tuning/{x}.json")', True, id="f-string"),
        pytest.param('"""Writes `outputs/models/`."""\nx = 1', False, id="docstring"),
        pytest.param('help = "<outputs>/backtest"', False, id="placeholder"),
        pytest.param('x = settings.outputs_dir / "models"', False, id="derived"),
        pytest.param('name = "demand_outputs/x"', False, id="other-word"),
        pytest.param('p = Path("outputs")', True, id="bare-root"),
        pytest.param('meta = {"outputs": cols}', False, id="dict-key"),
    ],
)
def test_path_literals_finds_outputs_paths_only(source: str, found: bool) -> None:
    assert bool(path_literals(source)) is found


def test_no_outputs_path_literal_outside_the_catalog() -> None:
    """Every artefact path comes from `pipelines.catalog` (bench/ and tests/ set up their own folders)."""
    offenders: dict[Path, list[int]] = {}
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            rel = file.relative_to(ROOT)
            lines = path_literals(file.read_text(encoding="utf-8"))
            if lines and rel != CATALOG:
                offenders[rel] = lines
    assert not offenders, f"outputs paths spelled outside pipelines/catalog.py (file: lines): {offenders}"


def test_import_contracts_hold() -> None:
    """Layers, no cycle at any depth, a pure core, independent CLI groups (`[tool.importlinter]`)."""
    pytest.importorskip("importlinter")
    linter = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "BROKEN" not in run.stdout and "KEPT" in run.stdout


@pytest.mark.slow  # ~20 s: imports Prefect, MLflow, LightGBM; the contracts above cover cycles statically
def test_every_pipelines_module_imports() -> None:
    """Every module of `pipelines` imports (with the acyclic contract above: no cycle to trip on)."""
    names = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "pipelines").rglob("*.py")
        if p.name != "mlflow_model.py"  # MLflow model code: importing it registers a model
    )
    assert len(names) > 20
    for name in names:
        assert importlib.import_module(name).__name__ == name
