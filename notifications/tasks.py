"""Celery envelopes for sending: ids in, one plain function called."""

from celery import shared_task
from django.utils import timezone

from winback.tenancy import TenantTask

from . import dispatcher


@shared_task(name="notifications.dispatch_due", ignore_result=True)
def dispatch_due_task() -> dict:
    report = dispatcher.dispatch_due(
        now=timezone.now(),
        enqueue=lambda business_id, ids: deliveries_send_task.delay(business_id=business_id, delivery_ids=ids),
    )
    return report.__dict__


@shared_task(
    base=TenantTask,
    name="notifications.deliveries_send",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def deliveries_send_task(*, business_id: int, delivery_ids: list[int]) -> dict:
    return dispatcher.deliveries_send(delivery_ids=delivery_ids).__dict__
