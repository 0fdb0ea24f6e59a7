"""Registering and removing a member's Web Push subscriptions."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from members.models import ConsentSource, Member, PushSubscription


@transaction.atomic
def push_subscription_register(
    *, member: Member, endpoint: str, p256dh: str, auth: str, user_agent: str = "", at: datetime
) -> tuple[PushSubscription, bool]:
    """Register (or refresh the keys of) one browser's subscription. The browser's permission
    prompt is the member's opt-in, so push consent is granted with it (source: member app)."""
    from members.services import member_consent_set

    subscription, created = PushSubscription.objects.update_or_create(
        member=member,
        endpoint=endpoint,
        defaults={"business_id": member.business_id, "p256dh": p256dh, "auth": auth, "user_agent": user_agent[:300]},
    )
    member_consent_set(
        member=member, channel="push", granted=True, source=ConsentSource.MEMBER_APP, at=at,
        note="push subscription registered",
    )  # fmt: skip
    return subscription, created


def push_subscription_remove(*, subscription: PushSubscription) -> None:
    subscription.delete()
