"""The dispatcher: claims due deliveries from the outbox and sends them through channel backends.

* ``dispatch_due`` (beat, every few seconds) returns expired leases, then claims due deliveries
  in batches with ``SELECT … FOR UPDATE SKIP LOCKED`` (status ``queued``, with a lease) and hands
  each batch to a Celery task. Several dispatchers at once never claim one delivery twice.
* ``deliveries_send`` (the task's body) re-checks each delivery — campaign still active, member
  not returned, consent still there, quiet hours in the member's time zone — then, a chunk at a
  time, marks the chunk ``sending`` (committed), calls the provider, and writes the results.

A worker that dies after marking a chunk ``sending`` leaves it ``sending``; when the lease
expires those deliveries become ``unconfirmed`` — counted and visible, never resent, because the
provider may have accepted them. A worker that dies before that leaves them ``queued``; they go
back to ``scheduled`` when the lease expires and are sent once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Case, CharField, Exists, F, OuterRef, Value, When
from django.utils import timezone
from django_scopes import scopes_disabled

from campaigns.models import CampaignSend, CampaignStatus, SendOutcome
from campaigns.rules import QUIET_END, QUIET_START
from members.models import ConsentSource, MemberStatus, RewardStatus, WalletReward

from .channels import Message, PermanentSendError, TransientSendError, backend_for
from .models import Delivery, DeliveryEvent, DeliveryStatus, PushSubscription

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
CHUNK = 50
QUIET_CHANNELS = ("sms", "whatsapp")


@dataclass
class DispatchReport:
    requeued: int = 0
    unconfirmed: int = 0
    claimed: int = 0
    batches: int = 0


def _events(rows: list[tuple[int, int]], status: str, at: datetime, detail: str = "") -> None:
    """Record a status change for (delivery id, business id) rows."""
    DeliveryEvent.objects.bulk_create(
        [DeliveryEvent(delivery_id=d, business_id=b, status=status, at=at, detail=detail[:500]) for d, b in rows],
        batch_size=1000,
    )


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


# --- sending -------------------------------------------------------------------------------------


def render(text: str, *, first_name: str, business: str, reward: str, days_away: int | None) -> str:
    """Fill the placeholders; anything else in braces is left as written."""
    values = {
        "{first_name}": first_name or "there",
        "{business}": business,
        "{reward}": reward,
        "{days_away}": "" if days_away is None else str(days_away),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def quiet_hours_end(*, now: datetime, tz: ZoneInfo) -> datetime | None:
    """None inside 08:00–21:00 member-local; else the next 08:00 there."""
    local = now.astimezone(tz)
    if QUIET_START <= local.time() < QUIET_END:
        return None
    day = local.date() if local.time() < QUIET_START else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_START).replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))


def open_url(delivery_id: int) -> str:
    from django.core import signing

    token = signing.dumps({"d": delivery_id}, salt="winback.open", compress=True)
    return f"{settings.SITE_URL}/m/{token}/"


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    cancelled: int = 0
    deferred: int = 0
    lost: int = 0
    details: dict = field(default_factory=dict)


def _reachable(delivery: Delivery, subscriptions: dict[int, list[PushSubscription]]) -> bool:
    member, channel = delivery.member, delivery.channel
    if member.status != MemberStatus.ACTIVE or not member.has_consent(channel):
        return False
    if channel in ("sms", "whatsapp"):
        return bool(member.phone)
    if channel == "email":
        return bool(member.email)
    return bool(subscriptions.get(member.pk))


def _message(delivery: Delivery, subscriptions, rewards: dict[int, str], today_by_tz) -> Message:
    send, campaign, member = delivery.send, delivery.campaign, delivery.member
    step = campaign.step(send.send_number)
    title, body = step["title"], step["body"]
    if send.arm == "b" and send.send_number == 1 and campaign.ab_enabled:
        title, body = campaign.variant_b_title or title, campaign.variant_b_body or body
    tz = ZoneInfo(member.timezone or delivery.business.timezone)
    days_away = None
    if member.last_purchase_at:
        days_away = (today_by_tz(tz) - member.last_purchase_at.astimezone(tz).date()).days
    reward = rewards.get(send.pk, "")
    values = {"first_name": member.first_name, "business": delivery.business.name, "reward": reward,
              "days_away": days_away}  # fmt: skip
    to = {"sms": member.phone, "whatsapp": member.phone, "email": member.email}.get(delivery.channel, "")
    extra: dict = {"send_id": send.pk, "campaign_id": campaign.pk, "reward": reward}
    if delivery.channel == "push":
        subs = subscriptions.get(member.pk, [])
        to = subs[0].endpoint if subs else ""
        extra["subscriptions"] = [s.pk for s in subs]
    return Message(
        delivery_id=delivery.pk,
        business_id=delivery.business_id,
        member_id=member.pk,
        channel=delivery.channel,
        to=to,
        title=render(title, **values),
        body=render(body, **values),
        url=open_url(delivery.pk),
        extra=extra,
    )


def deliveries_send(
    *,
    delivery_ids: list[int],
    now_fn: Callable[[], datetime] = timezone.now,
    backends: Callable[..., object] = backend_for,
) -> SendReport:
    """Send a claimed batch (runs in a worker, inside the batch's business scope)."""
    report = SendReport()
    now = now_fn()
    deliveries = list(
        Delivery.objects.filter(id__in=delivery_ids, status=DeliveryStatus.QUEUED)
        .select_related("send", "campaign", "member", "business")
        .order_by("scheduled_at", "id")
    )
    if not deliveries:
        return report
    push_members = [d.member_id for d in deliveries if d.channel == "push"]
    subscriptions: dict[int, list[PushSubscription]] = defaultdict(list)
    for sub in PushSubscription.objects.filter(member_id__in=push_members).order_by("-created_at"):
        subscriptions[sub.member_id].append(sub)

    cancel, returned, unreachable, ready = [], [], [], []
    defer: dict[datetime, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        member_tz = ZoneInfo(d.member.timezone or d.business.timezone)
        if d.campaign.status != CampaignStatus.ACTIVE:
            cancel.append(d)
        elif (
            d.campaign.skip_if_returned
            and d.member.last_purchase_at is not None
            and d.member.last_purchase_at > d.send.created_at
        ):
            returned.append(d)
        elif not _reachable(d, subscriptions):
            unreachable.append(d)
        elif d.channel in QUIET_CHANNELS and (resume := quiet_hours_end(now=now, tz=member_tz)) is not None:
            defer[resume].append(d)
        else:
            ready.append(d)

    def finish(group: list[Delivery], status: str, detail: str) -> None:
        if not group:
            return
        Delivery.objects.filter(id__in=[d.pk for d in group], status=DeliveryStatus.QUEUED).update(
            status=status, updated_at=now, last_error=detail, lease_expires_at=None
        )
        _events([(d.pk, d.business_id) for d in group], status, now, detail)

    finish(cancel, DeliveryStatus.CANCELLED, "campaign no longer active")
    finish(returned, DeliveryStatus.SKIPPED, "returned before send")
    finish(unreachable, DeliveryStatus.SKIPPED, "no consent or address on this channel any more")
    for resume, group in defer.items():
        # Quiet hours, checked again at the moment of sending: back to the outbox until 08:00.
        Delivery.objects.filter(id__in=[d.pk for d in group], status=DeliveryStatus.QUEUED).update(
            status=DeliveryStatus.SCHEDULED, scheduled_at=resume, updated_at=now, lease_expires_at=None
        )
        _events([(d.pk, d.business_id) for d in group], DeliveryStatus.SCHEDULED, now, "quiet hours: deferred")
    report.cancelled, report.skipped = len(cancel), len(returned) + len(unreachable)
    report.deferred = sum(len(g) for g in defer.values())

    rewards = {}
    if ready:
        for send_id, title in WalletReward.objects.filter(send_id__in={d.send_id for d in ready}).values_list(
            "send_id", "title"
        ):
            rewards[send_id] = title
    today_cache: dict[str, object] = {}

    def today_by_tz(tz: ZoneInfo):
        if tz.key not in today_cache:
            today_cache[tz.key] = now.astimezone(tz).date()
        return today_cache[tz.key]

    backend_cache: dict[tuple[int, str], object] = {}
    for start in range(0, len(ready), CHUNK):
        _send_chunk(ready[start : start + CHUNK], now_fn, backends, backend_cache, subscriptions, rewards,
                    today_by_tz, report)  # fmt: skip

    _settle_sends({d.send_id for d in deliveries}, returned_sends={d.send_id for d in returned}, now=now)
    return report


def _send_chunk(chunk, now_fn, backends, backend_cache, subscriptions, rewards, today_by_tz, report) -> None:
    now = now_fn()
    token = uuid.uuid4().hex
    # Committed before any provider call: a crash from here on leaves them "sending", and the
    # lease sweep marks them unconfirmed instead of sending them again.
    with transaction.atomic():
        Delivery.objects.filter(id__in=[d.pk for d in chunk], status=DeliveryStatus.QUEUED).update(
            status=DeliveryStatus.SENDING,
            claim_token=token,
            lease_expires_at=now + LEASE,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    claimed = set(
        Delivery.objects.filter(claim_token=token, status=DeliveryStatus.SENDING).values_list("id", flat=True)
    )
    _events([(d.pk, d.business_id) for d in chunk if d.pk in claimed], DeliveryStatus.SENDING, now)
    sent: dict[int, str] = {}
    transient: list[tuple[Delivery, TransientSendError]] = []
    permanent: list[tuple[Delivery, PermanentSendError]] = []
    used = []
    messages: dict[int, Message] = {}
    for d in chunk:
        if d.pk not in claimed:
            continue  # paused or claimed elsewhere in the meantime
        key = (d.business_id, d.channel)
        if key not in backend_cache:
            backend_cache[key] = backends(d.channel, business=d.business)
        backend = backend_cache[key]
        messages[d.pk] = message = _message(d, subscriptions, rewards, today_by_tz)
        try:
            sent[d.pk] = backend.send(message)
        except PermanentSendError as exc:
            permanent.append((d, exc))
        except TransientSendError as exc:
            transient.append((d, exc))
        if backend not in used:
            used.append(backend)
    for backend in used:
        backend.flush()
    done = now_fn()
    by_id = {d.pk: d for d in chunk}
    if sent:
        Delivery.objects.filter(id__in=list(sent), status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.SENT,
            provider_id=Case(*[When(id=i, then=Value(p)) for i, p in sent.items()], output_field=CharField()),
            sent_at=done,
            updated_at=done,
            lease_expires_at=None,
            last_error="",
        )
        _events([(i, by_id[i].business_id) for i in sent], DeliveryStatus.SENT, done)
        report.sent += len(sent)
    for d, exc in transient:
        attempts = d.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            permanent.append((d, PermanentSendError(f"gave up after {attempts} attempts: {exc.reason}", code=exc.code)))
            continue
        delay = max(min(30 * 2 ** (attempts - 1), 3600), exc.retry_after or 0)
        Delivery.objects.filter(pk=d.pk, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.SCHEDULED,
            scheduled_at=done + timedelta(seconds=delay),
            last_error=exc.reason[:500],
            updated_at=done,
            lease_expires_at=None,
        )
        _events([(d.pk, d.business_id)], DeliveryStatus.SCHEDULED, done, f"retry in {int(delay)} s: {exc.reason}")
        report.retried += 1
    for d, exc in permanent:
        Delivery.objects.filter(pk=d.pk, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.FAILED, last_error=exc.reason[:500], updated_at=done, lease_expires_at=None
        )
        _events([(d.pk, d.business_id)], DeliveryStatus.FAILED, done, exc.reason)
        _act_on(d, exc, messages.get(d.pk), at=done)
        report.failed += 1


def _act_on(delivery: Delivery, exc: PermanentSendError, message: Message | None, *, at: datetime) -> None:
    """A permanent error means something: act on it."""
    from members.services import member_consent_set

    if exc.action == "withdraw_consent":
        member_consent_set(
            member=delivery.member,
            channel=delivery.channel,
            granted=False,
            source=ConsentSource.PROVIDER,
            at=at,
            note=f"{exc.code} {exc.reason}"[:200],
        )
    elif exc.action == "delete_subscription":
        PushSubscription.objects.filter(member_id=delivery.member_id, endpoint=message.to if message else "").delete()


def _settle_sends(send_ids: set[int], *, returned_sends: set[int], now: datetime) -> None:
    """Move each send's outcome on from its deliveries (set-based)."""
    if not send_ids:
        return
    deliveries = Delivery.objects.filter(send_id=OuterRef("pk"))
    went_out = deliveries.filter(status__in=[DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.OPENED])
    open_ = deliveries.filter(status__in=[DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED, DeliveryStatus.SENDING])
    sends = CampaignSend.objects.filter(pk__in=send_ids, outcome=SendOutcome.SCHEDULED)
    sends.filter(Exists(went_out)).update(outcome=SendOutcome.SENT)
    settled = sends.exclude(Exists(went_out)).exclude(Exists(open_))
    returned = settled.filter(pk__in=returned_sends)
    failed_any = deliveries.filter(status__in=[DeliveryStatus.FAILED, DeliveryStatus.UNCONFIRMED])
    WalletReward.objects.filter(send__in=settled.values("pk"), status=RewardStatus.OFFERED).update(
        status=RewardStatus.CANCELLED
    )
    returned.update(outcome=SendOutcome.RETURNED)
    settled.filter(Exists(failed_any)).update(outcome=SendOutcome.FAILED)
    settled.update(outcome=SendOutcome.SKIPPED)
