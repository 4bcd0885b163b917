"""Shared fixtures: example rows built from the contract, and the location of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from features.contract.schema import table_spec

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # before LightGBM loads OpenMP

SHARED_DATA = Path(
    os.environ.get("TRANSITCAST_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def example_rows(table: str, n: int = 1, **overrides: list[str | None]) -> pl.DataFrame:
    """`n` raw (text) rows of `table` made from the contract's example values, with columns overridden.

    Key columns get a row suffix so the rows are distinct unless a test overrides them.
    """
    spec = table_spec(table)
    data: dict[str, list[str | None]] = {}
    for c in spec.columns:
        if c.name in overrides:
            data[c.name] = list(overrides[c.name])
        elif c.name in spec.key and c.name.endswith("_id") and len(spec.key) == 1:
            data[c.name] = [c.example if i == 0 else f"{c.example}-{i}" for i in range(n)]
        else:
            data[c.name] = [c.example] * n
    return pl.DataFrame(data, schema=dict.fromkeys(data, pl.String))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA
