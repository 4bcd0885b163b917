"""Stage: wiring. Where transitcast reads and writes, as one typed settings object.

Defaults are the embedded, nothing-to-start setup (everything under `data/` and `outputs/` in the working
directory). Every value can be overridden with an environment variable prefixed `TRANSITCAST_` (for example
`TRANSITCAST_DATA_DIR=/mnt/data`). Nothing is created on import; `Settings.ensure_dirs` does it when a command
runs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "quiet_third_parties"]

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


class Settings(BaseSettings):
    """Paths of the embedded setup."""

    model_config = SettingsConfigDict(env_prefix="TRANSITCAST_", frozen=True, extra="forbid")

    data_dir: Path = Field(default=Path("data"), description="DVC-tracked data root")
    outputs_dir: Path = Field(default=Path("outputs"), description="reports, plans, forecasts")

    @classmethod
    def with_dirs(cls, data_dir: Path | None = None, outputs_dir: Path | None = None) -> Settings:
        """Settings from the environment, with the data and outputs folders overridden when given."""
        overrides = {"data_dir": data_dir, "outputs_dir": outputs_dir}
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    @property
    def raw_dir(self) -> Path:
        """Raw files as a user, an adapter or the simulator brings them."""
        return self.data_dir / "raw"

    @property
    def validated_dir(self) -> Path:
        """Validated contract tables, quarantine and ingest report."""
        return self.data_dir / "validated"

    def ensure_dirs(self) -> None:
        """Create the data and output folders."""
        for path in (self.raw_dir, self.validated_dir, self.outputs_dir):
            path.mkdir(parents=True, exist_ok=True)
