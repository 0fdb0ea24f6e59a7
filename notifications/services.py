"""Writes on deliveries that are not the dispatcher's: a member opening a message, a provider's
report on a delivery, a member's inbound message; and a business's WhatsApp templates."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction

from campaigns.models import CampaignSend
from members.models import ConsentSource, Member, MemberStatus
from members.services import member_consent_set

from .models import (
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    ProviderEvent,
    ProviderEventKind,
    TemplateQuality,
    TemplateStatus,
    WhatsAppTemplate,
    statuses_before,
)

logger = logging.getLogger(__name__)


@transaction.atomic
def send_mark_opened(*, send: CampaignSend, at: datetime, delivery: Delivery | None = None) -> bool:
    """Mark a message opened (once): the send's ``opened_at``, and its deliveries that went out
    (or just ``delivery``, the one whose link was opened) ``opened``. Returns whether this was
    the first open. Never issues a reward: that is the claim's job, on an explicit POST."""
    first = bool(CampaignSend.objects.filter(pk=send.pk, opened_at__isnull=True).update(opened_at=at))
    if first:
        send.opened_at = at
    went_out = Delivery.objects.filter(send_id=send.pk, status__in=statuses_before(DeliveryStatus.OPENED))
    if delivery is not None:
        went_out = went_out.filter(pk=delivery.pk)
    ids = list(went_out.select_for_update().values_list("pk", flat=True))
    if ids:
        Delivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.OPENED, updated_at=at)
        DeliveryEvent.objects.bulk_create(
            DeliveryEvent(business_id=send.business_id, delivery_id=pk, status=DeliveryStatus.OPENED, at=at)
            for pk in ids
        )
    return first


def provider_event_first(*, business_id: int, kind: str, key: str, at: datetime) -> bool:
    """Record a provider's event by its key; return whether this is its first receipt. Called in
    the transaction of the event's effect: a concurrent receipt of the same key waits on the
    unique index until that transaction commits, then inserts nothing (or goes ahead if it
    rolled back) — no savepoint, no exception."""
    ops = connection.ops
    table, key_column = ops.quote_name(ProviderEvent._meta.db_table), ops.quote_name("key")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (business_id, kind, {key_column}, received_at) VALUES (%s, %s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (business_id, kind, {key_column}) DO NOTHING RETURNING id",
            [business_id, kind, key, ops.adapt_datetimefield_value(at)],
        )
        return cursor.fetchone() is not None


@transaction.atomic
def delivery_report_apply(
    *, delivery: Delivery, key: str, status: str, detail: str, withdraws_consent: bool, at: datetime
) -> bool:
    """A provider's report on a delivery (delivered, read, failed with its error), applied once
    per ``key`` and only forward (``statuses_before``); returns whether it changed anything.
    A report that withdraws consent (Twilio 21610: the recipient had replied STOP) is news
    about the moment the message was sent: a consent change recorded since then is newer."""
    if not provider_event_first(business_id=delivery.business_id, kind=ProviderEventKind.STATUS, key=key, at=at):
        return False
    failed = status == DeliveryStatus.FAILED
    moved = Delivery.objects.filter(pk=delivery.pk, status__in=statuses_before(status)).update(
        status=status, updated_at=at, last_error=detail if failed else ""
    )
    if not moved:
        return False
    DeliveryEvent.objects.create(business_id=delivery.business_id, delivery=delivery, status=status, at=at,
                                 detail=detail)  # fmt: skip
    if withdraws_consent:
        member = Member.objects.get(pk=delivery.member_id)
        member_consent_set(member=member, channel=delivery.channel, granted=False, source=ConsentSource.PROVIDER,
                           at=at, note=detail, unless_changed_since=delivery.sent_at or at)  # fmt: skip
    return True


# The ESP's tracking events acted on (anymail's normalised types): what each means for a delivery.
EMAIL_EVENTS = ("delivered", "bounced", "complained")


@transaction.atomic
def email_event_apply(
    *, delivery: Delivery, event_type: str, key: str, detail: str, occurred_at: datetime | None, at: datetime
) -> bool:
    """An ESP's news about an email delivery, applied once per ``key``; returns whether it changed
    anything. ``delivered`` moves it on; ``bounced`` (a permanent failure: the address takes no
    mail) fails it; ``complained`` (the member marked it as spam) withdraws the member's email
    consent in the delivery's business — unless the member gave it again after the complaint."""
    if event_type == "delivered":
        return delivery_report_apply(delivery=delivery, key=key, status=DeliveryStatus.DELIVERED, detail=detail,
                                     withdraws_consent=False, at=at)  # fmt: skip
    if event_type == "bounced":
        return delivery_report_apply(delivery=delivery, key=key, status=DeliveryStatus.FAILED, detail=detail,
                                     withdraws_consent=False, at=at)  # fmt: skip
    if event_type != "complained":
        return False
    if not provider_event_first(business_id=delivery.business_id, kind=ProviderEventKind.STATUS, key=key, at=at):
        return False
    member = Member.objects.get(pk=delivery.member_id)
    return member_consent_set(member=member, channel="email", granted=False, source=ConsentSource.PROVIDER, at=at,
                              note=detail[:200], unless_changed_since=occurred_at or at)  # fmt: skip


