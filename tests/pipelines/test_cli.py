"""The command line: help, errors with exit codes, and the contract docs kept in sync."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from features.contract.docs import contract_markdown
from pipelines.cli.main import app
from tests.conftest import example_rows

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_cli_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "simulate", "ingest", "adapt", "contract", "bench"):
        assert command in result.output


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
