"""The dashboard's figures for a business: members by how long they have been away, this month's
messages, and the last 30 days' wins (``won_back_total``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import Count, Q

from ..models import Campaign
from .attribution import ArmOutcome, won_back_total


def business_dashboard(*, business, now: datetime) -> dict:
    """Members, active / lapsing / lapsed by threshold, this month's messages by channel (SMS and
    WhatsApp billable: a bill is monthly), and wins and revenue from the campaigns' sends of the
    last 30 days (a rolling window: on the 1st of a month "this month" would show nothing won)."""
    from members.models import Member, MemberStatus
    from notifications.budget import spend_this_month
    from notifications.models import Delivery, DeliveryStatus

    from ..engine import local_day_start

    tz = business.tzinfo
    today = now.astimezone(tz).date()

    def since(days: int) -> datetime:
        return local_day_start(today - timedelta(days=days - 1), tz)

    members = Member.objects.filter(status=MemberStatus.ACTIVE).aggregate(
        total=Count("pk"),
        never=Count("pk", filter=Q(last_purchase_at__isnull=True)),
        active=Count("pk", filter=Q(last_purchase_at__gte=since(14))),
        d14=Count("pk", filter=Q(last_purchase_at__lt=since(14), last_purchase_at__gte=since(30))),
        d30=Count("pk", filter=Q(last_purchase_at__lt=since(30), last_purchase_at__gte=since(60))),
        d60=Count("pk", filter=Q(last_purchase_at__lt=since(60), last_purchase_at__gte=since(90))),
        d90=Count("pk", filter=Q(last_purchase_at__lt=since(90))),
    )
    month_start = local_day_start(date(today.year, today.month, 1), tz)
    out = [DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.OPENED]
    messages = dict(
        Delivery.objects.filter(sent_at__gte=month_start, status__in=out)
        .values("channel")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("channel", "n")
    )
    campaigns = list(
        Campaign.objects.filter(business=business).exclude(status="draft").only("pk", "status", "attribution_days")
    )
    # Won back, last 30 days (a "this month" figure reads 0 on the 1st): members messaged since
    # then who came back, by the campaigns' one definition, each member and purchase once.
    wins_since = since(30)
    won = won_back_total(campaigns=campaigns, since=wins_since) if campaigns else ArmOutcome()
    wins, revenue = won.won, won.revenue
    return {
        "members": members,
        # Not "messages": that name is Django's flash messages in every template's context.
        "sent_by_channel": messages,
        "billable": messages.get("sms", 0) + messages.get("whatsapp", 0),
        "wins": wins,
        "revenue": revenue,
        "month_start": month_start,
        "wins_since": wins_since,
        # What billable messages cost this month (reserved when sent), against the budget.
        "spend": spend_this_month(business=business, now=now),
        "active_campaigns": sum(1 for c in campaigns if c.status == "active") if campaigns else 0,
    }
