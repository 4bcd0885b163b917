"""Stage: simulate. The shipment side of the simulator: bookings, world state, realised tables and oracle.

Reads nothing (the static world comes from `world`, calendars from `features.calendar`). Writes nothing:
`simulate_shipments` returns the raw contract tables `shipments`, `shipment_events`,
`customs_declarations`, `lanes` as a carrier/forwarder export at `end` would show them (right-censored:
open parcels are `in_transit`, later scans unknown) and the oracle: the true booking-time distribution of
each parcel's door-to-door transit time, its lateness and inspection probabilities, and the disruptions.

Realism: daily volume with weekday pattern, growth, 11.11 / Black Friday / Christmas peaks and the Chinese
New Year dip; sellers with a home hub, a catalogue focus and a latent declaration quality; mode choice by
value, weight, destination and warehouse stock; carrier choice by price; congestion from the simulated volume
itself; weeks-long lane disruptions, capacity crunches, last-mile strikes and customs crackdowns.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.calendar import country_holidays, daily_calendar
from features.schema import TABLES, Incoterm, Mode
from features.simulator.bookings import Bookings, draw_bookings
from features.simulator.events import (
    Booking,
    Context,
    EventLabels,
    Timeline,
    build_calendars,
    build_events,
    draw_timeline,
)
from features.simulator.customs import build_declarations
from features.simulator.world import DESTINATIONS, MODE_CODES, lines

__all__ = ["ShipmentConfig", "simulate_shipments"]

log = logging.getLogger(__name__)
