"""Batch scoring: chunked Parquet/CSV scoring equals one Predictor call; the contract's rules reject the rows
`/v1/eta` rejects, with row, column, rule and fix; a failed run writes nothing; the `batch-score` flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from polars.testing import assert_frame_equal

from pipelines.flows.score import ModelSource, score_file
from serving.online.inputs import INPUT_COLUMNS, MissingColumns, Rejects
from serving.online.predictor import Predictor
from tests.serving.conftest import make_world, train_models


@pytest.fixture(scope="module")
def world() -> dict[str, pl.DataFrame]:
    return make_world()


@pytest.fixture(scope="module")
def models_dir(world: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_models(world, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def predictor(models_dir: Path) -> Predictor:
    return Predictor.from_dir(models_dir)


@pytest.fixture(scope="module")
def rows(world: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return world["shipments"].tail(230).drop("delivered_at", "status")


def _csv_text(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(INPUT_COLUMNS).with_columns(pl.col("created_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"))


def test_score_file_in_chunks_equals_one_call(
    predictor: Predictor, rows: pl.DataFrame, tmp_path: Path
) -> None:
    rows.write_parquet(tmp_path / "in.parquet")
    summary = score_file(predictor, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=100)
    assert (summary.rows_in, summary.rows, summary.rejected, summary.chunks) == (230, 230, 0, 3)
    got = pl.read_parquet(tmp_path / "out.parquet")
    assert_frame_equal(got, predictor.predict_shipments(rows), check_exact=False, rel_tol=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]  # no partial file left


def test_score_file_reads_csv_text_like_ingest(
    predictor: Predictor, rows: pl.DataFrame, tmp_path: Path
) -> None:
    small = rows.head(20)
    _csv_text(small).write_csv(tmp_path / "in.csv")
    score_file(predictor, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=7)
    got = pl.read_csv(tmp_path / "out.csv")
    expected = predictor.predict_shipments(small)
    assert got["shipment_id"].to_list() == expected["shipment_id"].to_list()
    assert got["eta_days_q50"].to_list() == pytest.approx(expected["eta_days_q50"].to_list(), rel=1e-9)


def test_score_file_reads_naive_times_in_the_assumed_zone(
    predictor: Predictor, rows: pl.DataFrame, tmp_path: Path
) -> None:
    small = rows.head(5)
    local = small.with_columns(
        pl.col("created_at").dt.convert_time_zone("Europe/Berlin").dt.strftime("%Y-%m-%d %H:%M:%S%.f")
    )
    local.select(INPUT_COLUMNS).write_csv(tmp_path / "in.csv")
    score_file(predictor, tmp_path / "in.csv", tmp_path / "out.parquet", assume_timezone="Europe/Berlin")
    expected = predictor.predict_shipments(small)
    assert_frame_equal(pl.read_parquet(tmp_path / "out.parquet"), expected, check_exact=False, rel_tol=1e-9)


# Each class of error: what the message names, and nothing left on disk.
@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        pytest.param(
            lambda df: df.with_columns(pl.col("created_at").str.replace("T", " ").str.replace("Z", "")),
            Rejects,
            ["row 1, created_at", "timezone_missing", "--assume-timezone Europe/Berlin"],
            id="naive-timestamps",
        ),
        pytest.param(
            lambda df: df.with_columns(
                pl.col("created_at").str.slice(0, 10).str.strptime(pl.Date).dt.strftime("%d/%m/%Y")
            ),
            Rejects,
            ["row 1, created_at", "type", "fix: write a value like '2025-03-01T08:15:00Z'"],
            id="unreadable-value",
        ),
        pytest.param(
            lambda df: df.with_columns(
                pl.when(pl.int_range(pl.len()) == 3)
                .then(pl.lit("-2"))
                .otherwise(pl.col("weight_kg").cast(pl.String))
                .alias("weight_kg")
            ),
            Rejects,
            ["(rows 4-6): 1 of 3 shipments row(s)", "row 4, weight_kg = '-2': non_negative", "fix:"],
            id="rule",
        ),
        pytest.param(
            lambda df: df.drop("hs_code"),
            MissingColumns,
            ["hs_code (String, like '851830')"],
            id="missing-column",
        ),
    ],
)
def test_score_file_error_names_row_column_rule_and_fix_and_writes_nothing(
    predictor: Predictor, rows: pl.DataFrame, tmp_path: Path, change: Any, error: type, words: list[str]
) -> None:
    change(_csv_text(rows.head(8))).write_csv(tmp_path / "in.csv")
    out = tmp_path / "new" / "out.parquet"
    with pytest.raises(error) as info:
        score_file(predictor, tmp_path / "in.csv", out, chunk_rows=3)
    for word in words:
        assert word in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no output, no partial file, no folder


def test_score_file_writes_rejects_beside_the_scores(
    predictor: Predictor, rows: pl.DataFrame, tmp_path: Path
) -> None:
    text = _csv_text(rows.head(6)).with_columns(
        pl.when(pl.int_range(pl.len()) == 4)
        .then(pl.lit("usa"))
        .otherwise("destination_country")
        .alias("destination_country")
    )
    text.write_csv(tmp_path / "in.csv")
    summary = score_file(
        predictor,
        tmp_path / "in.csv",
        tmp_path / "out.parquet",
        chunk_rows=4,
        rejects_path=tmp_path / "bad.csv",
    )
    assert (summary.rows_in, summary.rows, summary.rejected) == (6, 5, 1)
    bad = pl.read_csv(tmp_path / "bad.csv")
    assert bad.select("row_number", "column", "rule", "raw_value").row(0) == (
        5,
        "destination_country",
        "iso2_country",
        "usa",
    )
    scored = pl.read_parquet(tmp_path / "out.parquet")["shipment_id"].to_list()
    assert scored == [s for i, s in enumerate(rows.head(6)["shipment_id"]) if i != 4]


def test_score_file_refuses_an_unknown_suffix(
    predictor: Predictor, rows: pl.DataFrame, tmp_path: Path
) -> None:
    rows.head(3).write_parquet(tmp_path / "in.parquet")
    with pytest.raises(ValueError, match=".parquet or .csv"):
        score_file(predictor, tmp_path / "in.parquet", tmp_path / "out.json")


# The same bad rows through `/v1/eta` and through batch scoring: both refuse them, naming the same column.
SAME_BAD = [
    pytest.param("weight_kg", -1.0, id="negative-weight"),
    pytest.param("destination_country", "XX", id="not-a-country"),
    pytest.param("hs_code", "8518", id="short-hs-code"),
    pytest.param("item_count", 0, id="zero-items"),
    pytest.param("promised_date", "2024-01-01", id="promise-before-booking"),
    pytest.param("destination_region", None, id="missing-required-value"),
    pytest.param("mode", "teleport", id="unknown-mode"),
    pytest.param("weight_kg", 50_000.0, id="beyond-the-bounds"),
]


@pytest.mark.parametrize(("column", "value"), SAME_BAD)
def test_api_and_batch_scoring_reject_the_same_rows(
    models_dir: Path, rows: pl.DataFrame, tmp_path: Path, column: str, value: object
) -> None:
    from serving.http.app import create_app
    from serving.http.settings import ApiSettings

    shipment = json.loads(_csv_text(rows.head(1)).write_json())[0] | {column: value}
    app = create_app(ApiSettings(api_keys="k", models_dir=models_dir, poll_seconds=0))
    with TestClient(app) as client:
        r = client.post("/v1/eta", json={"shipments": [shipment]}, headers={"X-API-Key": "k"})
    assert r.status_code == 422 and any(column in e["loc"] for e in r.json()["detail"]), r.text

    pl.DataFrame([shipment], schema=dict.fromkeys(shipment, pl.String), strict=False).write_csv(
        tmp_path / "in.csv"
    )
    with pytest.raises(Rejects) as info:
        score_file(Predictor.from_dir(models_dir), tmp_path / "in.csv", tmp_path / "out.parquet")
    assert info.value.rejects["column"].to_list() == [column]


@pytest.mark.flow
def test_batch_score_flow_scores_a_file(
    prefect_harness: None, models_dir: Path, rows: pl.DataFrame, tmp_path: Path
) -> None:
    from pipelines.flows.score import batch_score

    rows.write_parquet(tmp_path / "in.parquet")
    summary = batch_score(
        tmp_path / "in.parquet", tmp_path / "scores" / "out.parquet", ModelSource(models_dir)
    )
    assert summary.rows == rows.height and summary.rows_per_second > 0
    out = pl.read_parquet(tmp_path / "scores" / "out.parquet")
    assert out["shipment_id"].to_list() == rows["shipment_id"].to_list()
    assert out["eta_days_q50"].null_count() == 0
