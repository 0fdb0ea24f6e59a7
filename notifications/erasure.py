"""GDPR erasure of a member: members' own rows and what the outbox kept of their messages.

It reaches every table that quotes a member, so it sits with the highest of them (the outbox's).
"""

from __future__ import annotations

import operator
from datetime import datetime
from functools import reduce

from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Replace
from django.utils import timezone

from members.models import (
    CHANNELS,
    ConsentEvent,
    ConsentSource,
    Member,
    MemberStatus,
    Suppression,
    Visit,
)
from members.services import member_consent_set, suppression_digest

from .models import Delivery, DeliveryEvent, RecordedMessage

ERASED = "[erased]"  # what stands where an erased member's phone or email was quoted


@transaction.atomic
def member_erase(*, member: Member, at: datetime | None = None) -> Member:
    """GDPR erasure: personal data goes, anonymous counts stay, a hashed suppression entry stays."""
    at = at or timezone.now()
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == MemberStatus.ERASED:
        return member
    business = member.business
    for value in (member.phone, member.email):
        if value:
            Suppression.objects.get_or_create(
                business=business, digest=suppression_digest(business=business, value=value)
            )
    for channel in CHANNELS:
        member_consent_set(member=member, channel=channel, granted=False, source=ConsentSource.ERASURE, at=at)
    Visit.objects.filter(member=member).exclude(note="").update(note="")
    ConsentEvent.objects.filter(member=member).exclude(note="").update(note="")
    _member_messages_scrub(member=member)
    member.first_name = ""
    member.last_name = ""
    member.phone = ""
    member.email = ""
    member.birthday = None
    member.card_code = f"ERASED-{member.pk}"
    member.status = MemberStatus.ERASED
    member.erased_at = at
    member.save()
    return member


def _member_messages_scrub(*, member: Member) -> None:
    """What we kept of the member's messages loses their personal data, set-based: the recorded
    messages to them (their deliveries', and the sign-in codes sent to their phone or email,
    which have no delivery) keep only channel and time; the deliveries' provider errors, which
    quote the address, lose it. Statuses and counts stay."""
    addresses = [v for v in (member.phone, member.email) if v]
    RecordedMessage.objects.filter(
        Q(delivery__member_id=member.pk) | Q(delivery__isnull=True, to__in=addresses), business_id=member.business_id
    ).update(to="", title="", body="", payload={})
    if not addresses:
        return

    def scrubbed(field: str):
        expression = F(field)
        for value in addresses:
            expression = Replace(expression, Value(value), Value(ERASED))
        return expression

    def quoting(field: str) -> Q:
        return reduce(operator.or_, (Q(**{f"{field}__contains": v}) for v in addresses))

    mine = {"business_id": member.business_id}
    Delivery.objects.filter(quoting("last_error"), **mine, member_id=member.pk).update(
        last_error=scrubbed("last_error")
    )
    DeliveryEvent.objects.filter(quoting("detail"), **mine, delivery__member_id=member.pk).update(
        detail=scrubbed("detail")
    )
