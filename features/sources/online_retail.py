"""Stage: ingest (source adapter). UCI Online Retail -> `warehouse_sales`, `skus`, `warehouses`.

Reads a frame with the columns of `shared/data/online_retail_uci/online_retail.parquet` (one row per invoice
line of a UK online giftware retailer, Dec 2010 - Dec 2011) and writes:

- `warehouse_sales`: units ordered per day x market x SKU. The customer's country is the market and each
  market is one virtual warehouse `WH-<ISO2>` (the retailer ships everything from the UK; the warehouse is
  the demand point, not a building). Only days with at least one sale are written; the demand panel fills
  zero-sale days. Stock is not observed: `on_hand_end` null, `is_stockout` false, `is_promo` null.
- `skus`: one row per SKU sold, category from a keyword rule on the description, a default HS code per
  category, price = median line price, unit cost = `UNIT_COST_FRACTION` of it.
- `warehouses`: one row per market.

Invoice lines that are not product sales (postage, fees, vouchers, cancellations, stock adjustments, free
lines, unknown countries, orders cancelled the same day) are rejected with their rule. Every other line is
aggregated: `rows_in == rows_mapped + rows_rejected`. Prices are GBP, converted at the fixed `GBP_USD`.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from features.contract.countries import country_code
from features.contract.schema import table_spec
from features.sources import AdapterResult, as_rejected

__all__ = [
    "CATEGORY_HS",
    "CATEGORY_RULES",
    "GBP_USD",
    "NON_PRODUCT_CODES",
    "UNIT_COST_FRACTION",
    "WAREHOUSE_CAPACITY_UNITS",
    "adapt_online_retail",
    "category_expr",
]

GBP_USD: Final = 1.6
"""Fixed USD per GBP (2011 average ~1.60)."""

UNIT_COST_FRACTION: Final = 0.5
"""Unit cost as a fraction of the median selling price (no cost data in the source)."""

WAREHOUSE_CAPACITY_UNITS: Final = 10_000_000
"""Capacity of every virtual market warehouse: large enough never to bind (no capacity data)."""

NON_PRODUCT_CODES: Final = frozenset(
    {"POST", "DOT", "M", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"}
)
"""StockCodes (upper-cased) that are postage, carriage, manual entries, discounts, samples, fees, bad-debt
adjustments or commissions; `GIFT_*` vouchers are rejected too."""

CATEGORY_RULES: Final[tuple[tuple[str, str], ...]] = (
    ("christmas", r"CHRISTMAS|XMAS|ADVENT|SANTA|REINDEER|SNOWFLAKE|SNOWMAN|NATIVITY|BAUBLE"),
    ("bags", r"\bBAGS?\b|TOTE|SHOPPER|RUCKSACK|PURSE|WASHBAG"),
    ("lighting_candles", r"CANDLE|T-LIGHT|TEALIGHT|LANTERN|\bLAMP|\bLIGHTS?\b|NIGHTLIGHT|INCENSE|OIL BURNER"),
    (
        "kitchen_dining",
        r"MUG|\bCUPS?\b|SAUCER|PLATE|BOWL|\bJAR|TEAPOT|\bTEA\b|COFFEE|CAKE|BAKING|LUNCH|"
        r"\bTINS?\b|NAPKIN|CUTLERY|SPOON|GLASS|JUG|BOTTLE|TRAY|PLACEMAT|COASTER|APRON|OVEN|"
        r"KITCHEN|\bEGG|BISCUIT|STRAW|BEAKER|TUMBLER|RECIPE|JELLY|PANTRY|STORAGE|DOILY|FOOD|"
        r"COOKIE|SUGAR|SALT|JAM",
    ),
    (
        "stationery_cards",
        r"CARD|PAPER|NOTEBOOK|NOTE BOOK|\bPENS?\b|PENCIL|WRAP|STICKER|\bBOOK|JOURNAL|"
        r"ENVELOPE|STAMP|ERASER|RUBBER|RIBBON|TAPE|CALENDAR|DIARY|MAGNET|CRAYON|CHALK|"
        r"TISSUE|GIFT TAG|STATIONERY|MEMO",
    ),
    (
        "toys_games_party",
        r"TOY|GAME|PARTY|BALLOON|DOLL|BUNTING|SKITTLE|DOMINO|PUZZLE|JIGSAW|DINOSAUR|"
        r"SOLDIER|SPACEBOY|PLAYHOUSE|PAINT|SPINNING|\bKIT\b|CRACKER|MASK|BUBBLES|CIRCUS|"
        r"TEDDY|EASTER|CRAFT|STENCIL|BUILDING BLOCK|SLATE|BINGO|SNAKES|CROSSES|"
        r"ROCKING HORSE|CLAY|KNITTING|PATCHES|TATTOO",
    ),
    (
        "jewellery_accessories",
        r"NECKLACE|BRACELET|EARRING|\bRING\b|HAIR|BROOCH|CHARM|JEWEL|DIAMANTE|BEAD|"
        r"UMBRELLA|PARASOL|SCARF|GLOVE|\bHAT\b|SUNGLASS|KEY ?RING|KEY FOB|WALLET|BADGE|"
        r"LIP GLOSS|\bFAN\b|PONCHO|HAND WARMER",
    ),
    (
        "home_textiles",
        r"CUSHION|TOWEL|BLANKET|THROW|HOT WATER|QUILT|CURTAIN|DOORMAT|\bMAT\b|FELT|KNITTED|"
        r"PILLOW",
    ),
    ("garden", r"GARDEN|PLANT|FLOWER POT|WATERING|\bBIRD\b|SEED|HERB|TROWEL|PICNIC|WINDMILL|\bPEGS?\b"),
    (
        "home_decor",
        r"FRAME|CLOCK|SIGN|MIRROR|HOOK|HANGER|HEART|VASE|ORNAMENT|DECORATION|WREATH|GARLAND|"
        r"DRAWER|CABINET|\bBOX|BASKET|HOLDER|PLAQUE|DOORSTOP|\bWALL|SHELF|STAND|BELL|FLOWER|"
        r"BUTTERFLY|CHANDELIER|BIRDCAGE|PHOTO|METAL|WOODEN|ZINC|ENAMEL|\bSTAR",
    ),
)
"""(category, regex on the upper-case description); the first match wins, no match is `other`."""

CATEGORY_HS: Final[dict[str, str]] = {
    "christmas": "950510",  # articles for Christmas festivities
    "bags": "420292",  # containers with outer surface of plastic sheeting or textile
    "lighting_candles": "940550",  # non-electrical lamps and lighting fittings
    "kitchen_dining": "691200",  # ceramic tableware and kitchenware (not porcelain)
    "stationery_cards": "490900",  # printed cards
    "toys_games_party": "950300",  # toys
    "jewellery_accessories": "711719",  # imitation jewellery of base metal
    "home_textiles": "630790",  # other made-up textile articles
    "garden": "732690",  # other articles of iron or steel
    "home_decor": "830629",  # ornaments of base metal
    "other": "392690",  # other articles of plastics (placeholder)
}

_RULES: Final[tuple[tuple[str, str, str], ...]] = (
    ("missing_stock_code", "StockCode", "no StockCode"),
    ("non_product_code", "StockCode", "postage, fee, voucher, discount or manual entry, not a product"),
    ("cancellation", "InvoiceNo", "cancellation invoice (C...): reported, not subtracted from demand"),
    ("non_positive_quantity", "Quantity", "quantity <= 0 on a non-cancellation invoice (stock adjustment)"),
    ("non_positive_price", "UnitPrice", "unit price <= 0 (free line or adjustment, not a sale)"),
    ("country_unknown", "Country", "Country is not a country (no ISO-2 code)"),
    ("missing_date", "InvoiceDate", "no InvoiceDate"),
    (
        "cancelled_same_day",
        "InvoiceNo",
        "order line cancelled the same day by the same customer (same SKU "
        "and quantity): a correction, not demand",
    ),
)


def category_expr(description: pl.Expr) -> pl.Expr:
    """The product category of a description by `CATEGORY_RULES` (first match wins, else `other`).

    Examples:
        >>> pl.select(category_expr(pl.lit("JUMBO BAG RED RETROSPOT"))).item()
        'bags'
    """
    text = description.str.to_uppercase()
    out = pl.lit("other")
    for category, pattern in reversed(CATEGORY_RULES):
        out = pl.when(text.str.contains(pattern).fill_null(False)).then(pl.lit(category)).otherwise(out)
    return out


def _classify(raw: pl.DataFrame) -> pl.DataFrame:
    countries = raw.get_column("Country").drop_nulls().unique().to_list()
    sku = pl.col("StockCode").str.strip_chars().str.to_uppercase()
    lines = raw.with_row_index("_row", offset=1).with_columns(
        pl.col("_row").cast(pl.Int64()),
        sku_id=sku,
        country=pl.col("Country").replace_strict(
            {c: country_code(c) for c in countries}, default=None, return_dtype=pl.String()
        ),
        date=pl.col("InvoiceDate").dt.date(),
        is_cancel=pl.col("InvoiceNo").str.strip_chars().str.starts_with("C").fill_null(False),
    )
    failed = {
        "missing_stock_code": pl.col("sku_id").is_null() | (pl.col("sku_id") == ""),
        "non_product_code": pl.col("sku_id").is_in(list(NON_PRODUCT_CODES))
        | pl.col("sku_id").str.starts_with("GIFT_"),
        "cancellation": pl.col("is_cancel"),
        "non_positive_quantity": pl.col("Quantity") <= 0,
        "non_positive_price": pl.col("UnitPrice") <= 0,
        "country_unknown": pl.col("country").is_null(),
        "missing_date": pl.col("date").is_null(),
    }
    rule = pl.lit(None, dtype=pl.String())
    for name, expr in reversed(failed.items()):
        rule = pl.when(expr.fill_null(True)).then(pl.lit(name)).otherwise(rule)
    lines = lines.with_columns(rule=rule)
    return _mark_same_day_cancellations(lines)


def _mark_same_day_cancellations(lines: pl.DataFrame) -> pl.DataFrame:
    """Pair the k-th cancellation of (customer, SKU, quantity, day) with the k-th order line of that key.

    The paired order line (placed no later than its cancellation) is rejected as `cancelled_same_day`.
    """
    key = ["CustomerID", "sku_id", "qty", "date"]
    k = pl.int_range(pl.len()).over(key, order_by=["InvoiceDate", "_row"]).alias("k")
    orders = (
        lines.filter(pl.col("rule").is_null() & pl.col("CustomerID").is_not_null())
        .select("_row", "CustomerID", "sku_id", "date", "InvoiceDate", qty=pl.col("Quantity"))
        .with_columns(k)
    )
    cancels = (
        lines.filter((pl.col("rule") == "cancellation") & pl.col("CustomerID").is_not_null())
        .select("_row", "CustomerID", "sku_id", "date", "InvoiceDate", qty=-pl.col("Quantity"))
        .with_columns(k)
        .select(*key, "k", cancel_at="InvoiceDate")
    )
    paired = (
        orders.join(cancels, on=[*key, "k"], how="inner")
        .filter(pl.col("InvoiceDate") <= pl.col("cancel_at"))
        .select("_row", same_day=pl.lit(True))
    )
    return (
        lines.join(paired, on="_row", how="left", maintain_order="left")
        .with_columns(
            rule=pl.when(pl.col("same_day")).then(pl.lit("cancelled_same_day")).otherwise(pl.col("rule"))
        )
        .drop("same_day")
    )


def _rejected(lines: pl.DataFrame) -> pl.DataFrame:
    column = pl.lit(None, dtype=pl.String())
    detail = pl.lit(None, dtype=pl.String())
    raw_value = pl.lit(None, dtype=pl.String())
    for name, col, text in reversed(_RULES):
        hit = pl.col("rule") == name
        column = pl.when(hit).then(pl.lit(col)).otherwise(column)
        detail = pl.when(hit).then(pl.lit(text)).otherwise(detail)
        raw_value = pl.when(hit).then(pl.col(col).cast(pl.String())).otherwise(raw_value)
    bad = lines.filter(pl.col("rule").is_not_null())
    return as_rejected(
        bad.with_columns(column=column, detail=detail, raw_value=raw_value).rename({"_row": "source_row"})
    )


def _tables(sales: pl.DataFrame) -> dict[str, pl.DataFrame]:
    qty = pl.col("Quantity").cast(pl.Int64())
    daily = (
        sales.group_by("date", "warehouse_id", "sku_id")
        .agg(
            units_sold=qty.sum(),
            price_usd=(qty * pl.col("UnitPrice")).sum() / qty.sum() * GBP_USD,
        )
        .with_columns(
            on_hand_end=pl.lit(None, dtype=pl.Int64()),
            is_stockout=pl.lit(False),
            is_promo=pl.lit(None, dtype=pl.Boolean()),
        )
    )
    skus = (
        sales.group_by("sku_id")
        .agg(
            description=pl.col("Description").drop_nulls().mode().sort().first(),
            price_usd=pl.col("UnitPrice").median() * GBP_USD,
        )
        .with_columns(category=category_expr(pl.col("description")))
    )
    skus = skus.with_columns(
        hs_code=pl.col("category").replace_strict(CATEGORY_HS, return_dtype=pl.String()),
        unit_cost_usd=pl.col("price_usd") * UNIT_COST_FRACTION,
        weight_kg=pl.lit(None, dtype=pl.Float64()),
        case_pack=pl.lit(None, dtype=pl.Int32()),
        min_order_units=pl.lit(None, dtype=pl.Int32()),
        launch_date=pl.lit(None, dtype=pl.Date()),
    )
    warehouses = (
        sales.select("warehouse_id", "country")
        .unique()
        .with_columns(
            capacity_units=pl.lit(WAREHOUSE_CAPACITY_UNITS, dtype=pl.Int64()),
            region=pl.lit(None, dtype=pl.String()),
            holding_cost_usd_per_unit_week=pl.lit(None, dtype=pl.Float64()),
        )
    )
    out = {"warehouse_sales": daily, "skus": skus, "warehouses": warehouses}
    for name, frame in out.items():
        spec = table_spec(name)
        out[name] = frame.select(pl.col(c).cast(t) for c, t in spec.schema.items()).sort(spec.sort_by)
    return out


def adapt_online_retail(raw: pl.DataFrame) -> AdapterResult:
    """Map Online Retail invoice lines to daily market x SKU sales, SKUs and market warehouses.

    Demand is gross ordered units: cancellations are rejected and not subtracted (they are dated on the
    cancellation day, not the order day, and most refer to orders outside the window or in part), except
    that an order line cancelled the same day by the same customer (same SKU and quantity) is a correction
    and is rejected too. `StockCode` is upper-cased (`85123a` and `85123A` are one SKU).

    Args:
        raw: the Online Retail frame, as `read_source("online-retail", ...)` returns it.

    Returns:
        `warehouse_sales`, `skus`, `warehouses`, the rejected lines and the notes.
    """
    lines = _classify(raw)
    rejected = _rejected(lines)
    sales = lines.filter(pl.col("rule").is_null()).with_columns(
        warehouse_id=pl.concat_str(pl.lit("WH-"), pl.col("country"))
    )
    tables = _tables(sales)
    cancels = lines.filter(pl.col("is_cancel"))
    skus = tables["skus"]
    notes = {
        "rows_in": raw.height,
        "rows_mapped": sales.height,
        "rows_rejected": rejected.height,
        **{f"rejected:{r}": n for r, n in rejected.get_column("rule").value_counts().iter_rows()},
        "sales_rows_out": tables["warehouse_sales"].height,
        "units_sold": int(sales.get_column("Quantity").cast(pl.Int64()).sum()),
        "cancellation_lines": cancels.height,
        "cancelled_units_not_subtracted": int(-cancels.get_column("Quantity").cast(pl.Int64()).sum()),
        "cancelled_same_day_units": int(
            lines.filter(pl.col("rule") == "cancelled_same_day").get_column("Quantity").cast(pl.Int64()).sum()
        ),
        "stock_codes_upper_cased_lines": int(
            (lines.get_column("StockCode") != lines.get_column("sku_id")).fill_null(False).sum()
        ),
        "skus": skus.height,
        **{f"skus_category:{c}": n for c, n in skus.get_column("category").value_counts().iter_rows()},
        "warehouses": tables["warehouses"].height,
    }
    return AdapterResult(tables=tables, rejected=rejected, notes=notes)
