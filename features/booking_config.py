"""Stage: features. The booking features' settings, and which optional shipments columns they read.

Reads and writes nothing. `BookingFeatureConfig` names every window, quantile and key of the booking
features (`features.shipment_features`); the same config always gives the same feature names, and it
travels with the models (in their metadata and in the serving snapshot).

A source may leave out the contract's omittable shipments columns (`OPTIONAL_INPUTS`: `carrier`,
`weight_kg`, `declared_value_usd`, `hs_code`, `item_count`, `incoterm`, `shipping_cost_usd`). The config's
`inputs` records which ones the features read: unset, they are resolved from the data
(`resolve_booking_config`); fixed (a trained model's), every frame built with the config must carry them.
Key columns that are absent are left out of the keys (a lane without `carrier` is
`origin_hub x destination_country x mode`).

Example:
    >>> cfg = resolve_booking_config(BookingFeatureConfig(), ["shipment_id", "weight_kg"])
    >>> cfg.inputs, lane_keys(cfg)
    (('weight_kg',), ('origin_hub', 'destination_country', 'mode'))
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.contract.schema import table_spec
from features.feature_set import FeatureSet

__all__ = [
    "DE_MINIMIS_FEATURES",
    "INPUT_FEATURES",
    "OPTIONAL_INPUTS",
    "BookingFeatureConfig",
    "config_inputs",
    "fallback_levels",
    "key_inputs",
    "lane_keys",
    "present_keys",
    "resolve_booking_config",
    "without_key_inputs",
]

DE_MINIMIS_FEATURES: tuple[str, ...] = ("de_minimis_usd", "is_over_de_minimis", "de_minimis_headroom_usd")
# The booking features each optional shipments column feeds (besides `carrier` in the lane keys and
# `hs_code` in the customs keys, handled where those statistics are built).
INPUT_FEATURES: dict[str, tuple[str, ...]] = {
    "carrier": ("carrier",),
    "weight_kg": ("weight_kg",),
    "declared_value_usd": ("declared_value_usd", *DE_MINIMIS_FEATURES),
    "hs_code": ("hs_chapter",),
    "item_count": ("item_count",),
    "incoterm": ("incoterm",),
}
OPTIONAL_INPUTS: tuple[str, ...] = tuple(
    c for c in table_spec("shipments").omittable_columns if c in INPUT_FEATURES
)
"""Shipments columns a source may leave out that the booking features read (`shipping_cost_usd`, known only
after booking, is read by none); the features that read an absent one are not built."""


class BookingFeatureConfig(BaseModel):
    """Windows, quantiles and keys of the booking features. The same config always gives the same names.

    Attributes:
        lane_keys: the lane (a key column absent from the data, such as `carrier`, is left out).
        region_keys / fallback_keys / mode_keys: the hierarchical fallback for thin lanes, finest first
            (`region_mode_*`, `dest_mode_*`, `mode_*` statistics); an empty tuple switches a level off.
        transit_n / transit_quantiles: last-N delivered parcels and the transit-day quantiles per lane.
        slowdown_short_n / slowdown_long_n: medians compared for the recent slowdown.
        on_time_n: last-N parcels whose punctuality is known, per lane.
        fallback_n: last-N parcels for the fallback key's statistics.
        volume_days: booked-volume windows (days).
        congestion_days: (short, long) windows of the congestion ratio; both are added to the volumes.
        min_lane_obs: delivered parcels a lane needs before its P80 is the expected transit time.
        customs_n / customs_dest_n: last-N declarations per HS chapter x destination / per destination.
        clearance_quantile: quantile of clearance days per HS chapter x destination.
        inspection_known_after_days: delay after `declared_at` at which the inspection flag is known.
        inputs: the optional shipments columns (`OPTIONAL_INPUTS`) the features read. None: every one the
            data has (`resolve_booking_config` fixes it from the data); a fixed tuple is required of every
            frame built with it, so a model trained with a column refuses rows without it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lane_keys: tuple[str, ...] = ("origin_hub", "destination_country", "mode", "carrier")
    region_keys: tuple[str, ...] = ("destination_region", "mode")
    fallback_keys: tuple[str, ...] = ("destination_country", "mode")
    mode_keys: tuple[str, ...] = ("mode",)
    transit_n: int = Field(default=50, ge=2)
    transit_quantiles: tuple[float, ...] = (0.5, 0.8, 0.95)
    slowdown_short_n: int = Field(default=10, ge=1)
    slowdown_long_n: int = Field(default=100, ge=2)
    on_time_n: int = Field(default=100, ge=1)
    fallback_n: int = Field(default=200, ge=2)
    volume_days: tuple[int, ...] = (7, 28)
    congestion_days: tuple[int, int] = (7, 91)
    min_lane_obs: int = Field(default=10, ge=1)
    customs_n: int = Field(default=200, ge=1)
    customs_dest_n: int = Field(default=1000, ge=1)
    clearance_quantile: float = Field(default=0.9, gt=0.0, lt=1.0)
    inspection_known_after_days: float = Field(default=1.0, ge=0.0)
    inputs: tuple[str, ...] | None = None

    @field_validator("inputs")
    @classmethod
    def _known_inputs(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = sorted(set(value or ()) - set(OPTIONAL_INPUTS))
        if unknown:
            raise ValueError(
                f"inputs {unknown} are not optional shipments columns: {', '.join(OPTIONAL_INPUTS)}"
            )
        return value


def resolve_booking_config(config: BookingFeatureConfig, columns: Iterable[str]) -> BookingFeatureConfig:
    """`config` with its `inputs` fixed: the optional shipments columns present in `columns`.

    A config whose `inputs` are already fixed (a trained model's) is returned as is after checking that
    `columns` hold every one of them.

    Raises:
        ValueError: a fixed input is absent from `columns` (naming it).
    """
    present = set(columns)
    if config.inputs is not None:
        FeatureSet((), (), config.inputs).require(present, table="shipments")
        return config
    return config.model_copy(update={"inputs": tuple(c for c in OPTIONAL_INPUTS if c in present)})


def config_inputs(cfg: BookingFeatureConfig) -> tuple[str, ...]:
    """The optional inputs of a config: its fixed `inputs`, or every optional column when unset."""
    return OPTIONAL_INPUTS if cfg.inputs is None else cfg.inputs


def present_keys(keys: tuple[str, ...], cfg: BookingFeatureConfig) -> tuple[str, ...]:
    """`keys` without the optional inputs the config lacks."""
    inputs = config_inputs(cfg)
    return tuple(k for k in keys if k not in OPTIONAL_INPUTS or k in inputs)


def key_inputs(cfg: BookingFeatureConfig) -> tuple[str, ...]:
    """The optional columns some key of the config uses (a history keyed by them must carry them)."""
    keys = {k for ks in (cfg.lane_keys, cfg.region_keys, cfg.fallback_keys, cfg.mode_keys) for k in ks}
    return tuple(c for c in OPTIONAL_INPUTS if c in keys)


def without_key_inputs(cfg: BookingFeatureConfig, columns: Iterable[str]) -> BookingFeatureConfig:
    """`cfg` without the key inputs absent from `columns` (a history without `carrier`); else unchanged."""
    present = set(columns)
    missing = [c for c in key_inputs(cfg) if c not in present and c in config_inputs(cfg)]
    if not missing:
        return cfg
    return cfg.model_copy(update={"inputs": tuple(c for c in config_inputs(cfg) if c not in missing)})


def lane_keys(config: BookingFeatureConfig) -> tuple[str, ...]:
    """The lane key columns of a config: its `lane_keys` without the optional inputs it lacks (`carrier`)."""
    return present_keys(config.lane_keys, config)


def fallback_levels(cfg: BookingFeatureConfig) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(prefix, keys) of the fallback levels, finest first; empty levels are left out."""
    levels = (("region_mode", cfg.region_keys), ("dest_mode", cfg.fallback_keys), ("mode", cfg.mode_keys))
    return tuple((prefix, present_keys(keys, cfg)) for prefix, keys in levels if keys)