@transaction.atomic
def inbound_message_apply(
    *, business_id: int, message_sid: str, phone: str, channel: str, granted: bool | None, note: str, at: datetime
) -> bool:
    """A member's message to the business's sender, applied once per MessageSid: STOP / START
    (``granted`` False / True; None for anything else) set the channel's consent of the
    business's members with that phone. Returns False for a second receipt, which changes
    nothing. Twilio's inbound webhooks carry no timestamp: the order of first receipts is the
    order of the member's messages, so the newest applied is the newest sent, and an old one
    replayed is stopped by its key."""
    if not provider_event_first(business_id=business_id, kind=ProviderEventKind.INBOUND, key=message_sid, at=at):
        return False
    if granted is not None:
        for member in Member.objects.filter(business_id=business_id, phone=phone, status=MemberStatus.ACTIVE):
            member_consent_set(member=member, channel=channel, granted=granted, source=ConsentSource.SMS_KEYWORD,
                               at=at, note=note)  # fmt: skip
    return True


def channel_test_send(
    *,
    business,
    channel: str,
    to: str,
    title: str = "",
    body: str = "",
    member_id: int = 0,
    subscriptions: tuple = (),
    extra: dict | None = None,
) -> str:
    """Send a test message on a channel to the owner's own phone, email or (push) browser, through
    the channel's real backend; returns the provider's id, or raises the channel's
    PermanentSendError / TransientSendError with its reason. Writes no delivery: a test counts
    nowhere. Without ``title`` it is the settings page's "is this channel working" message."""
    from .channels import Message, backend_for

    backend = backend_for(channel, business=business)
    message = Message(
        delivery_id=0,
        business_id=business.pk,
        member_id=member_id,
        channel=channel,
        to=to,
        title=title or f"Test message from {business.name}",
        body=body or "This is how your members will receive win-back messages on this channel.",
        url=f"{settings.SITE_URL}/",
        extra={"test": True, **(extra or {})},
        subscriptions=tuple(subscriptions),
    )
    provider_id = backend.send(message)
    backend.flush()
    return provider_id


# Twilio's approval statuses that are final verdicts; the rest (received, pending, unsubmitted)
# are not yet approved, and shown as pending.
TWILIO_TEMPLATE_STATUS = {
    "approved": TemplateStatus.APPROVED,
    "rejected": TemplateStatus.REJECTED,
    "paused": TemplateStatus.PAUSED,
    "disabled": TemplateStatus.DISABLED,
}
SYNCED_FIELDS = ["name", "language", "body", "variables", "category", "status", "quality_rating",
                 "rejected_reason", "last_synced_at"]  # fmt: skip


@dataclass(frozen=True)
class TemplateSyncReport:
    synced: int  # templates in the Twilio account, inserted or updated
    disabled: int  # templates no longer in the account, disabled now


def whatsapp_templates_sync(*, business, now: datetime) -> TemplateSyncReport | None:
    """Make the business's WhatsApp templates what Twilio's Content API says: each template of
    its Twilio account upserted with its approval status (one statement for them all), and a
    template that is no longer in the account disabled. An answer that is not a whole list (an
    error, a malformed body, Twilio unreachable) changes nothing and is logged; so does a
    business with no Twilio account. Returns None then."""
    from .channels.twilio import TemplateFetchError, content_templates_fetch, twilio_account_of

    account = twilio_account_of(business)
    if account is None:
        logger.warning("WhatsApp templates of business %s not synced: no Twilio account", business.pk)
        return None
    account_sid, auth_token = account
    try:
        fetched = content_templates_fetch(account_sid=account_sid, auth_token=auth_token,
                                          base_url=settings.TWILIO_API_BASE)  # fmt: skip
    except TemplateFetchError as exc:
        logger.warning("WhatsApp templates of business %s not synced from %s: %s", business.pk, account_sid, exc)
        return None
    qualities = set(TemplateQuality.values)
    rows = {  # by SID: one row each, even if a page repeated one (ON CONFLICT updates a row once)
        t.sid: WhatsAppTemplate(
            business=business,
            content_sid=t.sid,
            name=t.name,
            language=t.language,
            body=t.body,
            variables=t.variables,
            category=t.category,
            status=TWILIO_TEMPLATE_STATUS.get(t.status, TemplateStatus.PENDING),
            quality_rating=t.quality_rating if t.quality_rating in qualities else TemplateQuality.UNKNOWN,
            rejected_reason=t.rejection_reason,
            last_synced_at=now,
        )
        for t in fetched
    }
    with transaction.atomic():
        WhatsAppTemplate.objects.bulk_create(
            rows.values(), update_conflicts=True, unique_fields=["business", "content_sid"], update_fields=SYNCED_FIELDS
        )
        disabled = (
            WhatsAppTemplate.objects.filter(business=business)
            .exclude(content_sid__in=list(rows))
            .exclude(status=TemplateStatus.DISABLED)
            .update(status=TemplateStatus.DISABLED, last_synced_at=now)
        )
    return TemplateSyncReport(synced=len(rows), disabled=disabled)
