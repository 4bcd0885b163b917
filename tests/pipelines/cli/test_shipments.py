"""`train|backtest|tune shipments`: windows from flags and a model config file, clear errors, the table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli.main import app
from pipelines.cli.shipments import shipment_config

runner = CliRunner()


def _text(output: str) -> str:
    return " ".join(output.split())


def test_flags_override_the_model_config_file_which_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "shipments.yaml"
    path.write_text("windows:\n  maturity_days: 40\n  fold_days: 21\nmin_fit_rows: 500\n")
    config = shipment_config(path, 0, fold_days="14", folds="auto", history_days=None)
    assert (config.windows.maturity_days, config.windows.fold_days, config.windows.folds) == (40, 14, "auto")
    assert config.windows.history_days == "auto" and config.min_fit_rows == 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--maturity-days", "soon"], "--maturity-days: 'soon' is neither 'auto' nor a whole number"
        ),
        pytest.param(["--folds", "0"], "windows must be positive"),
        pytest.param(["--model-config", "none.yaml"], "none.yaml not found"),
    ],
)
def test_bad_windows_exit_2_with_the_rule_and_write_nothing(
    args: list[str], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["backtest", "shipments", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in _text(result.output)
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("windows:\n  maturity_days: soon\n", "windows.maturity_days", id="bad value"),
        pytest.param("windws: {}\n", "windws: Extra inputs are not permitted", id="unknown field"),
        pytest.param("- 1\n", "expected a mapping", id="not a mapping"),
    ],
)
def test_a_bad_model_config_names_the_file_and_the_field(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["train", "shipments", "--model-config", str(path), "--no-track"])
    assert result.exit_code == 2, result.output
    assert "m.yaml" in _text(result.output) and message in _text(result.output)


def test_backtest_prints_the_windows_and_the_rows_of_each_fold(tmp_path: Path) -> None:
    from features.sources.simulator import SimulatorConfig, simulate, write_world

    base = SimulatorConfig(start_date=dt.date(2024, 3, 4), end_date=dt.date(2024, 12, 29), seed=11)
    world = base.model_copy(
        update={
            "shipments": base.shipments.model_copy(update={"n_shipments": 4_000}),
            "demand": base.demand.model_copy(update={"n_skus": 4}),
        }
    )
    write_world(simulate(world), tmp_path / "data" / "raw")
    root = ["--data-dir", str(tmp_path / "data"), "--outputs-dir", str(tmp_path / "outputs")]
    assert runner.invoke(app, [*root, "ingest"]).exit_code == 0
    result = runner.invoke(app, [*root, "backtest", "shipments", "--tasks", "eta", "--maturity-days", "35"])
    assert result.exit_code == 0, result.output
    text = _text(result.output)
    for expected in ("eta: windows", "set in the config", "fold_days", "test rows per fold and system",
                     "n_rows", "censored_share", "lane_history_calibrated"):  # fmt: skip
        assert expected in text, expected
    assert (tmp_path / "outputs" / "backtest" / "eta.parquet").exists()
