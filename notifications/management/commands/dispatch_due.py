from django.core.management.base import BaseCommand
from django.utils import timezone

from notifications import dispatcher
from notifications.tasks import deliveries_send_task
from winback.tenancy import business_scope


class Command(BaseCommand):
    help = "Run the dispatcher once: claim due deliveries and hand them to workers (--inline sends here)."

    def add_arguments(self, parser):
        parser.add_argument("--inline", action="store_true", help="send in this process instead of via Celery")

    def handle(self, *args, inline=False, **options):
        totals = {"sent": 0, "failed": 0, "retried": 0, "skipped": 0, "cancelled": 0, "deferred": 0}

        def enqueue(business_id: int, ids: list[int]) -> None:
            if not inline:
                deliveries_send_task.delay(business_id=business_id, delivery_ids=ids)
                return
            with business_scope(business_id):
                report = dispatcher.deliveries_send(delivery_ids=ids)
            for key in totals:
                totals[key] += getattr(report, key)

        report = dispatcher.dispatch_due(now=timezone.now(), enqueue=enqueue)
        self.stdout.write(
            f"claimed {report.claimed} in {report.batches} batch(es); requeued {report.requeued}, "
            f"unconfirmed {report.unconfirmed}"
        )
        if inline:
            self.stdout.write(", ".join(f"{k} {v}" for k, v in totals.items()))
