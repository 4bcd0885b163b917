"""The serving commands: `score` (paths from the project settings, --assume-timezone, clear errors that
write nothing), `serve`'s settings resolution and uvicorn factory, `snapshot`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli.main import app
from pipelines.cli.serving import api_settings, app_from_env, serving_paths
from serving.online.inputs import INPUT_COLUMNS
from tests.serving.conftest import make_world, train_models


@pytest.fixture(scope="module")
def world() -> dict[str, pl.DataFrame]:
    return make_world()


@pytest.fixture(scope="module")
def outputs(world: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An outputs folder with models, as training leaves it."""
    root = tmp_path_factory.mktemp("outputs")
    train_models(world, root / "models")
    return root


@pytest.fixture()
def project(outputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project settings point at `outputs`; the working folder is empty."""
    monkeypatch.setenv("TRANSITCAST_OUTPUTS_DIR", str(outputs))
    monkeypatch.setenv("TRANSITCAST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRANSITCAST_MLFLOW_DIR", str(tmp_path / "registry"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _text(world: dict[str, pl.DataFrame], n: int) -> pl.DataFrame:
    rows = world["shipments"].tail(n).select(INPUT_COLUMNS)
    return rows.with_columns(pl.col("created_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_score_command_reads_models_and_writes_scores_where_the_settings_say(
    project: Path, outputs: Path, world: dict[str, pl.DataFrame]
) -> None:
    _text(world, 40).write_parquet(project / "in.parquet")
    result = CliRunner().invoke(app, ["score", "--in", str(project / "in.parquet")])
    assert result.exit_code == 0, result.output
    assert "scored 40 shipments" in result.output
    assert pl.read_parquet(outputs / "scores" / "in_scores.parquet").height == 40
    assert not (project / "outputs").exists()  # nothing under the working folder's outputs/


def test_score_command_naive_timestamps_fail_clearly_and_write_nothing(
    project: Path, world: dict[str, pl.DataFrame]
) -> None:
    naive = _text(world, 10).with_columns(pl.col("created_at").str.replace("T", " ").str.replace("Z", ""))
    naive.write_csv(project / "naive.csv")
    out = project / "scores" / "naive.parquet"
    result = CliRunner().invoke(app, ["score", "--in", str(project / "naive.csv"), "--out", str(out)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    for words in (
        "timezone_missing",
        "row 1, created_at",
        "--assume-timezone Europe/Berlin",
        "nothing was written",
    ):
        assert words in text, result.output
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    assert not out.exists() and not out.parent.exists()

    ok = CliRunner().invoke(
        app,
        [
            "score",
            "--in",
            str(project / "naive.csv"),
            "--out",
            str(out),
            "--assume-timezone",
            "Asia/Shanghai",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert pl.read_parquet(out).height == 10


def test_score_command_bad_rows_go_to_the_rejects_file_when_asked(
    project: Path, world: dict[str, pl.DataFrame]
) -> None:
    text = _text(world, 5).with_columns(
        pl.when(pl.int_range(pl.len()) == 2)
        .then(pl.lit("-3"))
        .otherwise(pl.col("weight_kg").cast(pl.String))
        .alias("weight_kg")
    )
    text.write_csv(project / "in.csv")
    out, bad = project / "out.csv", project / "rejects.csv"
    strict = CliRunner().invoke(app, ["score", "--in", str(project / "in.csv"), "--out", str(out)])
    assert strict.exit_code == 2 and "--rejects FILE" in strict.output and not out.exists()
    lenient = CliRunner().invoke(
        app, ["score", "--in", str(project / "in.csv"), "--out", str(out), "--rejects", str(bad)]
    )
    assert lenient.exit_code == 0, lenient.output
    assert "scored 4 shipments" in lenient.output and "1 rejected" in lenient.output
    assert pl.read_csv(bad).select("row_number", "rule").row(0) == (3, "non_negative")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["--in", "nope.parquet"], "nope.parquet not found", id="missing-file"),
        pytest.param(["--in", "in.parquet", "--assume-timezone", "Mars/Olympus"], "IANA", id="bad-zone"),
        pytest.param(["--in", "in.parquet", "--out", "out.json"], ".parquet or .csv", id="bad-suffix"),
    ],
)
def test_score_command_usage_errors_exit_2_without_traceback(
    project: Path, world: dict[str, pl.DataFrame], args: list[str], words: str
) -> None:
    _text(world, 3).write_parquet(project / "in.parquet")
    result = CliRunner().invoke(app, ["score", *args])
    assert result.exit_code == 2 and words in " ".join(result.output.split()), result.output
    assert not (project / "out.json").exists()


def test_serving_paths_follow_the_project_settings(project: Path, outputs: Path) -> None:
    paths = serving_paths()
    assert (paths.models_dir, paths.scores_dir) == (outputs / "models", outputs / "scores")
    assert paths.forecasts_dir == outputs / "forecasts" / "demand"
    assert paths.validated_dir == project / "data" / "validated"
    assert paths.tracking_uri == f"sqlite:///{(project / 'registry' / 'mlflow.db').resolve()}"


def test_serve_settings_fill_only_what_the_api_variables_leave_unset(
    project: Path, outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSITCAST_API_AUTH_DISABLED", "true")
    monkeypatch.setenv("TRANSITCAST_API_FORECASTS_DIR", str(project / "elsewhere"))
    settings = api_settings()
    assert settings.models_dir == outputs / "models"
    assert settings.forecasts_dir == project / "elsewhere"
    assert settings.mlflow_tracking_uri == serving_paths().tracking_uri
    assert app_from_env().title == "transitcast"


def test_snapshot_command_without_validated_data_says_so(project: Path) -> None:
    result = CliRunner().invoke(app, ["snapshot"])
    assert result.exit_code == 2 and "validated" in result.output
