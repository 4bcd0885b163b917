"""The settings tree: defaults in code, then a YAML file, then the environment, then flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.config import CONFIG_ENV, Settings

_ENV = (
    "TRANSITCAST_DATA_DIR",
    "TRANSITCAST_OUTPUTS_DIR",
    "TRANSITCAST_MLFLOW_DIR",
    "TRANSITCAST_EXPERIMENT",
    "MLFLOW_TRACKING_URI",
    CONFIG_ENV,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_setup() -> None:
    settings = Settings()
    assert (settings.data_dir, settings.outputs_dir) == (Path("data"), Path("outputs"))
    tracking = settings.tracking
    assert tracking.mlflow_dir == Path("outputs") / "mlflow"
    assert tracking.tracking_uri == f"sqlite:///{(Path('outputs') / 'mlflow' / 'mlflow.db').resolve()}"
    assert tracking.server_uri is None and tracking.artifact_location is not None


def test_mlflow_dir_follows_the_outputs_root_unless_set() -> None:
    assert Settings(outputs_dir=Path("o")).tracking.mlflow_dir == Path("o") / "mlflow"
    assert Settings(outputs_dir=Path("o"), mlflow_dir=Path("m")).tracking.mlflow_dir == Path("m")


def test_existing_environment_variables_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSITCAST_DATA_DIR", "/d")
    monkeypatch.setenv("TRANSITCAST_OUTPUTS_DIR", "/o")
    monkeypatch.setenv("TRANSITCAST_MLFLOW_DIR", "/m")
    settings = Settings()
    assert (settings.data_dir, settings.outputs_dir, settings.tracking.mlflow_dir) == (
        Path("/d"),
        Path("/o"),
        Path("/m"),
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    tracking = Settings().tracking
    assert tracking.tracking_uri == "http://tracking:5000" and tracking.artifact_location is None


def test_precedence_flags_over_environment_over_yaml_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "transitcast.yaml"
    config.write_text("data_dir: /yaml/data\noutputs_dir: /yaml/outputs\nexperiment: from-yaml\n")
    from_file = Settings.load(config)
    assert (from_file.data_dir, from_file.experiment) == (Path("/yaml/data"), "from-yaml")
    assert from_file.mlflow_dir is None and from_file.config_file == config

    monkeypatch.setenv("TRANSITCAST_OUTPUTS_DIR", "/env/outputs")
    with_env = Settings.load(config)
    assert (with_env.data_dir, with_env.outputs_dir) == (Path("/yaml/data"), Path("/env/outputs"))

    flags = Settings.load(config, data_dir=Path("/flag"), outputs_dir=None)  # None: flag not given
    assert (flags.data_dir, flags.outputs_dir) == (Path("/flag"), Path("/env/outputs"))


def test_config_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("experiment: team\n")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    assert Settings().experiment == "team"


def test_unknown_key_or_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("outputs_dirr: /typo\n")
    with pytest.raises(ValidationError, match="outputs_dirr"):
        Settings.load(config)
    with pytest.raises(ValueError, match="nope.yaml not found"):
        Settings.load(tmp_path / "nope.yaml")


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().data_dir = Path("x")  # type: ignore[misc]
