"""Batch scoring: chunked Parquet/CSV scoring equals one Predictor call; the `batch-score` flow smoke test."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from serving.online.predictor import Predictor
from tests.serving.conftest import make_world, train_models


@pytest.fixture(scope="module")
def world() -> dict[str, pl.DataFrame]:
    return make_world()


@pytest.fixture(scope="module")
def models_dir(world: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_models(world, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def rows(world: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return world["shipments"].tail(230).drop("delivered_at", "status")


def test_score_file_in_chunks_equals_one_call(models_dir: Path, rows: pl.DataFrame, tmp_path: Path) -> None:
    from pipelines.flows.score import score_file

    predictor = Predictor.from_dir(models_dir)
    rows.write_parquet(tmp_path / "in.parquet")
    summary = score_file(predictor, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=100)
    assert (summary.rows, summary.chunks) == (230, 3)
    got = pl.read_parquet(tmp_path / "out.parquet")
    assert_frame_equal(got, predictor.predict_shipments(rows), check_exact=False, rel_tol=1e-9)


def test_score_file_reads_csv_text_like_ingest(models_dir: Path, rows: pl.DataFrame, tmp_path: Path) -> None:
    from pipelines.flows.score import score_file

    predictor = Predictor.from_dir(models_dir)
    small = rows.head(20)
    small.with_columns(pl.col("created_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ")).write_csv(
        tmp_path / "in.csv"
    )
    score_file(predictor, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=7)
    got = pl.read_csv(tmp_path / "out.csv")
    expected = predictor.predict_shipments(small)
    assert got["shipment_id"].to_list() == expected["shipment_id"].to_list()
    assert got["eta_days_q50"].to_list() == pytest.approx(expected["eta_days_q50"].to_list(), rel=1e-9)


def test_score_file_names_the_bad_column(models_dir: Path, rows: pl.DataFrame, tmp_path: Path) -> None:
    from pipelines.flows.score import score_file

    bad = rows.head(5).with_columns(pl.col("created_at").dt.to_string("%d/%m/%Y"))
    bad.write_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="created_at"):
        score_file(Predictor.from_dir(models_dir), tmp_path / "bad.csv", tmp_path / "out.parquet")
    with pytest.raises(ValueError, match=".parquet or .csv"):
        score_file(Predictor.from_dir(models_dir), tmp_path / "bad.csv", tmp_path / "out.json")


@pytest.mark.flow
def test_batch_score_flow_scores_a_file(
    prefect_harness: None, models_dir: Path, rows: pl.DataFrame, tmp_path: Path
) -> None:
    from pipelines.flows.score import batch_score

    rows.write_parquet(tmp_path / "in.parquet")
    result = batch_score(tmp_path / "in.parquet", tmp_path / "scores" / "out.parquet", models_dir=models_dir)
    assert result["rows"] == rows.height and result["rows_per_second"] > 0
    out = pl.read_parquet(tmp_path / "scores" / "out.parquet")
    assert out["shipment_id"].to_list() == rows["shipment_id"].to_list()
    assert out["eta_days_q50"].null_count() == 0


def test_score_command_writes_the_scores(models_dir: Path, rows: pl.DataFrame, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipelines.cli.main import app

    rows.head(40).write_parquet(tmp_path / "in.parquet")
    out = tmp_path / "scores.parquet"
    args = ["score", "--in", str(tmp_path / "in.parquet"), "--out", str(out), "--models-dir", str(models_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "scored 40 shipments" in result.output
    assert pl.read_parquet(out).height == 40
    missing = CliRunner().invoke(
        app, ["score", "--in", str(tmp_path / "nope.parquet"), "--models-dir", str(models_dir)]
    )
    assert missing.exit_code == 2 and "nope.parquet" in missing.output
