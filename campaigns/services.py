"""Every write on campaigns: drafts, activation, pause and resume, archive, duplicate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from members.models import Business, RewardStatus, WalletReward

from .models import Campaign, CampaignSend, CampaignStatus, SendOutcome

EDITABLE_FIELDS = (
    "type", "name", "description", "inactivity_days", "max_sends", "title", "body", "reward", "escalation",
    "channels", "channel_mode", "conditions", "ab_enabled", "variant_b_title", "variant_b_body", "ab_share_b",
    "control_share", "send_at", "include_weekends", "pacing", "skip_if_returned", "attribution_days",
    "whatsapp_template", "over_budget",
)  # fmt: skip


def campaign_build(*, business: Business, data: dict, campaign: Campaign | None = None) -> Campaign:
    """An unsaved campaign with ``data`` applied (for previews and the audience count)."""
    campaign = campaign or Campaign(business=business)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not campaign fields: {', '.join(sorted(unknown))}")
    for name, value in data.items():
        setattr(campaign, name, value)
    return campaign


@transaction.atomic
def campaign_save(*, business: Business, data: dict, campaign: Campaign | None = None, user=None) -> Campaign:
    """Create or update a campaign (a draft as it is built, or an active one: it takes effect
    from the next night). Validated as a draft, or fully when it is active."""
    campaign = campaign_build(business=business, data=data, campaign=campaign)
    if campaign.pk is None:
        campaign.created_by = user
    campaign.full_clean(exclude=["business", "created_by"])
    campaign.save()
    return campaign


@transaction.atomic
def campaign_activate(*, campaign: Campaign, now: datetime | None = None) -> Campaign:
    """The only way out of draft: every step validated again. New campaigns start checking from
    the next local midnight after activation."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status == CampaignStatus.ARCHIVED:
        raise ValidationError("An archived campaign cannot be activated; duplicate it instead.")
    campaign.status = CampaignStatus.ACTIVE
    campaign.full_clean(exclude=["business", "created_by"])
    if campaign.activated_at is None:
        campaign.activated_at = now
    campaign.paused_at = None
    campaign.save()
    return campaign


def _cancel_pending(*, campaign: Campaign, now: datetime) -> int:
    """Cancel every delivery not yet sending, their sends and the rewards offered with them."""
    from notifications.inbox import sends_visible_at
    from notifications.models import PENDING, Delivery, DeliveryStatus

    cancelled = Delivery.objects.filter(campaign_id=campaign.pk, status__in=PENDING).update(
        status=DeliveryStatus.CANCELLED, updated_at=now, last_error="Campaign paused"
    )
    # A send none of whose deliveries went out is cancelled: it does not count toward max sends.
    # One without deliveries (the inbox is its only channel) is kept once the member can see it.
    went_out = Delivery.objects.filter(send_id=OuterRef("pk")).exclude(status=DeliveryStatus.CANCELLED)
    scheduled = CampaignSend.objects.filter(campaign_id=campaign.pk, outcome=SendOutcome.SCHEDULED)
    sends = scheduled.exclude(Exists(went_out)).exclude(pk__in=sends_visible_at(scheduled, now=now).values("pk"))
    WalletReward.objects.filter(send__in=sends.values("pk"), status=RewardStatus.OFFERED).update(
        status=RewardStatus.CANCELLED
    )
    sends.update(outcome=SendOutcome.CANCELLED)
    return cancelled


@transaction.atomic
def campaign_pause(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Pause at once: every send not yet made is cancelled. Returns the deliveries cancelled."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.ACTIVE:
        return 0
    campaign.status = CampaignStatus.PAUSED
    campaign.paused_at = now
    campaign.save(update_fields=["status", "paused_at", "updated_at"])
    return _cancel_pending(campaign=campaign, now=now)


@transaction.atomic
def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Resume: nothing is re-queued retroactively; the next night decides."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.PAUSED:
        return campaign
    return campaign_activate(campaign=campaign)


@transaction.atomic
def campaign_archive(*, campaign: Campaign, now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status == CampaignStatus.ACTIVE:
        _cancel_pending(campaign=campaign, now=now)
    campaign.status = CampaignStatus.ARCHIVED
    campaign.archived_at = now
    campaign.save(update_fields=["status", "archived_at", "updated_at"])
    return campaign


def campaign_duplicate(*, campaign: Campaign, user=None) -> Campaign:
    """A draft copy with every setting, named “… (copy)”."""
    data = {name: getattr(campaign, name) for name in EDITABLE_FIELDS}
    data["name"] = f"{campaign.name} (copy)"[:120]
    return campaign_save(business=campaign.business, data=data, user=user)


@dataclass
class TestSend:
    arm: str
    channel: str
    to: str
    provider_id: str = ""
    error: str = ""


def campaign_test_send(*, campaign: Campaign, user, now: datetime) -> list[TestSend]:
    """Send ``campaign``'s first message, once per arm (A, and B with an A/B test) and per chosen
    channel the owner has an address for, to the owner: email to their login, SMS and WhatsApp to
    the phone of their own member card in this business, web push to that card's browsers.
    Through the channels' real backends (``channel_test_send``, as the settings page's test),
    with no send or delivery row: a test counts in no result. A channel's refusal is reported,
    not raised, so one channel failing leaves the others tested."""
    from members.models import Member, MemberStatus, PushSubscription
    from notifications.channels import PermanentSendError, PushTarget, TransientSendError
    from notifications.services import channel_test_send

    from . import messages

    business = campaign.business
    card = (
        Member.objects.filter(email__iexact=user.email, status=MemberStatus.ACTIVE).order_by("pk").first()
        if user.email
        else None
    )
    targets: tuple = ()
    if card is not None and "push" in campaign.channels:
        targets = tuple(
            PushTarget(*row)
            for row in PushSubscription.objects.filter(member=card)
            .order_by("-created_at", "-id")
            .values_list("id", "endpoint", "p256dh", "auth")
        )
    addresses = {
        "email": user.email or "",
        "sms": card.phone if card else "",
        "whatsapp": card.phone if card else "",
        "push": targets[0].endpoint if targets else "",
    }
    # As the next night would render it for the owner's card (away the campaign's threshold
    # without one): the campaign's texts as they are now, through ``campaigns.messages``.
    next_night = timezone.localdate(now, business.tzinfo) + timedelta(days=1)
    days_away = messages.days_away(purchase_before=card.last_purchase_at if card else None, local_date=next_night,
                                   tz=business.tzinfo)  # fmt: skip
    first_name = (card.first_name if card else "") or user.first_name
    arms = ["a", "b"] if campaign.ab_enabled else ["a"]
    results = []
    for arm in arms:
        texts = messages.message_texts(message=None, campaign=campaign, send_number=1, arm=arm)
        rendered = messages.message_render(
            texts,
            first_name=first_name,
            business=business.name,
            days_away=campaign.inactivity_days if days_away is None else days_away,
        )
        label = f"Test, variant {arm.upper()}" if campaign.ab_enabled else "Test"
        for channel in [ch for ch in campaign.channels if addresses.get(ch)]:
            result = TestSend(arm=arm, channel=channel, to=addresses[channel])
            try:
                result.provider_id = channel_test_send(
                    business=business, channel=channel, to=addresses[channel],
                    title=f"[{label}] {rendered.title}", body=rendered.body,
                    member_id=card.pk if card and channel != "email" else 0,
                    subscriptions=targets if channel == "push" else (),
                    extra={"campaign_id": campaign.pk, "arm": arm},
                )  # fmt: skip
            except (PermanentSendError, TransientSendError) as exc:
                result.error = exc.reason
            results.append(result)
    return results
