"""The micro-batcher: concurrent requests share one Predictor call; a bad request fails alone."""

from __future__ import annotations

import asyncio

import polars as pl
import pytest

from serving.http.batching import MicroBatcher


class _FakePredictor:
    """Doubles `x`; refuses frames holding a negative `x` (as the Predictor refuses invalid rows)."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.ids: list[list[str]] = []

    def predict_shipments(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.calls.append(frame.height)
        self.ids.append(frame["shipment_id"].to_list())
        if (frame["x"] < 0).any():
            raise ValueError("x: must be >= 0")
        return frame.select("shipment_id", (pl.col("x") * 2).alias("y"))


def _run(batcher: MicroBatcher, fake: _FakePredictor, frames: list[pl.DataFrame]) -> list[object]:
    async def run() -> list[object]:
        results = await asyncio.gather(
            *(batcher.score(fake, f) for f in frames),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        await batcher.close()
        return list(results)

    return asyncio.run(run())


def test_micro_batcher_groups_requests_and_isolates_a_bad_one() -> None:
    fake = _FakePredictor()
    frames = [pl.DataFrame({"shipment_id": [f"s{i}"], "x": [float(i)]}) for i in range(5)]
    frames.append(pl.DataFrame({"shipment_id": ["bad"], "x": [-1.0]}))
    results = _run(MicroBatcher(window_s=0.05, max_rows=100), fake, frames)
    assert fake.calls[0] == 6  # one call for the six concurrent requests ...
    good = [r for r in results if isinstance(r, pl.DataFrame)]
    assert [(r["shipment_id"][0], r["y"][0]) for r in good] == [(f"s{i}", 2.0 * i) for i in range(5)]
    bad = results[-1]
    assert isinstance(bad, ValueError) and "x: must be >= 0" in str(bad)  # ... and only the bad one fails


def test_micro_batcher_prepares_the_batch_and_lets_requests_share_ids() -> None:
    fake = _FakePredictor()
    seen: list[int] = []

    def prepare(frame: pl.DataFrame) -> pl.DataFrame:
        seen.append(frame.height)
        return frame.with_columns(pl.col("x") + 1)

    frames = [pl.DataFrame({"shipment_id": ["same"], "x": [float(i)]}) for i in range(3)]
    results = _run(MicroBatcher(window_s=0.05, max_rows=100, prepare=prepare), fake, frames)
    assert seen == [3]
    assert fake.ids == [["b0", "b1", "b2"]]  # the Predictor sees unique ids ...
    assert [(r["shipment_id"][0], r["y"][0]) for r in results] == [("same", 2.0 * (i + 1)) for i in range(3)]


@pytest.mark.parametrize("max_rows", [1, 2])
def test_micro_batcher_never_exceeds_max_rows(max_rows: int) -> None:
    fake = _FakePredictor()
    frames = [pl.DataFrame({"shipment_id": [f"s{i}"], "x": [1.0]}) for i in range(5)]
    _run(MicroBatcher(window_s=0.05, max_rows=max_rows), fake, frames)
    assert max(fake.calls) <= max_rows and sum(fake.calls) == 5
