"""The simulator is a data source: production code (features, models, serving) never imports it.

Reference data that both the simulator and the builders need (calendars, customs policy) lives in
`features.reference`. Only the pipelines' entry points that run the simulator as a source (the CLI's
`simulate`/`demo` commands, the ingest flow's demo world) may import it; tests and benchmarks may too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIMULATOR = "features.sources.simulator"
PRODUCTION = ("features", "models", "serving", "pipelines")
# Entry points that run the simulator as a data source (`simulate`, `demo`, the ingest flow's demo world);
# nothing else in pipelines/ (no flow that trains, scores or plans) may import it.
SOURCE_ENTRY_POINTS = ("pipelines/flows/ingest.py", "pipelines/cli/")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _production_files() -> list[Path]:
    return sorted(p for pkg in PRODUCTION for p in (ROOT / pkg).rglob("*.py"))


def test_imported_modules_sees_both_import_forms(tmp_path: Path) -> None:
    code = tmp_path / "m.py"
    code.write_text("from features.sources import simulator\nimport features.sources.simulator.world\n")
    assert {"features.sources.simulator", "features.sources.simulator.world"} <= _imported_modules(code)


@pytest.mark.parametrize("package", PRODUCTION)
def test_production_code_never_imports_the_simulator(package: str) -> None:
    offenders = []
    for path in _production_files():
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(package + "/") or rel.startswith("features/sources/simulator/"):
            continue
        if rel.startswith(SOURCE_ENTRY_POINTS):
            continue
        bad = sorted(m for m in _imported_modules(path) if m == SIMULATOR or m.startswith(SIMULATOR + "."))
        if bad:
            offenders.append(f"{rel}: {', '.join(bad)}")
    assert not offenders, "read reference data from features.reference instead:\n" + "\n".join(offenders)
