"""Simulator shapes of the robustness suite: each tiny world has the shape its name promises."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import get_args

import numpy as np
import polars as pl
import pytest

from features.sources.simulator import SimulatedWorld, SimulatorConfig, simulate
from features.sources.simulator.shapes import NO_CUSTOMS_COLUMNS, SHAPES, ShapeName, shape_config
from features.sources.simulator.shipments import ShipmentConfig

TINY = 1_500


def _tiny(config: SimulatorConfig) -> SimulatorConfig:
    ship = config.shipments.model_copy(update={"n_shipments": TINY, "oracle_draws": 2})
    demand = config.demand.model_copy(update={"n_skus": 20})  # the demand side is most of the time
    return config.model_copy(update={"shipments": ship, "demand": demand})


@cache
def _world(shape: str) -> SimulatedWorld:
    base = _tiny(SimulatorConfig()) if shape == "default" else _tiny(shape_config(shape))
    return simulate(base)


def _transit(world: SimulatedWorld) -> pl.DataFrame:
    return world.tables["shipments"].select(
        "shipment_id",
        "created_at",
        "mode",
        ((pl.col("delivered_at") - pl.col("created_at")).dt.total_seconds() / 86_400).alias("days"),
    )


def test_shapes_every_name_has_one_shape() -> None:
    assert list(SHAPES) == list(get_args(ShapeName))
    assert all(s.name == name for name, s in SHAPES.items())


def test_shape_config_unknown_name_lists_the_shapes() -> None:
    with pytest.raises(ValueError, match="unknown shape 'tiny'.*six_months.*drift"):
        shape_config("tiny")


def test_shape_config_small_has_5000_shipments_and_others_the_suite_size() -> None:
    assert shape_config("small").shipments.n_shipments == 5_000
    assert shape_config("fast").shipments.n_shipments < SimulatorConfig().shipments.n_shipments


def test_six_months_world_books_only_the_last_six_months() -> None:
    config = shape_config("six_months")
    created = _world("six_months").tables["shipments"]["created_at"]
    assert (config.end_date - config.start_date).days == 182
    assert created.min().date() >= config.start_date  # type: ignore[union-attr]
    assert created.max().date() <= config.end_date  # type: ignore[union-attr]


def test_domestic_world_stays_in_one_country_without_customs() -> None:
    world = _world("domestic")
    ships = world.tables["shipments"]
    assert ships.select(pl.col("origin_country").unique()).to_series().to_list() == ["US"]
    assert ships.select(pl.col("destination_country").unique()).to_series().to_list() == ["US"]
    assert ships["mode"].n_unique() == 1
    assert ships["warehouse_id"].null_count() == ships.height  # not overseas-warehouse stock
    assert world.tables["customs_declarations"].height == 0
    lanes = world.tables["lanes"]
    assert lanes.height > 0
    assert set(lanes["origin_country"]) == set(lanes["destination_country"]) == {"US"}
    assert set(lanes["mode"].cast(pl.String)) == set(ships["mode"].cast(pl.String))
    assert _transit(world)["days"].median() < 5  # type: ignore[operator]


def test_domestic_country_without_fulfilment_centres_is_refused() -> None:
    with pytest.raises(ValueError, match="domestic_country 'BR'.*choose one of"):
        ShipmentConfig(domestic_country="BR")


def test_no_customs_columns_world_lacks_only_those_columns() -> None:
    world, default = _world("no_customs_columns"), _world("default")
    assert set(default.tables["shipments"].columns) - set(world.tables["shipments"].columns) == set(
        NO_CUSTOMS_COLUMNS
    )
    assert world.tables["customs_declarations"].columns == default.tables["customs_declarations"].columns


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        pytest.param({"shipments": ("shipment_id",)}, "key of shipments", id="key"),
        pytest.param({"shipments": ("colour",)}, "no column", id="unknown-column"),
        pytest.param({"parcels": ("hs_code",)}, "unknown table", id="unknown-table"),
    ],
)
def test_drop_columns_refuses_keys_and_unknown_names(drop: dict[str, tuple[str, ...]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorConfig(drop_columns=drop)


def test_fast_world_delivers_the_same_parcels_in_about_half_the_time() -> None:
    fast, default = _transit(_world("fast")), _transit(_world("default"))
    both = fast.join(default, on="shipment_id", suffix="_default").drop_nulls()
    ratio = (both["days"] / both["days_default"]).median()
    assert 0.4 < ratio < 0.75  # type: ignore[operator]
    contract = _world("fast").tables["lanes"]["contract_transit_days"]
    assert contract.median() < 0.75 * _world("default").tables["lanes"]["contract_transit_days"].median()  # type: ignore[operator]


def test_drift_world_is_unchanged_before_the_drift_and_slower_at_the_end() -> None:
    config = shape_config("drift")
    drift_start = dt.datetime.combine(
        config.end_date - dt.timedelta(days=config.shipments.drift_days - 1), dt.time(), dt.UTC
    )
    drift, default = _transit(_world("drift")), _transit(_world("default"))
    both = drift.join(default, on="shipment_id", suffix="_default").drop_nulls()
    before = both.filter(pl.col("created_at") < drift_start - dt.timedelta(days=1))
    assert before.height > 0
    assert (before["days"] == before["days_default"]).all()
    last = both.filter(pl.col("created_at") >= pl.lit(drift_start) + dt.timedelta(days=120))
    assert (last["days"] / last["days_default"]).median() > 1.1  # type: ignore[operator]


def test_transit_factor_ramps_from_one_to_the_drift_scale() -> None:
    factor = ShipmentConfig(drift_scale=1.3, drift_days=10).transit_factor(n_sim=30, n_days=40)
    assert factor is not None
    assert np.all(factor[:20] == 1.0)
    assert factor[29] == pytest.approx(1.3)
    assert np.all(np.diff(factor[19:30]) > 0)
    assert np.all(factor[30:] == pytest.approx(1.3))
    assert ShipmentConfig().transit_factor(n_sim=30, n_days=40) is None
