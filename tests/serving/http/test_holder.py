"""The model holder's hot swap: new models load beside the old ones and swap in atomically; no request fails
or is dropped."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from serving.http.app import create_app
from serving.http.holder import source_version
from serving.http.settings import ApiSettings
from serving.online.predictor import Predictor

AUTH = {"X-API-Key": "k"}


class Source:
    """A model source whose champion can be moved by the test (what the registry alias is in production)."""

    def __init__(self, base: Predictor) -> None:
        self.base = base
        self.version = "v1"
        self.fail = False
        self.loads = 0

    def load(self, settings: ApiSettings) -> Predictor:  # noqa: ARG002
        if self.fail:
            raise RuntimeError("registry unreachable")
        self.loads += 1
        time.sleep(0.05)  # loading takes a while; requests keep being served meanwhile
        return Predictor(
            self.base.models, self.base.snapshot, replace(self.base.info, model_version=self.version)
        )

    def current(self, settings: ApiSettings) -> str:  # noqa: ARG002
        return self.version


@pytest.fixture(scope="module")
def base(models_dir: Path) -> Predictor:
    return Predictor.from_dir(models_dir)


def _body(rows: pl.DataFrame) -> dict[str, Any]:
    shipment = json.loads(
        rows.head(1)
        .drop(
            "delivered_at", "status", "shipping_cost_usd", "seller_id", "sku_id", "warehouse_id", strict=False
        )
        .with_columns(pl.col("created_at").dt.to_string("%+"))
        .write_json()
    )[0]
    return {"shipments": [shipment]}


def test_hot_swap_under_concurrent_requests_loses_nothing(
    base: Predictor, models_dir: Path, open_rows: pl.DataFrame
) -> None:
    source = Source(base)
    settings = ApiSettings(api_keys="k", models_dir=models_dir, poll_seconds=0)
    app = create_app(settings, loader=source.load, versioner=source.current)
    body = _body(open_rows)
    with TestClient(app) as client, ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client.post, "/v1/eta", json=body, headers=AUTH) for _ in range(120)]
        for version in ("v2", "v3"):
            time.sleep(0.2)
            source.version = version
            reload = client.post("/v1/admin/reload", headers=AUTH)
            assert reload.json() == {"swapped": True, "model_version": version, "error": None}
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200] * 120
    versions = {r.json()["model_version"] for r in responses}
    assert versions <= {"v1", "v2", "v3"} and len(versions) >= 2
    etas = {r.json()["predictions"][0]["eta_days_q50"] for r in responses}
    assert len(etas) == 1  # the same models under every version label: nothing mixed up


def test_hot_swap_by_polling_when_the_champion_moves(
    base: Predictor, models_dir: Path, open_rows: pl.DataFrame
) -> None:
    source = Source(base)
    settings = ApiSettings(api_keys="k", models_dir=models_dir, poll_seconds=0.05)
    app = create_app(settings, loader=source.load, versioner=source.current)
    with TestClient(app) as client:
        assert client.get("/v1/models", headers=AUTH).json()["model_version"] == "v1"
        time.sleep(0.3)
        assert source.loads == 1  # unchanged source: nothing reloaded
        source.version = "v2"
        deadline = time.time() + 5
        while client.get("/v1/models", headers=AUTH).json()["model_version"] != "v2":
            assert time.time() < deadline, "the poller never swapped in v2"
            time.sleep(0.05)
        assert client.post("/v1/eta", json=_body(open_rows), headers=AUTH).json()["model_version"] == "v2"


def test_hot_swap_failed_load_keeps_serving_the_old_models(base: Predictor, models_dir: Path) -> None:
    source = Source(base)
    app = create_app(
        ApiSettings(api_keys="k", models_dir=models_dir, poll_seconds=0),
        loader=source.load,
        versioner=source.current,
    )
    with TestClient(app) as client:
        source.fail, source.version = True, "v2"
        r = client.post("/v1/admin/reload", headers=AUTH).json()
        assert r["swapped"] is False and r["model_version"] == "v1" and "unreachable" in r["error"]
        assert client.get("/readyz").json()["model_version"] == "v1"


def test_source_version_changes_when_a_local_model_changes(models_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    settings = ApiSettings(api_keys="k", models_dir=copy)
    before = source_version(settings)
    meta = copy / "eta" / "metadata.json"
    meta.write_text(meta.read_text().replace('"kind"', '"kind" ', 1))
    assert source_version(settings) != before


def test_settings_without_a_model_source_refuse_to_build_the_app(models_dir: Path) -> None:
    with pytest.raises(ValueError, match="TRANSITCAST_API_MODELS_DIR"):
        create_app(ApiSettings(api_keys="k"))
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI"):
        create_app(ApiSettings(api_keys="k", model_alias="champion", models_dir=models_dir))


def test_no_models_yet_is_503_and_readiness_says_why(models_dir: Path) -> None:
    def broken(settings: ApiSettings) -> Predictor:
        raise FileNotFoundError("no eta model")

    app = create_app(ApiSettings(api_keys="k", models_dir=models_dir, poll_seconds=0), loader=broken)
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "loading",
            "model_version": None,
            "error": "FileNotFoundError: no eta model",
        }
        assert client.get("/v1/models", headers=AUTH).status_code == 503
