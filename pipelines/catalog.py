"""Stage: wiring. The catalog: every artefact path of transitcast, written once, derived from two roots.

Reads and writes nothing (`Catalog.ensure_dirs` creates the root folders when a command runs). The roots
come from `pipelines.config.Settings` (defaults below); every other path is derived here, so a folder
layout is spelled in this module only (a test bans `Path("outputs...")` literals everywhere else).

```
<data>/                     DataCatalog (DVC-tracked; `<data>.dvc` beside it)
  raw/<table>.parquet|csv     raw files as a user, an adapter or the simulator brings them
  raw/oracle/<name>.parquet   the simulator's truth (absent for real data)
  validated/<table>.parquet   contract tables; quarantine.parquet; ingest_report.json
<outputs>/                  OutputCatalog
  models/<task>/              LightGBM text + metadata.json per model; models/snapshot/ (Predictor features)
  forecasts/demand/<YYYY-Www>/  forecast.parquet, paths.parquet, metadata.json, fan_chart.png
  plans/<YYYY-Www>/           restock plan exports
  reports/<YYYY-Www>/         planner report
  tuning/<family>/            Optuna storage and best parameters per study
  backtest/<task>.parquet     per-fold, per-slice metrics of `transitcast backtest`
  scores/<input>_scores.parquet  batch scores
  calibration/restock.json    the restock service calibration of this world (flow calibrate-restock)
  mlflow/                     mlflow.db + artifacts/ (embedded tracking; or TRANSITCAST_MLFLOW_DIR)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_OUTPUTS_DIR",
    "Catalog",
    "DataCatalog",
    "ForecastFiles",
    "OutputCatalog",
    "oracle_file",
    "table_file",
]

DEFAULT_DATA_DIR = Path("data")
DEFAULT_OUTPUTS_DIR = Path("outputs")


def table_file(validated_dir: Path, name: str) -> Path:
    """A validated contract table in a validated folder."""
    return validated_dir / f"{name}.parquet"


def oracle_file(raw_dir: Path, name: str) -> Path:
    """A simulator oracle table (`shipments`, `demand_weekly`) next to the raw files it came with."""
    return raw_dir / "oracle" / f"{name}.parquet"


@dataclass(frozen=True)
class ForecastFiles:
    """One weekly demand forecast folder (the output contract in docs/demand-forecast.md)."""

    folder: Path

    @property
    def forecast(self) -> Path:
        """Quantiles per series and horizon."""
        return self.folder / "forecast.parquet"

    @property
    def paths(self) -> Path:
        """Sample paths per series (horizon 1 = the forecast week)."""
        return self.folder / "paths.parquet"

    @property
    def metadata(self) -> Path:
        """Model and data versions, cutoff, quantiles, number of paths."""
        return self.folder / "metadata.json"

    @property
    def fan_chart(self) -> Path:
        """PNG of the largest series."""
        return self.folder / "fan_chart.png"

    def missing(self) -> list[str]:
        """Names of the required files (forecast, paths) that are not there."""
        return [p.name for p in (self.forecast, self.paths) if not p.exists()]


@dataclass(frozen=True)
class DataCatalog:
    """Data layers under the DVC-tracked data root."""

    root: Path

    @property
    def raw(self) -> Path:
        """Raw files as a user, an adapter or the simulator brings them."""
        return self.root / "raw"

    @property
    def oracle_dir(self) -> Path:
        """The simulator's truth, next to its raw files."""
        return oracle_file(self.raw, "_").parent

    def oracle(self, name: str) -> Path:
        """One oracle table (`shipments`, `demand_weekly`)."""
        return oracle_file(self.raw, name)

    @property
    def validated(self) -> Path:
        """Validated contract tables, quarantine and ingest report."""
        return self.root / "validated"

    def table(self, name: str) -> Path:
        """One validated contract table."""
        return table_file(self.validated, name)

    @property
    def quarantine(self) -> Path:
        """Rejected input rows, one per row, with the rule (file name from the ingest that writes it)."""
        from features.ingest import QUARANTINE_FILE

        return self.validated / QUARANTINE_FILE

    @property
    def ingest_report(self) -> Path:
        """Accounting of the last ingest."""
        from features.ingest import REPORT_FILE

        return self.validated / REPORT_FILE

    @property
    def dvc_file(self) -> Path:
        """The `.dvc` file DVC writes beside the data root (`data.dvc`)."""
        return self.root.with_name(f"{self.root.name}.dvc")


@dataclass(frozen=True)
class OutputCatalog:
    """Artefacts under the outputs root (`mlflow_root` overrides `<root>/mlflow`)."""

    root: Path
    mlflow_root: Path | None = None

    @property
    def models(self) -> Path:
        """One folder per model (`<task>/`) and the feature snapshot."""
        return self.root / "models"

    def model(self, task: str) -> Path:
        """The model directory of one task (`eta`, ..., `demand`)."""
        return self.models / task

    @property
    def snapshot(self) -> Path:
        """The feature snapshot the Predictor reads."""
        from serving.online.snapshot import SNAPSHOT_DIR

        return self.models / SNAPSHOT_DIR

    @property
    def forecasts(self) -> Path:
        """Weekly demand forecasts, one folder per ISO week."""
        return self.root / "forecasts" / "demand"

    def forecast(self, week: str) -> ForecastFiles:
        """The forecast folder of an ISO week label `YYYY-Www`."""
        return ForecastFiles(self.forecasts / week)

    def plans(self, week: str) -> Path:
        """Restock plan exports of an ISO week."""
        return self.root / "plans" / week

    @property
    def reports_root(self) -> Path:
        """Planner reports, one folder per ISO week."""
        return self.root / "reports"

    def reports(self, week: str) -> Path:
        """The planner report folder of an ISO week."""
        return self.reports_root / week

    def tuning(self, family: str) -> Path:
        """Optuna storage and best parameters of one model family (`shipments`, `demand`)."""
        return self.root / "tuning" / family

    @property
    def backtest(self) -> Path:
        """Per-fold, per-slice backtest metrics of `transitcast backtest`."""
        return self.root / "backtest"

    def backtest_metrics(self, task: str, folder: Path | None = None) -> Path:
        """The backtest metrics of one task (`eta`, ..., `demand`), in `folder` (default `backtest`)."""
        return (folder or self.backtest) / f"{task}.parquet"

    @property
    def scores(self) -> Path:
        """Batch scoring outputs."""
        return self.root / "scores"

    def score_file(self, input_file: Path) -> Path:
        """Default output of scoring `input_file`."""
        return self.scores / f"{input_file.stem}_scores.parquet"

    @property
    def restock_calibration(self) -> Path:
        """The restock service calibration fitted on this world (target -> quantile level per band)."""
        return self.root / "calibration" / "restock.json"

    @property
    def mlflow_dir(self) -> Path:
        """Embedded MLflow: SQLite file and artifact folder."""
        return self.mlflow_root or self.root / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        """The embedded tracking store."""
        return self.mlflow_dir / "mlflow.db"


@dataclass(frozen=True)
class Catalog:
    """Every path: the data layers and the output artefacts."""

    data: DataCatalog
    outputs: OutputCatalog

    @classmethod
    def under(cls, data_dir: Path, outputs_dir: Path, mlflow_dir: Path | None = None) -> Catalog:
        """The catalog of these roots."""
        return cls(DataCatalog(data_dir), OutputCatalog(outputs_dir, mlflow_dir))

    def ensure_dirs(self) -> None:
        """Create the raw, validated and outputs folders."""
        for path in (self.data.raw, self.data.validated, self.outputs.root):
            path.mkdir(parents=True, exist_ok=True)
