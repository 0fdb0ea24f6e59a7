"""The calendar of a business's nights: local dates and the instants they start, in its time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def local_day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz``, as UTC.

    Where DST begins at midnight (America/Santiago), 00:00 does not exist: a naive midnight
    with fold=0 takes the offset before the gap, which lands exactly on the instant the gap ends.
    """
    return datetime.combine(day, time(0)).replace(tzinfo=tz).astimezone(UTC)


def local_date_of(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def local_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``at`` on ``day`` in ``tz`` as UTC (a time inside a DST gap moves past the gap)."""
    return datetime.combine(day, at).replace(tzinfo=tz).astimezone(UTC)
