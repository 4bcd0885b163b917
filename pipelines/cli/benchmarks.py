"""Stage: command line, benchmarks: `bench [NAME|all]` runs the scripts in the checkout's `bench/` folder.

Reads nothing itself; each script appends JSON lines to `bench/results/NAME.jsonl`. Benchmarks run from a
source checkout only (the folder is not part of the installed package).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.session import fail, step

__all__ = ["BENCH_DIR", "bench"]

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def bench(
    name: Annotated[str, typer.Argument(help="Benchmark name (a script bench/NAME.py), or 'all'.")] = "all",
) -> None:
    """Run benchmarks; each appends JSON lines to bench/results/NAME.jsonl."""
    if not BENCH_DIR.is_dir():
        raise fail(f"{BENCH_DIR} not found: benchmarks run from a source checkout")
    scripts = sorted(p for p in BENCH_DIR.glob("*.py") if not p.name.startswith("_"))
    chosen = scripts if name == "all" else [p for p in scripts if p.stem == name]
    if not chosen:
        raise fail(f"no benchmark {name!r}; available: {', '.join(p.stem for p in scripts)}")
    sys.path.insert(0, str(BENCH_DIR))
    argv = sys.argv
    try:
        for script in chosen:
            sys.argv = [str(script)]  # each script parses its own defaults
            with step(f"benchmark {script.stem}"):
                runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
