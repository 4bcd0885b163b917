"""Stage: wiring. The MLflow adapter: the only module that talks to MLflow.

Runs log the resolved config, metrics (per fold and slice as a table artifact, headline figures as
metrics), figures, the DVC data version, the git sha and library versions. Models are transitcast model
directories (LightGBM native text + JSON metadata) logged as MLflow pyfunc models *from code*
(`pipelines/mlflow_model.py`), so nothing is pickled; they are registered, and the aliases `champion` and
`challenger` move through `promote_if_better`, the one promotion gate of every model family (shipments and
demand). Its rule is `models.promotion` (pure); this side re-measures the champion and moves the aliases:

    A new model version becomes `challenger`. It replaces the `champion` only when what it ships (the
    candidate, or the baseline that ships in its place, `models.promotion.select_system`) is better on the
    SAME backtest (same data version and folds: the champion's recorded value when it was measured on it,
    else its logged config backtested again here by the caller's `rebacktest`) by at least
    `min_improvement` (relative). A version that loses to a baseline with nothing to fall back on never
    replaces a champion. The first version becomes champion. Tags on the version: `system`, `gate_metric`,
    `gate_value`, `backtest_key`, `beats_baselines`, `gate_reason`.

Where runs go is the `tracking` section of `pipelines.config.Settings` (`TrackingSettings`, re-exported
here): by default a SQLite file and an artifact folder in the catalog's MLflow folder, or any
`MLFLOW_TRACKING_URI` (a team server). mlflow is imported lazily (it takes ~3.6 s).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import BaseModel

from models.promotion import CANDIDATE, SystemChoice, versus_champion
from pipelines.adapters.dvc import current_data_version
from pipelines.config import Settings, TrackingSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PromotionDecision",
    "Rebacktest",
    "Tracker",
    "TrackingSettings",
    "library_versions",
]

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
MODEL_DIR = "model_dir"
_LIBRARIES = ("transitcast", "polars", "numpy", "lightgbm", "scikit-learn", "optuna", "mlflow", "prefect")


@dataclass(frozen=True)
class PromotionDecision:
    """What the promotion gate decided for one model version."""

    model: str
    version: str
    promoted: bool
    metric: str
    challenger_value: float
    champion_value: float | None
    champion_version: str | None
    reason: str
    system: str = CANDIDATE


Rebacktest = Callable[[dict[str, Any], str], float | None]
"""``(champion's logged config, champion's system) -> its gate metric on THIS backtest`` (None: cannot)."""


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model depends on."""
    out = {}
    for lib in _LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "absent"
    return out


def _git_sha() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list | tuple):
        out[prefix] = json.dumps(value, default=str)[:500]
    else:
        out[prefix] = value


