"""The tick's side of the night: which (business, local date) pairs are due (catch-up after downtime
included), evaluating a batch of them business by business, and recording failures with backoff."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Max
from django_scopes import scope, scopes_disabled

from members.models import Business

from ..models import EvaluationFailure, EvaluationRun
from .dates import local_date_of
from .night import RunResult, business_evaluate

log = logging.getLogger(__name__)


# Whole local dates missed (the beat down across midnights) are still evaluated this many days
# back from today; older ones are lost: a message for a week-old night would be news no longer.
CATCH_UP_DAYS = 3

# A failing business is retried after 5 minutes (the tick's own period), then 10, 20, … up to 4 h.
RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=4)


def evaluations_due(*, now: datetime) -> list[tuple[int, date]]:
    """(business id, local date) pairs to evaluate, by business and, within one, oldest date first.

    For each active business not backing off after a failure: every local date after its last
    run, up to today, but from at most ``CATCH_UP_DAYS`` before today and not before the date the
    business was created. So a tick missed during downtime — even whole dates — is caught up by
    the next one, and the unique run per (business, local date) keeps two ticks from evaluating a
    date twice. Why these bounds:

    * after the last run, never a gap before it: spacing and the frequency cap read the nights
      in date order, so an older date evaluated after a newer one would message members the
      newer night already judged;
    * not before the business existed: a business created today has had no night before today
      (its campaigns, activated today, are evaluated from tomorrow anyway, SPEC §5);
    * up to today, which the creation bound never excludes (a clock behind ``created_at`` must
      not stop a business's nights).

    Two queries whatever the history: the businesses (with their failure row, if any), and their
    last runs within the window, read from the index leading with the date (``run_local_date``).
    """
    with scopes_disabled():  # the one cross-tenant fan-out of the night
        businesses = list(
            Business.objects.filter(is_active=True)
            .exclude(evaluation_failure__retry_at__gt=now)  # backing off: left alone until then
            .values_list("pk", "timezone", "created_at")
        )
        if not businesses:
            return []
        today = {pk: local_date_of(now, ZoneInfo(tz)) for pk, tz, _ in businesses}
        window = min(today.values()) - timedelta(days=CATCH_UP_DAYS)
        last = dict(
            EvaluationRun.objects.filter(local_date__gte=window)
            .values("business_id")
            .annotate(last=Max("local_date"))
            .values_list("business_id", "last")
            .order_by()
        )
    due = []
    for pk, tz, created_at in businesses:
        first = max(
            today[pk] - timedelta(days=CATCH_UP_DAYS),
            min(local_date_of(created_at, ZoneInfo(tz)), today[pk]),
            last[pk] + timedelta(days=1) if pk in last else date.min,
        )
        due += [(pk, first + timedelta(days=k)) for k in range((today[pk] - first).days + 1)]
    return sorted(due)


@dataclass
class NightOutcome:
    business_id: int
    local_date: date
    result: RunResult | None = None  # None: already evaluated (or failed)
    error: str = ""


def nights_evaluate(
    *, pairs: list[tuple[int, date]], now_fn: Callable[[], datetime], dry_run: bool = False
) -> list[NightOutcome]:
    """Evaluate (business id, local date) pairs, each business in its own scope, its dates oldest
    first, each date its own run (and transaction).

    One business's failure leaves the others evaluated. It is recorded (``EvaluationFailure``:
    count, error, next retry with backoff) and ends that business's dates for now: a later date
    evaluated after a failed one would leave the failed one behind for good (the catch-up never
    goes back before the last run). A business that succeeds again has its failure cleared.
    A dry run writes nothing, failures included.
    """
    outcomes: list[NightOutcome] = []
    succeeded: list[int] = []
    by_business: dict[int, list[date]] = {}
    for business_id, local_date in pairs:
        by_business.setdefault(int(business_id), []).append(local_date)
    for business_id, dates in by_business.items():
        with scope(business=business_id):
            business = Business.objects.filter(pk=business_id).first()
            if business is None:
                continue  # deleted since the tick
            for local_date in sorted(dates):
                outcome = NightOutcome(business_id, local_date)
                outcomes.append(outcome)
                now = now_fn()
                try:
                    outcome.result = business_evaluate(
                        business=business, local_date=local_date, now=now, dry_run=dry_run
                    )
                except Exception as exc:
                    log.exception("evaluation of business %s for %s failed", business_id, local_date)
                    outcome.error = f"{type(exc).__name__}: {exc}"[:2000]
                    if not dry_run:
                        _failure_record(business=business, local_date=local_date, error=outcome.error, now=now)
                    break
            else:
                succeeded.append(business_id)
    if succeeded and not dry_run:
        # One statement for the batch (not one per business a night): a business that succeeds
        # again has its failure cleared.
        with scopes_disabled():
            EvaluationFailure.objects.filter(business_id__in=succeeded).delete()
    return outcomes


def _failure_record(*, business: Business, local_date: date, error: str, now: datetime) -> None:
    try:
        evaluation_failure_record(business=business, local_date=local_date, error=error, now=now)
    except Exception:
        # The database itself failing: the next business of the batch may still get through.
        log.exception("could not record the failure of business %s", business.pk)


def retry_delay(failures: int) -> timedelta:
    """How long the tick leaves a business alone after ``failures`` failures in a row."""
    return min(RETRY_FIRST * 2 ** min(failures - 1, 20), RETRY_MAX)


def evaluation_failure_record(*, business: Business, local_date: date, error: str, now: datetime) -> EvaluationFailure:
    """Count one more failure of ``business`` and push its next retry out (after the night's own
    transaction rolled back). Two workers failing at once count twice: the row is locked."""
    with transaction.atomic():
        failure, created = EvaluationFailure.objects.select_for_update().get_or_create(
            business=business,
            defaults={"local_date": local_date, "error": error, "first_failed_at": now, "failed_at": now,
                      "retry_at": now + retry_delay(1)},
        )  # fmt: skip
        if not created:
            failure.failures += 1
            failure.local_date, failure.error, failure.failed_at = local_date, error, now
            failure.retry_at = now + retry_delay(failure.failures)
            failure.save(update_fields=["failures", "local_date", "error", "failed_at", "retry_at"])
    return failure
