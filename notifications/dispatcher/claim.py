"""Claiming due deliveries: expired leases returned (or marked unconfirmed), due deliveries claimed
in batches with ``SELECT … FOR UPDATE SKIP LOCKED`` and handed, a batch at a time, to a worker."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django_scopes import scopes_disabled

from ..models import Delivery, DeliveryStatus
from .outbox import _DELIVERY, _EVENT, LEASE, _events


@dataclass
class DispatchReport:
    requeued: int = 0
    unconfirmed: int = 0
    claimed: int = 0
    batches: int = 0


def leases_expire(*, now: datetime) -> tuple[int, int]:
    """Queued past the lease: never attempted, back to scheduled. Sending past the lease: the
    provider may have it, so unconfirmed, never resent."""
    with transaction.atomic():
        queued = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.QUEUED, lease_expires_at__lt=now)
            .values_list("id", "business_id")
        )
        if queued:
            Delivery.objects.filter(id__in=[d for d, _ in queued]).update(
                status=DeliveryStatus.SCHEDULED, lease_expires_at=None, updated_at=now
            )
            _events(queued, DeliveryStatus.SCHEDULED, now, "lease expired before sending; rescheduled")
        sending = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
            .values_list("id", "business_id")
        )
        if sending:
            reason = "the worker was lost while sending; not resent to avoid a duplicate"
            Delivery.objects.filter(id__in=[d for d, _ in sending]).update(
                status=DeliveryStatus.UNCONFIRMED, lease_expires_at=None, updated_at=now, last_error=reason
            )
            _events(sending, DeliveryStatus.UNCONFIRMED, now, reason)
    return len(queued), len(sending)


def deliveries_claim(*, now: datetime, limit: int) -> dict[int, list[int]]:
    """Claim up to ``limit`` due deliveries; returns their ids by business."""
    if connection.vendor == "postgresql":
        # One statement (its own transaction): lock, mark queued and record the event.
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH due AS (SELECT id FROM {_DELIVERY} WHERE status = %s AND scheduled_at <= %s "  # noqa: S608
                "ORDER BY scheduled_at, id LIMIT %s FOR UPDATE SKIP LOCKED), "
                f"claimed AS (UPDATE {_DELIVERY} d SET status = %s, lease_expires_at = %s, updated_at = %s "
                "FROM due WHERE d.id = due.id RETURNING d.id, d.business_id), "
                f"events AS (INSERT INTO {_EVENT} (business_id, delivery_id, status, at, detail) "
                "SELECT business_id, id, %s, %s, '' FROM claimed) "
                "SELECT id, business_id FROM claimed ORDER BY id",
                [DeliveryStatus.SCHEDULED, now, limit, DeliveryStatus.QUEUED, now + LEASE, now,
                 DeliveryStatus.QUEUED, now],
            )  # fmt: skip
            rows = cursor.fetchall()
        return _by_business(rows)
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.SCHEDULED, scheduled_at__lte=now)
            .order_by("scheduled_at", "id")
            .values_list("id", "business_id")[:limit]
        )
        if not rows:
            return {}
        Delivery.objects.filter(id__in=[d for d, _ in rows]).update(
            status=DeliveryStatus.QUEUED, lease_expires_at=now + LEASE, updated_at=now
        )
        _events(rows, DeliveryStatus.QUEUED, now)
    return _by_business(rows)


def _by_business(rows: list[tuple[int, int]]) -> dict[int, list[int]]:
    batches: dict[int, list[int]] = defaultdict(list)
    for delivery_id, business_id in rows:
        batches[business_id].append(delivery_id)
    return dict(batches)


def dispatch_due(
    *,
    now: datetime,
    enqueue: Callable[[int, list[int]], None],
    batch_size: int = 500,
    max_batches: int = 100,
) -> DispatchReport:
    """Return expired leases, then claim due deliveries batch by batch and ``enqueue`` each
    (business id, delivery ids) — one Celery task per batch, never one per delivery."""
    report = DispatchReport()
    with scopes_disabled():  # the dispatcher fans out across businesses
        report.requeued, report.unconfirmed = leases_expire(now=now)
        for _ in range(max_batches):
            batches = deliveries_claim(now=now, limit=batch_size)
            if not batches:
                break
            for business_id, ids in batches.items():
                enqueue(business_id, ids)
                report.claimed += len(ids)
                report.batches += 1
    return report
