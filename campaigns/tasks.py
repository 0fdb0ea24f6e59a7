"""Celery envelopes for the nightly evaluation: the tick fans out the due businesses in small
batches, each business evaluated in its own scope and transaction."""

import logging
from datetime import date

from celery import shared_task
from django.utils import timezone

from members.models import Business
from winback.tenancy import business_scope

from . import engine

log = logging.getLogger(__name__)

# Businesses per task: one task per business spent more time in the broker round trip than in a
# steady-state night's evaluation (~10 ms); a batch is still small enough to spread over workers.
BATCH = 20


def evaluations_enqueue(pairs: list[tuple[int, date]], *, batch: int | None = None) -> int:
    """Send (business id, local date) pairs to the workers, ``batch`` (BATCH) to a task."""
    batch = batch or BATCH
    for i in range(0, len(pairs), batch):
        businesses_evaluate_task.delay(pairs=[[pk, day.isoformat()] for pk, day in pairs[i : i + batch]])
    return len(pairs)


@shared_task(name="campaigns.evaluation_tick", ignore_result=True)
def evaluation_tick_task() -> int:
    return evaluations_enqueue(engine.evaluations_due(now=timezone.now()))


@shared_task(name="campaigns.businesses_evaluate", ignore_result=True, acks_late=True)
def businesses_evaluate_task(*, pairs: list[list]) -> int:
    """Evaluate each (business id, local date): one business's failure is logged and leaves the
    others evaluated (it has no run row, so the next tick tries it again). A redelivered batch
    skips the businesses already done: their run row exists."""
    done = 0
    for business_id, local_date in pairs:
        try:
            with business_scope(int(business_id)):
                business = Business.objects.get(pk=business_id)
                engine.business_evaluate(
                    business=business, local_date=date.fromisoformat(local_date), now=timezone.now()
                )
            done += 1
        except Exception:
            log.exception("evaluation of business %s for %s failed", business_id, local_date)
    return done
