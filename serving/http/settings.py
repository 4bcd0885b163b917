"""Stage: serving. Typed settings of the HTTP API, read from `TRANSITCAST_API_*` environment variables.

Reads the environment only (nothing at import: `ApiSettings()` is built by the app factory's caller).
Authentication is on by default: the app refuses to start without API keys unless `auth_disabled` is set
explicitly (local use only).

Where the models, the forecasts and the MLflow registry are has no default here: the caller resolves them
(`transitcast serve` from the project settings, `pipelines.cli.serving.serving_paths`) or sets them.

Example:
    TRANSITCAST_API_API_KEYS="key-one,key-two" transitcast serve
    TRANSITCAST_API_AUTH_DISABLED=true transitcast serve     # local experiments only
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiSettings", "RegistrySource"]


@dataclass(frozen=True)
class RegistrySource:
    """Models `transitcast-<task>@<alias>` in the MLflow registry at `tracking_uri`."""

    alias: str
    tracking_uri: str


class ApiSettings(BaseSettings):
    """Everything the API reads from its environment.

    Attributes:
        api_keys: comma-separated keys accepted in `api_key_header` (secret; never logged).
        auth_disabled: serve without authentication; only when set explicitly (local use).
        api_key_header: header that carries the key.
        max_body_bytes: larger request bodies get 413.
        max_batch: most shipments (or orders) in one request.
        max_events: most milestone events in one request.
        models_dir: local models + snapshot (used unless `model_alias` is set; with it, the snapshot used
            when the registered run has none).
        model_alias: load `transitcast-<task>@alias` from MLflow instead (e.g. `champion`).
        mlflow_tracking_uri: MLflow tracking URI (needed with `model_alias`).
        poll_seconds: how often to check whether the models changed (hot swap); 0 turns polling off.
        forecasts_dir: folder of the weekly demand forecasts (`<YYYY-Www>/forecast.parquet`); None: the
            forecast endpoint answers 404.
        promise_target: on-time rate the promise date is quoted for.
        batch_window_ms: how long the online micro-batcher waits to group concurrent requests.
        batch_max_rows: most rows in one micro-batch.
    """

    model_config = SettingsConfigDict(env_prefix="TRANSITCAST_API_", frozen=True, extra="forbid")

    api_keys: SecretStr | None = None
    auth_disabled: bool = False
    api_key_header: str = Field(default="X-API-Key", min_length=1)
    max_body_bytes: int = Field(default=2_000_000, ge=1_000)
    max_batch: int = Field(default=1_000, ge=1, le=100_000)
    max_events: int = Field(default=20_000, ge=0)
    models_dir: Path | None = None
    model_alias: str | None = None
    mlflow_tracking_uri: str | None = None
    poll_seconds: float = Field(default=30.0, ge=0.0)
    forecasts_dir: Path | None = None
    promise_target: float = Field(default=0.9, ge=0.5, le=0.99)
    batch_window_ms: float = Field(default=2.0, ge=0.0, le=1_000.0)
    batch_max_rows: int = Field(default=512, ge=1)

    @model_validator(mode="after")
    def _auth_is_explicit(self) -> Self:
        if not self.auth_disabled and not self.keys:
            raise ValueError(
                "no API keys: set TRANSITCAST_API_API_KEYS (comma-separated), or "
                "TRANSITCAST_API_AUTH_DISABLED=true for local use"
            )
        return self

    @property
    def keys(self) -> frozenset[str]:
        """The accepted API keys."""
        if self.api_keys is None:
            return frozenset()
        return frozenset(k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip())

    def model_source(self) -> Path | RegistrySource:
        """The local models folder, or the registry aliases when `model_alias` is set.

        Raises:
            ValueError: when neither is set (or an alias without a tracking URI), naming the variables.
        """
        if self.model_alias:
            if not self.mlflow_tracking_uri:
                raise ValueError(
                    f"model_alias {self.model_alias!r} needs an MLflow address: set TRANSITCAST_API_"
                    "MLFLOW_TRACKING_URI (transitcast serve sets it from the project's settings)"
                )
            return RegistrySource(self.model_alias, self.mlflow_tracking_uri)
        if self.models_dir is None:
            raise ValueError(
                "no models to serve: set TRANSITCAST_API_MODELS_DIR or TRANSITCAST_API_MODEL_ALIAS "
                "(transitcast serve sets them from the project settings)"
            )
        return self.models_dir
