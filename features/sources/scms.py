"""Stage: ingest (source adapter). USAID SCMS delivery history -> `shipments`.

Reads a frame with the columns of `shared/data/scms_shipment_pricing/scms_delivery_history.parquet` (one row
per PO/SO line item) and writes one `shipments` row per `ASN/DN #` (the shipment id): line items are
aggregated (value, packs and weight summed; the shared weight/freight of a `See ASN-... (ID#:n)` pointer
counted once). Shipments that cannot be mapped (no order date, no shipment mode, unknown origin, ...) are
rejected with all their lines. `docs/adapters.md` gives every rule with its counts on the real file.
Direct Drop and From RDC stay separable downstream: From RDC shipments have `warehouse_id == "RDC"`,
`origin_hub == "RDC"` and `carrier == "SCMS-RDC"`; Direct Drop shipments have a null `warehouse_id`.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from features.contract.countries import country_code
from features.contract.schema import INCOTERMS, MODES, Incoterm, Mode, ShipmentStatus, table_spec
from features.sources import AdapterResult, as_imputed, as_rejected

__all__ = [
    "FREIGHT_USD_PER_KG",
    "KG_PER_USD",
    "MODE_MAP",
    "PRODUCT_GROUP_HS",
    "RDC_INCOTERM",
    "SITES",
    "TRUCK_MODE",
    "adapt_scms",
]

PRODUCT_GROUP_HS: Final[dict[str, str]] = {
    "ARV": "300490",  # antiretroviral medicines, packaged for retail sale
    "ANTM": "300490",  # antimalarial medicines
    "ACT": "300490",  # artemisinin combination therapy
    "HRDT": "382200",  # HIV rapid diagnostic test kits (diagnostic reagents)
    "MRDT": "382200",  # malaria rapid diagnostic test kits
}

MODE_MAP: Final[dict[str, str]] = {"Air": "air", "Air Charter": "air", "Ocean": "sea"}
"""`Shipment Mode` -> contract `Mode`. `Truck` follows `TRUCK_MODE`; `N/A` is rejected."""

TRUCK_MODE: Final[str | None] = "road" if "road" in MODES else None
"""Default for `Truck`: the contract's `road` mode. `truck_mode=None` rejects Truck shipments instead
(`mode_not_in_contract`)."""

RDC_INCOTERM: Final = "DAP"
"""From RDC lines carry `N/A - From RDC`: SCMS delivers from its own RDC to the client, duties not its own."""

KG_PER_USD: Final[dict[str, float]] = {
    "ARV": 0.0139,
    "HRDT": 0.0069,
    "ANTM": 0.0320,
    "ACT": 0.0182,
    "MRDT": 0.0096,
}
"""Median shipment kg per USD of line value by product group, measured on the shipments of the real file
whose weight is fully known; used when no line of a shipment has a weight."""

FREIGHT_USD_PER_KG: Final[dict[str, float]] = {
    "Air": 10.02,
    "Air Charter": 4.32,
    "Ocean": 1.68,
    "Truck": 2.50,
}
"""Median freight USD per kg by `Shipment Mode`, measured on the shipments of the real file whose weight and
freight are fully known; used for freight `Invoiced Separately`."""

# Manufacturing Site -> (ISO-2 country of the site, short code used as origin_hub). None: unknown origin.
SITES: Final[dict[str, tuple[str, str] | None]] = {
    "ABBSP": None,
    "ABBVIE (Abbott) France": ("FR", "ABBVIE-FR"),
    "ABBVIE (Abbott) Japan Co. Ltd.": ("JP", "ABBVIE-JP"),
    "ABBVIE (Abbott) Logis. UK": ("GB", "ABBVIE-UK"),
    "ABBVIE (Abbott) St. P'burg USA": ("US", "ABBVIE-STPBURG"),
    "ABBVIE GmbH & Co.KG Wiesbaden": ("DE", "ABBVIE-WIESBADEN"),
    "ABBVIE Labs North Chicago US": ("US", "ABBVIE-NCHICAGO"),
    "ABBVIE Ludwigshafen Germany": ("DE", "ABBVIE-LUDWIGSHAFEN"),
    "Access BIO, L.C.": ("US", "ACCESSBIO-US"),
    "Alere Medical Co., Ltd.": ("JP", "ALERE-JP"),
    "Aspen-OSD, Port Elizabeth, SA": ("ZA", "ASPEN-PE"),
    "Aurobindo Unit III, India": ("IN", "AUROBINDO-U3"),
    "Aurobindo Unit VII, IN": ("IN", "AUROBINDO-U7"),
    "BI, Ingelheim, Germany": ("DE", "BI-INGELHEIM"),
    "BMS Evansville, US": ("US", "BMS-EVANSVILLE"),
    "BMS Meymac, France": ("FR", "BMS-MEYMAC"),
    "BUNDI INTERNATIONAL DIAGNOSTICS LTD": None,
    "Bio-Rad Laboratories": ("FR", "BIORAD-FR"),
    "Boehringer Ing., Koropi, GR": ("GR", "BI-KOROPI"),
    "Boehringer Ingelheim Roxane US": ("US", "BI-ROXANE"),
    "Bristol-Myers Squibb Anagni IT": ("IT", "BMS-ANAGNI"),
    "Chembio Diagnostics Sys. Inc.": ("US", "CHEMBIO-US"),
    "Cipla Ltd A-42 MIDC Mahar. IN": ("IN", "CIPLA-A42"),
    "Cipla, Goa, India": ("IN", "CIPLA-GOA"),
    "Cipla, Kurkumbh, India": ("IN", "CIPLA-KURKUMBH"),
    "Cipla, Patalganga, India": ("IN", "CIPLA-PATALGANGA"),
    "EY Laboratories, USA": ("US", "EYLABS-US"),
    "Emcure Plot No.P-2, I.T-B.T. Park, Phase II, MIDC, Hinjwadi, Pune, India": ("IN", "EMCURE-PUNE"),
    "GSK Aranda": ("ES", "GSK-ARANDA"),
    "GSK Barnard Castle UK": ("GB", "GSK-BARNARD"),
    "GSK Cape Town Factory (South Africa)": ("ZA", "GSK-CAPETOWN"),
    "GSK Crawley": ("GB", "GSK-CRAWLEY"),
    "GSK Mississauga (Canada)": ("CA", "GSK-MISSISSAUGA"),
    "GSK Ware (UK)": ("GB", "GSK-WARE"),
    "GSK, U1, Poznan, Poland": ("PL", "GSK-POZNAN"),
    "Gilead(Nycomed) Oranienburg DE": ("DE", "GILEAD-ORANIENBURG"),
    "Gland Pharma Ltd Pally Factory": ("IN", "GLAND-PALLY"),
    "Gland Pharma, Hyderabad, IN": ("IN", "GLAND-HYD"),
    "Guilin OSD site, No 17, China": ("CN", "GUILIN-OSD"),
    "Hetero Unit III Hyderabad IN": ("IN", "HETERO-U3"),
    "Hetero, Jadcherla, unit 5, IN": ("IN", "HETERO-U5"),
    "Human Diagnostic": ("DE", "HUMAN-WIESBADEN"),
    "INVERNESS ANY": None,
    "INVERNESS ORGENICS LINE": ("IL", "ORGENICS-IL"),
    "Inverness Japan": ("JP", "INVERNESS-JP"),
    "Inverness USA": ("US", "INVERNESS-US"),
    "Ipca Dadra/Nagar Haveli IN": ("IN", "IPCA-DADRA"),
    "Janssen Ortho LLC, Puerto Rico": ("PR", "JANSSEN-PR"),
    "Janssen-Cilag, Latina, IT": ("IT", "JANSSEN-LATINA"),
    "KHB Test Kit Facility, Shanghai China": ("CN", "KHB-SHANGHAI"),
    "MSD Elkton USA": ("US", "MSD-ELKTON"),
    "MSD Manati, Puerto Rico, (USA)": ("PR", "MSD-MANATI"),
    "MSD Midrand, J'burg, SA": ("ZA", "MSD-MIDRAND"),
    "MSD Patheon, Canada": ("CA", "MSD-PATHEON"),
    "MSD South Granville Australia": ("AU", "MSD-GRANVILLE"),
    "MSD, Haarlem, NL": ("NL", "MSD-HAARLEM"),
    "Macleods Daman Plant INDIA": ("IN", "MACLEODS-DAMAN"),
    "MedMira Inc.": ("CA", "MEDMIRA-CA"),
    "Meditab (for Cipla) Daman IN": ("IN", "MEDITAB-DAMAN"),
    "Medochemie Factory A, CY": ("CY", "MEDOCHEMIE-CY"),
    "Medopharm Malur Factory, INDIA": ("IN", "MEDOPHARM-MALUR"),
    "Mepro Pharm Wadhwan Unit II": ("IN", "MEPRO-WADHWAN"),
    "Micro Labs Ltd. (Brown & Burk), India": ("IN", "MICROLABS-BB"),
    "Micro Labs, Hosur, India": ("IN", "MICROLABS-HOSUR"),
    "Micro labs, Verna, Goa, India": ("IN", "MICROLABS-GOA"),
    "Mylan (formerly Matrix) Nashik": ("IN", "MYLAN-NASHIK"),
    "Mylan,  H-12 & H-13, India": ("IN", "MYLAN-H12"),
    "Not Applicable": None,
    "Novartis Pharma AG, Switzerland": ("CH", "NOVARTIS-CH"),
    "Novartis Pharma Suffern, USA": ("US", "NOVARTIS-SUFFERN"),
    "OMEGA Diagnostics, UK": ("GB", "OMEGA-UK"),
    "Orasure Technologies, Inc": ("US", "ORASURE-US"),
    "Orasure Technologies, Inc USA": ("US", "ORASURE-US"),
    "Pacific Biotech, Thailand": ("TH", "PACIFICBIO-TH"),
    "Premier Med. Corp Ltd. India": ("IN", "PREMIER-IN"),
    "Premier Medical Corporation": ("IN", "PREMIER-IN"),
    "Ranbaxy Fine Chemicals LTD": ("IN", "RANBAXY-FC"),
    "Ranbaxy per Shasun Pharma": ("IN", "RANBAXY-SHASUN"),
    "Ranbaxy per Shasun Pharma Ltd": ("IN", "RANBAXY-SHASUN"),
    "Ranbaxy, Paonta Shahib, India": ("IN", "RANBAXY-PAONTA"),
    "Remedica, Limassol, Cyprus": ("CY", "REMEDICA-CY"),
    "Roche Basel": ("CH", "ROCHE-BASEL"),
    "Roche Madrid": ("ES", "ROCHE-MADRID"),
    "Standard Diagnostics, Korea": ("KR", "SD-KOREA"),
    "Strides, Bangalore, India.": ("IN", "STRIDES-BLR"),
    "Trinity Biotech, Plc": ("IE", "TRINITY-IE"),
    # The source file holds this name with mojibake (UTF-8 read as Latin-1): "GrÃ¸nland".
    "Weifa A.S., Hausmanngt. 6, P.O. Box 9113 Gr\u00c3\u00b8nland, 0133, Oslo, Norway": ("NO", "WEIFA-OSLO"),
    "bioLytical Laboratories": ("CA", "BIOLYTICAL-CA"),
}

_DATE_FMT: Final = "%m/%d/%y"
_PTR: Final = r"^See (?:ASN|DN)-\S+ \(ID#:(\d+)\)$"
_UTC: Final = pl.Datetime("us", "UTC")

# Shipment-level rejection rules in order: (rule, source column, detail).
_RULES: Final[tuple[tuple[str, str, str], ...]] = (
    (
        "no_order_date",
        "PO Sent to Vendor Date",
        "neither PO Sent to Vendor Date nor PQ First Sent to Client Date is a date",
    ),
    ("mode_missing", "Shipment Mode", "Shipment Mode is N/A"),
    ("mode_not_in_contract", "Shipment Mode", "Truck has no contract mode (pass truck_mode= to map it)"),
    ("mode_unknown", "Shipment Mode", "Shipment Mode not in the mapping"),
    ("origin_unknown", "Manufacturing Site", "no line of the shipment has a site with a known country"),
    ("destination_unknown", "Country", "Country has no ISO-2 code"),
    ("product_group_unknown", "Product Group", "Product Group has no HS code"),
    ("incoterm_unknown", "Vendor INCO Term", "Vendor INCO Term not a contract Incoterm"),
    ("delivery_date_missing", "Delivered to Client Date", "no Delivered to Client Date"),
    ("scheduled_date_missing", "Scheduled Delivery Date", "no Scheduled Delivery Date"),
    ("freight_unknown", "Freight Cost (USD)", "freight neither numeric, included nor invoiced separately"),
)


def _resolve(lines: pl.DataFrame, col: str, prefix: str) -> pl.DataFrame:
    """Resolve `See ASN-... (ID#:n)` pointers in `col`.

    Adds `{prefix}_ptr` (the pointed-to ID, null when not a pointer), `{prefix}_src` (ID of the row that holds
    the value: the pointed-to row or the line itself) and `{prefix}_raw` (that row's raw text).
    """
    ref = lines.select(pl.col("ID").alias(f"{prefix}_src"), pl.col(col).alias(f"{prefix}_raw")).unique(
        f"{prefix}_src", keep="first", maintain_order=True
    )
    ptr = pl.col(col).str.strip_chars().str.extract(_PTR, 1).cast(pl.Int64())
    return lines.with_columns(ptr.alias(f"{prefix}_ptr"), pl.coalesce(ptr, "ID").alias(f"{prefix}_src")).join(
        ref, on=f"{prefix}_src", how="left", maintain_order="left"
    )


def _prepare_lines(raw: pl.DataFrame) -> pl.DataFrame:
    lines = raw.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64()))
    lines = _resolve(lines, "Weight (Kilograms)", "w")
    lines = _resolve(lines, "Freight Cost (USD)", "f")
    site = pl.col("Manufacturing Site")
    return lines.with_columns(
        w_num=pl.col("w_raw").str.strip_chars().cast(pl.Float64(), strict=False),
        f_num=pl.col("f_raw").str.strip_chars().cast(pl.Float64(), strict=False),
        f_included=pl.col("f_raw").str.strip_chars() == "Freight Included in Commodity Cost",
        f_invoiced=pl.col("f_raw").str.strip_chars() == "Invoiced Separately",
        site_cc=site.replace_strict(
            {k: v[0] for k, v in SITES.items() if v}, default=None, return_dtype=pl.String()
        ),
        site_code=site.replace_strict(
            {k: v[1] for k, v in SITES.items() if v}, default=None, return_dtype=pl.String()
        ),
        po_date=pl.col("PO Sent to Vendor Date").str.strip_chars().str.to_date(_DATE_FMT, strict=False),
        pq_date=pl.col("PQ First Sent to Client Date").str.strip_chars().str.to_date(_DATE_FMT, strict=False),
    )


def _largest_line(value: pl.Expr, keep: pl.Expr) -> pl.Expr:
    """`value` of the highest-value line among the lines where `keep` holds (ties: first line)."""
    by_value = pl.col("Line Item Value").filter(keep)
    return value.filter(keep).sort_by(by_value, descending=True, maintain_order=True).first()


def _aggregate(lines: pl.DataFrame) -> pl.DataFrame:
    known_site = pl.col("site_cc").is_not_null()
    first_w = pl.col("w_src").is_first_distinct()
    first_f = pl.col("f_src").is_first_distinct()
    return lines.group_by("ASN/DN #", maintain_order=True).agg(
        pl.col(
            "Country",
            "Fulfill Via",
            "Vendor INCO Term",
            "Shipment Mode",
            "Product Group",
            "Vendor",
            "po_date",
            "pq_date",
        ).first(),
        po_raw=pl.col("PO Sent to Vendor Date").first(),
        pq_raw=pl.col("PQ First Sent to Client Date").first(),
        promised=pl.col("Scheduled Delivery Date").max(),
        n_promised=pl.col("Scheduled Delivery Date").n_unique(),
        delivered=pl.col("Delivered to Client Date").max(),
        value=pl.col("Line Item Value").sum(),
        packs=pl.col("Line Item Quantity").sum(),
        lines=pl.len(),
        weight_sum=pl.col("w_num").filter(first_w).sum(),
        w_any=pl.col("w_num").is_not_null().any(),
        w_all=pl.col("w_num").is_not_null().all(),
        w_raw=pl.col("w_raw").filter(pl.col("w_num").is_null()).first(),
        freight_sum=pl.col("f_num").filter(first_f).sum(),
        f_any=pl.col("f_num").is_not_null().any(),
        f_all=pl.col("f_num").is_not_null().all(),
        f_included=pl.col("f_included").any(),
        f_invoiced=pl.col("f_invoiced").any(),
        f_raw=pl.col("f_raw").filter(pl.col("f_num").is_null()).first(),
        site_cc=_largest_line(pl.col("site_cc"), known_site),
        site_code=_largest_line(pl.col("site_code"), known_site),
        n_sites=pl.col("site_cc").drop_nulls().n_unique(),
    )


def _map_shipments(ships: pl.DataFrame, truck_mode: str | None) -> pl.DataFrame:
    countries = ships.get_column("Country").drop_nulls().unique().to_list()
    rdc = pl.col("Fulfill Via") == "From RDC"
    mode_raw = pl.col("Shipment Mode").str.strip_chars()
    created = (
        pl.when(rdc)
        .then(pl.min_horizontal("po_date", "pq_date"))
        .otherwise(pl.coalesce("po_date", "pq_date"))
    )
    inco = pl.col("Vendor INCO Term").str.strip_chars()
    imputed_weight = pl.col("value") * pl.col("Product Group").replace_strict(
        KG_PER_USD, default=None, return_dtype=pl.Float64()
    )
    ships = ships.with_columns(
        created_date=created,
        created_from=pl.when(created.is_null())
        .then(None)
        .when(created == pl.col("po_date"))
        .then(pl.lit("po"))
        .otherwise(pl.lit("pq")),
        mode=mode_raw.replace_strict(
            {**MODE_MAP, "Truck": truck_mode}, default=None, return_dtype=pl.String()
        ),
        destination=pl.col("Country").replace_strict(
            {c: country_code(c) for c in countries}, default=None, return_dtype=pl.String()
        ),
        hs_code=pl.col("Product Group").replace_strict(
            PRODUCT_GROUP_HS, default=None, return_dtype=pl.String()
        ),
        incoterm=pl.when(inco == "N/A - From RDC")
        .then(pl.lit(RDC_INCOTERM))
        .when(inco.is_in(list(INCOTERMS)))
        .then(inco),
        weight_kg=pl.when(pl.col("w_any")).then(pl.col("weight_sum")).otherwise(imputed_weight),
        weight_rule=pl.when(pl.col("w_all"))
        .then(None)
        .when(pl.col("w_any"))
        .then(pl.lit("weight_partial_sum"))
        .otherwise(pl.lit("weight_from_value_ratio")),
    )
    ships = ships.with_columns(
        shipping_cost_usd=pl.when(pl.col("f_any"))
        .then(pl.col("freight_sum"))
        .when(pl.col("f_included"))
        .then(pl.lit(0.0))
        .when(pl.col("f_invoiced"))
        .then(
            pl.col("weight_kg")
            * mode_raw.replace_strict(FREIGHT_USD_PER_KG, default=None, return_dtype=pl.Float64())
        ),
        freight_rule=pl.when(pl.col("f_all"))
        .then(None)
        .when(pl.col("f_any"))
        .then(pl.lit("freight_partial_sum"))
        .when(pl.col("f_included"))
        .then(pl.lit("freight_included_zero"))
        .when(pl.col("f_invoiced"))
        .then(pl.lit("freight_from_weight_rate")),
    )
    failed = {
        "no_order_date": pl.col("created_date").is_null(),
        "mode_missing": mode_raw == "N/A",
        "mode_not_in_contract": (mode_raw == "Truck") & pl.col("mode").is_null(),
        "mode_unknown": pl.col("mode").is_null(),
        "origin_unknown": pl.col("site_cc").is_null(),
        "destination_unknown": pl.col("destination").is_null(),
        "product_group_unknown": pl.col("hs_code").is_null(),
        "incoterm_unknown": pl.col("incoterm").is_null(),
        "delivery_date_missing": pl.col("delivered").is_null(),
        "scheduled_date_missing": pl.col("promised").is_null(),
        "freight_unknown": pl.col("shipping_cost_usd").is_null(),
    }
    rule = pl.lit(None, dtype=pl.String())
    for name, _col, _detail in reversed(_RULES):
        rule = pl.when(failed[name].fill_null(True)).then(pl.lit(name)).otherwise(rule)
    return ships.with_columns(rule=rule)


def _shipments_table(ok: pl.DataFrame) -> pl.DataFrame:
    spec = table_spec("shipments")
    rdc = pl.col("Fulfill Via") == "From RDC"
    buyer_freight = pl.col("Vendor INCO Term").str.strip_chars().is_in(["EXW", "FCA"])
    out = ok.select(
        shipment_id=pl.col("ASN/DN #"),
        created_at=pl.col("created_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        origin_country=pl.col("site_cc"),
        origin_hub=pl.when(rdc).then(pl.lit("RDC")).otherwise(pl.col("site_code")),
        destination_country=pl.col("destination"),
        destination_region=pl.col("destination"),
        mode=pl.col("mode").cast(Mode),
        carrier=pl.when(rdc)
        .then(pl.lit("SCMS-RDC"))
        .when(buyer_freight)
        .then(pl.lit("SCMS"))
        .otherwise(pl.col("Vendor")),
        weight_kg=pl.col("weight_kg"),
        declared_value_usd=pl.col("value"),
        hs_code=pl.col("hs_code"),
        item_count=pl.col("packs"),
        incoterm=pl.col("incoterm").cast(Incoterm),
        promised_date=pl.col("promised"),
        shipping_cost_usd=pl.col("shipping_cost_usd"),
        delivered_at=pl.col("delivered").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        status=pl.lit("delivered").cast(ShipmentStatus),
        seller_id=pl.col("Vendor"),
        sku_id=pl.lit(None, dtype=pl.String()),
        warehouse_id=pl.when(rdc).then(pl.lit("RDC")),
    )
    return out.select(pl.col(c).cast(t) for c, t in spec.schema.items()).sort(spec.sort_by)


def _imputed_log(ok: pl.DataFrame) -> pl.DataFrame:
    key = pl.col("ASN/DN #")
    weight = ok.filter(pl.col("weight_rule").is_not_null()).select(
        table=pl.lit("shipments"), key=key, column=pl.lit("weight_kg"), rule="weight_rule", raw_value="w_raw"
    )
    freight = ok.filter(pl.col("freight_rule").is_not_null()).select(
        table=pl.lit("shipments"),
        key=key,
        column=pl.lit("shipping_cost_usd"),
        rule="freight_rule",
        raw_value="f_raw",
    )
    created = ok.filter(pl.col("created_from") == "pq").select(
        table=pl.lit("shipments"),
        key=key,
        column=pl.lit("created_at"),
        rule=pl.lit("created_from_pq_date"),
        raw_value="po_raw",
    )
    return as_imputed(pl.concat([weight, freight, created]))


def _rejected_lines(lines: pl.DataFrame, ships: pl.DataFrame) -> pl.DataFrame:
    bad = lines.join(ships.filter(pl.col("rule").is_not_null()).select("ASN/DN #", "rule"), on="ASN/DN #")
    column = pl.lit(None, dtype=pl.String())
    detail = pl.lit(None, dtype=pl.String())
    raw_value = pl.lit(None, dtype=pl.String())
    for name, col, text in reversed(_RULES):
        hit = pl.col("rule") == name
        value = pl.col(col).cast(pl.String())
        if name == "no_order_date":
            value = pl.concat_str(value, pl.col("PQ First Sent to Client Date"), separator=" | ")
        column = pl.when(hit).then(pl.lit(col)).otherwise(column)
        detail = pl.when(hit).then(pl.lit(text)).otherwise(detail)
        raw_value = pl.when(hit).then(value).otherwise(raw_value)
    return as_rejected(
        bad.with_columns(column=column, detail=detail, raw_value=raw_value).rename({"_row": "source_row"})
    )


def _count(frame: pl.DataFrame, expr: pl.Expr) -> int:
    return int(frame.select(expr.fill_null(False).sum()).item())


def _notes(
    raw: pl.DataFrame,
    lines: pl.DataFrame,
    ships: pl.DataFrame,
    ok: pl.DataFrame,
    out: pl.DataFrame,
    rejected: pl.DataFrame,
) -> dict[str, int]:
    bad = ships.filter(pl.col("rule").is_not_null())
    mode_raw = pl.col("Shipment Mode")
    return {
        "rows_in": raw.height,
        "rows_mapped": int(ok.get_column("lines").sum()),
        "rows_rejected": rejected.height,
        "shipments_in": ships.height,
        "shipments_mapped": out.height,
        "shipments_rejected": bad.height,
        **{f"rejected_rows:{r}": n for r, n in rejected.get_column("rule").value_counts().iter_rows()},
        **{f"rejected_shipments:{r}": n for r, n in bad.get_column("rule").value_counts().iter_rows()},
        "weight_pointer_lines": _count(lines, pl.col("w_ptr").is_not_null()),
        "freight_pointer_lines": _count(lines, pl.col("f_ptr").is_not_null()),
        "weight_pointer_unresolved": _count(lines, pl.col("w_ptr").is_not_null() & pl.col("w_raw").is_null()),
        "weight_known": _count(ok, pl.col("weight_rule").is_null()),
        "weight_partial_sum": _count(ok, pl.col("weight_rule") == "weight_partial_sum"),
        "weight_from_value_ratio": _count(ok, pl.col("weight_rule") == "weight_from_value_ratio"),
        "freight_known": _count(ok, pl.col("freight_rule").is_null()),
        "freight_partial_sum": _count(ok, pl.col("freight_rule") == "freight_partial_sum"),
        "freight_included_zero": _count(ok, pl.col("freight_rule") == "freight_included_zero"),
        "freight_from_weight_rate": _count(ok, pl.col("freight_rule") == "freight_from_weight_rate"),
        "created_from_po_date": _count(ok, pl.col("created_from") == "po"),
        "created_from_pq_date": _count(ok, pl.col("created_from") == "pq"),
        "mode_air": _count(ok, mode_raw == "Air"),
        "mode_air_charter_as_air": _count(ok, mode_raw == "Air Charter"),
        "mode_ocean_as_sea": _count(ok, mode_raw == "Ocean"),
        "mode_truck_mapped": _count(ok, mode_raw == "Truck"),
        "fulfill_direct_drop": _count(ok, pl.col("Fulfill Via") == "Direct Drop"),
        "fulfill_from_rdc": _count(ok, pl.col("Fulfill Via") == "From RDC"),
        "incoterm_rdc_as_dap": _count(ok, pl.col("Vendor INCO Term") == "N/A - From RDC"),
        "multi_site_shipments": _count(ok, pl.col("n_sites") > 1),
        "multi_line_shipments": _count(ok, pl.col("lines") > 1),
        "promised_date_max_of_several": _count(ok, pl.col("n_promised") > 1),
        "delivered_before_created": _count(out, pl.col("delivered_at") < pl.col("created_at")),
        "promised_before_created": _count(
            out, pl.col("promised_date").cast(pl.Datetime("us", "UTC")) < pl.col("created_at")
        ),
        "delivered_after_promised": _count(out, pl.col("delivered_at").dt.date() > pl.col("promised_date")),
        "delivered_on_promised": _count(out, pl.col("delivered_at").dt.date() == pl.col("promised_date")),
    }


def adapt_scms(raw: pl.DataFrame, *, truck_mode: str | None = TRUCK_MODE) -> AdapterResult:
    """Map SCMS delivery-history line items to one `shipments` row per ASN/DN.

    Args:
        raw: the SCMS frame, as `read_source("scms", ...)` returns it (one row per line item).
        truck_mode: contract mode for `Shipment Mode == "Truck"`; None rejects Truck shipments with rule
            `mode_not_in_contract`. Defaults to `road` once the contract `Mode` has it, else None.

    Returns:
        `shipments`, the rejected lines (all lines of a rejected shipment, with the shipment's first failed
        rule), the imputed-value log and the notes.

    Raises:
        ValueError: `truck_mode` is not a contract mode.
    """
    if truck_mode is not None and truck_mode not in MODES:
        raise ValueError(f"truck_mode {truck_mode!r} is not a contract mode: {', '.join(MODES)}")
    lines = _prepare_lines(raw)
    ships = _map_shipments(_aggregate(lines), truck_mode)
    ok = ships.filter(pl.col("rule").is_null())
    out = _shipments_table(ok)
    rejected = _rejected_lines(lines, ships)
    return AdapterResult(
        tables={"shipments": out},
        rejected=rejected,
        notes=_notes(raw, lines, ships, ok, out, rejected),
        imputed=_imputed_log(ok),
    )