class Tracker:
    """MLflow runs, model registration and the promotion gate."""

    def __init__(self, settings: TrackingSettings | None = None) -> None:
        import mlflow

        self.settings = settings or Settings().tracking
        if self.settings.server_uri is None:
            self.settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
        self._mlflow = mlflow
        previous = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.settings.tracking_uri)  # also writes the env variable: put it back
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        existing = mlflow.get_experiment_by_name(self.settings.experiment)
        self.experiment_id = (
            existing.experiment_id
            if existing
            else mlflow.create_experiment(
                self.settings.experiment, artifact_location=self.settings.artifact_location
            )
        )

    @property
    def client(self) -> MlflowClient:
        """The MLflow client bound to this tracking URI."""
        return self._mlflow.MlflowClient(tracking_uri=self.settings.tracking_uri)

    @contextmanager
    def run(self, name: str, tags: Mapping[str, str] | None = None) -> Iterator[str]:
        """Start a run tagged with git sha, data version and library versions; yield its id."""
        data_version = current_data_version()
        base_tags = {
            "git_sha": _git_sha(),
            "data_version": data_version.md5 if data_version else "unversioned",
            **{f"lib.{k}": v for k, v in library_versions().items()},
            **(tags or {}),
        }
        with self._mlflow.start_run(experiment_id=self.experiment_id, run_name=name, tags=base_tags) as run:
            yield run.info.run_id

    def log_config(self, config: BaseModel | Mapping[str, Any], name: str = "config") -> None:
        """Log a config as flattened params and as a JSON artifact."""
        data = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
        flat: dict[str, Any] = {}
        _flatten(name, data, flat)
        self._mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})
        self._mlflow.log_dict(data, f"{name}.json")

    def log_metrics(self, metrics: pl.DataFrame, name: str, headline: pl.DataFrame | None = None) -> None:
        """Log a long metrics frame as a CSV artifact; `headline` rows (model, metric, value) as metrics.

        Args:
            metrics: every fold and slice (`cutoff`, slice columns, `model`, `metric`, `value`).
            name: artifact file stem, e.g. `eta_backtest`.
            headline: the figures to log as MLflow metrics, keyed `<name>.<model>.<metric>`.
        """
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.csv"
            metrics.write_csv(path)
            self._mlflow.log_artifact(str(path), artifact_path="metrics")
        if headline is not None:
            self._mlflow.log_metrics(
                {
                    f"{name}.{r['model']}.{r['metric']}".replace("@", "_at_"): float(r["value"])
                    for r in headline.iter_rows(named=True)
                    if r["value"] is not None
                }
            )

    def log_figure(self, figure: Any, path: str) -> None:
        """Log a matplotlib figure (PNG) under `path`."""
        self._mlflow.log_figure(figure, path)

    def log_dir(self, directory: Path, artifact_path: str) -> None:
        """Log every file of a local directory under `artifact_path` (e.g. the feature snapshot)."""
        self._mlflow.log_artifacts(str(directory), artifact_path=artifact_path)

    def log_frame(self, frame: pl.DataFrame, path: str) -> None:
        """Log a small frame as a CSV artifact at `path` (e.g. `importance/eta.csv`)."""
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / Path(path).name
            frame.write_csv(file)
            parent = str(Path(path).parent)
            self._mlflow.log_artifact(str(file), artifact_path=None if parent == "." else parent)

    def log_model_dir(
        self,
        model_dir: Path,
        name: str,
        registered_name: str,
        input_example: pl.DataFrame,
        output_example: pl.DataFrame,
        model_code: Path = MODEL_CODE,
    ) -> str:
        """Log a transitcast model directory as a pyfunc model from code and register it.

        Returns:
            The new registered model version.
        """
        from mlflow.models import infer_signature

        signature = infer_signature(input_example.to_pandas(), output_example.to_pandas())
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / MODEL_DIR  # a fixed artifact name, whatever the local folder is called
            shutil.copytree(model_dir, staged)
            info = self._mlflow.pyfunc.log_model(
                name=name,
                python_model=str(model_code),
                artifacts={MODEL_DIR: str(staged)},
                signature=signature,
                pip_requirements=[f"transitcast=={library_versions()['transitcast']}"],
                registered_model_name=registered_name,
            )
        return str(info.registered_model_version)

    def set_version_tags(self, registered_name: str, version: str, tags: Mapping[str, Any]) -> None:
        """Tag a registered model version (gate metric, backtest id, ...)."""
        for key, value in tags.items():
            self.client.set_model_version_tag(registered_name, version, key, str(value))

    def alias_version(self, registered_name: str, alias: str) -> str | None:
        """The version an alias points to, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(registered_name, alias).version)
        except MlflowException:
            return None

    def version_config(self, registered_name: str, version: str, name: str = "config") -> dict[str, Any]:
        """The config logged (by `log_config`) in the run that produced a model version."""
        run_id = self.client.get_model_version(registered_name, version).run_id
        path = self._mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"{name}.json", tracking_uri=self.settings.tracking_uri
        )
        return dict(json.loads(Path(path).read_text()))

    def download_model_dir(self, registered_name: str, alias: str = CHAMPION) -> Path | None:
        """Download the transitcast model directory behind an alias (None if the alias is not set)."""
        version = self.alias_version(registered_name, alias)
        if version is None:
            return None
        root = Path(
            self._mlflow.artifacts.download_artifacts(
                f"models:/{registered_name}/{version}", tracking_uri=self.settings.tracking_uri
            )
        )
        return root / "artifacts" / MODEL_DIR

    def _champion_value(
        self, registered_name: str, champion: str, backtest_key: str, rebacktest: Rebacktest, candidate: str
    ) -> float | None:
        """The champion's gate metric on THIS backtest: its record when measured on it, else re-measured."""
        tags = self.client.get_model_version(registered_name, champion).tags
        if tags.get("backtest_key") == backtest_key and "gate_value" in tags:
            return float(tags["gate_value"])
        log.info("%s: champion v%s was measured on other data or folds; backtesting it here", registered_name,
                 champion)  # fmt: skip
        try:
            return rebacktest(self.version_config(registered_name, champion), tags.get("system", candidate))
        except (OSError, KeyError, ValueError) as exc:  # no config logged, or one this code no longer reads
            log.warning("%s: champion v%s cannot be re-measured here (%s)", registered_name, champion, exc)
            return None

    def promote_if_better(
        self,
        registered_name: str,
        version: str,
        choice: SystemChoice,
        *,
        backtest_key: str,
        rebacktest: Rebacktest,
        min_improvement: float = 0.0,
        lower_is_better: bool = True,
    ) -> PromotionDecision:
        """Apply the promotion gate (module docstring) and move the aliases.

        Args:
            registered_name: registered model name.
            version: the new version (the challenger).
            choice: what the new version ships and its gate metric on this run's backtest.
            backtest_key: identifies this backtest (data version and folds).
            rebacktest: re-measures the champion on this backtest when it was measured on another.
            min_improvement: relative improvement required (0.01 = 1 % better).
            lower_is_better: direction of the metric.
        """
        champion = self.alias_version(registered_name, CHAMPION)
        champion_value = (
            None
            if champion is None
            else self._champion_value(registered_name, champion, backtest_key, rebacktest, choice.candidate)
        )
        rule = versus_champion(
            choice, champion_value, has_champion=champion is not None, min_improvement=min_improvement,
            lower_is_better=lower_is_better,
        )  # fmt: skip
        promoted, reason = rule.promoted, rule.reason
        metric, challenger_value = choice.metric, choice.value
        client = self.client
        if promoted:
            client.set_registered_model_alias(registered_name, CHAMPION, version)
            if champion is not None:
                client.set_registered_model_alias(registered_name, "previous", champion)
            if self.alias_version(registered_name, CHALLENGER) == version:
                client.delete_registered_model_alias(registered_name, CHALLENGER)
        else:
            client.set_registered_model_alias(registered_name, CHALLENGER, version)
        self.set_version_tags(
            registered_name,
            version,
            {
                "gate_metric": metric,
                "gate_value": challenger_value,
                "backtest_key": backtest_key,
                "system": choice.label,
                "beats_baselines": choice.beats_baselines,
                "gate_reason": choice.reason[:500],
            },
        )
        decision = PromotionDecision(
            model=registered_name,
            version=version,
            promoted=promoted,
            metric=metric,
            challenger_value=challenger_value,
            champion_value=champion_value,
            champion_version=champion,
            reason=reason,
            system=choice.label,
        )
        log.info(
            "promotion gate %s v%s: %s (%s)",
            registered_name,
            version,
            "champion" if promoted else "challenger",
            reason,
        )
        return decision
