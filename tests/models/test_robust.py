"""Robustness suite (issue 11): train -> backtest -> score on every simulator shape and on SCMS.

Each test runs the benchmark's own code (`bench/shipments_robust.py`: simulate or adapt, ingest,
`prepare_task_frames`, `backtest_task`, `fit_task` as of the cutoff, predict) and asserts the targets on the
shipments booked after the shipped model's cutoff: ETA P80/P95 coverage within 3 points of nominal, ETA P50
MAE <= a plain LightGBM on the raw columns, P(late) Brier <= the best simple baseline and ECE <= 0.03.

Slow (a minute or more per dataset on two cores): run with `pytest -m slow tests/models/test_robust.py`.
The SCMS test needs ../shared/data (skipped without it).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from features.sources.simulator.shapes import SHAPES

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def robust() -> Iterator[ModuleType]:
    """The benchmark module (bench/ is not a package: its folder goes on the path for the import)."""
    sys.path.insert(0, str(BENCH_DIR))
    try:
        yield importlib.import_module("shipments_robust")
    finally:
        sys.path.remove(str(BENCH_DIR))


def _missed(result: object) -> list[str]:
    verdicts: dict[str, bool | None] = result.verdicts  # type: ignore[attr-defined]
    return [target for target, met in verdicts.items() if not met]


def _explain(result: object) -> str:
    figures: dict[tuple[str, str], float] = result.figures  # type: ignore[attr-defined]
    notes: list[str] = result.notes  # type: ignore[attr-defined]
    lines = [f"{system:>24} {metric:<20} {value:.4g}" for (system, metric), value in sorted(figures.items())]
    return "\n".join([*notes, *lines])


@pytest.mark.parametrize("shape", list(SHAPES))
def test_shipped_models_meet_the_targets_after_the_cutoff_on_shape(
    robust: ModuleType, shape: str, tmp_path: Path
) -> None:
    result = robust.run_dataset(robust.simulated_dataset(shape, tmp_path))
    assert not result.notes, _explain(result)
    assert not _missed(result), f"{shape}: missed {_missed(result)}\n{_explain(result)}"


def test_shipped_models_meet_the_targets_after_the_cutoff_on_scms(
    robust: ModuleType, shared_data: Path, tmp_path: Path
) -> None:
    src = shared_data / "scms_shipment_pricing"
    if not src.exists():
        pytest.skip(f"{src} not found")
    result = robust.run_dataset(robust.scms_dataset(tmp_path, src))
    assert not result.notes, _explain(result)
    assert not _missed(result), f"scms: missed {_missed(result)}\n{_explain(result)}"
