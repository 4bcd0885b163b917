"""The HTTP API's routes through TestClient: auth, validation, fallbacks, order, parity with the Predictor,
answers that match their response models."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from serving.http.app import create_app
from serving.http.deps import get_predictor
from serving.http.schemas import EtaPrediction, EtaResponse
from serving.http.settings import ApiSettings
from serving.online.inputs import INPUT_COLUMNS
from serving.online.predictor import OUTPUT_COLUMNS, Predictor

KEY = "test-key"
AUTH = {"X-API-Key": KEY}


def _settings(models_dir: Path, **kw: Any) -> ApiSettings:
    return ApiSettings(api_keys=f"{KEY},other-key", models_dir=models_dir, poll_seconds=0, **kw)


@pytest.fixture(scope="module")
def client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    forecasts = tmp_path_factory.mktemp("forecasts")
    app = create_app(_settings(models_dir, forecasts_dir=forecasts, max_batch=50, max_body_bytes=200_000))
    with TestClient(app) as c:
        yield c


def _payload(rows: pl.DataFrame) -> list[dict[str, Any]]:
    selected = rows.select(INPUT_COLUMNS).with_columns(pl.col("created_at").dt.to_string("%+"))
    return json.loads(selected.write_json())


def test_api_settings_refuse_to_start_without_keys_unless_explicit(models_dir: Path) -> None:
    with pytest.raises(ValueError, match="TRANSITCAST_API_API_KEYS"):
        ApiSettings(models_dir=models_dir)
    assert ApiSettings(auth_disabled=True).keys == frozenset()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-key"),
        pytest.param({"X-API-Key": "wrong"}, 401, id="wrong-key"),
        pytest.param({"X-API-Key": "other-key"}, 200, id="second-key"),
        pytest.param(AUTH, 200, id="key"),
    ],
)
def test_api_key_is_required(client: TestClient, headers: dict[str, str], status: int) -> None:
    assert client.get("/v1/models", headers=headers).status_code == status
    assert client.get("/healthz").status_code == 200


def test_api_eta_returns_rows_in_request_order(client: TestClient, open_rows: pl.DataFrame) -> None:
    rows = open_rows.head(5).reverse()
    r = client.post("/v1/eta", json={"shipments": _payload(rows)}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["shipment_id"] for p in body["predictions"]] == rows["shipment_id"].to_list()
    version = client.get("/v1/models", headers=AUTH).json()["model_version"]
    assert body["model_version"] == version
    first = body["predictions"][0]
    assert first["eta_days_q50"] <= first["eta_days_q80"] <= first["eta_days_q95"]
    assert dt.date.fromisoformat(first["promise_date"]) >= rows["created_at"][0].date()


def test_api_eta_answer_is_its_response_model(client: TestClient, open_rows: pl.DataFrame) -> None:
    r = client.post("/v1/eta", json={"shipments": _payload(open_rows.head(3))}, headers=AUTH)
    assert r.status_code == 200, r.text
    EtaResponse.model_validate_json(r.content)  # raises on a missing field or a wrong type
    body = r.json()
    assert set(body) == set(EtaResponse.model_fields)
    for prediction in body["predictions"]:  # nothing the documented schema does not list, nothing missing
        assert list(prediction) == list(EtaPrediction.model_fields) == list(OUTPUT_COLUMNS)


def test_api_online_equals_batch_scoring(
    client: TestClient, models_dir: Path, open_rows: pl.DataFrame
) -> None:
    rows = open_rows.head(12)
    payload = _payload(rows)
    with ThreadPoolExecutor(6) as pool:  # concurrent single-shipment requests share micro-batches
        responses = list(
            pool.map(lambda s: client.post("/v1/eta", json={"shipments": [s]}, headers=AUTH), payload)
        )
    online = pl.DataFrame([r.json()["predictions"][0] for r in responses])
    batch = Predictor.from_dir(models_dir).predict_shipments(rows)
    for col in ("eta_days_q50", "eta_days_q95", "p_late", "p_inspection", "clearance_days_q80"):
        assert online[col].to_list() == pytest.approx(batch[col].to_list(), rel=1e-9), col
    assert online["shipment_id"].to_list() == rows["shipment_id"].to_list()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("weight_kg", -1.0, id="negative-weight"),
        pytest.param("mode", "teleport", id="unknown-mode"),
        pytest.param("created_at", "2025-11-28T09:30:00", id="naive-timestamp"),
        pytest.param("destination_country", "usa", id="bad-country"),
        pytest.param("hs_code", "85x", id="bad-hs-code"),
        pytest.param("promised_date", "2030-01-01", id="promise-too-far"),
        pytest.param("promised_date", "2000-01-01", id="promise-before-booking"),
        pytest.param("destination_region", None, id="missing-required"),
    ],
)
def test_api_bad_field_gets_422_naming_it(
    client: TestClient, open_rows: pl.DataFrame, field: str, value: object
) -> None:
    shipment = {**_payload(open_rows.head(1))[0], field: value}
    r = client.post("/v1/eta", json={"shipments": [shipment]}, headers=AUTH)
    assert r.status_code == 422
    assert any(e["loc"][:3] == ["body", "shipments", 0] and field in e["loc"] for e in r.json()["detail"])


def test_api_contract_rule_gets_422_with_rule_and_fix(client: TestClient, open_rows: pl.DataFrame) -> None:
    good = _payload(open_rows.head(2))
    bad = {**good[1], "origin_country": "XX"}  # two capital letters (the schema's form), not a country
    r = client.post("/v1/eta", json={"shipments": [good[0], bad]}, headers=AUTH)
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "shipments", 1, "origin_country"]
    assert error["type"] == "iso2_country" and "fix:" in error["msg"] and error["input"] == "XX"


def test_api_malformed_json_and_limits(client: TestClient, open_rows: pl.DataFrame) -> None:
    bad = client.post(
        "/v1/eta", content=b'{"shipments": [', headers={**AUTH, "content-type": "application/json"}
    )
    assert bad.status_code in (400, 422)
    big = client.post("/v1/eta", content=b" " * 300_000, headers={**AUTH, "content-type": "application/json"})
    assert big.status_code == 413
    many = [{**_payload(open_rows.head(1))[0], "shipment_id": f"X{i}"} for i in range(51)]
    r = client.post("/v1/eta", json={"shipments": many}, headers=AUTH)
    assert r.status_code == 422 and "shipments" in r.text
    dup = _payload(open_rows.head(1)) * 2
    assert client.post("/v1/eta", json={"shipments": dup}, headers=AUTH).status_code == 422


def test_api_unknown_lane_is_flagged_not_500(client: TestClient, open_rows: pl.DataFrame) -> None:
    shipment = {**_payload(open_rows.head(1))[0], "origin_hub": "NOWHERE", "carrier": "Unheard Of Post"}
    r = client.post("/v1/eta", json={"shipments": [shipment]}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["predictions"][0]["is_unknown_lane"] is True


def test_api_eta_with_events_gives_remaining_days(
    client: TestClient, serving_world: dict[str, pl.DataFrame]
) -> None:
    ships, events = serving_world["shipments"], serving_world["shipment_events"]
    sid = events.filter(
        pl.col("shipment_id").is_in(ships.filter(pl.col("status") == "in_transit")["shipment_id"].implode())
    )["shipment_id"][0]
    scans = events.filter(pl.col("shipment_id") == sid).select(
        "shipment_id", pl.col("event").cast(pl.String), pl.col("event_at").dt.to_string("%+"), "country"
    )
    body = {"shipments": _payload(ships.filter(pl.col("shipment_id") == sid)), "events": scans.to_dicts()}
    r = client.post("/v1/eta", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["remaining_days_q50"] is not None


def test_api_route_ranks_options(client: TestClient) -> None:
    order = {
        "order_id": "O1", "created_at": "2025-02-20T09:00:00Z", "origin_hub": "SZX",
        "destination_country": "US", "weight_kg": 0.8, "declared_value_usd": 35.0,
        "promised_date": "2025-03-10", "hs_code": "851830",
    }  # fmt: skip
    r = client.post("/v1/route", json={"orders": [order]}, headers=AUTH)
    assert r.status_code == 200, r.text
    options = r.json()["options"]
    assert options and [o["rank"] for o in options] == list(range(1, len(options) + 1))
    assert sum(o["is_recommended"] for o in options) == 1


def test_api_forecast_reads_the_latest_week(client: TestClient) -> None:
    folder: Path = client.app.state.settings.forecasts_dir  # type: ignore[attr-defined]
    assert client.get("/v1/forecast/W1/S1", headers=AUTH).status_code == 404
    for week, level in (("2025-W08", 1.0), ("2025-W09", 2.0)):
        (folder / week).mkdir()
        pl.DataFrame(
            {
                "forecast_week": [week] * 2,
                "cutoff_date": [dt.date(2025, 2, 23)] * 2,
                "warehouse_id": ["W1"] * 2,
                "sku_id": ["S1"] * 2,
                "horizon": [2, 1],
                "week_start": [dt.date(2025, 3, 10), dt.date(2025, 3, 3)],
                "demand_mean": [level] * 2,
                "demand_q50": [level] * 2,
                "demand_q80": [level + 1] * 2,
                "demand_q90": [level + 2] * 2,
                "demand_q95": [level + 3] * 2,
                "volume_class": ["smooth"] * 2,
                "model_version": ["m1"] * 2,
                "data_version": ["d1"] * 2,
            }  # fmt: skip
        ).write_parquet(folder / week / "forecast.parquet")
    r = client.get("/v1/forecast/W1/S1", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["forecast_week"] == "2025-W09"
    assert [p["horizon"] for p in body["points"]] == [1, 2]
    assert body["points"][0]["demand_mean"] == 2.0
    assert client.get("/v1/forecast/W1/NOPE", headers=AUTH).status_code == 404


def test_api_predictor_can_be_swapped_by_dependency_override(
    models_dir: Path, open_rows: pl.DataFrame
) -> None:
    app = create_app(_settings(models_dir))
    with TestClient(app) as c:
        real = app.state.holder.predictor
        fake = Predictor(real.models, real.snapshot, replace(real.info, model_version="fake-v9"))
        app.dependency_overrides[get_predictor] = lambda: fake
        r = c.post("/v1/eta", json={"shipments": _payload(open_rows.head(1))}, headers=AUTH)
    assert r.json()["model_version"] == "fake-v9"
    assert r.json()["predictions"][0]["model_version"] == "fake-v9"


def test_api_metrics_and_readiness(client: TestClient) -> None:
    assert client.get("/readyz").json()["status"] == "ready"
    text = client.get("/metrics").text
    assert 'transitcast_http_requests_total{method="GET",route="/readyz",status="200"}' in text
    assert "transitcast_http_request_seconds_bucket" in text


@pytest.mark.parametrize(
    ("path", "model"), [("/v1/eta", "EtaRequest"), ("/v1/route", "RouteRequest")], ids=["eta", "route"]
)
def test_api_openapi_examples_are_valid_requests(client: TestClient, path: str, model: str) -> None:
    spec = client.get("/openapi.json").json()
    example = spec["components"]["schemas"][model]["examples"][0]
    r = client.post(path, json=example, headers=AUTH)
    assert r.status_code == 200, r.text


def test_api_forecast_without_a_forecasts_folder_is_404_naming_the_setting(models_dir: Path) -> None:
    with TestClient(create_app(_settings(models_dir))) as c:
        r = c.get("/v1/forecast/W1/S1", headers=AUTH)
    assert r.status_code == 404 and "TRANSITCAST_API_FORECASTS_DIR" in r.json()["detail"]
