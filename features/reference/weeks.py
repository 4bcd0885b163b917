"""Stage: reference. ISO weeks: the label `YYYY-Www` and its Monday, the one home of this arithmetic.

Reads and writes nothing. The demand panel (`week_start` is a Monday), the forecast and the restock plan
(`--week 2025-W48`) all name weeks this way; `iso_week_monday` and `iso_week_label` are inverses (a
Hypothesis test pins the round trip).

Example:
    >>> import datetime as dt
    >>> iso_week_monday("2025-W48"), iso_week_label(dt.date(2025, 11, 30))
    (datetime.date(2025, 11, 24), '2025-W48')
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

__all__ = ["WEEK_PATTERN", "iso_week_label", "iso_week_monday", "week_monday"]

WEEK_PATTERN: Final = re.compile(r"^(\d{4})-W(\d{2})$")


def iso_week_monday(week: str) -> dt.date:
    """Monday of an ISO week written `YYYY-Www` (e.g. `"2025-W48" -> 2025-11-24`).

    Raises:
        ValueError: the text is not a valid ISO week (naming the expected format).
    """
    found = WEEK_PATTERN.match(week) if isinstance(week, str) else None
    try:
        if found is None:
            raise ValueError("not YYYY-Www")
        return dt.date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError as exc:
        raise ValueError(f"week must look like 2025-W48 (ISO year-week), got {week!r}") from exc


def iso_week_label(day: dt.date) -> str:
    """ISO week label `YYYY-Www` of a date (any day of the week)."""
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def week_monday(day: dt.date) -> dt.date:
    """Monday of the ISO week containing `day` (the panel's `week_start`)."""
    return day - dt.timedelta(days=day.weekday())
