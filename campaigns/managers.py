"""Queryset methods naming the ideas the campaign tables are read by."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet


class CampaignSendQuerySet(QuerySet):
    def visible_at(self, now: datetime) -> CampaignSendQuerySet:
        """Sends the member can see at ``now`` — in the inbox, on the open link's page, to claim.

        A send is visible once it went out on some channel (a delivery sent, delivered or opened;
        its outcome then settles ``sent``), or, for a send that has no delivery at all (the
        in-app inbox is its only channel), once its send-at time has passed. Scheduled, returned,
        skipped, failed, cancelled, control and capped sends are not: nothing reaches the member
        before it is sent, and what pausing cancels was never seen.
        """
        from notifications.dispatcher import WENT_OUT
        from notifications.models import Delivery

        from .models import SendOutcome

        deliveries = Delivery.objects.filter(send_id=OuterRef("pk"))
        # A delivery that went out moments ago, before the batch settles its send's outcome, counts.
        went_out = Exists(deliveries.filter(status__in=WENT_OUT))
        inbox_only = ~Exists(deliveries) & self._sent_by(now)
        return self.filter(Q(outcome=SendOutcome.SENT) | (Q(outcome=SendOutcome.SCHEDULED) & (went_out | inbox_only)))

    def _sent_by(self, now: datetime) -> Q:
        """Sends of a night whose send-at instant is ``now`` or earlier, per campaign (its send-at
        time, weekends and its business's zone; one query for the few campaigns involved)."""
        from .models import Campaign

        campaigns = Campaign.objects.filter(pk__in=self.values("campaign_id")).select_related("business")
        condition = Q(pk__in=[])
        for campaign in campaigns:
            condition |= Q(campaign_id=campaign.pk, local_date__lte=last_night_sent_by(campaign, now=now))
        return condition


def last_night_sent_by(campaign, *, now: datetime) -> date:
    """The latest local date whose night's messages of ``campaign`` are due by ``now``: the night
    of D sends at the campaign's send-at time on D, or on the next weekday without weekends."""
    from .pacing import night_send_at

    today = now.astimezone(campaign.business.tzinfo).date()
    # A night sends on its own day or at most two days later (Saturday's on Monday), so three days
    # back is always due.
    for back in range(3):
        night = today - timedelta(days=back)
        if night_send_at(campaign=campaign, local_date=night) <= now:
            return night
    return today - timedelta(days=3)
