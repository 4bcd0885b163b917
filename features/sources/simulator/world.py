"""Stage: simulate. The static reference world of the shipment simulator.

Reads and writes nothing. Chinese origin hubs, destination countries (customs rules, last-mile quality,
regions with remote flags, customs offices), HS chapters with their inspection risk, carriers and their lines
(schedules, rail or air, rates) and the overseas warehouses. Everything here is the same for
every seed: the realisation (volumes, disruptions, scans) is drawn in `bookings`/`events`/`customs`.

Values are realistic-ish, not authoritative. The customs policy (de minimis thresholds, duty rates and their
dated changes) is reference data read from `features.reference.customs_policy`, like the calendars.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np

from features.contract.vocabularies import SHIPMENT_MODES, WAREHOUSE_MODE
from features.reference.customs_policy import POLICY_CHANGES, PolicyChange, standing_regime

__all__ = [
    "CARRIERS",
    "COURIER_IDS",
    "DESTINATIONS",
    "HS_CHAPTERS",
    "HUBS",
    "MODE_CODES",
    "MODE_PROFILES",
    "OTHER_CHAPTER",
    "POLICY_CHANGES",
    "WAREHOUSES",
    "Destination",
    "HsChapter",
    "Hub",
    "Line",
    "ModeProfile",
    "PolicyChange",
    "Region",
    "Warehouse",
    "lines",
    "mode_profile_arrays",
    "warehouse_countries",
]

# Integer codes of the simulated shipment modes, in the contract's `SHIPMENT_MODES` order (the simulator
# ships no domestic parcels: every mode up to the warehouse one).
MODE_CODES: Final[dict[str, int]] = {
    m: i for i, m in enumerate(SHIPMENT_MODES[: SHIPMENT_MODES.index(WAREHOUSE_MODE) + 1])
}


@dataclass(frozen=True)
class ModeProfile:
    """Median stage durations (days) and service traits of a logistics mode.

    Attributes:
        pickup_days / to_hub_days / export_days: first mile and export processing at normal capacity.
        consolidation_days: longest extra wait for a consolidated departure (uniform).
        bump_p: probability of being offloaded from the booked departure at normal load.
        import_days: arrival to import-customs entry (airport handling, postal exchange office).
        clear_days / formal_days / hold_days: customs clearance, extra for a formal entry and inspection
            hold, in destination working days.
        handover_days: customs release to the last-mile carrier.
        inspect_shift: shift on the logit of the inspection probability (pre-cleared bulk, broker data).
        lost_p: probability the parcel is lost; drop_scan_p: probability an intermediate scan is missing.
        fail_factor: multiplier of the destination's failed-attempt rate.
        quote_margin / quote_days: promised days = contract days x (1 + margin) + days.
        peak_surcharge: freight surcharge in e-commerce peaks; remote_fee_usd: remote-area fee.
        lastmile: working calendar of the last mile ("post": national post, hit by strikes; "express").
    """

    pickup_days: float
    to_hub_days: float
    export_days: float
    consolidation_days: float
    bump_p: float
    import_days: float
    clear_days: float
    formal_days: float
    hold_days: float
    handover_days: float
    inspect_shift: float
    lost_p: float
    drop_scan_p: float
    fail_factor: float
    quote_margin: float
    quote_days: float
    peak_surcharge: float
    remote_fee_usd: float
    lastmile: str


MODE_PROFILES: Final[dict[str, ModeProfile]] = {
    "postal": ModeProfile(
        1.0, 0.4, 1.2, 1.5, 0.12, 2.0, 0.8, 1.5, 3.0, 1.2, 0.0, 0.012, 0.25, 1.0, 0.15, 2.5, 0.08, 0.0, "post"
    ),
    "dedicated_line": ModeProfile(
        0.6,
        0.3,
        0.6,
        0.3,
        0.07,
        0.4,
        0.25,
        1.0,
        2.5,
        0.6,
        -0.6,
        0.004,
        0.06,
        1.0,
        0.08,
        1.0,
        0.12,
        2.0,
        "post",
    ),
    "express": ModeProfile(
        0.25,
        0.15,
        0.2,
        0.0,
        0.02,
        0.1,
        0.15,
        0.3,
        1.2,
        0.2,
        -0.2,
        0.001,
        0.01,
        0.7,
        0.1,
        0.5,
        0.15,
        8.0,
        "express",
    ),
    "overseas_warehouse": ModeProfile(
        0.3, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.002, 0.03, 0.9, 0.15, 1.0, 0.05, 3.0, "post"
    ),
}


@lru_cache(maxsize=1)
def mode_profile_arrays() -> dict[str, np.ndarray]:
    """The numeric fields of `MODE_PROFILES` as arrays indexed by `MODE_CODES`."""
    names = [f.name for f in dataclasses.fields(ModeProfile) if f.name != "lastmile"]
    order = sorted(MODE_CODES, key=MODE_CODES.__getitem__)
    return {n: np.array([getattr(MODE_PROFILES[m], n) for m in order], dtype=float) for n in names}


@dataclass(frozen=True)
class Hub:
    """A Chinese export hub: volume share, feeder trucking to the airport and processing speed."""

    code: str
    city: str
    share: float
    feeder_days: float
    processing_factor: float


HUBS: Final[tuple[Hub, ...]] = (
    Hub("SZX", "Shenzhen", 0.34, 0.0, 1.0),
    Hub("CAN", "Guangzhou", 0.20, 0.05, 1.05),
    Hub("YIW", "Yiwu", 0.16, 0.6, 1.2),
    Hub("SHA", "Shanghai", 0.14, 0.0, 0.95),
    Hub("NGB", "Ningbo", 0.08, 0.3, 1.1),
    Hub("XMN", "Xiamen", 0.08, 0.1, 1.1),
)


@dataclass(frozen=True)
class Region:
    """A region (ISO 3166-2 code) of a destination, with its share of the country's parcels.

    Attributes:
        zone: overseas-warehouse delivery zone from the nearest warehouse (1 local ... 3 far).
        near_warehouse: the warehouse that normally serves the region (None: no warehouse service).
        remote_days: median extra last-mile days to reach the region (0 when not remote).
    """

    code: str
    share: float
    remote_days: float = 0.0
    zone: int = 1
    near_warehouse: str | None = None

    @property
    def is_remote(self) -> bool:
        """The region is remote (extra last-mile days, more failed attempts)."""
        return self.remote_days > 0


@dataclass(frozen=True)
class Destination:
    """A destination country and what shapes its import and last mile.

    Attributes:
        share: share of the parcel volume from China.
        tz_hours: UTC offset used for local working days and delivery hours.
        strictness: customs risk appetite, a shift on the logit of the inspection probability.
        fail_rate: probability that one delivery attempt fails.
        air_days: median airport-to-airport days of an express flight, connections included.
        rate_factor: freight price multiplier of the lane.
        customs_weekend / lastmile_weekend: weekdays (0 = Monday) without clearance / without delivery.
    """

    country: str
    group: str
    share: float
    tz_hours: float
    strictness: float
    fail_rate: float
    air_days: float
    rate_factor: float
    offices: tuple[str, ...]
    regions: tuple[Region, ...]
    customs_weekend: tuple[int, ...] = (5, 6)
    lastmile_weekend: tuple[int, ...] = (6,)

    @property
    def de_minimis_usd(self) -> float:
        """Standing de minimis threshold (`features.reference.customs_policy`, the one home of the rule)."""
        return standing_regime(self.country).de_minimis_usd

    @property
    def duty_rate(self) -> float:
        """Standing duty rate on a formal entry (`features.reference.customs_policy`)."""
        return standing_regime(self.country).duty_rate


def _r(code: str, share: float, remote: float = 0.0, zone: int = 1, wh: str | None = None) -> Region:
    return Region(code, share, remote, zone, wh)


_LAX, _NJ, _BHX = "WH-US-LAX", "WH-US-NJ", "WH-GB-BHX"
_FRA, _SYD, _YYZ = "WH-DE-FRA", "WH-AU-SYD", "WH-CA-YYZ"

DESTINATIONS: Final[tuple[Destination, ...]] = (
    Destination(
        "US",
        "north_america",
        0.28,
        -6,
        0.0,
        0.05,
        1.6,
        1.0,
        ("JFK1", "LAX1", "ORD1", "MIA1"),
        (
            _r("US-CA", 0.16, wh=_LAX),
            _r("US-TX", 0.12, zone=2, wh=_LAX),
            _r("US-WA", 0.06, wh=_LAX),
            _r("US-AZ", 0.06, wh=_LAX),
            _r("US-CO", 0.05, zone=2, wh=_LAX),
            _r("US-NY", 0.12, wh=_NJ),
            _r("US-FL", 0.10, zone=2, wh=_NJ),
            _r("US-IL", 0.08, zone=2, wh=_NJ),
            _r("US-PA", 0.07, wh=_NJ),
            _r("US-GA", 0.07, zone=2, wh=_NJ),
            _r("US-OH", 0.06, wh=_NJ),
            _r("US-AK", 0.02, 3.0, 3, _LAX),
            _r("US-HI", 0.03, 2.5, 3, _LAX),
        ),
    ),
    Destination(
        "CA",
        "north_america",
        0.04,
        -5,
        -0.1,
        0.05,
        1.8,
        1.05,
        ("YYZ1", "YVR1", "YUL1"),
        (
            _r("CA-ON", 0.40, wh=_YYZ),
            _r("CA-QC", 0.22, wh=_YYZ),
            _r("CA-BC", 0.15, zone=3, wh=_YYZ),
            _r("CA-AB", 0.13, zone=2, wh=_YYZ),
            _r("CA-MB", 0.05, zone=2, wh=_YYZ),
            _r("CA-NS", 0.04, zone=2, wh=_YYZ),
            _r("CA-NU", 0.01, 5.0, 3, _YYZ),
        ),
    ),
    Destination(
        "MX",
        "latin_america",
        0.05,
        -6,
        0.5,
        0.12,
        2.4,
        1.1,
        ("MEX1", "GDL1"),
        (
            _r("MX-CMX", 0.25),
            _r("MX-MEX", 0.20),
            _r("MX-JAL", 0.12),
            _r("MX-NLE", 0.12),
            _r("MX-PUE", 0.08),
            _r("MX-YUC", 0.06),
            _r("MX-CHP", 0.05, 2.0),
            _r("MX-BCS", 0.04, 2.0),
        ),
    ),
    Destination(
        "GB",
        "europe",
        0.07,
        0,
        -0.2,
        0.04,
        1.5,
        0.95,
        ("LHR1", "EMA1"),
        (
            _r("GB-LND", 0.30, wh=_BHX),
            _r("GB-MAN", 0.15, wh=_BHX),
            _r("GB-BIR", 0.15, wh=_BHX),
            _r("GB-GLG", 0.12, zone=2, wh=_BHX),
            _r("GB-CRF", 0.10, wh=_BHX),
            _r("GB-BFS", 0.10, 1.0, 2, _BHX),
            _r("GB-HLD", 0.05, 2.0, 3, _BHX),
            _r("GB-ZET", 0.03, 3.0, 3, _BHX),
        ),
    ),
    Destination(
        "DE",
        "europe",
        0.06,
        1,
        0.0,
        0.06,
        1.3,
        1.0,
        ("FRA1", "LEJ1"),
        (
            _r("DE-BY", 0.18, wh=_FRA),
            _r("DE-NW", 0.25, wh=_FRA),
            _r("DE-BW", 0.15, wh=_FRA),
            _r("DE-BE", 0.12, zone=2, wh=_FRA),
            _r("DE-HH", 0.10, zone=2, wh=_FRA),
            _r("DE-HE", 0.12, wh=_FRA),
            _r("DE-SN", 0.08, zone=2, wh=_FRA),
        ),
    ),
    Destination(
        "FR",
        "europe",
        0.05,
        1,
        0.0,
        0.07,
        1.4,
        1.0,
        ("CDG1", "LYS1"),
        (
            _r("FR-IDF", 0.35, zone=2, wh=_FRA),
            _r("FR-ARA", 0.15, zone=2, wh=_FRA),
            _r("FR-PAC", 0.12, zone=3, wh=_FRA),
            _r("FR-OCC", 0.12, zone=3, wh=_FRA),
            _r("FR-NAQ", 0.12, zone=3, wh=_FRA),
            _r("FR-HDF", 0.12, zone=2, wh=_FRA),
            _r("FR-20R", 0.02, 2.0, 3, _FRA),
        ),
    ),
    Destination(
        "ES",
        "europe",
        0.04,
        1,
        0.1,
        0.07,
        1.6,
        1.0,
        ("MAD1", "BCN1"),
        (
            _r("ES-MD", 0.30, zone=3, wh=_FRA),
            _r("ES-CT", 0.25, zone=3, wh=_FRA),
            _r("ES-AN", 0.18, zone=3, wh=_FRA),
            _r("ES-VC", 0.12, zone=3, wh=_FRA),
            _r("ES-PV", 0.08, zone=3, wh=_FRA),
            _r("ES-IB", 0.03, 1.5, 3, _FRA),
            _r("ES-CN", 0.04, 4.0),
        ),
    ),
    Destination(
        "IT",
        "europe",
        0.03,
        1,
        0.2,
        0.08,
        1.5,
        1.0,
        ("MXP1", "FCO1"),
        (
            _r("IT-25", 0.25, zone=2, wh=_FRA),
            _r("IT-62", 0.18, zone=3, wh=_FRA),
            _r("IT-72", 0.15, zone=3, wh=_FRA),
            _r("IT-21", 0.12, zone=2, wh=_FRA),
            _r("IT-34", 0.14, zone=2, wh=_FRA),
            _r("IT-82", 0.10, 1.5, 3, _FRA),
            _r("IT-88", 0.06, 1.5, 3, _FRA),
        ),
    ),
    Destination(
        "NL",
        "europe",
        0.02,
        1,
        -0.3,
        0.04,
        1.3,
        0.95,
        ("AMS1",),
        (
            _r("NL-NH", 0.30, zone=2, wh=_FRA),
            _r("NL-ZH", 0.30, zone=2, wh=_FRA),
            _r("NL-NB", 0.15, zone=2, wh=_FRA),
            _r("NL-UT", 0.13, zone=2, wh=_FRA),
            _r("NL-GE", 0.12, zone=2, wh=_FRA),
        ),
    ),
    Destination(
        "PL",
        "europe",
        0.03,
        1,
        0.0,
        0.05,
        1.6,
        0.95,
        ("WAW1",),
        (
            _r("PL-MZ", 0.28, zone=2, wh=_FRA),
            _r("PL-SL", 0.18, zone=2, wh=_FRA),
            _r("PL-MA", 0.15, zone=2, wh=_FRA),
            _r("PL-WP", 0.14, zone=2, wh=_FRA),
            _r("PL-DS", 0.13, zone=2, wh=_FRA),
            _r("PL-PM", 0.12, zone=2, wh=_FRA),
        ),
    ),
    Destination(
        "BR",
        "latin_america",
        0.07,
        -3,
        1.0,
        0.11,
        3.2,
        1.35,
        ("GRU1", "VCP1"),
        (
            _r("BR-SP", 0.35),
            _r("BR-RJ", 0.14),
            _r("BR-MG", 0.12),
            _r("BR-RS", 0.07),
            _r("BR-PR", 0.07),
            _r("BR-BA", 0.07),
            _r("BR-PE", 0.05),
            _r("BR-AM", 0.07, 6.0),
            _r("BR-PA", 0.05, 5.0),
            _r("BR-RR", 0.01, 8.0),
        ),
    ),
    Destination(
        "CL",
        "latin_america",
        0.02,
        -4,
        0.2,
        0.09,
        3.6,
        1.4,
        ("SCL1",),
        (
            _r("CL-RM", 0.55),
            _r("CL-VS", 0.12),
            _r("CL-BI", 0.10),
            _r("CL-AN", 0.07),
            _r("CL-AR", 0.08),
            _r("CL-AI", 0.02, 4.0),
            _r("CL-MA", 0.03, 4.0),
        ),
    ),
    Destination(
        "SA",
        "middle_east",
        0.03,
        3,
        0.5,
        0.10,
        1.4,
        1.1,
        ("RUH1", "JED1"),
        (
            _r("SA-01", 0.35),
            _r("SA-02", 0.30),
            _r("SA-04", 0.20),
            _r("SA-03", 0.08),
            _r("SA-14", 0.04),
            _r("SA-07", 0.03, 2.0),
        ),
        (4, 5),
        (4,),
    ),
    Destination(
        "AE",
        "middle_east",
        0.02,
        4,
        0.0,
        0.06,
        1.1,
        1.0,
        ("DXB1", "AUH1"),
        (_r("AE-DU", 0.45), _r("AE-AZ", 0.30), _r("AE-SH", 0.15), _r("AE-AJ", 0.05), _r("AE-RK", 0.05)),
    ),
    Destination(
        "TH",
        "south_east_asia",
        0.02,
        7,
        0.2,
        0.06,
        0.8,
        0.55,
        ("BKK1",),
        (
            _r("TH-10", 0.45),
            _r("TH-20", 0.10),
            _r("TH-50", 0.10),
            _r("TH-40", 0.10),
            _r("TH-90", 0.09),
            _r("TH-83", 0.06),
            _r("TH-58", 0.02, 3.0),
        ),
    ),
    Destination(
        "MY",
        "south_east_asia",
        0.02,
        8,
        0.0,
        0.06,
        0.8,
        0.55,
        ("KUL1",),
        (
            _r("MY-14", 0.30),
            _r("MY-10", 0.30),
            _r("MY-07", 0.12),
            _r("MY-01", 0.13),
            _r("MY-12", 0.08, 3.0),
            _r("MY-13", 0.07, 3.0),
        ),
    ),
    Destination(
        "PH",
        "south_east_asia",
        0.02,
        8,
        0.4,
        0.12,
        0.9,
        0.6,
        ("MNL1", "CEB1"),
        (
            _r("PH-00", 0.45),
            _r("PH-CEB", 0.15),
            _r("PH-DAV", 0.12),
            _r("PH-CAV", 0.12),
            _r("PH-LAG", 0.10),
            _r("PH-PLW", 0.04, 4.0),
            _r("PH-SLU", 0.02, 5.0),
        ),
    ),
    Destination(
        "SG",
        "south_east_asia",
        0.01,
        8,
        -0.5,
        0.03,
        0.7,
        0.5,
        ("SIN1",),
        (_r("SG-01", 0.30), _r("SG-02", 0.20), _r("SG-03", 0.20), _r("SG-04", 0.15), _r("SG-05", 0.15)),
    ),
    Destination(
        "AU",
        "oceania",
        0.05,
        10,
        0.3,
        0.04,
        1.3,
        0.95,
        ("SYD1", "MEL1"),
        (
            _r("AU-NSW", 0.32, wh=_SYD),
            _r("AU-VIC", 0.26, zone=2, wh=_SYD),
            _r("AU-QLD", 0.20, zone=2, wh=_SYD),
            _r("AU-SA", 0.07, zone=3, wh=_SYD),
            _r("AU-ACT", 0.02, wh=_SYD),
            _r("AU-WA", 0.10, 2.0, 3, _SYD),
            _r("AU-TAS", 0.02, 1.5, 3, _SYD),
            _r("AU-NT", 0.01, 4.0, 3, _SYD),
        ),
    ),
    Destination(
        "NZ",
        "oceania",
        0.01,
        12,
        0.3,
        0.04,
        1.9,
        1.1,
        ("AKL1",),
        (
            _r("NZ-AUK", 0.35),
            _r("NZ-WGN", 0.12),
            _r("NZ-CAN", 0.13),
            _r("NZ-WKO", 0.10),
            _r("NZ-BOP", 0.08),
            _r("NZ-OTA", 0.07),
            _r("NZ-NSN", 0.05),
            _r("NZ-STL", 0.03, 2.0),
        ),
    ),
    Destination(
        "RU",
        "russia_central_asia",
        0.04,
        3,
        0.6,
        0.09,
        1.6,
        0.9,
        ("SVO1", "LED1"),
        (
            _r("RU-MOW", 0.30),
            _r("RU-SPE", 0.13),
            _r("RU-MOS", 0.12),
            _r("RU-SVE", 0.07),
            _r("RU-KDA", 0.07),
            _r("RU-NVS", 0.06),
            _r("RU-TA", 0.05),
            _r("RU-KHA", 0.03, 6.0),
            _r("RU-PRI", 0.03, 6.0),
            _r("RU-SAK", 0.01, 8.0),
            _r("RU-SA", 0.01, 9.0),
        ),
    ),
    Destination(
        "KZ",
        "russia_central_asia",
        0.01,
        5,
        0.3,
        0.10,
        1.2,
        0.85,
        ("ALA1", "NQZ1"),
        (
            _r("KZ-75", 0.35),
            _r("KZ-71", 0.25),
            _r("KZ-79", 0.10),
            _r("KZ-35", 0.10),
            _r("KZ-63", 0.08),
            _r("KZ-15", 0.07),
            _r("KZ-47", 0.05, 3.0),
        ),
    ),
)


@dataclass(frozen=True)
class HsChapter:
    """An HS chapter of what Chinese sellers ship, with its customs risk.

    Attributes:
        risk: shift on the logit of the inspection probability.
        seize_p / refuse_p: probability that an inspected parcel is seized (counterfeit, prohibited) /
            refused entry and sent back (batteries, missing certificates).
        duty_factor: multiplier of the destination duty rate.
        unit_value_usd / unit_weight_kg: median value and weight of one item.
        bulk: volumetric-to-actual weight ratio of the packed item.
    """

    chapter: str
    name: str
    share: float
    risk: float
    seize_p: float
    refuse_p: float
    duty_factor: float
    unit_value_usd: float
    unit_weight_kg: float
    bulk: float
    codes: tuple[str, ...]


HS_CHAPTERS: Final[tuple[HsChapter, ...]] = (
    HsChapter(
        "85",
        "electronics",
        0.20,
        0.7,
        0.01,
        0.05,
        1.0,
        18.0,
        0.25,
        1.15,
        ("851830", "850440", "850760", "851712", "852580", "854370"),
    ),
    HsChapter(
        "84",
        "computer_parts",
        0.05,
        0.2,
        0.005,
        0.01,
        0.8,
        35.0,
        0.5,
        1.2,
        ("847130", "847330", "846721", "841451"),
    ),
    HsChapter(
        "61",
        "apparel_knitted",
        0.14,
        0.0,
        0.01,
        0.005,
        1.6,
        9.0,
        0.25,
        1.4,
        ("610910", "611020", "610462", "611595"),
    ),
    HsChapter(
        "62",
        "apparel_woven",
        0.08,
        0.0,
        0.01,
        0.005,
        1.6,
        14.0,
        0.35,
        1.4,
        ("620342", "620462", "620193", "621143"),
    ),
    HsChapter(
        "64",
        "footwear",
        0.07,
        0.8,
        0.05,
        0.005,
        1.5,
        22.0,
        0.8,
        1.6,
        ("640299", "640411", "640391", "640520"),
    ),
    HsChapter(
        "42", "bags", 0.05, 1.2, 0.08, 0.005, 1.3, 20.0, 0.6, 1.6, ("420222", "420221", "420292", "420231")
    ),
    HsChapter(
        "33",
        "cosmetics",
        0.05,
        0.9,
        0.02,
        0.04,
        0.8,
        12.0,
        0.2,
        1.1,
        ("330499", "330410", "330720", "330510"),
    ),
    HsChapter(
        "95", "toys", 0.07, 0.5, 0.02, 0.02, 0.7, 13.0, 0.4, 1.8, ("950300", "950490", "950662", "950510")
    ),
    HsChapter(
        "90",
        "instruments",
        0.03,
        0.4,
        0.01,
        0.02,
        0.7,
        28.0,
        0.3,
        1.2,
        ("900410", "901890", "902519", "900211"),
    ),
    HsChapter(
        "39",
        "plastic_household",
        0.06,
        -0.5,
        0.002,
        0.005,
        0.9,
        6.0,
        0.3,
        1.5,
        ("392410", "392690", "392310", "391990"),
    ),
    HsChapter(
        "94",
        "lamps_furniture",
        0.04,
        -0.2,
        0.002,
        0.005,
        0.9,
        25.0,
        1.2,
        1.8,
        ("940540", "940171", "940360", "940490"),
    ),
    HsChapter(
        "63",
        "home_textiles",
        0.04,
        -0.4,
        0.002,
        0.003,
        1.2,
        10.0,
        0.5,
        1.5,
        ("630260", "630231", "630399", "630790"),
    ),
    HsChapter(
        "71",
        "imitation_jewellery",
        0.05,
        0.6,
        0.04,
        0.005,
        1.1,
        8.0,
        0.05,
        1.3,
        ("711719", "711311", "711790", "711620"),
    ),
    HsChapter(
        "91",
        "watches",
        0.03,
        1.1,
        0.07,
        0.005,
        1.0,
        26.0,
        0.12,
        1.2,
        ("910211", "910219", "910111", "910511"),
    ),
    HsChapter(
        "30",
        "pharma_supplements",
        0.01,
        2.0,
        0.15,
        0.08,
        0.5,
        15.0,
        0.15,
        1.1,
        ("300490", "300450", "300660", "300590"),
    ),
    HsChapter(
        "96",
        "misc_manufactured",
        0.03,
        0.0,
        0.01,
        0.01,
        1.0,
        10.0,
        0.2,
        1.3,
        ("960329", "961900", "960810", "961700"),
    ),
)
OTHER_CHAPTER: Final = "96"  # risk profile of chapters not listed above


@dataclass(frozen=True)
class Warehouse:
    """An overseas warehouse (ids fixed, shared with the demand side) and its local carriers."""

    warehouse_id: str
    country: str
    region: str
    carriers: tuple[str, ...]


WAREHOUSES: Final[tuple[Warehouse, ...]] = (
    Warehouse(_LAX, "US", "US-CA", ("USPS", "UPS Ground")),
    Warehouse(_NJ, "US", "US-NJ", ("USPS", "UPS Ground")),
    Warehouse(_BHX, "GB", "GB-BIR", ("Royal Mail", "Evri")),
    Warehouse(_FRA, "DE", "DE-HE", ("DHL Paket", "GLS")),
    Warehouse(_SYD, "AU", "AU-NSW", ("Australia Post", "Aramex")),
    Warehouse(_YYZ, "CA", "CA-ON", ("Canada Post", "Purolator")),
)

# Carriers of the cross-border modes: (carrier, price factor, preference, destinations or None for all).
_ALL = None
CARRIERS: Final[dict[str, tuple[tuple[str, float, float, tuple[str, ...] | None], ...]]] = {
    "postal": (
        ("China Post", 1.0, 0.5, _ALL),
        (
            "Singapore Post",
            1.05,
            0.0,
            ("GB", "DE", "FR", "ES", "IT", "NL", "PL", "TH", "MY", "PH", "SG", "AU", "NZ", "SA", "AE"),
        ),
    ),
    "dedicated_line": (
        ("YunExpress", 1.0, 0.4, tuple(d.country for d in DESTINATIONS if d.country != "KZ")),
        ("Yanwen", 0.92, 0.2, tuple(d.country for d in DESTINATIONS if d.country not in ("CL", "NZ"))),
        ("4PX", 1.02, 0.1, tuple(d.country for d in DESTINATIONS if d.country not in ("RU", "CL"))),
        ("Cainiao", 0.95, 0.3, _ALL),
        ("Cainiao Rail", 0.55, -0.6, ("DE", "PL", "NL", "RU", "KZ")),
        ("Yanwen Rail", 0.55, -0.8, ("DE", "PL", "RU")),
    ),
    "express": (
        ("DHL", 1.1, 0.3, _ALL),
        ("FedEx", 1.0, 0.1, _ALL),
        ("UPS", 1.05, 0.0, tuple(d.country for d in DESTINATIONS if d.country != "KZ")),
    ),
}
COURIER_IDS: Final[dict[str, str]] = {"DHL": "C01", "FedEx": "C02", "UPS": "C03"}

# Freight tariffs by mode (base fee per parcel, rate per chargeable kg), before lane factors.
_MODE_RATES: Final[dict[str, tuple[float, float]]] = {
    "postal": (1.2, 9.0),
    "dedicated_line": (2.8, 8.0),
    "express": (14.0, 16.0),
    "overseas_warehouse": (4.5, 1.2),
}
# Departure weekdays (0 = Monday) of dedicated air lines, by carrier; rail lines leave once a week.
_DEDICATED_DAYS: Final[dict[str, tuple[int, ...]]] = {
    "YunExpress": (0, 1, 2, 3, 4, 5),
    "Yanwen": (0, 1, 2, 3, 4),
    "4PX": (0, 1, 3, 4),
    "Cainiao": (0, 1, 2, 3, 4, 5, 6),
    "Cainiao Rail": (2,),
    "Yanwen Rail": (5,),
}
_SMALL_MARKETS: Final = ("NZ", "CL", "KZ", "SG")
_RAIL_DAYS: Final[dict[str, float]] = {"DE": 15.0, "PL": 13.0, "NL": 16.0, "RU": 10.0, "KZ": 7.0}


@dataclass(frozen=True)
class Line:
    """A carrier's service to one destination (a lane without its origin).

    Attributes:
        kind: "air" or "rail" (line-haul), "local" for overseas-warehouse delivery.
        weekdays: departure weekdays of the line-haul (0 = Monday).
        departure_hour: UTC hour of departure.
        linehaul_days: median departure-to-arrival days (transfers included).
        linehaul_sigma: log-scale spread of the line-haul time.
    """

    mode: str
    carrier: str
    country: str
    kind: str
    weekdays: tuple[int, ...]
    departure_hour: float
    linehaul_days: float
    linehaul_sigma: float
    base_rate_usd: float
    per_kg_rate_usd: float
    preference: float


def _cross_border_line(mode: str, carrier: str, factor: float, pref: float, dest: Destination) -> Line:
    base, per_kg = _MODE_RATES[mode]
    is_rail = carrier.endswith("Rail")
    if mode == "express":
        days, hour, sigma, weekdays = dest.air_days, 14.0, 0.25, tuple(range(7))
    elif mode == "postal":
        days, hour, sigma, weekdays = 2.2 * dest.air_days + 1.5, 16.0, 0.45, tuple(range(7))
    elif is_rail:
        days, hour, sigma, weekdays = _RAIL_DAYS[dest.country], 4.0, 0.15, _DEDICATED_DAYS[carrier]
    else:
        weekdays = (0, 2, 4) if dest.country in _SMALL_MARKETS else _DEDICATED_DAYS[carrier]
        days, hour, sigma = 1.4 * dest.air_days + 0.5, 15.0, 0.3
    rate = dest.rate_factor * factor
    return Line(
        mode,
        carrier,
        dest.country,
        "rail" if is_rail else "air",
        weekdays,
        hour,
        days,
        sigma,
        round(base * rate, 2),
        round(per_kg * rate, 2),
        pref,
    )


@lru_cache(maxsize=1)
def lines() -> tuple[Line, ...]:
    """Every line of the world: cross-border lines per carrier x destination, then local delivery lines.

    Local (overseas-warehouse) lines are one per warehouse carrier x destination served by that warehouse
    country; their line-haul is the trunk from the warehouse to the delivery zone.
    """
    out: list[Line] = []
    for mode, carriers in CARRIERS.items():
        for carrier, factor, pref, served in carriers:
            for dest in DESTINATIONS:
                if served is None or dest.country in served:
                    out.append(_cross_border_line(mode, carrier, factor, pref, dest))
    base, per_kg = _MODE_RATES["overseas_warehouse"]
    seen: set[tuple[str, str]] = set()
    for wh in WAREHOUSES:
        for country in warehouse_countries(wh.warehouse_id):
            for i, carrier in enumerate(wh.carriers):
                if (carrier, country) in seen:
                    continue
                seen.add((carrier, country))
                cross = 1.0 if country == wh.country else 1.4
                out.append(
                    Line(
                        "overseas_warehouse",
                        carrier,
                        country,
                        "local",
                        tuple(range(7)),
                        0.0,
                        0.6 * cross,
                        0.3,
                        round(base * cross * (1.0 + 0.1 * i), 2),
                        round(per_kg * cross * (1.0 + 0.1 * i), 2),
                        0.3 - 0.3 * i,
                    )
                )
    return tuple(out)


def warehouse_countries(warehouse_id: str) -> tuple[str, ...]:
    """Destination countries a warehouse delivers to (its own and, for the EU hub, the EU neighbours)."""
    return tuple(d.country for d in DESTINATIONS if any(r.near_warehouse == warehouse_id for r in d.regions))
