"""Routing per order: options, costs, chance constraint, ranking, errors."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.contract.schema import Mode
from serving.decisions.routing import RoutingConfig, recommend_routes, route_options

T0 = dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC)  # before the US de minimis change


def _orders(promise_days: int = 8, value: float = 20.0, country: str = "US") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "order_id": ["O1"],
            "created_at": [T0],
            "origin_hub": ["SZX"],
            "destination_country": [country],
            "weight_kg": [1.0],
            "declared_value_usd": [value],
            "promised_date": [T0.date() + dt.timedelta(days=promise_days)],
            "sku_id": ["SKU1"],
        }
    )


LANES = pl.DataFrame(
    {
        "origin_hub": ["SZX", "SZX", "SZX", "WH-US-LAX", "CAN"],
        "origin_country": ["CN", "CN", "CN", "US", "CN"],
        "destination_country": ["US", "US", "US", "US", "US"],
        "mode": ["postal", "dedicated_line", "express", "overseas_warehouse", "express"],
        "carrier": ["Post", "Line", "DHL", "USPS", "DHL"],
        "contract_transit_days": [15.0, 8.0, 5.0, 3.0, 5.0],
        "base_rate_usd": [1.0, 3.0, 15.0, 4.5, 15.0],
        "per_kg_rate_usd": [9.0, 8.0, 18.0, 1.2, 18.0],
    },
    schema_overrides={"mode": Mode},
)
ETA = {"postal": (14.0, 18.0, 25.0), "dedicated_line": (7.0, 8.5, 11.0), "express": (4.0, 5.0, 6.0),
       "overseas_warehouse": (2.0, 3.0, 4.0)}  # fmt: skip


def fake_scorer(rows: pl.DataFrame) -> pl.DataFrame:
    """ETA quantiles by mode, independent of everything else."""
    q = [ETA[str(m)] for m in rows["mode"].cast(pl.String)]
    return pl.DataFrame({f"eta_days_q{k}": [x[i] for x in q] for i, k in enumerate((50, 80, 95))})


def test_route_options_lanes_of_the_hub_and_warehouse_with_stock() -> None:
    stock = pl.DataFrame({"warehouse_id": ["WH-US-LAX"], "sku_id": ["SKU1"], "on_hand_units": [3]})
    opts = route_options(_orders(), LANES, stock)
    assert sorted(opts["option_id"].to_list()) == [
        "dedicated_line:Line:SZX", "express:DHL:SZX", "overseas_warehouse:USPS:WH-US-LAX", "postal:Post:SZX",
    ]  # fmt: skip
    assert opts.filter(pl.col("mode") == "express")["freight_usd"][0] == pytest.approx(33.0)
    no_stock = stock.with_columns(pl.lit(0).alias("on_hand_units"))
    assert "overseas_warehouse" not in route_options(_orders(), LANES, no_stock)["mode"].cast(pl.String)


def test_route_duties_only_over_de_minimis_and_from_china() -> None:
    cfg = RoutingConfig(duty_rates={"US": 0.1})
    stock = pl.DataFrame({"warehouse_id": ["WH-US-LAX"], "sku_id": ["SKU1"], "on_hand_units": [3]})
    low = route_options(_orders(value=20.0), LANES, stock, cfg)
    high = route_options(_orders(value=1000.0), LANES, stock, cfg)
    assert low["duties_usd"].max() == 0.0
    duties = dict(zip(high["source"], high["duties_usd"], strict=True))
    assert duties["china"] == pytest.approx(100.0) and duties["warehouse"] == 0.0


def test_recommend_routes_picks_cheapest_feasible() -> None:
    # promise in 9 days (end of day: 9.625 days): postal late, the line P(on time) 0.87, express sure.
    cfg = RoutingConfig(on_time_target=0.85, late_penalty_usd=10.0)
    out = recommend_routes(_orders(9), fake_scorer, LANES, None, cfg)
    best = out.filter(pl.col("rank") == 1)
    assert best["mode"].cast(pl.String).to_list() == ["dedicated_line"]
    assert best["is_feasible"][0]
    postal = out.filter(pl.col("mode") == "postal")
    assert not postal["is_feasible"][0]
    row = out.row(0, named=True)
    expected = row["freight_usd"] + row["duties_usd"] + row["p_late"] * 10
    assert row["expected_cost_usd"] == pytest.approx(expected)


def test_recommend_routes_warehouse_wins_when_stocked() -> None:
    stock = pl.DataFrame({"warehouse_id": ["WH-US-LAX"], "sku_id": ["SKU1"], "on_hand_units": [5]})
    out = recommend_routes(_orders(8), fake_scorer, LANES, stock, RoutingConfig())
    assert out.filter(pl.col("is_recommended"))["source"].to_list() == ["warehouse"]


def test_recommend_routes_no_feasible_option_says_so() -> None:
    out = recommend_routes(_orders(4), fake_scorer, LANES, None, RoutingConfig(on_time_target=0.99))
    assert not out["is_feasible"].any()
    best = out.filter(pl.col("rank") == 1)
    assert best["reason"][0].startswith("no option meets")
    assert best["p_on_time"][0] == out["p_on_time"].max()  # the most reliable option comes first
    assert best["mode"].cast(pl.String)[0] == "express"


def test_recommend_routes_uses_model_p_late_when_given() -> None:
    def scorer(rows: pl.DataFrame) -> pl.DataFrame:
        return fake_scorer(rows).with_columns(pl.lit(0.5).alias("p_late"))

    out = recommend_routes(_orders(40), scorer, LANES, None, RoutingConfig(p_late_source="model"))
    assert out["p_late"].to_list() == [0.5] * out.height
    eta_only = recommend_routes(_orders(40), scorer, LANES, None, RoutingConfig(p_late_source="eta"))
    assert eta_only["p_late"].max() < 0.01


def test_recommend_routes_bad_input_named() -> None:
    with pytest.raises(ValueError, match="promised_date"):
        recommend_routes(_orders().drop("promised_date"), fake_scorer, LANES, None, RoutingConfig())
    with pytest.raises(ValueError, match="row 0: weight_kg"):
        recommend_routes(_orders().with_columns(pl.lit(0.0).alias("weight_kg")), fake_scorer, LANES, None,
                         RoutingConfig())  # fmt: skip
    with pytest.raises(ValueError, match="scorer returned"):
        recommend_routes(_orders(), lambda r: fake_scorer(r).head(1), LANES, None, RoutingConfig())


@settings(max_examples=40, deadline=None)
@given(
    etas=st.lists(
        st.tuples(st.floats(0.5, 30), st.floats(0, 10), st.floats(0, 10), st.floats(0.5, 40)),
        min_size=2,
        max_size=6,
    ),
    target=st.floats(0.5, 0.98),
    penalty=st.floats(0, 100),
)
def test_routing_never_picks_an_infeasible_option_when_a_feasible_one_exists(
    etas: list[tuple[float, float, float, float]], target: float, penalty: float
) -> None:
    n = len(etas)
    lanes = pl.DataFrame(
        {
            "origin_hub": ["SZX"] * n,
            "origin_country": ["CN"] * n,
            "destination_country": ["US"] * n,
            "mode": ["express"] * n,
            "carrier": [f"C{i}" for i in range(n)],
            "contract_transit_days": [5.0] * n,
            "base_rate_usd": [e[3] for e in etas],
            "per_kg_rate_usd": [1.0] * n,
        },
        schema_overrides={"mode": Mode},
    )
    by_carrier = {f"C{i}": (e[0], e[0] + e[1], e[0] + e[1] + e[2]) for i, e in enumerate(etas)}

    def scorer(rows: pl.DataFrame) -> pl.DataFrame:
        q = [by_carrier[c] for c in rows["carrier"]]
        return pl.DataFrame({f"eta_days_q{k}": [x[i] for x in q] for i, k in enumerate((50, 80, 95))})

    cfg = RoutingConfig(on_time_target=target, late_penalty_usd=penalty)
    out = recommend_routes(_orders(7), scorer, lanes, None, cfg)
    best = out.filter(pl.col("rank") == 1)
    assert best.height == 1
    if out["is_feasible"].any():
        assert best["is_feasible"][0]
        assert best["expected_cost_usd"][0] <= out.filter("is_feasible")["expected_cost_usd"].min() + 1e-9


@pytest.mark.parametrize(
    "unknown", [pytest.param(None, id="null-quantiles"), pytest.param(float("nan"), id="nan-quantiles")]
)
def test_rank_routes_option_without_eta_is_never_feasible_nor_first(unknown: float | None) -> None:
    from serving.decisions.routing import rank_routes

    created = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
    scored = pl.DataFrame(
        {
            "order_id": ["o", "o"],
            "option_id": ["a:known", "b:unknown"],
            "created_at": [created, created],
            "promised_date": [dt.date(2025, 11, 20)] * 2,
            "freight_usd": [5.0, 1.0],  # the unknown option is cheaper
            "duties_usd": [0.0, 0.0],
            "eta_days_q50": [5.0, unknown],
            "eta_days_q80": [6.0, unknown],
            "eta_days_q95": [7.0, unknown],
        },
        schema_overrides={"eta_days_q50": pl.Float64, "eta_days_q80": pl.Float64, "eta_days_q95": pl.Float64},
    )
    ranked = rank_routes(scored, RoutingConfig(late_penalty_usd=0.0)).sort("rank")
    assert ranked["option_id"].to_list() == ["a:known", "b:unknown"]
    assert ranked["is_feasible"].to_list() == [True, False]
