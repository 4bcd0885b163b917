"""The command line: help, errors with exit codes, and the contract docs kept in sync."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from features.contract.docs import contract_markdown
from pipelines.cli.main import app
from tests.conftest import example_rows

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _text(output: str) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(output.split())


def test_cli_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "simulate", "ingest", "adapt", "contract", "bench", "train", "backtest", "tune"):
        assert command in result.output
    for command in ("forecast", "plan", "deploy", "snapshot", "score", "serve", "--config", "--data-dir"):
        assert command in result.output


@pytest.mark.parametrize("group", ["train", "backtest", "tune"])
def test_cli_groups_list_their_model_families(group: str) -> None:
    result = runner.invoke(app, [group, "--help"])
    assert result.exit_code == 0 and "shipments" in result.output and "demand" in result.output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["backtest", "demand"], id="backtest-demand"),
        pytest.param(["backtest", "shipments", "--tasks", "eta"], id="backtest-shipments"),
        pytest.param(["backtest"], id="backtest-defaults-to-shipments"),
    ],
)
def test_cli_reads_the_data_root_flag_and_names_the_missing_step(args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path / "empty"), *args])
    assert result.exit_code == 2, result.output
    text = "".join(result.output.split())  # long paths wrap anywhere
    assert str(tmp_path / "empty" / "validated") in text and "transitcastingest" in text


def test_cli_ingest_defaults_to_the_data_root_of_the_config_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    example_rows("skus", 2).write_csv(data / "raw" / "skus.csv")
    config = tmp_path / "transitcast.yaml"
    config.write_text(f"data_dir: {data}\n")
    result = runner.invoke(app, ["--config", str(config), "ingest"])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(data / "validated" / "skus.parquet").height == 2


def test_cli_bad_settings_exit_with_the_key_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("data_dirr: x\n")
    result = runner.invoke(app, ["--config", str(config), "contract", "skus"])
    assert result.exit_code == 2 and "data_dirr" in result.output
    missing = runner.invoke(app, ["--config", str(tmp_path / "none.yaml"), "contract", "skus"])
    assert missing.exit_code == 2 and "none.yaml not found" in _text(missing.output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["tune", "shipments", "--task", "nope"], "unknown task(s) nope", id="tune-task"),
        pytest.param(["train", "shipments", "--tasks", "eta,x"], "unknown task(s) x", id="train-tasks"),
        pytest.param(["forecast", "demand", "--week", "June"], "ISO year-week", id="forecast-week"),
        pytest.param(["plan", "--calibration", "no.json"], "no such calibration file", id="calibration"),
        pytest.param(["simulate", "--format", "xlsx"], "--format must be one of parquet, csv", id="format"),
        pytest.param(["train", "nope"], "No such command", id="unknown-family"),
    ],
)
def test_cli_mistakes_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in _text(result.output)


def test_cli_ingest_reports_accounting(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    example_rows("skus", 3, price_usd=["1", "-1", "2"]).write_csv(raw / "skus.csv")
    result = runner.invoke(app, ["ingest", "--raw", str(raw), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "skus" in result.output and "skus.non_negative=1" in result.output
    assert pl.read_parquet(tmp_path / "out" / "skus.parquet").height == 2


def test_cli_ingest_missing_column_exits_nonzero_with_message(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    example_rows("skus").drop("category").write_csv(raw / "skus.csv")
    result = runner.invoke(app, ["ingest", "--raw", str(raw), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "skus.csv" in result.output and "category (String" in result.output
    assert not (tmp_path / "out" / "skus.parquet").exists()


def test_cli_unknown_adapter_exits_nonzero(tmp_path: Path) -> None:
    result = runner.invoke(app, ["adapt", "nope", "--src", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2


def test_contract_docs_match_the_code() -> None:
    """docs/data-contract.md is generated: `make contract-docs` after changing features/schema.py."""
    assert (ROOT / "docs" / "data-contract.md").read_text() == contract_markdown()
