"""Stage: simulate. The SKU catalogue the shipment simulator's sellers ship.

Reads nothing. `sku_catalog` draws the default catalogue (the same for every seed) from the HS chapters of
`world`; `catalog_from_skus` turns a contract `skus` table (e.g. the demand side's) into the same form, so
SKU ids and HS codes agree across tables.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl

from features.sources.simulator.world import HS_CHAPTERS, OTHER_CHAPTER

__all__ = ["catalog_from_skus", "sku_catalog"]

_CATALOG_SEED = 20_240_611


@lru_cache(maxsize=8)
def sku_catalog(n_skus: int = 200) -> pl.DataFrame:
    """The SKUs sellers ship (the same for every seed), ids `SKU0001`...

    Returns:
        Frame with `sku_id`, `category` (HS chapter name), `hs_chapter`, `hs_code`, `unit_value_usd`,
        `unit_weight_kg` and `popularity` (relative sales weight, sums to 1).
    """
    rng = np.random.default_rng(_CATALOG_SEED)
    shares = np.array([c.share for c in HS_CHAPTERS])
    chapter = rng.choice(len(HS_CHAPTERS), size=n_skus, p=shares / shares.sum())
    code = np.array([HS_CHAPTERS[c].codes[rng.integers(len(HS_CHAPTERS[c].codes))] for c in chapter])
    value = np.array([HS_CHAPTERS[c].unit_value_usd for c in chapter]) * rng.lognormal(0.0, 0.5, n_skus)
    weight = np.array([HS_CHAPTERS[c].unit_weight_kg for c in chapter]) * rng.lognormal(0.0, 0.35, n_skus)
    popularity = rng.permutation(1.0 / np.arange(1, n_skus + 1) ** 0.8)
    return pl.DataFrame(
        {
            "sku_id": [f"SKU{i + 1:04d}" for i in range(n_skus)],
            "category": [HS_CHAPTERS[c].name for c in chapter],
            "hs_chapter": [HS_CHAPTERS[c].chapter for c in chapter],
            "hs_code": code,
            "unit_value_usd": np.round(value, 2),
            "unit_weight_kg": np.round(weight, 3),
            "popularity": popularity / popularity.sum(),
        }
    )


def catalog_from_skus(skus: pl.DataFrame) -> pl.DataFrame:
    """The shipping catalogue of a contract `skus` table (e.g. the demand side's), in `sku_catalog` form.

    HS chapters without their own risk profile get the neutral one of chapter 96; a missing weight is the
    chapter's median. Popularity is a fixed Zipf-like weight (the contract does not carry sales).

    Args:
        skus: frame with `sku_id`, `category`, `hs_code`, `price_usd` and optionally `weight_kg`.

    Returns:
        Frame with the columns of `sku_catalog`, in `sku_id` order.
    """
    known = {c.chapter: c for c in HS_CHAPTERS}
    df = skus.sort("sku_id")
    chapter = [c if c in known else OTHER_CHAPTER for c in df.get_column("hs_code").str.slice(0, 2)]
    weight = df.get_column("weight_kg") if "weight_kg" in df.columns else pl.Series([None] * df.height)
    default = pl.Series([known[c].unit_weight_kg for c in chapter])
    rng = np.random.default_rng(_CATALOG_SEED)
    popularity = rng.permutation(1.0 / np.arange(1, df.height + 1) ** 0.8)
    return pl.DataFrame(
        {
            "sku_id": df.get_column("sku_id"),
            "category": df.get_column("category"),
            "hs_chapter": chapter,
            "hs_code": df.get_column("hs_code"),
            "unit_value_usd": df.get_column("price_usd").cast(pl.Float64),
            "unit_weight_kg": weight.cast(pl.Float64).fill_null(default),
            "popularity": popularity / popularity.sum(),
        }
    )
