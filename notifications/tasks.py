"""Celery envelopes for sending: ids in, one plain function called."""

from celery import shared_task
from django.utils import timezone

from members.models import Business
from winback.tenancy import TenantTask

from . import dispatcher, selectors, services


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


@shared_task(name="notifications.whatsapp_templates_sync_all", ignore_result=True)
def whatsapp_templates_sync_all_task() -> int:
    """Beat's tick: one sync task per business with WhatsApp set up."""
    business_ids = selectors.whatsapp_template_businesses()
    for business_id in business_ids:
        whatsapp_templates_sync_task.delay(business_id=business_id)
    return len(business_ids)


@shared_task(base=TenantTask, name="notifications.whatsapp_templates_sync", ignore_result=True, acks_late=True)
def whatsapp_templates_sync_task(*, business_id: int) -> dict | None:
    report = services.whatsapp_templates_sync(business=Business.objects.get(pk=business_id), now=timezone.now())
    return report.__dict__ if report else None
