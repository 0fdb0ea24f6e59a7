"""Writes on deliveries that are not the dispatcher's: a member opening a message."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from campaigns.models import CampaignSend

from .models import Delivery, DeliveryEvent, DeliveryStatus


@transaction.atomic
def send_mark_opened(*, send: CampaignSend, at: datetime, delivery: Delivery | None = None) -> bool:
    """Mark a message opened (once): the send's ``opened_at``, and its deliveries that went out
    (or just ``delivery``, the one whose link was opened) ``opened``. Returns whether this was
    the first open. Never issues a reward: that is the claim's job, on an explicit POST."""
    first = bool(CampaignSend.objects.filter(pk=send.pk, opened_at__isnull=True).update(opened_at=at))
    if first:
        send.opened_at = at
    went_out = Delivery.objects.filter(send_id=send.pk, status__in=[DeliveryStatus.SENT, DeliveryStatus.DELIVERED])
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


def channel_test_send(*, business, channel: str, to: str) -> str:
    """Send a test message on a channel to the owner's own phone or email; returns the provider's
    id, or raises the channel's PermanentSendError / TransientSendError with its reason."""
    from django.conf import settings

    from .channels import Message, backend_for

    backend = backend_for(channel, business=business)
    message = Message(
        delivery_id=0,
        business_id=business.pk,
        member_id=0,
        channel=channel,
        to=to,
        title=f"Test message from {business.name}",
        body="This is how your members will receive win-back messages on this channel.",
        url=f"{settings.SITE_URL}/",
        extra={"test": True},
    )
    provider_id = backend.send(message)
    backend.flush()
    return provider_id
