"""Restock calibration: target -> quantile level map per volume band (fit, validation, use in the plan)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from serving.decisions.restock import (
    RestockConfig,
    fit_quantile_map,
    fit_restock_calibration,
    parse_restock_calibration,
    plan_restock,
    service_quantile,
    volume_band,
)

MAP = {"fast": ((0.5, 0.9, 0.98), (0.1, 0.5, 0.9)), "medium": ((0.6, 0.95), (0.2, 0.8))}


def test_uncalibrated_map_is_the_identity() -> None:
    target = np.array([0.5, 0.9, 0.98])
    out = service_quantile(target, np.array([0.2, 5.0, 50.0]), RestockConfig())
    np.testing.assert_array_equal(out, target)


def test_map_interpolates_per_band_and_clamps() -> None:
    cfg = RestockConfig(quantile_map=MAP)
    weekly = np.array([0.5, 5.0, 50.0, 50.0, 50.0, 5.0])  # slow, medium, fast x3, medium
    target = np.array([0.9, 0.6, 0.7, 0.99, 0.3, 0.775])
    out = service_quantile(target, weekly, cfg)
    # slow: no map (identity); medium 0.6 -> 0.2; fast 0.7 -> halfway 0.1..0.5 = 0.3; above/below: clamped;
    # medium 0.775 -> halfway 0.2..0.8 = 0.5
    np.testing.assert_allclose(out, [0.9, 0.2, 0.3, 0.9, 0.1, 0.5])
    assert volume_band(weekly, cfg).tolist() == ["slow", "medium", "fast", "fast", "fast", "medium"]


@settings(max_examples=25, deadline=None)
@given(a=st.floats(0.01, 0.99), b=st.floats(0.01, 0.99), weekly=st.floats(0.0, 100.0))
def test_mapped_level_is_monotone_in_the_target(a: float, b: float, weekly: float) -> None:
    cfg = RestockConfig(quantile_map=MAP)
    lo, hi = sorted((a, b))
    q = service_quantile(np.array([lo, hi]), np.array([weekly, weekly]), cfg)
    assert q[0] <= q[1]


def test_fit_inverts_the_realised_curve() -> None:
    # realised CSL 0.6 / 0.8 / 0.95 at levels 0.1 / 0.5 / 0.9
    xs, ys = fit_quantile_map([0.1, 0.5, 0.9], [0.6, 0.8, 0.95], [0.5, 0.7, 0.875, 0.99])
    assert xs == (0.5, 0.7, 0.875, 0.99)
    # 0.5 below the lowest realised -> lowest level; 0.7 halfway 0.6..0.8 -> 0.3; 0.875 halfway -> 0.7;
    # 0.99 above the highest -> highest level
    np.testing.assert_allclose(ys, [0.1, 0.3, 0.7, 0.9])


def test_fit_pools_violators_so_the_map_is_monotone() -> None:
    # noisy replay: 0.85 at level 0.4 then 0.8 at level 0.6 -> pooled to 0.825 at both
    xs, ys = fit_quantile_map([0.2, 0.4, 0.6, 0.8], [0.6, 0.85, 0.8, 0.95], [0.5, 0.6, 0.7, 0.8, 0.9, 0.99])
    assert np.all(np.diff(ys) >= 0)
    RestockConfig(quantile_map={"fast": (xs, ys)})  # validates
    i = xs.index(0.7)
    assert ys[i] == pytest.approx(0.2 + (0.7 - 0.6) / (0.825 - 0.6) * 0.2)


def test_fit_rejects_bad_levels() -> None:
    with pytest.raises(ValueError, match="increasing"):
        fit_quantile_map([0.5, 0.4], [0.8, 0.9], [0.9])


@pytest.mark.parametrize(
    ("qmap", "match"),
    [
        ({"fast": ((0.5, 0.9), (0.6, 0.4))}, "levels not decrease"),
        ({"fast": ((0.9, 0.5), (0.4, 0.6))}, "targets must increase"),
        ({"huge": ((0.5,), (0.4,))}, "band 'huge'"),
        ({"fast": ((0.5, 0.9), (0.4,))}, "same length"),
        ({"fast": ((0.5, 1.0), (0.4, 0.6))}, r"in \(0, 1\)"),
    ],
)
def test_config_rejects_a_bad_map(qmap: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        RestockConfig(quantile_map=qmap)


def test_from_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    qmap = {"fast": {"targets": [0.5, 0.9], "levels": [0.2, 0.7]}}
    path.write_text(json.dumps({"volume_bands": [2.0, 20.0], "quantile_map": qmap}))
    cfg = RestockConfig.from_json(path, seed=3)
    assert cfg.volume_bands == (2.0, 20.0) and cfg.seed == 3
    assert cfg.quantile_map == {"fast": ((0.5, 0.9), (0.2, 0.7))}


def _plan(cfg: RestockConfig) -> dict:
    # 4 paths of 20, 30, 40, 50 units a week (fast band), lead 0: demand over cover = one week
    rows = [("W1", "S1", p, h, float(u)) for p, u in enumerate((20, 30, 40, 50)) for h in range(1, 5)]
    paths = pl.DataFrame(rows, schema=["warehouse_id", "sku_id", "path_id", "horizon", "units"], orient="row")
    pos = pl.DataFrame(
        {"warehouse_id": ["W1"], "sku_id": ["S1"], "on_hand_units": [0], "on_order_units": [0]}
    )
    skus = pl.DataFrame({"sku_id": ["S1"], "unit_cost_usd": [5.0], "price_usd": [15.0], "weight_kg": [0.5],
                         "case_pack": [1], "min_order_units": [0]})  # fmt: skip
    wh = pl.DataFrame({"warehouse_id": ["W1"], "capacity_units": [10_000]})
    lead = pl.DataFrame({"warehouse_id": ["W1"], "mode": ["sea"], "lead_days": [0.0]})
    fr = pl.DataFrame({"warehouse_id": ["W1"], "mode": ["sea"], "fixed_usd": [60.0], "per_kg_usd": [1.0]})
    return plan_restock(paths, pos, skus, wh, lead, fr, None, cfg).row(0, named=True)


def test_plan_uses_the_mapped_level() -> None:
    base = RestockConfig(handling_days=0.0, modes=("sea",), service_by_class={"A": 0.9, "B": 0.9, "C": 0.9})
    plain = _plan(base)
    # uncalibrated: P90 of (20, 30, 40, 50) = 47 -> 47
    assert plain["order_up_to_units"] == 47 and plain["service_quantile"] == pytest.approx(0.9)
    # calibrated: target 0.9 -> level 0.5 in the fast band: P50 = 35
    cal = _plan(base.model_copy(update={"quantile_map": {"fast": ((0.5, 0.9), (0.1, 0.5))}}))
    assert cal["order_up_to_units"] == 35 and cal["order_units"] == 35
    assert cal["service_target"] == pytest.approx(0.9) and cal["service_quantile"] == pytest.approx(0.5)
    assert "P50 of demand" in cal["reason"] and "service 90%" in cal["reason"]
    # a map for another band leaves this fast series alone
    other = _plan(base.model_copy(update={"quantile_map": {"slow": ((0.5, 0.9), (0.1, 0.5))}}))
    assert other["order_up_to_units"] == 47


def test_from_json_names_a_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"quantile_map": {"fast": {"targets": [0.5]}}}))
    with pytest.raises(ValueError, match="volume_bands and quantile_map"):
        RestockConfig.from_json(path)


def test_fit_restock_calibration_averages_windows_and_skips_empty_bands() -> None:
    levels = [0.1, 0.5, 0.9]
    curves = {
        "fast": [[0.5, 0.7, 0.9], [0.7, 0.9, 1.0]],  # mean 0.6, 0.8, 0.95
        "slow": [[float("nan")] * 3, [float("nan")] * 3],  # no slow series in any window
    }
    cal = fit_restock_calibration(
        levels, curves, targets=[0.7, 0.875], windows=["a", "b"], data_version="abc"
    )
    assert cal.realised_csl["fast"] == (0.6, 0.8, 0.95)
    assert "slow" not in cal.quantile_map
    np.testing.assert_allclose(cal.quantile_map["fast"][1], [0.3, 0.7])
    back = parse_restock_calibration(cal.to_json())
    assert back.quantile_map == cal.quantile_map and back.data_version == "abc" and back.windows == ("a", "b")
    assert back.realised_csl["fast"] == cal.realised_csl["fast"] and np.isnan(back.realised_csl["slow"]).all()
    cfg = RestockConfig.model_validate(back.config_fields())
    assert cfg.quantile_map == cal.quantile_map


def test_parse_restock_calibration_names_the_file_and_the_rule() -> None:
    with pytest.raises(ValueError, match=r"cal\.json: calibration needs volume_bands"):
        parse_restock_calibration("not json", source="cal.json")
    with pytest.raises(ValueError, match="volume_bands must hold 2 numbers"):
        parse_restock_calibration('{"volume_bands": [1], "quantile_map": {}}')
