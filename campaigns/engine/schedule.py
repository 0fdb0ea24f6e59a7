"""When the night's deliveries go out: each (campaign, channel)'s calendar of allowed days from
tonight's send-at on, its pacing (interval, daily cap, what is still waiting) as the VALUES
tables ``p`` and ``cal`` that the deliveries' INSERT reads."""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Q

from members.models import Business, Member, MemberStatus

from ..models import Campaign
from ..pacing import UNCAPPED, SendCalendar
from .dates import local_date_of, local_day_start, local_moment
from .selection import _lapsed_before
from .sql import _values_sql


@dataclass
class NightSchedule:
    """The send times of one business's night (the base of its writes, ``writes._Night``)."""

    business: Business
    campaigns: list[Campaign]
    local_date: date
    now: datetime

    def calendars(self) -> dict[tuple[int, str], SendCalendar]:
        """Each (campaign, channel)'s allowed days from tonight's send-at on.

        In the business's time zone: a member with a zone of their own (few) is paced with the
        others, and the dispatcher's send-time re-check defers them, paced again, if that falls in
        their quiet hours. Per-member zones here would need time zone rules in SQL, which SQLite
        has not, and the night's two paths must stay equal.
        """
        tz = self.business.tzinfo
        return {
            (campaign.pk, channel): SendCalendar.for_channel(
                campaign=campaign, channel=channel, tz=tz, start=self.first_send_start(campaign),
                opens_at=campaign.send_at,
            )
            for campaign in self.campaigns
            for channel in campaign.channels
        }  # fmt: skip

    def first_send_start(self, campaign: Campaign) -> datetime:
        """Tonight's send-at instant; for a date caught up on a later local date (after downtime),
        ``now``: the calendar then opens on the next allowed day whose send-at is still ahead, so
        a missed night's messages go out at the usual time of day, not at once at 02:00 (nor in
        one burst at 08:00). A night evaluated late on its own date keeps its send-at (what is
        past goes out at once), as before."""
        tz = self.business.tzinfo
        start = local_moment(self.local_date, campaign.send_at, tz)
        return self.now if local_date_of(self.now, tz) > self.local_date and start < self.now else start

    def pacing_ctes(self) -> tuple[str, list]:
        """``p`` (campaign, channel, interval, slots a day, backlog) and ``cal`` (each allowed day's
        opening instant, as many days as the daily cap or the 21:00 close of SMS and WhatsApp can
        need)."""
        calendars = self.calendars()
        bounded = {key: cal for key, cal in calendars.items() if cal.per_day != UNCAPPED}
        backlog, bound = self._capped_counts(bounded) if bounded else ({}, {})
        pacing_rows, calendar_rows = [], []
        for (campaign_id, channel), cal in calendars.items():
            waiting = backlog.get((campaign_id, channel), 0)
            pacing_rows.append([campaign_id, channel, cal.step, cal.per_day, waiting])
            # At most every lapsed member gets a send tonight: enough days for them all.
            days = cal.days_for(waiting + bound.get(campaign_id, 0)) if cal.per_day != UNCAPPED else 1
            calendar_rows += [[campaign_id, channel, i, int(cal.day(i)[0].timestamp())] for i in range(days)]
        if not pacing_rows:
            pacing_rows = [[0, "", 0, UNCAPPED, 0]]  # campaigns without channels: no delivery
            calendar_rows = [[0, "", 0, 0]]
        pacing_sql, pacing_params = _values_sql(
            "p", [("cid", "bigint"), ("channel", "varchar"), ("step", "integer"), ("per_day", "integer"),
                  ("backlog", "integer")], pacing_rows)  # fmt: skip
        calendar_sql, calendar_params = _values_sql(
            "cal",
            [("cid", "bigint"), ("channel", "varchar"), ("idx", "integer"), ("start_epoch", "bigint")],
            calendar_rows,
        )
        return f"{pacing_sql}, {calendar_sql}", pacing_params + calendar_params

    def _capped_counts(self, bounded: dict[tuple[int, str], SendCalendar]) -> tuple[dict, dict]:
        """For channels with a limit a day (a cap, or 21:00): deliveries still scheduled on or after
        the local start of tonight's first send day (yesterday's spill and deferrals fill today's
        first slots), and per campaign how many members have lapsed at all (the most sends tonight
        can write)."""
        from notifications.models import Delivery, DeliveryStatus

        tz = self.business.tzinfo
        wanted = functools.reduce(
            operator.or_,
            [
                Q(campaign_id=campaign_id, channel=channel,
                  scheduled_at__gte=local_day_start(local_date_of(cal.day(0)[0], tz), tz))
                for (campaign_id, channel), cal in bounded.items()
            ],
        )  # fmt: skip
        backlog = {
            (campaign_id, channel): n
            for campaign_id, channel, n in Delivery.objects.filter(
                wanted, business_id=self.business.pk, status=DeliveryStatus.SCHEDULED
            )
            .values_list("campaign_id", "channel")
            .annotate(n=Count("pk"))
            .order_by()
        }
        campaigns = {c.pk: c for c in self.campaigns if any(key[0] == c.pk for key in bounded)}
        lapsed = Member.objects.filter(business_id=self.business.pk, status=MemberStatus.ACTIVE).aggregate(
            **{
                f"c{pk}": Count("pk", filter=Q(last_purchase_at__lt=_lapsed_before(c, local_date=self.local_date)))
                for pk, c in campaigns.items()
            }
        )
        return backlog, {pk: lapsed[f"c{pk}"] for pk in campaigns}
