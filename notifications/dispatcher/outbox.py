"""What the dispatcher's parts share about the outbox: the lease, the statuses grouped, the tables
their raw SQL writes, and the status-change events every step records."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection

from campaigns.models import CampaignSend
from members.models import WalletReward
from winback.db import rows_insert

from ..models import Delivery, DeliveryEvent, DeliveryStatus

LEASE = timedelta(minutes=5)
WENT_OUT = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.OPENED)
PENDING_OR_SENDING = (DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED, DeliveryStatus.SENDING)
FAILED_ANY = (DeliveryStatus.FAILED, DeliveryStatus.UNCONFIRMED)

# Raw SQL (PostgreSQL) for the per-chunk writes: one statement where the ORM needs several.
_DELIVERY = Delivery._meta.db_table
_EVENT = DeliveryEvent._meta.db_table
_SEND = CampaignSend._meta.db_table
_REWARD = WalletReward._meta.db_table


def _events(rows: list[tuple[int, int]], status: str, at: datetime, detail: str = "") -> None:
    """Record a status change for (delivery id, business id) rows."""
    at_db, detail = connection.ops.adapt_datetimefield_value(at), detail[:500]
    rows_insert(DeliveryEvent, ("business_id", "delivery_id", "status", "at", "detail"),
                [(b, d, status, at_db, detail) for d, b in rows])  # fmt: skip
