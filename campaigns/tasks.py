"""Celery envelopes for the nightly evaluation: the tick fans out one task per due business."""

from datetime import date

from celery import shared_task
from django.utils import timezone

from members.models import Business
from winback.tenancy import TenantTask

from . import engine


@shared_task(name="campaigns.evaluation_tick", ignore_result=True)
def evaluation_tick_task() -> int:
    due = engine.evaluations_due(now=timezone.now())
    for business_id, local_date in due:
        business_evaluate_task.delay(business_id=business_id, local_date=local_date.isoformat())
    return len(due)


@shared_task(base=TenantTask, name="campaigns.business_evaluate", ignore_result=True, acks_late=True)
def business_evaluate_task(*, business_id: int, local_date: str) -> int | None:
    business = Business.objects.get(pk=business_id)
    result = engine.business_evaluate(business=business, local_date=date.fromisoformat(local_date), now=timezone.now())
    return result.run.sends if result else None
