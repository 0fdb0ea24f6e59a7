"""Celery envelopes for the nightly evaluation: the tick fans out the due businesses in small
batches, each business evaluated in its own scope, each date in its own transaction."""

import itertools
from datetime import date

from celery import shared_task
from django.utils import timezone

from . import engine

# Businesses per task: one task per business spent more time in the broker round trip than in a
# steady-state night's evaluation (~10 ms); a batch is still small enough to spread over workers.
BATCH = 20


def evaluations_enqueue(pairs: list[tuple[int, date]], *, batch: int | None = None) -> int:
    """Send (business id, local date) pairs to the workers, ``batch`` (BATCH) businesses to a task.
    A business's dates (a catch-up) stay in one task, in order: split over two workers, D+1 could
    be evaluated before D."""
    batch = batch or BATCH
    businesses = [list(dates) for _, dates in itertools.groupby(pairs, key=lambda pair: pair[0])]
    for i in range(0, len(businesses), batch):
        chunk = [pair for dates in businesses[i : i + batch] for pair in dates]
        businesses_evaluate_task.delay(pairs=[[pk, day.isoformat()] for pk, day in chunk])
    return len(pairs)


@shared_task(name="campaigns.evaluation_tick", ignore_result=True)
def evaluation_tick_task() -> int:
    return evaluations_enqueue(engine.evaluations_due(now=timezone.now()))


@shared_task(name="campaigns.businesses_evaluate", ignore_result=True, acks_late=True)
def businesses_evaluate_task(*, pairs: list[list]) -> int:
    """Evaluate each (business id, local date); a failing business is recorded and retried later
    with backoff, the others evaluated. A redelivered batch skips the dates already done: their
    run row exists. Returns how many dates did not fail."""
    outcomes = engine.nights_evaluate(
        pairs=[(int(pk), date.fromisoformat(day)) for pk, day in pairs], now_fn=timezone.now
    )
    return sum(1 for outcome in outcomes if not outcome.error)
