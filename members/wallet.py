"""The member's wallet and inbox: claiming a campaign's reward, opening a message, redeeming at
the counter, and the reads the member app shows.

``reward_claim`` is the one way a reward offered with a campaign send reaches the wallet, used by
the app's open (the API) and by the open link's page alike, exactly once per send whatever runs
concurrently: the reward row is locked, and every change is a conditional update.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_scopes import scopes_disabled

from .models import Member, RewardKind, RewardStatus, VisitKind, VisitSource, WalletReward
from .services import visit_record

CREDITED_KINDS = (RewardKind.BONUS_STAMPS, RewardKind.BONUS_POINTS)  # straight onto the card
COUNTER_KINDS = (RewardKind.FREE_ITEM, RewardKind.DISCOUNT)  # handed over at the counter: a ledger entry
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I: read aloud and typed at the counter
WALLET_STATUSES = (RewardStatus.AVAILABLE, RewardStatus.REDEEMED, RewardStatus.EXPIRED)


class RewardNotRedeemable(ValidationError):
    """Already redeemed, expired, or never claimed: nothing changed. ``code`` says which."""


def reward_code_new() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


@transaction.atomic
def reward_claim(*, send, at: datetime) -> WalletReward | None:
    """Claim the reward offered with ``send`` into the member's wallet, exactly once.

    Bonus stamps and points are credited as one ``campaign_reward`` ledger entry (idempotency key
    ``claim:<send>``) and the reward is done (``redeemed``); a free item, a discount or a badge
    becomes ``available`` with its own single-use code and keeps its expiry (a badge also goes on
    the member). An offer past its expiry lapses (``expired``). Returns the reward as it stands,
    or None when the send carries none. A second claim, concurrent or not, changes nothing.

    Raises ``CampaignSend.DoesNotExist`` when the send is not visible to the member at ``at``
    (not sent yet, returned, skipped, cancelled…): nothing is claimed before it went out.
    """
    return _claim(send=send, at=at)[0]


def _claim(*, send, at: datetime) -> tuple[WalletReward | None, bool]:
    """``reward_claim``, and whether this call claimed it: decided under the reward's lock, so of
    concurrent claimers exactly one hears it was added."""
    from campaigns.models import CampaignSend

    reward = WalletReward.objects.select_for_update().filter(send_id=send.pk).first()
    # Checked under the lock: a pause or a settled send cancels the offer in a transaction that
    # waits for this one, or that this one waited for and now sees.
    if not CampaignSend.objects.filter(pk=send.pk).visible_at(at).exists():
        raise CampaignSend.DoesNotExist("No such message.")
    if reward is None or reward.status != RewardStatus.OFFERED:
        return reward, False
    offered = WalletReward.objects.filter(pk=reward.pk, status=RewardStatus.OFFERED)
    if reward.expires_at is not None and reward.expires_at <= at:
        offered.update(status=RewardStatus.EXPIRED)
        reward.status = RewardStatus.EXPIRED
        return reward, False

    if reward.kind in CREDITED_KINDS:
        count = int((reward.details or {}).get("count") or 0)
        # The conditional update is the claim; the ledger key keeps a retry from crediting twice.
        if not offered.update(status=RewardStatus.REDEEMED, claimed_at=at, redeemed_at=at):
            reward.refresh_from_db()
            return reward, False
        member = Member.objects.get(pk=reward.member_id)
        visit_record(
            member=member,
            kind=VisitKind.CAMPAIGN_REWARD,
            stamps=count if reward.kind == RewardKind.BONUS_STAMPS else 0,
            points=count if reward.kind == RewardKind.BONUS_POINTS else 0,
            occurred_at=at,
            source=VisitSource.CAMPAIGN,
            idempotency_key=f"claim:{send.pk}",
            note=reward.title[:200],
        )
        reward.status, reward.claimed_at, reward.redeemed_at = RewardStatus.REDEEMED, at, at
        return reward, True

    for _ in range(5):
        code = reward_code_new()
        try:
            with transaction.atomic():
                claimed = offered.update(status=RewardStatus.AVAILABLE, claimed_at=at, code=code)
        except IntegrityError:
            continue  # the code is another reward's in this business: draw again
        if not claimed:
            reward.refresh_from_db()
            return reward, False
        reward.status, reward.claimed_at, reward.code = RewardStatus.AVAILABLE, at, code
        if reward.kind == RewardKind.BADGE:
            member_badge_add(member_id=reward.member_id, badge=str((reward.details or {}).get("badge") or reward.title))
        return reward, True
    raise RuntimeError("could not draw a unique reward code")


def member_badge_add(*, member_id: int, badge: str) -> bool:
    """Put ``badge`` on the member once (a badge is a name, held or not); returns whether it was
    new. The member row is locked: two badges claimed at once both land."""
    member = Member.objects.select_for_update().only("pk", "badges").get(pk=member_id)
    badges = list(member.badges or [])
    if not badge or badge in badges:
        return False
    member.badges = [*badges, badge]
    member.save(update_fields=["badges"])
    return True


@dataclass
class Opened:
    send: object
    reward: WalletReward | None
    first_open: bool
    claimed: bool  # this open put the reward in the wallet (or on the card)


@transaction.atomic
def inbox_open(*, send, at: datetime, delivery=None) -> Opened:
    """The member opened a message (in the app, or the link's "add to my wallet" on ``delivery``):
    claim its reward and mark it opened (once). Safe to repeat and to run concurrently. Raises
    ``CampaignSend.DoesNotExist`` for a message not visible to the member at ``at``."""
    from notifications.services import send_mark_opened

    # The claim first: it locks the reward before the send row, in the order a pause takes them.
    reward, claimed = _claim(send=send, at=at)
    first = send_mark_opened(send=send, at=at, delivery=delivery)
    if not first:
        from campaigns.models import CampaignSend

        send.opened_at = CampaignSend.objects.filter(pk=send.pk).values_list("opened_at", flat=True).get()
    return Opened(send=send, reward=reward, first_open=first, claimed=claimed)


@transaction.atomic
def reward_redeem(*, code: str, at: datetime, recorded_by=None, source: str = VisitSource.API) -> WalletReward:
    """Redeem an available reward at the counter by its code (in the current business), once.

    Raises ``WalletReward.DoesNotExist`` for a code this business never issued, and
    ``RewardNotRedeemable`` (code ``already_redeemed``, ``expired`` or ``not_available``) without
    changing anything. A free item or a discount is recorded as a ``redemption`` ledger entry (the
    member was at the counter); it is not a purchase and moves no balance.
    """
    code = (code or "").strip().upper()
    if not code or "\x00" in code:
        raise WalletReward.DoesNotExist()
    reward = WalletReward.objects.select_for_update().select_related("member").get(code=code)
    if reward.status == RewardStatus.REDEEMED:
        raise RewardNotRedeemable("This reward was already redeemed.", code="already_redeemed")
    if reward.status == RewardStatus.EXPIRED or (
        reward.status == RewardStatus.AVAILABLE and reward.expires_at is not None and reward.expires_at <= at
    ):
        raise RewardNotRedeemable("This reward has expired.", code="expired")
    if reward.status != RewardStatus.AVAILABLE:
        raise RewardNotRedeemable("This reward is not in the wallet.", code="not_available")
    if not WalletReward.objects.filter(pk=reward.pk, status=RewardStatus.AVAILABLE).update(
        status=RewardStatus.REDEEMED, redeemed_at=at
    ):
        raise RewardNotRedeemable("This reward was already redeemed.", code="already_redeemed")
    reward.status, reward.redeemed_at = RewardStatus.REDEEMED, at
    if reward.kind in COUNTER_KINDS:
        visit_record(
            member=reward.member,
            kind=VisitKind.REDEMPTION,
            occurred_at=at,
            recorded_by=recorded_by,
            source=source,
            idempotency_key=f"redeem:{reward.pk}",
            note=f"Redeemed {reward.title}"[:200],
        )
    return reward


def rewards_expire(*, now: datetime) -> int:
    """Every offer not claimed and every wallet reward not redeemed by its expiry becomes
    ``expired``, in every business, in one UPDATE (the ``reward_expiring`` index finds them);
    returns how many. The claim and the redemption check the expiry themselves: this makes the
    stored status, and the results' "Expired", true without waiting for a late claim."""
    with scopes_disabled():  # the wallet's one cross-tenant sweep, like the night's tick
        return WalletReward.objects.filter(
            status__in=(RewardStatus.OFFERED, RewardStatus.AVAILABLE), expires_at__lte=now
        ).update(status=RewardStatus.EXPIRED)


# --- reads ---------------------------------------------------------------------------------------


def reward_effective_status(reward: WalletReward, *, now: datetime) -> str:
    """An available reward past its expiry reads as expired (nothing writes it on a read)."""
    if (
        reward.status in (RewardStatus.AVAILABLE, RewardStatus.OFFERED)
        and reward.expires_at
        and reward.expires_at <= now
    ):
        return RewardStatus.EXPIRED
    return reward.status


def wallet_rewards(*, member: Member, status: str = "", now: datetime | None = None) -> QuerySet[WalletReward]:
    """The member's wallet: claimed rewards (available, redeemed, expired). Offers are not in it."""
    now = now or timezone.now()
    rewards = WalletReward.objects.filter(member=member, status__in=WALLET_STATUSES)
    live = Q(status=RewardStatus.AVAILABLE) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    if status == RewardStatus.AVAILABLE:
        rewards = rewards.filter(live)
    elif status == RewardStatus.EXPIRED:
        rewards = rewards.filter(Q(status=RewardStatus.EXPIRED) | (Q(status=RewardStatus.AVAILABLE) & ~live))
    elif status == RewardStatus.REDEEMED:
        rewards = rewards.filter(status=RewardStatus.REDEEMED)
    return rewards


def inbox_sends(*, member: Member, now: datetime) -> QuerySet:
    """The member's campaign messages visible at ``now`` (gone out; never before their send time,
    nor returned, skipped, cancelled, control or capped), each with its campaign, the texts its
    night fixed, its reward and the member's last purchase before it (for ``{days_away}``)."""
    from campaigns import messages
    from campaigns.models import CampaignSend

    return (
        CampaignSend.objects.filter(member=member)
        .visible_at(now)
        .select_related("campaign__business", "business", "message")
        .prefetch_related("rewards")
        .annotate(purchase_before=messages.purchase_before())
    )


def inbox_message(send, *, member: Member) -> dict:
    """Title and body as this member got them (``campaigns.messages``, as every surface renders
    them), and the send's reward."""
    from campaigns import messages

    rendered = messages.send_render(send, campaign=send.campaign, business=send.business,
                                    purchase_before=send.purchase_before, first_name=member.first_name)  # fmt: skip
    rewards = list(send.rewards.all())
    return {"title": rendered.title, "body": rendered.body, "reward": rewards[0] if rewards else None}
