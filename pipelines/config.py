"""Stage: wiring. Where transitcast reads and writes, as ONE typed settings tree.

Reads the environment and, when given, a YAML file; writes nothing (nothing is created on import: the
folders are made by `Catalog.ensure_dirs` when a command runs).

Precedence, strongest first:

1. values passed in code or as CLI flags (`transitcast --data-dir D --outputs-dir O --mlflow-dir M ...`);
2. environment variables: `TRANSITCAST_DATA_DIR`, `TRANSITCAST_OUTPUTS_DIR`, `TRANSITCAST_MLFLOW_DIR`,
   `TRANSITCAST_EXPERIMENT`, and `MLFLOW_TRACKING_URI` (a team tracking server);
3. a YAML file (`transitcast --config FILE` or `TRANSITCAST_CONFIG=FILE`) with the same keys, e.g.
   ``{data_dir: /mnt/data, outputs_dir: /mnt/outputs, experiment: team}``; an unknown key is an error;
4. the defaults in code: the embedded, nothing-to-start setup (`data/` and `outputs/` in the working
   directory, MLflow on a SQLite file under `outputs/mlflow/`).

Sections: `Settings.catalog` (every path, `pipelines.catalog`) and `Settings.tracking` (where MLflow runs
go, `TrackingSettings`); each function gets the section it needs. The HTTP API has its own settings
(`serving.http.settings.ApiSettings`, `TRANSITCAST_API_*`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from pipelines.catalog import DEFAULT_DATA_DIR, DEFAULT_OUTPUTS_DIR, Catalog

__all__ = ["CONFIG_ENV", "Settings", "TrackingSettings", "quiet_third_parties"]

CONFIG_ENV = "TRANSITCAST_CONFIG"

# Everything phones home by default; the embedded setup must not (and Prefect starts ~6 s faster).
_QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # LightGBM's OpenMP threads spin while waiting; on a busy 2-core machine that costs 10x. Sleep instead.
    "OMP_WAIT_POLICY": "passive",
}


def quiet_third_parties() -> None:
    """Turn off the telemetry of Prefect, MLflow and DVC unless the user set these variables already."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    # MLflow's hint about integer columns in a logged pyfunc signature: transitcast serves the native LightGBM
    # files through its own Predictor (the pyfunc is for browsing and `mlflow models`), so it is noise here.
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)


class TrackingSettings(BaseModel):
    """Where MLflow runs and models go (the `tracking` section of `Settings`).

    Attributes:
        mlflow_dir: local folder of the embedded setup (SQLite file + artifact folder).
        experiment: MLflow experiment name.
        server_uri: a tracking server; None uses the local folder.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mlflow_dir: Path
    experiment: str = "transitcast"
    server_uri: str | None = None

    @property
    def tracking_uri(self) -> str:
        """The server's URI if one is set, else a SQLite file in `mlflow_dir`."""
        return self.server_uri or f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_location(self) -> str | None:
        """Local artifact folder for the default setup; a server decides its own."""
        return None if self.server_uri else (self.mlflow_dir / "artifacts").resolve().as_uri()


class Settings(BaseSettings):
    """The settings tree: data and output roots, MLflow location (see the module docstring for sources).

    Attributes:
        data_dir: DVC-tracked data root (raw files, validated tables).
        outputs_dir: models, forecasts, plans, reports, tuning, scores.
        mlflow_dir: local MLflow folder; None means `<outputs_dir>/mlflow`.
        mlflow_tracking_uri: a tracking server (read from `MLFLOW_TRACKING_URI`); None uses `mlflow_dir`.
        experiment: MLflow experiment name.
        config_file: the YAML file the values were read from (`--config`, `TRANSITCAST_CONFIG`), if any.
    """

    model_config = SettingsConfigDict(env_prefix="TRANSITCAST_", frozen=True, extra="forbid")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="DVC-tracked data root")
    outputs_dir: Path = Field(default=DEFAULT_OUTPUTS_DIR, description="models, forecasts, plans, reports")
    mlflow_dir: Path | None = Field(default=None, description="local MLflow folder (None: <outputs>/mlflow)")
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("mlflow_tracking_uri", "MLFLOW_TRACKING_URI"),
        description="tracking server (MLFLOW_TRACKING_URI); None uses the local folder",
    )
    experiment: str = Field(default="transitcast", min_length=1, description="MLflow experiment")
    config_file: Path | None = Field(default=None, description="YAML file read (TRANSITCAST_CONFIG)")

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env file: explicit sources only
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init) > environment > YAML file > defaults."""
        init = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        path = init.get("config_file") or os.environ.get(CONFIG_ENV) or None
        if path is None:
            return init_settings, env_settings
        yaml_file = Path(path)
        if not yaml_file.is_file():
            raise ValueError(f"config file {yaml_file} not found (from --config or {CONFIG_ENV})")
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file)

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Settings from the sources above; `overrides` that are None are ignored (unset CLI flags).

        Raises:
            ValueError: an unreadable or unknown value, naming the key (pydantic's message).
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**given) if config_file is None else cls(config_file=config_file, **given)

    @property
    def catalog(self) -> Catalog:
        """Every artefact path, derived from the roots."""
        return Catalog.under(self.data_dir, self.outputs_dir, self.mlflow_dir)

    @property
    def tracking(self) -> TrackingSettings:
        """The MLflow section: server URI, or the local folder of the catalog."""
        return TrackingSettings(
            mlflow_dir=self.catalog.outputs.mlflow_dir,
            experiment=self.experiment,
            server_uri=self.mlflow_tracking_uri,
        )
