from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django_scopes import scope

from campaigns import engine
from campaigns.models import CampaignSend
from notifications.models import Delivery


def at_local(business, day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(business.timezone))


def night(business, day: date, *, dry_run: bool = False):
    """Evaluate ``day`` as the tick would, one minute after local midnight."""
    now = engine.local_day_start(day, business.tzinfo) + timedelta(minutes=1)
    with scope(business=business.pk):
        return engine.business_evaluate(business=business, local_date=day, now=now, dry_run=dry_run)


def sends(business, **filters):
    with scope(business=business.pk):
        return list(CampaignSend.objects.filter(**filters).order_by("local_date", "member_id", "campaign_id"))


def deliveries(business, **filters):
    with scope(business=business.pk):
        return list(Delivery.objects.filter(**filters).order_by("scheduled_at", "id"))
