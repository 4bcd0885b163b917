"""Stage: simulator (overseas-warehouse side). The overseas warehouses: their spec and the six defaults.

Reads nothing from disk and writes nothing. `WarehouseSpec` describes one overseas warehouse (market size,
listing share, prices, holding cost, line-haul days and mode mix from China); `DEFAULT_WAREHOUSES` are the
six warehouses of the default world, with the ids shared with the shipment simulator.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DEFAULT_WAREHOUSES", "WarehouseSpec"]


class WarehouseSpec(BaseModel):
    """One overseas warehouse: its market and the line-haul from China to it.

    Attributes:
        warehouse_id: fixed id shared with the shipment simulator (`WH-US-LAX`).
        country: ISO-2 country.
        region: ISO 3166-2 region.
        market_scale: demand of an average SKU here relative to the largest market.
        listing_share: probability that a SKU is listed (stocked) here.
        price_factor: local selling price relative to the SKU's list price (in USD).
        holding_cost_usd_per_unit_week: storage cost.
        sea_days: typical port-to-warehouse sea line-haul, without handling and customs.
        rail_days: typical China-Europe rail line-haul, or None when rail does not serve the warehouse.
        air_days: typical air freight line-haul.
        rail_share: share of regular orders sent by rail (the rest by sea).
        air_share: share of regular orders sent by air (fast movers with high value per kg).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    warehouse_id: str
    country: str
    region: str
    market_scale: float = Field(gt=0)
    listing_share: float = Field(gt=0, le=1)
    price_factor: float = Field(default=1.0, gt=0)
    holding_cost_usd_per_unit_week: float = Field(default=0.06, ge=0)
    sea_days: float = Field(gt=0)
    rail_days: float | None = None
    air_days: float = Field(gt=0)
    rail_share: float = Field(default=0.0, ge=0, le=1)
    air_share: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _check_mode_mix(self) -> WarehouseSpec:
        if self.rail_share + self.air_share > 1:
            raise ValueError("rail_share + air_share must not exceed 1")
        return self


DEFAULT_WAREHOUSES: tuple[WarehouseSpec, ...] = (
    WarehouseSpec(
        warehouse_id="WH-US-LAX",
        country="US",
        region="US-CA",
        market_scale=1.0,
        listing_share=0.9,
        holding_cost_usd_per_unit_week=0.055,
        sea_days=24.0,
        air_days=5.0,
    ),
    WarehouseSpec(
        warehouse_id="WH-US-NJ",
        country="US",
        region="US-NJ",
        market_scale=0.8,
        listing_share=0.6,
        holding_cost_usd_per_unit_week=0.065,
        sea_days=33.0,
        air_days=6.0,
    ),
    WarehouseSpec(
        warehouse_id="WH-GB-BHX",
        country="GB",
        region="GB-BIR",
        market_scale=0.55,
        listing_share=0.55,
        price_factor=1.08,
        holding_cost_usd_per_unit_week=0.075,
        sea_days=35.0,
        rail_days=20.0,
        air_days=6.0,
        rail_share=0.25,
    ),
    WarehouseSpec(
        warehouse_id="WH-DE-FRA",
        country="DE",
        region="DE-HE",
        market_scale=0.6,
        listing_share=0.55,
        price_factor=1.1,
        holding_cost_usd_per_unit_week=0.07,
        sea_days=35.0,
        rail_days=17.0,
        air_days=5.5,
        rail_share=0.4,
    ),
    WarehouseSpec(
        warehouse_id="WH-AU-SYD",
        country="AU",
        region="AU-NSW",
        market_scale=0.35,
        listing_share=0.4,
        price_factor=1.15,
        holding_cost_usd_per_unit_week=0.085,
        sea_days=22.0,
        air_days=5.0,
    ),
    WarehouseSpec(
        warehouse_id="WH-CA-YYZ",
        country="CA",
        region="CA-ON",
        market_scale=0.35,
        listing_share=0.4,
        price_factor=1.05,
        holding_cost_usd_per_unit_week=0.07,
        sea_days=31.0,
        air_days=6.0,
    ),
)
