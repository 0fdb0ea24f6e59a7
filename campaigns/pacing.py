"""When a campaign's channel may send: the allowed days, each day's window and how many fit in it.

One calendar serves the night (which turns it into SQL: a VALUES row per day, slot ``n`` at
``opens[n // per_day] + (n % per_day) * step``) and the dispatcher's quiet-hours deferral (which
fills the days after what each already holds): both keep the channel's interval, its daily cap,
the campaign's weekends setting and, for SMS and WhatsApp, the 08:00–21:00 window (SPEC §4–5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .rules import QUIET_END, QUIET_START

if TYPE_CHECKING:
    from .models import Campaign

QUIET_CHANNELS = ("sms", "whatsapp")  # never outside QUIET_START–QUIET_END member-local
# Sends a day of a channel with neither a daily cap nor a closing time: every one fits on day 0.
UNCAPPED = 2_000_000_000


def channel_pacing(campaign: Campaign, channel: str) -> tuple[int, int]:
    """(interval in seconds, daily cap or 0) of ``campaign`` on ``channel``."""
    pacing = (campaign.pacing or {}).get(channel) or {}
    return int(pacing.get("interval_seconds") or 0), int(pacing.get("daily_cap") or 0)


@dataclass
class SendCalendar:
    """The allowed days of one (campaign, channel) in one time zone, from ``start`` on.

    Each day opens at ``opens_at`` local (no earlier than 08:00 for a quiet channel, whose days
    close at 21:00), the first day no earlier than ``start``; weekends are skipped when the
    campaign excludes them. ``per_day`` is the daily cap, bounded for a quiet channel by how many
    intervals fit before 21:00. Days are worked out as they are asked for.
    """

    tz: ZoneInfo
    start: datetime
    opens_at: time
    closes_at: time | None
    include_weekends: bool
    step: int
    per_day: int
    _days: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    _next: date | None = None

    @classmethod
    def for_channel(
        cls, *, campaign: Campaign, channel: str, tz: ZoneInfo, start: datetime, opens_at: time
    ) -> SendCalendar:
        step, cap = channel_pacing(campaign, channel)
        closes_at = None
        if channel in QUIET_CHANNELS:
            closes_at = QUIET_END
            if not QUIET_START <= opens_at < QUIET_END:
                opens_at = QUIET_START  # a send-at in quiet hours: the next 08:00 (start stays)
        per_day = cap or UNCAPPED
        if closes_at is not None and step:
            # Wall-clock length of the window: no zone moves its clocks between 08:00 and 21:00.
            seconds = (datetime.combine(date.min, closes_at) - datetime.combine(date.min, opens_at)).total_seconds()
            per_day = min(per_day, math.ceil(seconds / step))
        return cls(tz=tz, start=start, opens_at=opens_at, closes_at=closes_at,
                   include_weekends=campaign.include_weekends, step=step, per_day=per_day)  # fmt: skip

    def day(self, idx: int) -> tuple[datetime, datetime | None]:
        """The ``idx``-th allowed day's (opening, closing or None) instants, UTC."""
        if self._next is None:
            self._next = self.start.astimezone(self.tz).date()
        while len(self._days) <= idx:
            day, self._next = self._next, self._next + timedelta(days=1)
            if not self.include_weekends and day.weekday() >= 5:
                continue
            opens = _local(day, self.opens_at, self.tz)
            if opens < self.start:
                continue  # the first day's window opened before ``start`` (21:00 send-at, a deferral)
            self._days.append((opens, _local(day, self.closes_at, self.tz) if self.closes_at else None))
        return self._days[idx]

    def days_for(self, slots: int) -> int:
        """How many days ``slots`` sends in a row take."""
        return slots // self.per_day + 1

    def slot(self, n: int) -> datetime:
        """The instant of the ``n``-th send from the first day's opening (the night's formula)."""
        opens, _ = self.day(n // self.per_day)
        return opens + timedelta(seconds=(n % self.per_day) * self.step)

    def fill(self, count: int, *, taken: dict[date, tuple[int, datetime]]) -> list[datetime]:
        """``count`` instants after what each day already holds (``taken``: local date → (sends,
        the last one's instant)): a day's sends start one interval after its last, up to the cap
        and before its closing."""
        out: list[datetime] = []
        idx = 0
        while len(out) < count:
            opens, closes = self.day(idx)
            idx += 1
            used, last = taken.get(opens.astimezone(self.tz).date(), (0, None))
            at = max(opens, last + timedelta(seconds=self.step)) if last is not None and self.step else opens
            room = self.per_day - used
            if closes is not None and self.step:
                room = min(room, math.ceil((closes - at).total_seconds() / self.step))
            for i in range(max(min(room, count - len(out)), 0)):
                out.append(at + timedelta(seconds=i * self.step))
        return out


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``at`` on ``day`` in ``tz`` as UTC (a time inside a DST gap moves past the gap)."""
    return datetime.combine(day, at).replace(tzinfo=tz).astimezone(UTC)


def night_send_at(*, campaign: Campaign, local_date: date) -> datetime:
    """When the night of ``local_date`` sends ``campaign``'s messages (the in-app inbox's moment,
    with no channel's window): its send-at time on that day, or the next weekday when weekends are
    excluded."""
    tz = campaign.business.tzinfo
    start = _local(local_date, campaign.send_at, tz)
    return SendCalendar.for_channel(campaign=campaign, channel="", tz=tz, start=start, opens_at=campaign.send_at).day(
        0
    )[0]


def last_night_sent_by(campaign, *, now: datetime) -> date:
    """The latest local date whose night's messages of ``campaign`` are due by ``now``: the night
    of D sends at the campaign's send-at time on D, or on the next weekday without weekends."""
    today = now.astimezone(campaign.business.tzinfo).date()
    # A night sends on its own day or at most two days later (Saturday's on Monday), so three days
    # back is always due.
    for back in range(3):
        night = today - timedelta(days=back)
        if night_send_at(campaign=campaign, local_date=night) <= now:
            return night
    return today - timedelta(days=3)
