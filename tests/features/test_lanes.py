"""Lane statistics: expected transit days follow lane -> contract -> region -> country -> mode."""

from __future__ import annotations

import polars as pl
import pytest

from features.booking_config import BookingFeatureConfig
from features.lanes import contract_days, expected_transit_days, lane_feature_names, transit_quantile_name

CFG = BookingFeatureConfig(min_lane_obs=10)
P80 = {p: transit_quantile_name(p, CFG.fallback_n, 0.8) for p in ("region_mode", "dest_mode", "mode")}


def _row(lane_n: int, contract: float | None, region_n: int, dest: float | None) -> dict[str, object]:
    return {
        transit_quantile_name("lane", CFG.transit_n, 0.8): 5.0,
        "lane_n_obs": lane_n,
        "contract_transit_days": contract,
        P80["region_mode"]: 6.0,
        "region_mode_n_obs": region_n,
        P80["dest_mode"]: dest,
        P80["mode"]: 8.0,
        "promised_days": 9,
    }


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(_row(10, 3.0, 50, 7.0), 5.0, id="lane-with-enough-history"),
        pytest.param(_row(9, 3.0, 50, 7.0), 3.0, id="thin-lane-contract"),
        pytest.param(_row(9, None, 10, 7.0), 6.0, id="region-with-enough-history"),
        pytest.param(_row(9, None, 9, 7.0), 7.0, id="thin-region-destination"),
        pytest.param(_row(0, None, 0, None), 8.0, id="new-destination-mode"),
    ],
)
def test_expected_transit_days_hierarchy(row: dict[str, object], expected: float) -> None:
    df = pl.DataFrame(
        [row], schema_overrides={"contract_transit_days": pl.Float64, P80["dest_mode"]: pl.Float64}
    )
    assert df.select(expected_transit_days(CFG)).item() == expected


def test_mode_level_feeds_the_expected_days_but_is_not_a_feature() -> None:
    names = lane_feature_names(CFG)
    assert P80["region_mode"] in names and P80["dest_mode"] in names
    assert not any(n.startswith("mode_") for n in names)


def test_contract_days_without_carrier_is_the_median_quote_of_the_lane() -> None:
    lanes = pl.DataFrame(
        {
            "origin_hub": ["SZX"] * 3,
            "destination_country": ["US"] * 3,
            "mode": ["express"] * 3,
            "carrier": ["DHL", "FedEx", "UPS"],
            "contract_transit_days": [4.0, 0.0, 6.0],
        }
    )
    by_lane = contract_days(lanes, ("origin_hub", "destination_country", "mode"))
    assert by_lane["contract_transit_days"].to_list() == [4.0]
    with_carrier = contract_days(lanes, ("origin_hub", "destination_country", "mode", "carrier"))
    assert with_carrier["contract_transit_days"].to_list() == [4.0, 0.0, 6.0]
