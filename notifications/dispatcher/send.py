"""Sending a claimed batch (the worker's task body): each delivery re-checked at the moment of
sending, then a chunk at a time marked ``sending`` (committed) and handed to its channel's backend."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns import messages
from campaigns.models import Campaign, CampaignMessage, CampaignStatus
from campaigns.pacing import QUIET_CHANNELS
from campaigns.rules import QUIET_END, QUIET_START
from members.models import BILLABLE_CHANNELS, Business, MemberStatus

from ..channels import PermanentSendError, PushTarget, TransientSendError, backend_for
from ..models import Delivery, DeliveryStatus, PushSubscription
from .compose import _Composer
from .fallback import deliveries_fall_back
from .outbox import _DELIVERY, _EVENT, LEASE, _events
from .settle import _act_on, _deliveries_defer, _results_write, _settle_sends
from .spend import Reservation, _over_budget, _short_codes_fill

MAX_ATTEMPTS = 5
# Deliveries marked ``sending`` (and committed) before their provider calls: a worker lost
# mid-chunk leaves at most this many unconfirmed. Each chunk costs three statements on
# PostgreSQL; measured per delivery in-process: 50 → ~240 µs, 100 → ~190 µs, 250 → ~180 µs.
CHUNK = 100


def in_quiet_hours(*, now: datetime, tz: ZoneInfo) -> bool:
    """Outside 08:00–21:00 in ``tz``: no SMS or WhatsApp now."""
    return not QUIET_START <= now.astimezone(tz).time() < QUIET_END


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    cancelled: int = 0
    deferred: int = 0
    lost: int = 0
    fell_back: int = 0
    # Past the monthly budget: moved to a free channel (or the inbox), or waiting for next month.
    over_budget: int = 0
    details: dict = field(default_factory=dict)


def deliveries_send(
    *,
    delivery_ids: list[int],
    now_fn: Callable[[], datetime] = timezone.now,
    backends: Callable[..., object] = backend_for,
) -> SendReport:
    """Send a claimed batch (runs in a worker, inside the batch's business scope)."""
    report = SendReport()
    now = now_fn()
    # Plain rows, not model instances: a batch is hundreds of deliveries and the worker's CPU is
    # the dispatcher's limit. Campaigns and businesses are few: loaded once each.
    # With the member's last purchase before the send, for the night's {days_away} (built here,
    # in the batch's scope: it reads the ledger).
    fields = {**_ROW_FIELDS, "purchase_before": messages.purchase_before(made="send__created_at")}
    rows = list(
        Delivery.objects.filter(id__in=delivery_ids, status=DeliveryStatus.QUEUED)
        .order_by("scheduled_at", "id")
        .values("id", "business_id", "send_id", "campaign_id", "member_id", "channel", "attempts", **fields)
    )
    if not rows:
        return report
    campaigns = Campaign.objects.in_bulk({r["campaign_id"] for r in rows})
    businesses = Business.objects.in_bulk({r["business_id"] for r in rows})
    # Every live push subscription of the batch's members, newest first, in one query: the web
    # push backend gets them with each message and looks nothing up itself.
    push_members = [r["member_id"] for r in rows if r["channel"] == "push"]
    subscriptions: dict[int, list[PushTarget]] = defaultdict(list)
    if push_members:
        for member_id, *target in (
            PushSubscription.objects.filter(member_id__in=push_members)
            .order_by("-created_at", "-id")
            .values_list("member_id", "id", "endpoint", "p256dh", "auth")
        ):
            subscriptions[member_id].append(PushTarget(*target))

    cancel, returned, unreachable, ready = [], [], [], []
    defer: dict[tuple[int, str, str], list[dict]] = defaultdict(list)  # by (campaign, channel, member zone)
    quiet: dict[str, bool] = {}
    for r in rows:
        campaign = campaigns.get(r["campaign_id"])
        if campaign is None or campaign.status != CampaignStatus.ACTIVE:
            cancel.append(r)
        elif campaign.skip_if_returned and r["last_purchase_at"] is not None and r["last_purchase_at"] > r["sent_on"]:
            returned.append(r)
        elif not _reachable(r, subscriptions):
            unreachable.append(r)
        elif r["channel"] in QUIET_CHANNELS:
            tz_key = r["member_tz"] or businesses[r["business_id"]].timezone
            if tz_key not in quiet:
                quiet[tz_key] = in_quiet_hours(now=now, tz=ZoneInfo(tz_key))
            if quiet[tz_key]:
                defer[(r["campaign_id"], r["channel"], tz_key)].append(r)
            else:
                ready.append(r)
        else:
            ready.append(r)

    def finish(group: list[dict], status: str, detail: str) -> None:
        if not group:
            return
        Delivery.objects.filter(id__in=[r["id"] for r in group], status=DeliveryStatus.QUEUED).update(
            status=status, updated_at=now, last_error=detail, lease_expires_at=None
        )
        _events([(r["id"], r["business_id"]) for r in group], status, now, detail)

    finish(cancel, DeliveryStatus.CANCELLED, "campaign no longer active")
    finish(returned, DeliveryStatus.SKIPPED, "returned before send")
    finish(unreachable, DeliveryStatus.SKIPPED, "no consent or address on this channel any more")
    if defer:
        _deliveries_defer(defer, campaigns=campaigns, now=now)
    report.cancelled, report.skipped = len(cancel), len(returned) + len(unreachable)
    report.deferred = sum(len(g) for g in defer.values())

    if ready:
        composer = _Composer(
            now=now,
            campaigns=campaigns,
            businesses=businesses,
            subscriptions=subscriptions,
            snapshots=CampaignMessage.objects.in_bulk({r["message_id"] for r in ready} - {None}),
        )
        _short_codes_fill([r for r in ready if r["channel"] in BILLABLE_CHANNELS and not r["short_code"]],
                          campaigns=campaigns, now=now)  # fmt: skip
        backend_cache: dict[tuple[int, str], object] = {}
        failed: list[dict] = []
        for start in range(0, len(ready), CHUNK):
            failed += _send_chunk(ready[start : start + CHUNK], now_fn, backends, backend_cache, composer, report)
        if failed:
            # Before the sends settle: a send with a fallback on its way is not failed.
            for r in failed:
                r["tz"] = r["member_tz"] or businesses[r["business_id"]].timezone
            report.fell_back = deliveries_fall_back(failed=failed, campaigns=campaigns, now=now_fn())

    _settle_sends({r["send_id"] for r in rows}, returned_sends={r["send_id"] for r in returned}, now=now)
    return report


# The columns a batch needs from a delivery's send and member, read with the deliveries.
_ROW_FIELDS = {
    "send_number": F("send__send_number"),
    "arm": F("send__arm"),
    "sent_on": F("send__created_at"),
    "short_code": F("send__short_code"),
    "local_date": F("send__local_date"),
    "message_id": F("send__message_id"),
    "member_status": F("member__status"),
    "member_tz": F("member__timezone"),
    "first_name": F("member__first_name"),
    "phone": F("member__phone"),
    "email": F("member__email"),
    "last_purchase_at": F("member__last_purchase_at"),
    **{f"consent_{channel}": F(f"member__consent_{channel}") for channel in ("push", "sms", "whatsapp", "email")},
}


def _reachable(row: dict, subscriptions: dict[int, list[PushTarget]]) -> bool:
    channel = row["channel"]
    if row["member_status"] != MemberStatus.ACTIVE or not row[f"consent_{channel}"]:
        return False
    if channel in ("sms", "whatsapp"):
        return bool(row["phone"])
    if channel == "email":
        return bool(row["email"])
    return bool(subscriptions.get(row["member_id"]))


def _send_chunk(
    chunk: list[dict], now_fn, backends, backend_cache, composer: _Composer, report: SendReport
) -> list[dict]:
    """Send a chunk and write its results; returns the rows that failed for good (with their
    ``reason``), for the channel fallback."""
    now = now_fn()
    # Billable messages are reserved against the month's budget before anything is sent; what
    # does not fit goes where its campaign says (``spend``).
    messages = {r["id"]: composer.message(r) for r in chunk}
    reservation = Reservation(businesses=composer.businesses, now=now)
    chunk, over = reservation.take(chunk, messages)
    if over:
        _over_budget(over, campaigns=composer.campaigns, businesses=composer.businesses, now=now)
        report.over_budget += len(over)
    if not chunk:
        return []
    # Committed before any provider call (autocommit: one statement is its own transaction): a
    # crash from here on leaves them "sending", and the lease sweep marks them unconfirmed
    # instead of sending them again.
    claimed = _chunk_mark_sending([r["id"] for r in chunk], now=now)
    reservation.give_back([r for r in chunk if r["id"] not in claimed])
    sent: dict[int, str] = {}
    transient: list[tuple[dict, TransientSendError]] = []
    permanent: list[tuple[dict, PermanentSendError]] = []
    used = []
    for r in chunk:
        if r["id"] not in claimed:
            continue  # paused or claimed elsewhere in the meantime
        key = (r["business_id"], r["channel"])
        if key not in backend_cache:
            backend_cache[key] = backends(r["channel"], business=composer.businesses[r["business_id"]])
        backend = backend_cache[key]
        try:
            sent[r["id"]] = backend.send(messages[r["id"]])
        except PermanentSendError as exc:
            permanent.append((r, exc))
        except TransientSendError as exc:
            transient.append((r, exc))
        if backend not in used:
            used.append(backend)
    for backend in used:
        backend.flush()
    done = now_fn()
    # (delivery id, business id, new status, provider id, retry at, last error, event detail)
    business_of = {r["id"]: r["business_id"] for r in chunk}
    results: list[tuple] = [(i, business_of[i], DeliveryStatus.SENT, p, None, "", "") for i, p in sent.items()]
    failed: list[tuple[dict, PermanentSendError]] = []
    for r, exc in transient:
        attempts = r["attempts"] + 1
        if attempts >= MAX_ATTEMPTS:
            permanent.append((r, PermanentSendError(f"gave up after {attempts} attempts: {exc.reason}", code=exc.code)))
            continue
        delay = max(min(30 * 2 ** (attempts - 1), 3600), exc.retry_after or 0)
        detail = f"retry in {int(delay)} s: {exc.reason}"[:500]
        at = done + timedelta(seconds=delay)
        results.append((r["id"], r["business_id"], DeliveryStatus.SCHEDULED, None, at, exc.reason[:500], detail))
        report.retried += 1
    for r, exc in permanent:
        results.append(
            (r["id"], r["business_id"], DeliveryStatus.FAILED, None, None, exc.reason[:500], exc.reason[:500])
        )
        failed.append((r, exc))
    # Never accepted by the provider: their reservations go back to the month's budget.
    reservation.give_back([r for r, _ in transient] + [r for r, _ in permanent])
    if results:
        _results_write(results, at=done)
    report.sent += len(sent)
    for r, exc in failed:
        _act_on(r, exc, at=done)
        report.failed += 1
    return [{**r, "reason": exc.reason} for r, exc in failed]


def _chunk_mark_sending(ids: list[int], *, now: datetime) -> set[int]:
    """Mark a chunk's still-queued deliveries ``sending`` with their event; returns the ids marked."""
    token = uuid.uuid4().hex
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH claimed AS (UPDATE {_DELIVERY} SET status = %s, claim_token = %s, lease_expires_at = %s, "  # noqa: S608
                "attempts = attempts + 1, updated_at = %s WHERE id = ANY(%s::bigint[]) AND status = %s "
                f"RETURNING id, business_id), events AS (INSERT INTO {_EVENT} (business_id, delivery_id, status, "
                "at, detail) SELECT business_id, id, %s, %s, '' FROM claimed) SELECT id FROM claimed",
                [DeliveryStatus.SENDING, token, now + LEASE, now, ids, DeliveryStatus.QUEUED,
                 DeliveryStatus.SENDING, now],
            )  # fmt: skip
            return {i for (i,) in cursor.fetchall()}
    with transaction.atomic():
        Delivery.objects.filter(id__in=ids, status=DeliveryStatus.QUEUED).update(
            status=DeliveryStatus.SENDING,
            claim_token=token,
            lease_expires_at=now + LEASE,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
        claimed = list(
            Delivery.objects.filter(claim_token=token, status=DeliveryStatus.SENDING).values_list("id", "business_id")
        )
        _events(claimed, DeliveryStatus.SENDING, now)
    return {i for i, _ in claimed}
